/** @odoo-module **/

import { onWillUnmount } from "@odoo/owl";
import { registry } from "@web/core/registry";
import { useService } from "@web/core/utils/hooks";
import { FormController } from "@web/views/form/form_controller";
import { formView } from "@web/views/form/form_view";
import { KanbanController } from "@web/views/kanban/kanban_controller";
import { kanbanView } from "@web/views/kanban/kanban_view";

/** Sent by prepaid.meter.command._notify_settled when commands end. */
export const COMMANDS_SETTLED = "prepaid_metering/commands_settled";

/**
 * Call ``callback({meter_ids, room_ids})`` whenever meter commands settle,
 * while the calling component is mounted.
 */
export function useCommandsSettled(callback) {
    const busService = useService("bus_service");
    const handler = (payload) => callback(payload || {});
    busService.subscribe(COMMANDS_SETTLED, handler);
    busService.start();
    onWillUnmount(() => busService.unsubscribe(COMMANDS_SETTLED, handler));
}

/** A meter or room form that reloads when a command of its meters settles
 * (never over the user's unsaved changes). */
export class PrepaidLiveFormController extends FormController {
    setup() {
        super.setup();
        useCommandsSettled(async ({ meter_ids = [], room_ids = [] }) => {
            // A notification can come before the record is loaded (a busy
            // server): nothing to reload yet.
            const record = this.model.root;
            const ids = this.props.resModel === "prepaid.room" ? room_ids : meter_ids;
            if (!record || !record.resId || !ids.includes(record.resId)) {
                return;
            }
            if (await record.isDirty()) {
                return;
            }
            await record.load();
        });
    }
}

registry.category("views").add("prepaid_live_form", {
    ...formView,
    Controller: PrepaidLiveFormController,
});

/** The room board: reloads (at most once a second) when a command of one of
 * its rooms settles. */
export class PrepaidLiveKanbanController extends KanbanController {
    setup() {
        super.setup();
        let timer = null;
        useCommandsSettled(({ room_ids = [] }) => {
            if (!room_ids.length || timer) {
                return;
            }
            timer = setTimeout(async () => {
                timer = null;
                await this.model.load();
            }, 1000);
        });
        onWillUnmount(() => clearTimeout(timer));
    }
}

registry.category("views").add("prepaid_live_kanban", {
    ...kanbanView,
    Controller: PrepaidLiveKanbanController,
});
