import math
from typing import NamedTuple

from markupsafe import Markup, escape

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL, format_datetime, sql

from ..tools import plausibility
from ..tools.plausibility import Reference
from .prepaid_meter import MULTIPLIED, READING_FIELDS

ANOMALIES = [
    ("none", "Normal"),
    ("rollover", "Counter Rollover"),
    ("replacement", "Meter Replaced"),
    ("jump", "Implausible Jump"),
    ("drop", "Unexplained Drop"),
    ("invalid", "Invalid Value"),
    ("continued", "Follows a Suspect Reading"),
]
REVIEW_STATES = [
    ("suspect", "Suspect"),
    ("accepted", "Accepted"),
    ("rejected", "Rejected"),
]
VALUE_COLUMNS = list(READING_FIELDS.values())
# Cumulative registers: a suspect reading changes none of them on the meter.
COUNTER_COLUMNS = [
    "energy_total_kwh",
    "energy_sharp_kwh",
    "energy_peak_kwh",
    "energy_flat_kwh",
    "energy_valley_kwh",
    "volume_m3",
]
COUNTER_SET = frozenset(COUNTER_COLUMNS)
# Set by the counter checks only, never by a caller.
JUDGED_FIELDS = {
    "delta_kwh",
    "delta_m3",
    "anomaly",
    "anomaly_note",
    "review_state",
    "review_note",
}


class Counter(NamedTuple):
    """A counter the plausibility rule judges, and where its state lives."""

    column: str  # reading (and meter) column of the value
    baseline: str  # meter column of the last accepted value
    pending: str  # meter state key of the pending suspect value
    delta: str  # reading column of the consumption
    rating: str  # meter column of the rated maximum per hour
    unit: str


COUNTERS = (
    Counter(
        "energy_total_kwh",
        "energy_baseline_kwh",
        "suspect_kwh",
        "delta_kwh",
        "rated_power_kw",
        "kWh",
    ),
    Counter(
        "volume_m3",
        "volume_baseline_m3",
        "suspect_m3",
        "delta_m3",
        "rated_flow_m3h",
        "m³",
    ),
)


class PrepaidReading(models.Model):
    """One reading of one meter: the values and the register words behind them.

    A reading is money only when it is plausible (see ``tools/plausibility``):
    a suspect one is stored with ``review_state`` "suspect", counts nothing
    and moves no baseline until someone accepts it.
    """

    _name = "prepaid.reading"
    _description = "Meter Reading"
    _order = "read_at desc, id desc"
    _rec_name = "read_at"

    # Indexed with the reading id (see init): a meter's readings after a
    # watermark are one range of that index, however long its history.
    meter_id = fields.Many2one("prepaid.meter", required=True, ondelete="cascade")
    meter_type = fields.Selection(related="meter_id.meter_type")
    room_id = fields.Many2one("prepaid.room", index=True, readonly=True)
    company_id = fields.Many2one("res.company", index=True, readonly=True)
    read_at = fields.Datetime(required=True, default=fields.Datetime.now, index=True)
    source = fields.Selection(
        [("poll", "Poll"), ("manual", "Manual"), ("import", "Import")],
        required=True,
        default="manual",
    )
    energy_total_kwh = fields.Float(string="Energy (kWh)", digits=(16, 2))
    energy_sharp_kwh = fields.Float(string="Sharp (kWh)", digits=(16, 2))
    energy_peak_kwh = fields.Float(string="Peak (kWh)", digits=(16, 2))
    energy_flat_kwh = fields.Float(string="Flat (kWh)", digits=(16, 2))
    energy_valley_kwh = fields.Float(string="Valley (kWh)", digits=(16, 2))
    voltage_v = fields.Float(string="Voltage (V)", digits=(16, 1))
    current_a = fields.Float(string="Current (A)", digits=(16, 2))
    power_kw = fields.Float(string="Power (kW)", digits=(16, 3))
    power_factor = fields.Float(digits=(16, 3))
    volume_m3 = fields.Float(string="Volume (m³)", digits=(16, 3))
    delta_kwh = fields.Float(
        string="Used (kWh)",
        digits=(16, 2),
        readonly=True,
        help="Energy since the previous accepted reading (0 while suspect).",
    )
    delta_m3 = fields.Float(string="Used (m³)", digits=(16, 3), readonly=True)
    anomaly = fields.Selection(
        ANOMALIES, default="none", required=True, readonly=True, index=True
    )
    anomaly_note = fields.Char(readonly=True)
    review_state = fields.Selection(
        REVIEW_STATES,
        readonly=True,
        copy=False,
        help="Suspect: implausible, not billed and no baseline until accepted. "
        "Empty: plausible, nothing to review.",
    )
    review_note = fields.Char(
        readonly=True, copy=False, help="Why the reading was accepted or rejected."
    )
    values_json = fields.Json(string="Decoded Values", readonly=True)
    raw_words = fields.Json(
        readonly=True, help="Register words as received, by block start address."
    )

    evidence_text = fields.Text(
        string="Evidence",
        compute="_compute_evidence_text",
        help="Decoded values and the register words they came from.",
    )

    def init(self):
        # A meter's readings in id order: billing takes those after its
        # watermark, polling the last one.
        sql.create_index(
            self.env.cr,
            "prepaid_reading_meter_id_id_index",
            self._table,
            ["meter_id", "id"],
        )
        # Billing and the suspect list look for a meter's pending suspects.
        sql.create_index(
            self.env.cr,
            "prepaid_reading_suspect_index",
            self._table,
            ["meter_id", "id"],
            where="review_state = 'suspect'",
        )

    # ------------------------------------------------------------------
    # Which readings are money: the one rule, used by every reader
    # ------------------------------------------------------------------
    @api.model
    def _get_money_domain(self):
        """Readings that are money: plausible ones (nothing to review) and
        suspect ones someone accepted. A pending suspect reading is not money
        until accepted; a rejected one never is (its use is 0 anyway)."""
        return [("review_state", "in", [False, "accepted"])]

    @api.model
    def _money_sql(self, alias):
        """The rule of :meth:`_get_money_domain` as an SQL condition on the
        prepaid_reading row ``alias``, for set-based statements (a constant:
        no parameter)."""
        state = SQL.identifier(alias, "review_state")
        return SQL("(%s IS NULL OR %s = 'accepted')", state, state)

    @api.model
    def _pending_suspect_sql(self, meter):
        """SQL: the id of the first pending suspect reading of the
        prepaid_meter row ``meter`` (NULL: none). Whoever reads a meter's
        readings after a watermark stops before it, so that once accepted
        it counts, exactly once."""
        return SQL(
            """(SELECT min(h.id) FROM prepaid_reading h
                 WHERE h.meter_id = %s AND h.review_state = 'suspect')""",
            SQL.identifier(meter, "id"),
        )

    @api.depends("values_json", "raw_words")
    def _compute_evidence_text(self):
        for reading in self:
            lines = [f"{k} = {v}" for k, v in (reading.values_json or {}).items()]
            for start, words in (reading.raw_words or {}).items():
                lines.append(
                    f"@0x{int(start):04X}: " + " ".join(f"{w:04X}" for w in words)
                )
            reading.evidence_text = "\n".join(lines)

    # ------------------------------------------------------------------
    # Counter logic shared by polled, manual and reviewed readings
    # ------------------------------------------------------------------
    @api.model
    def _plausibility_margin(self):
        return float(
            self.env["ir.config_parameter"]
            .sudo()
            .get_param("prepaid_metering.plausibility_margin", 1.5)
        )

    @api.model
    def _judge(self, meter, values, read_at, wraps, margin):
        """Consumption, anomaly and review state of ``values`` read at
        ``read_at``, against the meter state ``meter`` (a dict of
        ``_load_meter_states``)."""
        result = {
            "delta_kwh": 0.0,
            "delta_m3": 0.0,
            "anomaly": "none",
            "anomaly_note": None,
            "review_state": None,
        }
        good_at = meter["baseline_at"] or meter["last_reading_at"]
        pending_at = meter["suspect_at"]
        for counter in COUNTERS:
            current = values.get(counter.column)
            if current is None:
                continue
            baseline = meter[counter.baseline] if good_at else None
            pending = None
            if pending_at and meter[counter.pending] is not None:
                pending = Reference(meter[counter.pending], pending_at)
            wrap = wraps.get(counter.column)
            if wrap and counter.column in MULTIPLIED:
                wrap *= meter["multiplier"]
            rule = plausibility.rule_for(meter[counter.rating] or 0.0, margin, wrap)
            verdict = plausibility.assess(
                current, read_at, baseline, good_at, rule, pending
            )
            if verdict.kind == plausibility.NORMAL:
                result[counter.delta] = verdict.delta
                continue
            suspect = verdict.suspect
            if suspect:
                result["review_state"] = "suspect"
            else:
                result[counter.delta] = verdict.delta
            if suspect or result["anomaly"] == "none":
                result["anomaly"] = verdict.kind
                result["anomaly_note"] = self._anomaly_note(
                    counter, verdict, current, baseline, pending, rule
                )
        if result["review_state"]:
            result["delta_kwh"] = result["delta_m3"] = 0.0
        return result

    @api.model
    def _anomaly_note(self, counter, verdict, current, previous, pending, rule):
        """What was found, in a sentence (runs for anomalies only)."""
        args = {
            "unit": counter.unit,
            "column": counter.column,
            "cur": current if math.isfinite(current) else str(current),
            "prev": previous if previous is None else round(previous, 4),
            "delta": round(verdict.delta, 4),
            "limit": round(verdict.limit, 4),
            "pending": pending and round(pending.value, 4),
            "rate": rule.rate,
            "margin": rule.margin,
        }
        kind = verdict.kind
        if kind == plausibility.ROLLOVER:
            return self.env._(
                "Counter rollover: previous %(prev)s %(unit)s, now %(cur)s %(unit)s "
                "(%(delta)s %(unit)s across the wrap).",
                **args,
            )
        if kind == plausibility.JUMP:
            return self.env._(
                "Implausible jump: %(cur)s %(unit)s is %(delta)s %(unit)s above the "
                "last accepted %(prev)s %(unit)s; at most %(limit)s %(unit)s are "
                "credible since then (rated %(rate)s per hour x margin %(margin)s).",
                **args,
            )
        if kind == plausibility.DROP:
            return self.env._(
                "Unexplained drop: %(cur)s %(unit)s after the last accepted %(prev)s "
                "%(unit)s (not a counter rollover).",
                **args,
            )
        if kind == plausibility.CONTINUED:
            return self.env._(
                "Continues from the pending suspect value %(pending)s %(unit)s, not "
                "from the last accepted %(prev)s %(unit)s.",
                **args,
            )
        return self.env._(
            "Invalid %(column)s: %(cur)s (not a number, infinite, negative or out "
            "of range).",
            **args,
        )

    @api.model
    def _state_after(self, meter, values, read_at, judged):
        """Meter state changes once ``values`` (judged ``judged``) are stored:
        a plausible reading becomes the baseline and clears the pending
        suspect; a suspect one becomes the pending suspect and leaves the
        counters and the baseline alone."""
        if judged["review_state"]:
            changes = {c: v for c, v in values.items() if c not in COUNTER_SET}
            changes["last_reading_at"] = changes["suspect_at"] = read_at
            changes["suspect_kwh"] = values.get("energy_total_kwh")
            changes["suspect_m3"] = values.get("volume_m3")
            return changes
        changes = dict(values)
        changes["last_reading_at"] = changes["baseline_at"] = read_at
        changes["energy_baseline_kwh"] = values.get(
            "energy_total_kwh", meter["energy_baseline_kwh"]
        )
        changes["volume_baseline_m3"] = values.get(
            "volume_m3", meter["volume_baseline_m3"]
        )
        changes["suspect_at"] = changes["suspect_kwh"] = changes["suspect_m3"] = None
        return changes

    @api.model
    def _values_from_decoded(self, multiplier, decoded):
        """Reading columns from decoded register values (CT ratio applied)."""
        values = {}
        for name, column in READING_FIELDS.items():
            value = decoded.get(name)
            if value is not None:
                if column in MULTIPLIED and multiplier != 1:
                    value = round(value * multiplier, 6)
                values[column] = value
        return values

    @api.model_create_multi
    def create(self, vals_list):
        """Manual and imported readings go through the same counter checks as
        polled ones; they are refused when dated before the meter's last
        reading or inside what is already settled (billed)."""
        if any(vals.get("source") == "poll" for vals in vals_list):
            raise UserError(
                self.env._("Polled readings are stored by the polling job.")
            )
        # The meter states are read in SQL.
        self.env.flush_all()
        Meter = self.env["prepaid.meter"]
        states = self._load_meter_states(list({v["meter_id"] for v in vals_list}))
        margin = self._plausibility_margin()
        wraps, outcomes = {}, []
        for vals in vals_list:
            # Only code (sudo) records a meter replacement: the reading of the
            # new counter counts nothing and becomes the baseline.
            replacement = self.env.su and vals.get("anomaly") == "replacement"
            note = vals.get("anomaly_note")
            for key in JUDGED_FIELDS:
                vals.pop(key, None)
            meter = Meter.browse(vals["meter_id"])
            state = states[meter.id]
            read_at = fields.Datetime.to_datetime(
                vals.get("read_at") or fields.Datetime.now()
            )
            vals["read_at"] = read_at
            self._check_read_at(meter, state, read_at)
            values = {c: vals[c] for c in VALUE_COLUMNS if vals.get(c) is not None}
            if meter.id not in wraps:
                wraps[meter.id] = meter.profile_ids._counter_wraps()
            if replacement:
                judged = {
                    "delta_kwh": 0.0,
                    "delta_m3": 0.0,
                    "anomaly": "replacement",
                    "anomaly_note": note,
                    "review_state": None,
                }
            else:
                judged = self._judge(state, values, read_at, wraps[meter.id], margin)
            vals.update(judged)
            vals.setdefault("room_id", meter.room_id.id)
            vals.setdefault("company_id", meter.company_id.id)
            outcomes.append(state["suspect_at"] is not None)
            state.update(self._state_after(state, values, read_at, judged))
        readings = super().create(vals_list)
        notes = {}
        for reading, had_pending in zip(readings, outcomes, strict=True):
            state = states[reading.meter_id.id]
            if reading.review_state:
                if not had_pending:
                    self._add_note(notes, state["id"], self._suspect_note(reading))
                state["suspect_reading_id"] = reading.id
            elif had_pending:
                self.search(
                    [
                        ("meter_id", "=", state["id"]),
                        ("review_state", "=", "suspect"),
                        ("id", "<", reading.id),
                    ]
                )._set_review("rejected", self._cleared_note())
                self._add_note(notes, state["id"], self._cleared_note())
                state["suspect_reading_id"] = None
        for meter_id in {reading.meter_id.id for reading in readings}:
            state = states[meter_id]
            # The reading's own access was checked; the meter's last values
            # follow from it whoever recorded it.
            self._write_meter_state(states[meter_id])
        if notes:
            Meter.browse(list(notes))._message_log_batch(notes)
        return readings

    @api.model
    def _write_meter_state(self, state, columns=tuple(VALUE_COLUMNS)):
        """Store the meter state dict ``state`` (its ``columns``, baseline,
        last reading and pending suspect) like a sweep does, in SQL: a value
        never read stays empty (the ORM would not write 0.0 over an empty
        float, nor tell it from a baseline of 0.0 afterwards)."""
        columns = [
            "id",
            *columns,
            "energy_baseline_kwh",
            "volume_baseline_m3",
            "last_reading_at",
            "baseline_at",
            "suspect_reading_id",
        ]
        self._update_meters([state], columns)
        self.env["prepaid.meter"].browse(state["id"]).invalidate_recordset(columns[1:])

    def _check_read_at(self, meter, state, read_at):
        """Refuse a manual reading dated where it would change settled money
        or the meter's counter history."""
        locked = meter._reading_locked_until()
        if locked and read_at <= locked:
            raise UserError(
                self.env._(
                    "Meter %(meter)s is billed up to %(locked)s: a reading dated "
                    "%(at)s would change what was already billed. Record the "
                    "reading with a later date.",
                    meter=meter.name,
                    locked=format_datetime(self.env, locked),
                    at=format_datetime(self.env, read_at),
                )
            )
        last = state["last_reading_at"]
        if last and read_at < last:
            raise UserError(
                self.env._(
                    "Meter %(meter)s already has a reading at %(last)s: readings "
                    "are recorded in date order, so one dated %(at)s cannot be "
                    "added. Record it with a later date, or leave a note on the "
                    "meter.",
                    meter=meter.name,
                    last=format_datetime(self.env, last),
                    at=format_datetime(self.env, read_at),
                )
            )

    def write(self, vals):
        if set(vals) & set(VALUE_COLUMNS + ["meter_id", "read_at"]):
            raise UserError(
                self.env._(
                    "Readings are evidence and cannot be changed; add a new manual "
                    "reading instead."
                )
            )
        if set(vals) & JUDGED_FIELDS and not self.env.su:
            raise UserError(
                self.env._(
                    "The consumption and the review of a reading are set by the "
                    "counter checks; accept or reject a suspect reading instead."
                )
            )
        return super().write(vals)

    def _set_review(self, state, note):
        """Mark these readings accepted or rejected (no checks: callers do)."""
        if self:
            self.sudo().write({"review_state": state, "review_note": note})

    def _cleared_note(self):
        return self.env._(
            "Cleared automatically: a later reading continues from the last "
            "accepted value."
        )

    def _suspect_note(self, reading):
        return self.env._(
            "Suspect reading of %(at)s, not billed until reviewed: %(note)s",
            at=format_datetime(self.env, reading.read_at),
            note=reading.anomaly_note,
        )

    @staticmethod
    def _add_note(notes, meter_id, body):
        body = escape(body)
        notes[meter_id] = (
            notes[meter_id] + Markup("<br/>") + body if meter_id in notes else body
        )
