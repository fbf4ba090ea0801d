import json
import math

from markupsafe import Markup, escape

from odoo import api, fields, models

from ..tools import bulk, tamper
from .prepaid_meter import FAULT_KINDS
from .prepaid_reading import VALUE_COLUMNS

FAULT_KIND_KEYS = frozenset(kind for kind, _label in FAULT_KINDS)

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
    "fault_kind",
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
FAILED_COLUMNS = ["id", "state", "state_reason", "fault_kind", "fail_count"]


def _tamper_where():
    """The condition of the tamper checks on the unnest() row ``u`` (see
    TAMPER_CHECK_SQL): a superset of what tools.tamper.signals reports."""

    def num(side, name):
        return f'u."{side}_{name}"'

    ratio = "COALESCE(NULLIF(u.ratio_raw, 0), 1)"
    conditions = [
        f"({num('n', 'energy_reverse')} - {num('o', 'energy_reverse')})"
        f" * {ratio} >= %(reverse)s - 1e-6",
        "u.meter_type = 'electric_3p' AND LEAST("
        + ", ".join(num("n", v) for _p, v, _c in tamper.PHASES)
        + ") < %(volts)s",
        f"u.closed AND {num('n', 'volume_total')} - {num('o', 'volume_total')}"
        " >= %(flow)s - 1e-6",
        *(
            f"{num('n', volts)} < %(volts)s AND {num('n', amps)} * {ratio} >= %(amps)s"
            for _phase, volts, amps in tamper.PHASES
        ),
        *(f"{num('n', c)} > {num('o', c)}" for c in tamper.COUNTERS),
    ]
    return " OR ".join(f"({c})" for c in conditions)


_OLD_NAMES = (*tamper.OLD_NAMES, "volume_total")
_COLUMNS = (
    ["id", "closed", "meter_type", "ratio_raw"]
    + [f'"n_{name}"' for name in tamper.NEW_NAMES]
    + [f'"o_{name}"' for name in _OLD_NAMES]
)
_TYPES = ["int4", "bool", "varchar", "float8"] + ["float8"] * (
    len(tamper.NEW_NAMES) + len(_OLD_NAMES)
)
#: One statement over the batch: unnest() of one array per register, new and
#: old (the arrays come as literals: see tools.tamper.pg_array).
TAMPER_CHECK_SQL = (
    "SELECT u.id FROM unnest("  # noqa: S608 - constants of tools.tamper
    + ", ".join(f"%(a{i})s::{t}[]" for i, t in enumerate(_TYPES))
    + ") AS u("
    + ", ".join(_COLUMNS)
    + ") WHERE "
    + _tamper_where()
)
# The last values the tamper checks compare with, taken with the meters'
# state, and a water meter's whole last values (its valve word).
TAMPER_OLD_SQL = ", ".join(
    [
        "m.meter_type AS tamper_type",
        *(
            f"(m.meter_values->>'{name}')::float8 AS tamper_old_{name}"
            for name in _OLD_NAMES
        ),
        "CASE WHEN m.meter_type = 'water' THEN m.meter_values END AS tamper_old_water",
    ]
)
COLUMN_TYPES = {
    "id": "int4",
    "state": "varchar",
    "state_reason": "varchar",
    "fault_kind": "varchar",
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
    """Batch storage of a sweep: a constant number of SQL statements whatever
    the number of meters."""

    _inherit = "prepaid.reading"

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
        if read_rows and self._tamper_checks_enabled():
            # before the meters take their new values: compared with the old
            self._check_tamper(read_rows, states)
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
        Meter = self.env["prepaid.meter"]
        Meter._store_meter_extras(gateway_results, profiles_by_meter)
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
        pending suspect reading (``suspect_*``).

        The meters are locked until the sweep is stored: billing (which
        writes other columns of the same rows, on another worker or host)
        skips them meanwhile, and a review of a suspect reading waits; in the
        polling job's READ COMMITTED transactions the values read are the
        newest committed ones."""
        fields_ = self.env["prepaid.meter"]._fields
        # numeric columns come as float8: psycopg2 would make a Decimal of
        # each (and Odoo a float of that), tens of thousands per sweep
        columns = ", ".join(
            f"m.{c}::float8 AS {c}"
            if fields_[c].column_type and fields_[c].column_type[0] == "numeric"
            else f"m.{c}"
            for c in STATE_COLUMNS
        )
        self.env.cr.execute(
            f"""
            SELECT m.id, {columns},
                   {TAMPER_OLD_SQL},
                   COALESCE(s.tz, 'UTC') AS tz,
                   p.energy_total_kwh::float8 AS suspect_kwh,
                   p.volume_m3::float8 AS suspect_m3,
                   p.read_at AS suspect_at
              FROM prepaid_meter m
              LEFT JOIN prepaid_site s ON s.id = m.site_id
              LEFT JOIN prepaid_reading p ON p.id = m.suspect_reading_id
             WHERE m.id = ANY(%s)
             ORDER BY m.id
               FOR NO KEY UPDATE OF m
            """,  # noqa: S608 - column names are constants of this module
            [meter_ids],
        )
        cr = self.env.cr
        # dictfetchall() names the columns again for every row
        names = [column.name for column in cr.description]
        return {row[0]: dict(zip(names, row, strict=True)) for row in cr.fetchall()}

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
            fault_kind=None,
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
        # for the tamper checks (not columns)
        old_water = meter["tamper_old_water"]
        row["tamper_new"] = decoded
        row["tamper_closed"] = (
            old_water is not None
            and switch == "off"
            and switch_reader(old_water) == "off"
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
            "fault_kind": res.error_kind
            if res.error_kind in FAULT_KIND_KEYS
            else "protocol",
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
        uid = self.env.uid
        from_rows, arrays = bulk.unnest_rows(rows, columns, types)
        self.env.cr.execute(
            f"""
            INSERT INTO prepaid_reading (
                {", ".join(columns)}, source,
                create_uid, write_uid, create_date, write_date)
            SELECT u.*, 'poll', %s, %s, now() at time zone 'UTC',
                   now() at time zone 'UTC'
              FROM {from_rows}
            {"RETURNING meter_id, id" if returning else ""}
            """,  # noqa: S608 - column names are constants of this module
            [uid, uid, *arrays],
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
        sets = ", ".join(f"{c} = u.{c}" for c in columns[1:])
        from_rows, arrays = bulk.unnest_rows(rows, columns, COLUMN_TYPES)
        self.env.cr.execute(
            f"""
            UPDATE prepaid_meter m
               SET {sets}, write_date = now() at time zone 'UTC', write_uid = %s
              FROM {from_rows}
             WHERE m.id = u.id
            """,  # noqa: S608 - column names are constants of this module
            [self.env.uid, *arrays],
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

    # ------------------------------------------------------------------
    # Tamper and theft signals
    # ------------------------------------------------------------------
    @api.model
    def _tamper_checks_enabled(self):
        icp = self.env["ir.config_parameter"].sudo()
        return icp.get_param("prepaid_metering.tamper_checks", "on") != "off"

    @api.model
    def _tamper_thresholds(self):
        icp = self.env["ir.config_parameter"].sudo()
        default = tamper.Thresholds()
        values = {}
        for name in default._fields:
            raw = icp.get_param(f"prepaid_metering.tamper_{name}")
            try:
                values[name] = float(raw) if raw else getattr(default, name)
            except ValueError:
                values[name] = getattr(default, name)
        return tamper.Thresholds(**values)

    def _check_tamper(self, rows, states):
        """Signals of the meters just read. One statement over arrays (no
        table read: the last values came with the meters' state) finds the
        few meters whose new values against their last ones show something;
        :meth:`_report_tamper` judges those and records the events."""
        thresholds = self._tamper_thresholds()
        meters = [states[row["id"]] for row in rows]
        arrays = [
            [row["id"] for row in rows],
            [row["tamper_closed"] for row in rows],
            [meter["tamper_type"] for meter in meters],
            [meter["multiplier"] for meter in meters],
            *(
                [row["tamper_new"].get(name) for row in rows]
                for name in tamper.NEW_NAMES
            ),
            *([meter[f"tamper_old_{name}"] for meter in meters] for name in _OLD_NAMES),
        ]
        params = {f"a{i}": tamper.pg_array(values) for i, values in enumerate(arrays)}
        params.update(
            reverse=thresholds.reverse_kwh,
            volts=thresholds.voltage_min_v,
            amps=thresholds.current_min_a,
            flow=thresholds.flow_m3,
        )
        self.env.cr.execute(TAMPER_CHECK_SQL, params)
        hit_ids = [r[0] for r in self.env.cr.fetchall()]
        if hit_ids:
            self._report_tamper(hit_ids, rows, thresholds)

    def _report_tamper(self, hit_ids, rows, thresholds):
        """Judge the meters the checks found and record their events, with
        the readings behind the evidence (the new one is stored already)."""
        self.env.cr.execute(
            """
            SELECT m.id, m.meter_type, m.multiplier, m.meter_values AS old,
                   m.last_contact AS old_at,
                   (SELECT array_agg(p.id ORDER BY p.id DESC)
                      FROM (SELECT p.id FROM prepaid_reading p
                             WHERE p.meter_id = m.id
                             ORDER BY p.id DESC LIMIT 2) p) AS reading_ids
              FROM prepaid_meter m
             WHERE m.id = ANY(%s)
            """,
            [hit_ids],
        )
        by_id = {row["id"]: row for row in rows}
        Event = self.env["prepaid.meter.event"]
        found = []
        for hit in self.env.cr.dictfetchall():
            row = by_id[hit["id"]]
            readings = [*hit["reading_ids"], False]
            for signal in tamper.signals(
                hit["meter_type"],
                hit["old"],
                row["tamper_new"],
                old_at=hit["old_at"],
                new_at=row["last_contact"],
                multiplier=hit["multiplier"],
                closed_before=row["tamper_closed"],
                closed_after=row["tamper_closed"],
                thresholds=thresholds,
            ):
                found.append(
                    {
                        "meter_id": hit["id"],
                        "kind": signal.kind,
                        "source": signal.source,
                        "occurred_at": row["last_contact"],
                        "evidence": signal.evidence,
                        "count_before": signal.count_before,
                        "count_after": signal.count_after,
                        "description": Event._signal_description(signal),
                        "reading_id": readings[0],
                        "previous_reading_id": readings[1],
                    }
                )
        if found:
            Event.sudo().create(found)
