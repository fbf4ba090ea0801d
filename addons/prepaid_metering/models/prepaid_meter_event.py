import logging

from markupsafe import Markup, escape
from psycopg2.errors import UniqueViolation

from odoo import api, fields, models

_logger = logging.getLogger(__name__)
OPEN_UNIQUE = "prepaid_meter_event_open_unique"


class _RefusedOpenEvent(logging.Filter):
    """The unique index refusing a second open event is expected (see
    ``_create_open``), not a "bad query" for the log."""

    def filter(self, record):
        return OPEN_UNIQUE not in str(record.args)


logging.getLogger("odoo.sql_db").addFilter(_RefusedOpenEvent())

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
    reading_id = fields.Many2one(
        "prepaid.reading",
        string="Reading",
        readonly=True,
        ondelete="set null",
        help="The reading that showed the signal first (its register words).",
    )
    previous_reading_id = fields.Many2one(
        "prepaid.reading",
        string="Previous Reading",
        readonly=True,
        ondelete="set null",
        help="The reading it was compared with.",
    )
    last_seen_at = fields.Datetime(
        string="Last Seen",
        readonly=True,
        help="The last time the meter showed this signal again while the event "
        "was open (one event, and one alarm, until it is acknowledged).",
    )
    seen_count = fields.Integer(
        string="Times Seen",
        default=1,
        readonly=True,
        help="How many reads showed this signal while the event was open.",
    )
    last_evidence = fields.Json(string="Latest Evidence (raw)", readonly=True)
    last_evidence_text = fields.Text(
        compute="_compute_evidence_text", string="Latest Evidence"
    )

    def init(self):
        # One open event per meter and kind, kept by the database: two
        # processes reporting the same signal at once (two Odoo servers, the
        # poll and the master-meter check) cannot both open one. The index
        # also serves the look-up of the open event at every signal.
        self.env.cr.execute("DROP INDEX IF EXISTS prepaid_meter_event_open_index")
        # a database from before the index may hold a second open event of a
        # signal (a race it could not stop): the later one is folded away
        self.env.cr.execute(
            """UPDATE prepaid_meter_event e SET state = 'acknowledged'
                WHERE e.state = 'open' AND EXISTS (
                      SELECT 1 FROM prepaid_meter_event o
                       WHERE o.meter_id = e.meter_id AND o.kind = e.kind
                         AND o.state = 'open' AND o.id < e.id)"""
        )
        self.env.cr.execute(
            f"""CREATE UNIQUE INDEX IF NOT EXISTS {OPEN_UNIQUE}
                   ON prepaid_meter_event (meter_id, kind) WHERE state = 'open'"""
        )

    @api.model_create_multi
    def create(self, vals_list):
        """One open event per meter and kind: a signal whose kind is still
        open on the meter updates that event (last seen, latest evidence,
        counter after) instead of making another, whoever reports it (the
        poll's checks, a DL/T 645 counter, the master-meter check). Only a
        new event raises an alarm."""
        keys = {(v.get("meter_id"), v.get("kind")) for v in vals_list}
        open_events = {}
        if all(meter and kind for meter, kind in keys):
            for event in self.sudo().search(
                [
                    ("state", "=", "open"),
                    ("meter_id", "in", list({m for m, _k in keys})),
                    ("kind", "in", list({k for _m, k in keys})),
                ],
                order="id",
            ):
                open_events.setdefault((event.meter_id.id, event.kind), event)
        to_create, slots, pending = [], [], {}
        for vals in vals_list:
            key = (vals.get("meter_id"), vals.get("kind"))
            if key in open_events:
                slots.append(open_events[key])
            elif key in pending:
                # two signals of one kind in one call: the first is the event
                to_create[pending[key]][2].append(vals)
                slots.append(pending[key])
            else:
                pending[key] = len(to_create)
                slots.append(len(to_create))
                to_create.append((key, vals, []))
        created = self._create_open([vals for _key, vals, _later in to_create])
        for (_key, _vals, later), event in zip(to_create, created, strict=True):
            for vals in later:
                if event:
                    event._seen_again(vals)
        for vals, slot in zip(vals_list, slots, strict=True):
            if not isinstance(slot, int):
                slot._seen_again(vals)
        new = self.browse([event.id for event in created if event])
        new._raise_alarm()
        records = [created[slot] if isinstance(slot, int) else slot for slot in slots]
        return self.browse([r.id for r in records if r])

    def _create_open(self, vals_list):
        """Create the events of ``vals_list``; returns one record (or an empty
        one) per values. An event whose meter and kind another transaction
        opened in the meantime (the unique index refuses it once that one
        commits) is that transaction's to report: it is left out here rather
        than failing the poll or the check that saw the signal."""
        if not vals_list:
            return []
        try:
            with self.env.cr.savepoint():
                return list(super().create(vals_list))
        except UniqueViolation:
            if len(vals_list) > 1:
                return [
                    event for vals in vals_list for event in self._create_open([vals])
                ]
            _logger.info(
                "meter %s: a %s event was opened at the same moment elsewhere",
                vals_list[0].get("meter_id"),
                vals_list[0].get("kind"),
            )
            return [self.browse()]

    def _seen_again(self, vals):
        """The signal of this open event showed again: keep the first
        evidence, note the latest."""
        self.ensure_one()
        update = {
            "last_seen_at": vals.get("occurred_at") or fields.Datetime.now(),
            "seen_count": self.seen_count + 1,
            "last_evidence": vals.get("evidence"),
        }
        if vals.get("count_after"):
            update["count_after"] = vals["count_after"]
        self.sudo().write(update)

    @api.depends("evidence", "last_evidence")
    def _compute_evidence_text(self):
        for event in self:
            event.evidence_text = self._evidence_lines(event.evidence)
            event.last_evidence_text = self._evidence_lines(event.last_evidence)

    @api.model
    def _evidence_lines(self, evidence):
        return "\n".join(
            f"{key}: {value}" for key, value in sorted((evidence or {}).items())
        )

    @api.model
    def _signal_description(self, signal):
        """A sentence for an operator about a signal of :mod:`tools.tamper`."""
        _ = self.env._
        evidence = signal.evidence
        phases = (evidence.get("phases") or "").upper()
        if signal.kind == "reverse_energy":
            return _(
                "Reverse energy rose %(kwh)s kWh between two reads (threshold "
                "%(threshold)s kWh).",
                kwh=evidence["grown_kwh"],
                threshold=evidence["threshold_kwh"],
            )
        if signal.kind == "current_without_voltage":
            return _(
                "Phase %(phases)s: no voltage while current flows (energy not "
                "measured).",
                phases=phases,
            )
        if signal.kind == "phase_loss":
            return _(
                "Phase %(phases)s lost: no voltage and no current while the "
                "other phases are live.",
                phases=phases,
            )
        if signal.kind == "flow_while_closed":
            return _(
                "%(m3)s m³ flowed while the valve reported closed (threshold "
                "%(threshold)s m³).",
                m3=evidence["flowed_m3"],
                threshold=evidence["threshold_m3"],
            )
        return _(
            "The meter's event counter went from %(before)s to %(after)s.",
            before=signal.count_before,
            after=signal.count_after,
        )

    # ------------------------------------------------------------------
    # Alarms
    # ------------------------------------------------------------------
    @api.model
    def _alarm_level(self):
        """ "none", "activity" or "email" (activity and email), from settings."""
        return (
            self.env["ir.config_parameter"]
            .sudo()
            .get_param("prepaid_metering.event_alarm_level", "email")
        )

    def _alarm_users(self):
        """Who is alarmed about this event: the metering managers of its
        company."""
        group = self.env.ref("prepaid_metering.group_metering_manager")
        return group.sudo().users.filtered(
            lambda u: self.company_id in u.company_ids and not u.share
        )

    def _alarm_summary(self):
        kinds = dict(self._fields["kind"]._description_selection(self.env))
        return self.env._(
            "%(kind)s: %(meter)s",
            kind=kinds.get(self.kind, self.kind),
            meter=self.meter_id.display_name,
        )

    def _raise_alarm(self):
        """One alarm per new event: an activity for each metering manager and,
        at level "email", a message e-mailed to them. Nothing else happens:
        no money moves and no meter is switched because of a signal."""
        level = self._alarm_level()
        if level not in ("activity", "email") or not self:
            return
        activity_type = self.env.ref("mail.mail_activity_data_warning")
        for event in self.sudo():
            users = event._alarm_users()
            summary = event._alarm_summary()
            note = Markup("<br/>").join(
                escape(line)
                for line in [event.description or "", *event.evidence_text.splitlines()]
            )
            for user in users:
                event.with_context(mail_activity_quick_update=True).activity_schedule(
                    activity_type_id=activity_type.id,
                    summary=summary,
                    note=note,
                    user_id=user.id,
                )
            if level == "email" and users:
                body = Markup("<p>%s</p><p>%s</p>") % (
                    summary,
                    Markup("<br/>").join(
                        escape(line) for line in event.evidence_text.splitlines()
                    ),
                )
                event.message_post(
                    body=body,
                    subject=summary,
                    partner_ids=users.partner_id.ids,
                    message_type="comment",
                    subtype_xmlid="mail.mt_comment",
                )

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
