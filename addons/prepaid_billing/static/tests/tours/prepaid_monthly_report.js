/** @odoo-module **/

import { rpc } from "@web/core/network/rpc";
import { registry } from "@web/core/registry";

const FILE_NAME = "monthly-report-2026-03.xlsx";

registry.category("web_tour.tours").add("prepaid_monthly_report_accountant", {
    steps: () => [
        {
            content: "Open the apps menu",
            trigger: ".o_navbar_apps_menu button",
            run: "click",
        },
        {
            content: "Open Prepaid Metering",
            trigger: ".o_app[data-menu-xmlid='prepaid_metering.prepaid_metering_menu_root']",
            run: "click",
        },
        {
            content: "Reporting",
            trigger: ".o_menu_sections [data-menu-xmlid='prepaid_billing.prepaid_reporting_menu']",
            run: "click",
        },
        {
            content: "Comprehensive Monthly Report",
            trigger: ".dropdown-item[data-menu-xmlid='prepaid_billing.prepaid_monthly_report_menu']",
            run: "click",
        },
        {
            content: "March",
            trigger: ".modal .o_field_widget[name=report_month] select",
            run: 'select "3"',
        },
        {
            content: "2026",
            trigger: ".modal .o_field_widget[name=report_year] select",
            run: 'select "2026"',
        },
        {
            content: "Export the spreadsheet",
            trigger: ".modal button[name=action_export_xlsx]",
            run: "click",
        },
        {
            content: "The month's spreadsheet is made for the accountant",
            trigger: ".modal .o_field_widget[name=report_month] select",
            async run() {
                for (let attempt = 0; attempt < 50; attempt++) {
                    const found = await rpc(
                        "/web/dataset/call_kw/prepaid.monthly.report.wizard/search_count",
                        {
                            model: "prepaid.monthly.report.wizard",
                            method: "search_count",
                            args: [[["xlsx_name", "=", FILE_NAME]]],
                            kwargs: {},
                        }
                    );
                    if (found) {
                        return;
                    }
                    await new Promise((resolve) => setTimeout(resolve, 200));
                }
                throw new Error(`No ${FILE_NAME} after Export XLSX`);
            },
        },
    ],
});
