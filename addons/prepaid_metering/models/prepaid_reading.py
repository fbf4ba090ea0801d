import json
import logging

from markupsafe import Markup, escape

from odoo import api, fields, models
from odoo.exceptions import UserError

from ..tools import counters
from .prepaid_meter import MULTIPLIED, READING_FIELDS

_logger = logging.getLogger(__name__)

ANOMALIES = [
    ("none", "Normal"),
    ("rollover", "Counter Rollover"),
    ("replacement", "Meter Replaced"),
    ("lower", "Lower Than Previous"),
]
VALUE_COLUMNS = list(READING_FIELDS.values())
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
]
FAILED_COLUMNS = ["id", "state", "state_reason", "fail_count"]
COLUMN_TYPES = {
    "id": "int4",
    "state": "varchar",
    "state_reason": "varchar",
    "fail_count": "int4",
    "last_contact": "timestamp",
    "last_reading_at": "timestamp",
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
    """One reading of one meter: the values and the register words behind them."""

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
        help="Energy since the previous accepted reading (0 when flagged lower).",
    )
    delta_m3 = fields.Float(string="Used (m³)", digits=(16, 3), readonly=True)
    anomaly = fields.Selection(
        ANOMALIES, default="none", required=True, readonly=True, index=True
    )
    anomaly_note = fields.Char(readonly=True)
    values_json = fields.Json(string="Decoded Values", readonly=True)
    raw_words = fields.Json(
        readonly=True, help="Register words as received, by block start address."
    )

    evidence_text = fields.Text(
        string="Evidence",
        compute="_compute_evidence_text",
        help="Decoded values and the register words they came from.",
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
    # Counter logic shared by polled and manual readings
    # ------------------------------------------------------------------
    @api.model
    def _classify(self, multiplier, previous_kwh, previous_m3, values, wraps):
        """Consumption and anomaly of ``values`` against the meter's baseline."""
        result = {
            "delta_kwh": 0.0,
            "delta_m3": 0.0,
            "anomaly": "none",
            "anomaly_note": False,
        }
        for column, previous, delta_field, unit in (
            ("energy_total_kwh", previous_kwh, "delta_kwh", "kWh"),
            ("volume_m3", previous_m3, "delta_m3", "m³"),
        ):
            current = values.get(column)
            if current is None:
                continue
            wrap = wraps.get(column)
            if wrap and column in MULTIPLIED:
                wrap *= multiplier
            step = counters.classify(previous, current, wrap=wrap)
            result[delta_field] = step.delta
            if step.kind != counters.NORMAL:
                result["anomaly"] = step.kind
                result["anomaly_note"] = self.env._(
                    "%(kind)s: previous %(prev)s %(unit)s, now %(cur)s %(unit)s",
                    kind=dict(ANOMALIES)[step.kind],
                    prev=previous,
                    cur=current,
                    unit=unit,
                )
        return result

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
        """Manual and imported readings go through the same counter checks."""
        for vals in vals_list:
            if vals.get("source") == "poll":
                raise UserError(
                    self.env._("Polled readings are stored by the polling job.")
                )
            meter = self.env["prepaid.meter"].browse(vals["meter_id"])
            read_at = fields.Datetime.to_datetime(
                vals.get("read_at") or fields.Datetime.now()
            )
            previous = self.search(
                [
                    ("meter_id", "=", meter.id),
                    ("read_at", "<=", read_at),
                    ("anomaly", "!=", "lower"),
                ],
                order="read_at desc, id desc",
                limit=1,
            )
            values = {c: vals[c] for c in VALUE_COLUMNS if vals.get(c) is not None}
            vals.update(
                self._classify(
                    meter.multiplier,
                    previous.energy_total_kwh if previous else None,
                    previous.volume_m3 if previous else None,
                    values,
                    {},
                )
            )
            vals.setdefault("room_id", meter.room_id.id)
            vals.setdefault("company_id", meter.company_id.id)
        readings = super().create(vals_list)
        for reading, vals in zip(readings, vals_list, strict=True):
            meter = reading.meter_id
            if meter.last_reading_at and reading.read_at < meter.last_reading_at:
                continue
            meter_vals = {c: reading[c] for c in VALUE_COLUMNS if c in vals}
            meter_vals["last_reading_at"] = reading.read_at
            if reading.anomaly != "lower":
                meter_vals.update(
                    energy_baseline_kwh=reading.energy_total_kwh,
                    volume_baseline_m3=reading.volume_m3,
                )
            # The reading's own access was checked; the meter's last values
            # follow from it whoever recorded it.
            meter.sudo().write(meter_vals)
        return readings

    def write(self, vals):
        if set(vals) & set(VALUE_COLUMNS + ["meter_id", "read_at"]):
            raise UserError(
                self.env._(
                    "Readings are evidence and cannot be changed; add a new manual "
                    "reading instead."
                )
            )
        return super().write(vals)

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
        one of the rooms (plus chatter notes for meters that changed state).

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
        context = {"tz_dates": {}, "profiles": {}}
        readings, read_rows, failed_rows, gateway_rows, notes = [], [], [], [], {}
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
                else:
                    if res.error_kind == "connection":
                        connection_error = res.error
                    else:
                        answered = answered or res.error_kind == "exception"
                    row = self._prepare_failure(meter, res, threshold)
                    failed_rows.append(row)
                if row["state"] != meter["state"] and meter["state"] != "new":
                    notes[meter["id"]] = self._state_note(row)
            gateway_rows.append(
                {
                    "id": gateway.id,
                    "state": "online" if answered or not results else "offline",
                    "last_error": None if answered else connection_error,
                    "last_contact": now if answered else gateway.last_contact or None,
                    "duration": (durations or {}).get(gateway.id, 0.0),
                }
            )
        self._insert_readings(readings)
        self._update_meters(read_rows, READ_COLUMNS)
        self._update_meters(failed_rows, FAILED_COLUMNS)
        self._update_gateways(gateway_rows, now)
        self._update_rooms(
            sorted({m["room_id"] for m in states.values() if m["room_id"]})
        )
        self.env["prepaid.meter"].invalidate_model()
        self.env["prepaid.gateway"].invalidate_model()
        self.env["prepaid.room"].invalidate_model(["monitor_state"])
        if notes:
            self.env["prepaid.meter"].browse(list(notes))._message_log_batch(notes)
        return len(readings)

    def _load_profiles(self, meter_ids):
        """{meter id: its register profiles}, in one query."""
        self.env.cr.execute(
            """SELECT prepaid_meter_id, array_agg(prepaid_register_profile_id
                                                  ORDER BY prepaid_register_profile_id)
                 FROM prepaid_meter_prepaid_register_profile_rel
                WHERE prepaid_meter_id = ANY(%s)
                GROUP BY prepaid_meter_id""",
            [meter_ids],
        )
        Profile = self.env["prepaid.register.profile"]
        by_ids = {}
        result = dict.fromkeys(meter_ids, Profile)
        for meter_id, profile_ids in self.env.cr.fetchall():
            key = tuple(profile_ids)
            if key not in by_ids:
                by_ids[key] = Profile.browse(key)
            result[meter_id] = by_ids[key]
        return result

    def _load_meter_states(self, meter_ids):
        """The meters' last values as plain dicts (no ORM records: a sweep
        touches thousands of meters)."""
        self.env.cr.execute(
            f"""
            SELECT m.id, {", ".join(f"m.{c}" for c in STATE_COLUMNS)},
                   COALESCE(s.tz, 'UTC') AS tz
              FROM prepaid_meter m
              LEFT JOIN prepaid_site s ON s.id = m.site_id
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
        values = self._values_from_decoded(meter["multiplier"], res.values)
        known = meter["last_reading_at"] is not None
        step = self._classify(
            meter["multiplier"],
            meter["energy_baseline_kwh"] if known else None,
            meter["volume_baseline_m3"] if known else None,
            values,
            wraps,
        )
        tz = meter["tz"]
        local_date = context["tz_dates"].get(tz)
        if local_date is None:
            local_date = context["tz_dates"][tz] = self.env[
                "prepaid.meter"
            ]._local_date(read_at, tz)
        row = {c: values.get(c, meter[c]) for c in VALUE_COLUMNS}
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
        lower = step["anomaly"] == "lower"
        values_json = json.dumps(res.values)
        switch = switch_reader(res.values)
        row.update(
            id=meter["id"],
            state="online",
            state_reason=None,
            fail_count=0,
            last_contact=read_at,
            last_reading_at=read_at,
            switch_state=switch or meter["switch_state"],
            meter_values=values_json,
            day_start_date=local_date,
            day_start_kwh=day_kwh,
            day_start_m3=day_m3,
            month_start_date=month,
            month_start_kwh=month_kwh,
            month_start_m3=month_m3,
            energy_baseline_kwh=meter["energy_baseline_kwh"] if lower else kwh,
            volume_baseline_m3=meter["volume_baseline_m3"] if lower else m3,
        )
        readings.append(
            {
                "meter_id": meter["id"],
                "room_id": meter["room_id"],
                "company_id": meter["company_id"],
                "read_at": read_at,
                **{c: values.get(c) for c in VALUE_COLUMNS},
                **step,
                "anomaly_note": step["anomaly_note"] or None,
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

    def _insert_readings(self, rows):
        if not rows:
            return
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
            """,  # noqa: S608 - column names are constants of this module
            [uid, uid] + [[row[c] for row in rows] for c in columns],
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
