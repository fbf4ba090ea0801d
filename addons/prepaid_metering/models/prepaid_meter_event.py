from odoo import api, fields, models

# What a meter event says happened. Counter kinds come from a meter's own event
# counters (DL/T 645 03xxxxxx identifiers, Modbus status registers where a
# profile has them); analysis kinds are worked out by the server from readings.
EVENT_KINDS = [
    ("cover_opened", "Meter cover opened"),
    ("terminal_cover_opened", "Terminal cover opened"),
    ("voltage_loss", "Loss of voltage"),
    ("phase_loss", "Phase loss"),
    ("reverse_power", "Reverse power"),
    ("meter_cleared", "Meter cleared"),
    ("clock_set", "Meter clock set"),
    ("clock_offset", "Meter clock off"),
    ("reverse_energy", "Reverse energy growing"),
    ("current_without_voltage", "Current without voltage"),
    ("flow_while_closed", "Water flowing through a closed valve"),
    ("master_loss", "Master meter loss above threshold"),
    ("other", "Other"),
]
EVENT_SOURCES = [
    ("counter", "Meter event counter"),
    ("status", "Meter status register"),
    ("analysis", "Server analysis of readings"),
]


class PrepaidMeterEvent(models.Model):
    """Something a meter reported or the server noticed about a meter.

    One event per occurrence (a counter rise, a signal that started); the
    evidence keeps the raw values and times before and after. No money moves
    because of an event. An open event is acknowledged by an operator.
    """

    _name = "prepaid.meter.event"
    _description = "Meter Event"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _order = "occurred_at desc, id desc"
    _rec_name = "kind"

    meter_id = fields.Many2one(
        "prepaid.meter", required=True, ondelete="cascade", index=True
    )
    room_id = fields.Many2one(related="meter_id.room_id", store=True)
    site_id = fields.Many2one(related="meter_id.site_id", store=True)
    gateway_id = fields.Many2one(related="meter_id.gateway_id")
    company_id = fields.Many2one(related="meter_id.company_id", store=True)
    kind = fields.Selection(EVENT_KINDS, required=True, index=True)
    source = fields.Selection(EVENT_SOURCES, required=True, default="counter")
    occurred_at = fields.Datetime(
        string="Detected", required=True, default=fields.Datetime.now, index=True
    )
    count_before = fields.Integer(
        help="The meter's event counter at the previous read, when the event "
        "comes from a counter."
    )
    count_after = fields.Integer(help="The meter's event counter at this read.")
    evidence = fields.Json(
        string="Evidence (raw)",
        help="Raw values and their times before and after, as read from the meter.",
    )
    evidence_text = fields.Text(compute="_compute_evidence_text", string="Evidence")
    description = fields.Char(translate=False)
    state = fields.Selection(
        [("open", "Open"), ("acknowledged", "Acknowledged")],
        required=True,
        default="open",
        index=True,
        tracking=True,
    )
    acknowledged_by_id = fields.Many2one("res.users", readonly=True)
    acknowledged_at = fields.Datetime(readonly=True)

    @api.depends("evidence")
    def _compute_evidence_text(self):
        for event in self:
            lines = []
            for key, value in sorted((event.evidence or {}).items()):
                lines.append(f"{key}: {value}")
            event.evidence_text = "\n".join(lines)

    def action_acknowledge(self):
        self.check_access("write")
        todo = self.filtered(lambda e: e.state == "open")
        todo.write(
            {
                "state": "acknowledged",
                "acknowledged_by_id": self.env.uid,
                "acknowledged_at": fields.Datetime.now(),
            }
        )
        todo.activity_ids.action_feedback()
        return True
