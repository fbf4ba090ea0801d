/** @odoo-module **/

import { registry } from "@web/core/registry";

function services() {
    return odoo.__WOWL_DEBUG__.root.env.services;
}

registry.category("web_tour.tours").add("prepaid_meter_live_form", {
    steps: () => [
        {
            content: "Supply on: Cut is offered, Restore is not",
            trigger:
                ".o_form_view .o_form_statusbar:not(:has(button[name=action_switch_on])) button[name=action_switch_off]",
            run: "click",
        },
        {
            content: "Confirm the cut",
            trigger: ".modal-footer .btn-primary",
            run: "click",
        },
        {
            content: "The command is queued",
            trigger: ".o_notification:contains(queued)",
        },
        {
            content: "The command job sends it (here: Send Now from another screen)",
            trigger: ".o_form_view",
            async run() {
                const { orm, bus_service } = services();
                const ids = await orm.search("prepaid.meter.command", [
                    ["state", "=", "queued"],
                ]);
                await orm.call("prepaid.meter.command", "action_send_now", [ids]);
                // The test server sends no NOTIFY; subscribing again fetches
                // what the bus holds, as the NOTIFY would have triggered.
                bus_service.forceUpdateChannels();
            },
        },
        {
            content: "The form reloaded by itself: the supply is off, Restore is offered",
            trigger:
                ".o_form_view .o_form_statusbar:not(:has(button[name=action_switch_off])) button[name=action_switch_on]",
        },
        {
            trigger: ".o_field_widget[name=switch_state]:contains(Supply Off)",
        },
    ],
});

registry.category("web_tour.tours").add("prepaid_room_live_board", {
    steps: () => [
        {
            content: "Find the room (the board may hold more rooms than a page)",
            trigger: ".o_searchview_input",
            run: "edit Live Shop",
        },
        {
            trigger: ".o_searchview_input",
            run: "press Enter",
        },
        {
            content: "The room's card: supply on",
            trigger: ".o_kanban_record:contains(Live Shop):not(:contains(supply off))",
        },
        {
            content: "A cut of its meter is sent from another screen",
            trigger: ".o_kanban_view",
            async run() {
                const { orm, bus_service } = services();
                const [meterId] = await orm.search("prepaid.meter", [
                    ["name", "=", "Live meter"],
                ]);
                const [commandId] = await orm.create("prepaid.meter.command", [
                    { meter_id: meterId, command_type: "relay_off" },
                ]);
                await orm.call("prepaid.meter.command", "action_send_now", [[commandId]]);
                bus_service.forceUpdateChannels();
            },
        },
        {
            content: "The board reloaded by itself",
            trigger: ".o_kanban_record:contains(Live Shop):contains(supply off)",
        },
    ],
});
