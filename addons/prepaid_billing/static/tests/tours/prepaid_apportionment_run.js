/** @odoo-module **/

import { registry } from "@web/core/registry";

registry.category("web_tour.tours").add("prepaid_apportionment_run_accountant", {
    steps: () => [
        {
            content: "Start a new run",
            trigger: ".o_list_button_add",
            run: "click",
        },
        {
            content: "The apportionment field offers the company's apportionments",
            trigger: ".o_field_widget[name=apportionment_id] input",
            run: "edit Corr",
        },
        {
            trigger: ".o-autocomplete--dropdown-item a:contains(Corridors)",
            run: "click",
        },
        {
            content: "January",
            trigger: ".o_field_widget[name=period_start] input",
            run: "edit 01/01/2026",
        },
        {
            trigger: ".o_field_widget[name=method]:contains(Room area)",
            run: "click",
        },
        {
            content: "The whole month is proposed",
            trigger: ".o_field_widget[name=period_end] input:value(01/31/2026)",
        },
        {
            content: "Preview the shares",
            trigger: "button[name=action_compute]",
            run: "click",
        },
        {
            trigger: ".o_field_widget[name=share_ids] .o_data_row:contains(Shop 1)",
        },
        {
            content: "The run is titled by its apportionment and period",
            trigger: ".o_breadcrumb:contains(Corridors 2026-01-01 - 2026-01-31)",
        },
        {
            content: "Post",
            trigger: "button[name=action_post]",
            run: "click",
        },
        {
            trigger: ".o_statusbar_status button.o_arrow_button_current:contains(Posted)",
        },
    ],
});
