/** @odoo-module **/

import { registry } from "@web/core/registry";

registry.category("web_tour.tours").add("prepaid_energy_dashboard", {
    steps: () => [
        {
            content: "This month's electricity on its card",
            trigger: ".o_prepaid_dashboard .o_prepaid_kpi_kwh .o_prepaid_kpi_value:contains(12.5 kWh)",
        },
        {
            content: "This month's water on its card",
            trigger: ".o_prepaid_kpi_m3 .o_prepaid_kpi_value:contains(3.25 m³)",
        },
        {
            content: "The change compares the same days of last month, and names them",
            trigger: ".o_prepaid_kpi_kwh:contains(same days last month) .o_prepaid_kpi_last",
        },
        {
            content: "A billing user sees the revenue",
            trigger: ".o_prepaid_kpi_revenue",
        },
        {
            content: "One offline meter",
            trigger: ".o_prepaid_kpi_meters .o_prepaid_kpi_value:contains(1)",
        },
        {
            content: "The chart by building is drawn",
            trigger: ".o_prepaid_dashboard_location canvas",
        },
        {
            content: "The doughnut of balance states is drawn",
            trigger: ".o_prepaid_dashboard_balance canvas",
        },
        {
            content: "The top consumer is listed",
            trigger: ".o_prepaid_dashboard_top td:contains(Shop 1)",
        },
        {
            content: "Pick the site",
            trigger: "select.o_prepaid_dashboard_site",
            run: "selectByLabel Test Plaza",
        },
        {
            trigger: "select.o_prepaid_dashboard_site:has(option:selected:contains(Test Plaza))",
        },
        {
            trigger: ".o_prepaid_kpi_kwh .o_prepaid_kpi_value:contains(12.5 kWh)",
        },
        {
            content: "Switch the chart to floors",
            trigger: "button.o_prepaid_by_floor",
            run: "click",
        },
        {
            trigger: "button.o_prepaid_by_floor.btn-primary",
        },
        {
            trigger: ".o_prepaid_dashboard_location canvas",
        },
        {
            content: "Open the meters that need a visit",
            trigger: ".o_prepaid_kpi_meters",
            run: "click",
        },
        {
            content: "The list of offline and faulty meters opens",
            trigger: ".o_list_view .o_data_row",
        },
        {
            content: "Back to the dashboard",
            trigger: ".o_breadcrumb .o_back_button:contains(Energy Dashboard)",
            run: "click",
        },
        {
            content: "The same site and chart as before",
            trigger: "select.o_prepaid_dashboard_site:has(option:selected:contains(Test Plaza))",
        },
        {
            trigger: "button.o_prepaid_by_floor.btn-primary",
        },
        {
            trigger: ".o_prepaid_dashboard_location canvas",
        },
    ],
});
