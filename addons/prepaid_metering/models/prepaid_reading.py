import json
import logging
import math
from typing import NamedTuple

from markupsafe import Markup, escape

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import format_datetime, sql

from ..tools import plausibility
from ..tools.plausibility import Reference
from .prepaid_meter import MULTIPLIED, READING_FIELDS

_logger = logging.getLogger(__name__)

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
# Meter columns a sweep reads before storing, and writes back.
STATE_COLUMNS = [
    "state",
    "fail_count",
    "multiplier",
    "room_id",
    "company_id",
    "switch_state",
    "energy_baseline_kwh",
    "volume_baseline_m3",
    "baseline_at",
    "suspect_reading_id",
    "rated_power_kw",
    "rated_flow_m3h",
    "last_reading_at",
    "day_start_date",
    "day_start_kwh",
    "day_start_m3",
    "month_start_date",
    "month_start_kwh",
    "month_start_m3",
    *VALUE_COLUMNS,
]
READ_COLUMNS = [
    "id",
    "state",
    "state_reason",
    "fail_count",
    "last_contact",
    "last_reading_at",
    "switch_state",
    "meter_values",
    *VALUE_COLUMNS,
    "day_start_date",
    "day_start_kwh",
    "day_start_m3",
    "month_start_date",
    "month_start_kwh",
    "month_start_m3",
    "energy_baseline_kwh",
    "volume_baseline_m3",
    "baseline_at",
    "suspect_reading_id",
]
FAILED_COLUMNS = ["id", "state", "state_reason", "fail_count"]
COLUMN_TYPES = {
    "id": "int4",
    "state": "varchar",
    "state_reason": "varchar",
    "fail_count": "int4",
    "last_contact": "timestamp",
    "last_reading_at": "timestamp",
    "baseline_at": "timestamp",
    "suspect_reading_id": "int4",
    "switch_state": "varchar",
    "meter_values": "jsonb",
    "day_start_date": "date",
    "month_start_date": "date",
}
ERROR_KINDS_OFFLINE = {"timeout", "connection"}
MODBUS_EXCEPTIONS = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "device failure",
    5: "acknowledge",
    6: "device busy",
    10: "gateway path unavailable",
    11: "gateway target failed to respond",
}


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

    meter_id = fields.Many2one(
        "prepaid.meter", required=True, ondelete="cascade", index=True
    )
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
        # Billing and the suspect list look for a meter's pending suspects.
        sql.create_index(
            self.env.cr,
            "prepaid_reading_suspect_index",
            self._table,
            ["meter_id", "id"],
            where="review_state = 'suspect'",
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
            baseline = meter[counter.baseline]
            good = None
            if good_at and baseline is not None:
                good = Reference(baseline, good_at)
            pending = None
            if pending_at and meter[counter.pending] is not None:
                pending = Reference(meter[counter.pending], pending_at)
            wrap = wraps.get(counter.column)
            if wrap and counter.column in MULTIPLIED:
                wrap *= meter["multiplier"]
            rule = plausibility.rule_for(meter[counter.rating] or 0.0, margin, wrap)
            verdict = plausibility.assess(current, read_at, good, pending, rule)
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
                    counter, verdict, current, good, pending, rule
                )
        if result["review_state"]:
            result["delta_kwh"] = result["delta_m3"] = 0.0
        return result

    @api.model
    def _anomaly_note(self, counter, verdict, current, good, pending, rule):
        """What was found, in a sentence (runs for anomalies only)."""
        args = {
            "unit": counter.unit,
            "column": counter.column,
            "cur": current if math.isfinite(current) else str(current),
            "prev": good and round(good.value, 4),
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
    def _write_meter_state(self, state, columns=VALUE_COLUMNS):
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

    # ------------------------------------------------------------------
    # Batch storage of a sweep
    # ------------------------------------------------------------------
    @api.model
    def _store_poll_results(
        self, gateway_results, durations=None, profiles_by_meter=None
    ):
        """Store one sweep: readings, meter states, gateway and room states.

        A constant number of SQL statements whatever the number of meters: one
        SELECT of the meters' last state, one INSERT of all readings, one UPDATE
        of the meters read and one of those that failed, one of the gateways,
        one of the rooms (plus chatter notes for meters that changed state,
        and one UPDATE of the suspect readings cleared by this sweep).

        :param gateway_results: list of (gateway record, [PollResult])
        :param durations: optional {gateway id: seconds the sweep took}
        :param profiles_by_meter: optional {meter id: profiles}, known by the
            caller that planned the reads
        """
        # Raw SQL below: pending ORM writes must reach the database first.
        self.env.flush_all()
        meter_ids = [res.key for _gw, results in gateway_results for res in results]
        states = self._load_meter_states(meter_ids)
        if profiles_by_meter is None:
            profiles_by_meter = {
                m.id: m.profile_ids for m in self.env["prepaid.meter"].browse(meter_ids)
            }
        threshold = int(
            self.env["ir.config_parameter"]
            .sudo()
            .get_param("prepaid_metering.offline_after_failures", 3)
        )
        now = fields.Datetime.now()
        context = {
            "tz_dates": {},
            "profiles": {},
            "margin": self._plausibility_margin(),
        }
        readings, read_rows, failed_rows, gateway_rows, notes = [], [], [], [], {}
        suspect_rows, cleared = {}, []
        for gateway, results in gateway_results:
            answered = False
            connection_error = None
            for res in results:
                meter = states[res.key]
                if res.ok:
                    answered = True
                    row = self._prepare_success(
                        meter, res, readings, context, profiles_by_meter[res.key]
                    )
                    read_rows.append(row)
                    self._track_review(
                        meter, readings[-1], row, suspect_rows, cleared, notes
                    )
                else:
                    if res.error_kind == "connection":
                        connection_error = res.error
                    else:
                        answered = answered or res.error_kind == "exception"
                    row = self._prepare_failure(meter, res, threshold)
                    failed_rows.append(row)
                if row["state"] != meter["state"] and meter["state"] != "new":
                    self._add_note(notes, meter["id"], self._state_note(row))
            gateway_rows.append(
                {
                    "id": gateway.id,
                    "state": "online" if answered or not results else "offline",
                    "last_error": None if answered else connection_error,
                    "last_contact": now if answered else gateway.last_contact or None,
                    "duration": (durations or {}).get(gateway.id, 0.0),
                }
            )
        inserted = self._insert_readings(readings, returning=bool(suspect_rows))
        for meter_id, reading_id in inserted:
            if meter_id in suspect_rows:
                suspect_rows[meter_id]["suspect_reading_id"] = reading_id
        self._update_meters(read_rows, READ_COLUMNS)
        self._update_meters(failed_rows, FAILED_COLUMNS)
        self._clear_suspects(cleared)
        self._update_gateways(gateway_rows, now)
        self._update_rooms(
            sorted({m["room_id"] for m in states.values() if m["room_id"]})
        )
        self.env["prepaid.meter"].invalidate_model()
        self.env["prepaid.gateway"].invalidate_model()
        self.env["prepaid.room"].invalidate_model(["monitor_state"])
        if cleared:
            self.invalidate_model(["review_state", "review_note"])
        if notes:
            self.env["prepaid.meter"].browse(list(notes))._message_log_batch(notes)
        return len(readings)

    def _track_review(self, meter, reading, row, suspect_rows, cleared, notes):
        """Note a meter whose new reading is suspect (its row waits for the
        reading's id) or clears its pending suspect readings."""
        if reading["review_state"]:
            suspect_rows[meter["id"]] = row
            if not meter["suspect_reading_id"]:
                self._add_note(
                    notes,
                    meter["id"],
                    self.env._(
                        "Suspect reading, not billed until reviewed: %s",
                        reading["anomaly_note"],
                    ),
                )
        elif meter["suspect_reading_id"]:
            cleared.append(meter["id"])
            self._add_note(notes, meter["id"], self._cleared_note())

    def _load_meter_states(self, meter_ids):
        """The meters' last values as plain dicts (no ORM records: a sweep
        touches thousands of meters), with the value and time of their
        pending suspect reading (``suspect_*``)."""
        self.env.cr.execute(
            f"""
            SELECT m.id, {", ".join(f"m.{c}" for c in STATE_COLUMNS)},
                   COALESCE(s.tz, 'UTC') AS tz,
                   p.energy_total_kwh AS suspect_kwh, p.volume_m3 AS suspect_m3,
                   p.read_at AS suspect_at
              FROM prepaid_meter m
              LEFT JOIN prepaid_site s ON s.id = m.site_id
              LEFT JOIN prepaid_reading p ON p.id = m.suspect_reading_id
             WHERE m.id = ANY(%s)
            """,  # noqa: S608 - column names are constants of this module
            [meter_ids],
        )
        return {row["id"]: row for row in self.env.cr.dictfetchall()}

    def _prepare_success(self, meter, res, readings, context, profiles):
        """Meter row and reading of one meter that answered."""
        # Datetime fields hold whole seconds; so do readings stored by SQL.
        read_at = res.at.replace(microsecond=0)
        cached = context["profiles"].get(profiles)
        if cached is None:
            cached = context["profiles"][profiles] = (
                profiles._counter_wraps(),
                profiles._switch_reader(),
            )
        wraps, switch_reader = cached
        decoded = res.values
        values = self._values_from_decoded(meter["multiplier"], decoded)
        judged = self._judge(meter, values, read_at, wraps, context["margin"])
        try:
            values_json = json.dumps(decoded, allow_nan=False)
        except ValueError:
            # NaN or infinite (a float register): not JSON, and not a value to
            # keep; the raw words stay as evidence.
            decoded = {k: v if math.isfinite(v) else None for k, v in decoded.items()}
            values_json = json.dumps(decoded)
            values = {c: v for c, v in values.items() if math.isfinite(v)}
        tz = meter["tz"]
        local_date = context["tz_dates"].get(tz)
        if local_date is None:
            local_date = context["tz_dates"][tz] = self.env[
                "prepaid.meter"
            ]._local_date(read_at, tz)
        row = {
            c: meter[c]
            for c in (
                *VALUE_COLUMNS,
                "energy_baseline_kwh",
                "volume_baseline_m3",
                "baseline_at",
            )
        }
        row.update(self._state_after(meter, values, read_at, judged))
        kwh = row["energy_total_kwh"] or 0.0
        m3 = row["volume_m3"] or 0.0
        # A day (month) starts from the last value seen before it, so a meter
        # polled every few minutes counts all of it.
        day, month = meter["day_start_date"], meter["month_start_date"]
        if day != local_date:
            day_kwh = meter["energy_total_kwh"] if day else kwh
            day_m3 = meter["volume_m3"] if day else m3
        else:
            day_kwh, day_m3 = meter["day_start_kwh"], meter["day_start_m3"]
        if not month or month.replace(day=1) != local_date.replace(day=1):
            month = local_date
            month_kwh = meter["energy_total_kwh"] if meter["month_start_date"] else kwh
            month_m3 = meter["volume_m3"] if meter["month_start_date"] else m3
        else:
            month_kwh, month_m3 = meter["month_start_kwh"], meter["month_start_m3"]
        switch = switch_reader(decoded)
        row.update(
            id=meter["id"],
            state="online",
            state_reason=None,
            fail_count=0,
            last_contact=read_at,
            switch_state=switch or meter["switch_state"],
            meter_values=values_json,
            day_start_date=local_date,
            day_start_kwh=day_kwh,
            day_start_m3=day_m3,
            month_start_date=month,
            month_start_kwh=month_kwh,
            month_start_m3=month_m3,
            # filled in once the suspect reading has its id
            suspect_reading_id=None,
        )
        readings.append(
            {
                "meter_id": meter["id"],
                "room_id": meter["room_id"],
                "company_id": meter["company_id"],
                "read_at": read_at,
                **{c: values.get(c) for c in VALUE_COLUMNS},
                **judged,
                "values_json": values_json,
                "raw_words": json.dumps(res.raw),
            }
        )
        return row

    def _prepare_failure(self, meter, res, threshold):
        """Meter row of one meter that did not answer (or answered an error)."""
        reason = res.error or self.env._("no reply")
        if res.error_kind == "exception" and res.exception_code is not None:
            reason = self.env._(
                "Modbus exception 0x%(code)02X (%(text)s)",
                code=res.exception_code,
                text=MODBUS_EXCEPTIONS.get(res.exception_code, self.env._("unknown")),
            )
        row = {
            "id": meter["id"],
            "state": meter["state"],
            "state_reason": reason,
            "fail_count": meter["fail_count"] or 0,
        }
        if res.error_kind in ERROR_KINDS_OFFLINE:
            row["fail_count"] += 1
            if row["fail_count"] >= threshold:
                row["state"] = "offline"
        else:
            row["state"] = "fault"
        return row

    @api.model
    def _state_note(self, row):
        states = dict(
            self.env["prepaid.meter"]._fields["state"]._description_selection(self.env)
        )
        body = escape(self.env._("State: %s", states[row["state"]]))
        if row.get("state_reason"):
            body += Markup("<br/>") + escape(row["state_reason"])
        return body

    def _insert_readings(self, rows, returning=False):
        """Insert the readings of a sweep in one statement; with ``returning``,
        return their (meter id, reading id) pairs."""
        if not rows:
            return []
        columns = [
            "meter_id",
            "room_id",
            "company_id",
            "read_at",
            *VALUE_COLUMNS,
            "delta_kwh",
            "delta_m3",
            "anomaly",
            "anomaly_note",
            "review_state",
            "values_json",
            "raw_words",
        ]
        types = {
            "meter_id": "int4",
            "room_id": "int4",
            "company_id": "int4",
            "read_at": "timestamp",
            "anomaly": "varchar",
            "anomaly_note": "varchar",
            "review_state": "varchar",
            "values_json": "jsonb",
            "raw_words": "jsonb",
        }
        unnest = ", ".join(f"%s::{types.get(c, 'float8')}[]" for c in columns)
        uid = self.env.uid
        self.env.cr.execute(
            f"""
            INSERT INTO prepaid_reading (
                {", ".join(columns)}, source,
                create_uid, write_uid, create_date, write_date)
            SELECT u.*, 'poll', %s, %s, now() at time zone 'UTC',
                   now() at time zone 'UTC'
              FROM unnest({unnest}) AS u
            {"RETURNING meter_id, id" if returning else ""}
            """,  # noqa: S608 - column names are constants of this module
            [uid, uid] + [[row[c] for row in rows] for c in columns],
        )
        return self.env.cr.fetchall() if returning else []

    def _clear_suspects(self, meter_ids):
        """Reject the pending suspect readings of ``meter_ids``: a reading of
        this sweep continued from their last accepted value."""
        if not meter_ids:
            return
        self.env.cr.execute(
            """
            UPDATE prepaid_reading
               SET review_state = 'rejected', review_note = %s,
                   write_date = now() at time zone 'UTC', write_uid = %s
             WHERE meter_id = ANY(%s) AND review_state = 'suspect'
            """,
            [self._cleared_note(), self.env.uid, meter_ids],
        )

    def _update_meters(self, rows, columns):
        if not rows:
            return
        unnest = ", ".join(f"%s::{COLUMN_TYPES.get(c, 'float8')}[]" for c in columns)
        sets = ", ".join(f"{c} = u.{c}" for c in columns[1:])
        self.env.cr.execute(
            f"""
            UPDATE prepaid_meter m
               SET {sets}, write_date = now() at time zone 'UTC', write_uid = %s
              FROM unnest({unnest}) AS u({", ".join(columns)})
             WHERE m.id = u.id
            """,  # noqa: S608 - column names are constants of this module
            [self.env.uid] + [[row[c] for row in rows] for c in columns],
        )

    def _update_gateways(self, rows, now):
        if not rows:
            return
        self.env.cr.execute(
            """
            UPDATE prepaid_gateway g
               SET state = u.state, last_error = u.last_error,
                   last_contact = u.last_contact, last_poll_at = %s,
                   last_poll_duration_s = u.duration
              FROM unnest(%s::int4[], %s::varchar[], %s::varchar[],
                          %s::timestamp[], %s::float8[])
                   AS u(id, state, last_error, last_contact, duration)
             WHERE g.id = u.id
            """,
            [
                now,
                [r["id"] for r in rows],
                [r["state"] for r in rows],
                [r["last_error"] for r in rows],
                [r["last_contact"] for r in rows],
                [r["duration"] for r in rows],
            ],
        )

    def _update_rooms(self, room_ids):
        """Same rule as prepaid.room._monitor_state_from, in one statement."""
        if not room_ids:
            return
        self.env.cr.execute(
            """
            UPDATE prepaid_room r
               SET monitor_state = s.state
              FROM (SELECT room_id,
                           CASE WHEN bool_or(state = 'fault') THEN 'fault'
                                WHEN bool_or(state = 'offline') THEN 'offline'
                                WHEN bool_or(state = 'online') THEN 'online'
                                ELSE 'new' END AS state
                      FROM prepaid_meter
                     WHERE room_id = ANY(%s) AND active
                     GROUP BY room_id) s
             WHERE r.id = s.room_id AND r.monitor_state IS DISTINCT FROM s.state
            """,
            [room_ids],
        )
