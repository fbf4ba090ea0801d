/** @odoo-module **/

import { registry } from "@web/core/registry";

registry.category("web_tour.tours").add("prepaid_room_board_balance", {
    steps: () => [
        {
            content: "The board is one grid, not columns by building",
            trigger: ".o_prepaid_room_board .o_kanban_renderer.o_kanban_ungrouped",
        },
        {
            content: "Find the rooms (the board may hold more rooms than a page)",
            trigger: ".o_searchview_input",
            run: "edit Board",
        },
        {
            trigger: ".o_searchview_input",
            run: "press Enter",
        },
        {
            content: "A prepaid room shows its balance",
            trigger:
                ".o_kanban_record:contains(Board Shop):not(:contains(Postpaid)) .o_prepaid_room_balance:contains(123.45)",
        },
        {
            content: "A postpaid room has no wallet balance",
            trigger:
                ".o_kanban_record:contains(Board Postpaid Shop):not(:has(.o_prepaid_room_balance))",
        },
    ],
});
