from datetime import datetime, time, timedelta
from typing import NamedTuple

import pytz

from odoo import api, models
from odoo.exceptions import UserError
from odoo.tools import SQL

from ..tools import bill_pricing, deduction
from ..tools.clock import LocalClock
from ..tools.sql_arrays import array_literal
from .prepaid_daily_usage import DAILY_WATERMARK

BANDS = ("sharp", "peak", "flat", "valley")


class _Row(NamedTuple):
    """A meter to price: its period in UTC, zone, utility and tariff."""

    meter_id: int
    start: datetime  # naive UTC of the first local day's 00:00
    stop: datetime  # naive UTC of the day after the period
    tz: str
    water: bool
    tariff: object  # prepaid.tariff record
    offset: int | None  # fixed UTC offset (seconds), None across a DST change


class MeterUsage(NamedTuple):
    """A meter's priced usage over a period and the readings behind it."""

    meter_id: int
    tariff_id: int
    unit: str
    quantity: float
    lines: list  # bill_pricing.UsageLine
    first_reading_id: int | None
    last_reading_id: int | None
    reading_count: int


class PrepaidBillUsage(models.AbstractModel):
    """A period's usage of meters from their readings, priced by the tariff
    core: shared by postpaid bills and common-area apportionment.

    Set-based: a constant number of statements for any number of meters
    (the daily sums of the period, the first and last readings; for
    time-of-use meters the readings themselves and the band registers just
    before the period; for tiered tariffs whose tier period started before
    the period, the use since then).
    """

    _name = "prepaid.bill.usage"
    _description = "Period Usage of Meters"

    @api.model
    def _utc_bounds(self, tz, date_from, date_to):
        """Naive UTC datetimes of local ``date_from`` 00:00 and of the day
        after ``date_to``."""
        zone = pytz.timezone(tz or "UTC")

        def utc(day):
            local = zone.localize(datetime.combine(day, time.min))
            return local.astimezone(pytz.utc).replace(tzinfo=None)

        return utc(date_from), utc(date_to + timedelta(days=1))

    @api.model
    def _meter_usage(self, meters, date_from, date_to, tariffs):
        """Usage of ``meters`` from ``date_from`` to ``date_to`` (local days,
        included), priced with ``tariffs`` (``{meter id: tariff}``).

        Meters priced by time of use, or in a zone changing its UTC offset
        during the period, are read reading by reading (each reading's time
        and band registers count); the others only need each local day's
        usage, which PostgreSQL sums. Tiers continue from the meter's use
        earlier in their tier period (``_tier_used_before``).

        :returns: ``{meter id: MeterUsage}``
        :raises UserError: a meter without a tariff, or with readings before
            its tariff's first version
        """
        missing = meters.filtered(lambda m: not tariffs.get(m.id))
        if missing:
            raise UserError(
                self.env._(
                    "No tariff for meter(s) %s in this period: set one on the meter "
                    "or its account.",
                    ", ".join(missing.mapped("name")),
                )
            )
        versions = self._core_versions({t.id for t in tariffs.values()})
        tou = {tid for tid, entry in versions.items() if entry["tou"]}
        meters.fetch(["meter_type", "site_id"])
        bounds = {}
        rows = []
        for meter in meters:
            tz = meter.site_id.tz or "UTC"
            if tz not in bounds:
                start, stop = self._utc_bounds(tz, date_from, date_to)
                offset = bill_pricing.fixed_utc_offset(tz, start, stop)
                bounds[tz] = (start, stop, offset)
            start, stop, offset = bounds[tz]
            rows.append(
                _Row(
                    meter.id,
                    start,
                    stop,
                    tz,
                    meter.meter_type == "water",
                    tariffs[meter.id],
                    offset,
                )
            )
        self.env.flush_all()
        used_before = self._tier_used_before(rows, versions, date_from, date_to)
        state = {}
        for row in rows:
            tariff = row.tariff
            state[row.meter_id] = {
                "usage": bill_pricing.PeriodUsage(
                    versions[tariff.id]["versions"], used_before.get(row.meter_id)
                )
                if tariff.id in versions
                else None,
                "tariff": tariff,
                "bands": None,
                "quantity": 0.0,
                "first": None,
                "last": None,
                "count": 0,
            }
        by_day = [
            row for row in rows if row.tariff.id not in tou and row.offset is not None
        ]
        days = {row.meter_id for row in by_day}
        self._add_readings(
            [row for row in rows if row.meter_id not in days],
            state,
            {row.meter_id for row in rows if not row.water and row.tariff.id in tou},
        )
        self._add_days(by_day, state)
        water = {row.meter_id for row in rows if row.water}
        return {
            meter_id: MeterUsage(
                meter_id,
                entry["tariff"].id,
                "m³" if meter_id in water else "kWh",
                round(entry["quantity"], 6),
                entry["usage"].lines() if entry["usage"] else [],
                entry["first"],
                entry["last"],
                entry["count"],
            )
            for meter_id, entry in state.items()
        }

    def _tier_used_before(self, rows, versions, date_from, date_to):
        """What the meters of ``rows`` used before ``date_from`` in the tier
        periods the period enters after their start (see
        ``bill_pricing.tier_carry_windows``), in one statement for all meters:
        ``{meter id: {tier period start: quantity}}``.

        Counted like the prepaid engine counts its tier use: the meter's use
        on the days a tiered version was in force, since the meter's billing
        started under its account (the baseline reading ``_start_billing``
        set on a postpaid account's meter, which billing never moves). The
        whole days come from the daily use (``prepaid.daily.usage``, so the
        cost does not grow with the length of the tier period); the readings
        it has not counted yet (after its watermark, the later of the daily
        and the billing one) and those of the day billing started are read
        one by one, with the rule of the period's own readings.
        """
        windows = {}
        params = []  # (meter, period start, first day, day after, UTC bounds...)
        one_day = timedelta(days=1)
        for row in rows:
            tariff_id = row.tariff.id
            if tariff_id not in versions:
                continue
            if tariff_id not in windows:
                windows[tariff_id] = bill_pricing.tier_carry_windows(
                    versions[tariff_id]["versions"], date_from, date_to
                )
            for period, days in windows[tariff_id].items():
                for first, until in days:
                    start, stop = self._utc_bounds(row.tz, first, until - one_day)
                    params.append(
                        (
                            row.meter_id,
                            period,
                            first,
                            until,
                            start,
                            stop,
                            "t" if row.water else "f",
                            row.tz,
                        )
                    )
        if not params:
            return {}
        money = self.env["prepaid.reading"]._money_sql("r")
        quantity = "CASE WHEN w.water THEN r.delta_m3 ELSE r.delta_kwh END"
        cr = self.env.cr
        cr.execute(
            SQL(
                f"""
            SELECT w.meter_id, w.period, SUM(u.quantity)::float8
              FROM (SELECT w.*,
                           {DAILY_WATERMARK} AS watermark,
                           b.id AS base_id, b.read_at AS base_at,
                           b.day + 1 AS whole_day,
                           COALESCE(((b.day + 1)::timestamp AT TIME ZONE w.tz)
                                    AT TIME ZONE 'UTC', '-infinity') AS whole_at
                      FROM unnest(%s::int4[], %s::date[], %s::date[], %s::date[],
                                  %s::timestamp[], %s::timestamp[], %s::bool[],
                                  %s::varchar[])
                           AS w(meter_id, period, day_from, day_to, start, stop,
                                water, tz)
                      JOIN prepaid_meter m ON m.id = w.meter_id
                      LEFT JOIN prepaid_account a ON a.id = m.billing_account_id
                           AND a.mode = 'postpaid'
                      LEFT JOIN LATERAL (
                            SELECT b.id, b.read_at,
                                   (b.read_at AT TIME ZONE 'UTC'
                                              AT TIME ZONE w.tz)::date AS day
                              FROM prepaid_reading b
                             WHERE b.id = (SELECT mb.billed_reading_id
                                             FROM prepaid_meter_billing mb
                                            WHERE mb.meter_id = m.id)
                               AND a.id IS NOT NULL
                           ) b ON TRUE) w
             CROSS JOIN LATERAL (
                   -- the whole days after billing started, as the daily use has them
                   SELECT CASE WHEN w.water THEN d.volume_m3 ELSE d.energy_kwh END
                              AS quantity
                     FROM prepaid_daily_usage d
                    WHERE d.meter_id = w.meter_id AND d.date < w.day_to
                      AND d.date >= GREATEST(w.day_from, w.whole_day)
                   UNION ALL
                   -- their readings the daily use does not have yet (in id order:
                   -- the few after the watermark, not the whole period)
                   SELECT t.quantity
                     FROM (SELECT r.read_at, {quantity} AS quantity
                             FROM prepaid_reading r
                            WHERE r.meter_id = w.meter_id AND r.id > w.watermark
                              AND %s
                            ORDER BY r.id OFFSET 0) t
                    WHERE t.read_at >= GREATEST(w.start, w.whole_at)
                      AND t.read_at < w.stop
                   UNION ALL
                   -- the day billing started: its readings after the baseline
                   SELECT {quantity}
                     FROM prepaid_reading r
                    WHERE r.meter_id = w.meter_id AND r.id > w.base_id
                      AND r.read_at >= GREATEST(w.start, w.base_at)
                      AND r.read_at < LEAST(w.stop, w.whole_at)
                      AND %s
                   ) u
             WHERE u.quantity > 0
             GROUP BY 1, 2
            """,  # noqa: S608 - constant SQL of this module
                *(array_literal(column) for column in zip(*params, strict=True)),
                money,
                money,
            )
        )
        result = {}
        for meter_id, period, used in cr.fetchall():
            result.setdefault(meter_id, {})[period] = used
        return result

    def _add_readings(self, rows, state, banded=()):
        """Count the period's readings of the meters of ``rows`` one by one
        (time of use: the band of each reading's time or, for the ``banded``
        meters, its band registers)."""
        if not rows:
            return
        cr = self.env.cr
        ids = [row.meter_id for row in rows]
        starts = [row.start for row in rows]
        stops = [row.stop for row in rows]
        banded = [row.meter_id for row in rows if row.meter_id in banded]
        money = self.env["prepaid.reading"]._money_sql("r")
        if banded:
            cr.execute(
                SQL(
                    """
                SELECT b.meter_id, p.energy_sharp_kwh::float8,
                       p.energy_peak_kwh::float8, p.energy_flat_kwh::float8,
                       p.energy_valley_kwh::float8
                  FROM unnest(%s::int4[], %s::timestamp[]) AS b(meter_id, start)
                  JOIN LATERAL (
                        SELECT r.* FROM prepaid_reading r
                         WHERE r.meter_id = b.meter_id AND r.read_at < b.start
                           AND %s
                         ORDER BY r.read_at DESC, r.id DESC LIMIT 1) p ON TRUE
                 WHERE b.meter_id = ANY(%s)
                """,
                    array_literal(ids),
                    array_literal(starts),
                    money,
                    array_literal(banded),
                )
            )
            for meter_id, *bands in cr.fetchall():
                state[meter_id]["bands"] = tuple(bands)
        cr.execute(
            SQL(
                """
            SELECT r.id, r.meter_id, r.read_at, r.delta_kwh::float8,
                   r.delta_m3::float8, r.anomaly,
                   CASE WHEN bd.id IS NOT NULL THEN r.energy_sharp_kwh::float8 END,
                   CASE WHEN bd.id IS NOT NULL THEN r.energy_peak_kwh::float8 END,
                   CASE WHEN bd.id IS NOT NULL THEN r.energy_flat_kwh::float8 END,
                   CASE WHEN bd.id IS NOT NULL THEN r.energy_valley_kwh::float8 END
              FROM unnest(%s::int4[], %s::timestamp[], %s::timestamp[])
                   AS b(meter_id, start, stop)
              JOIN prepaid_reading r ON r.meter_id = b.meter_id
                   AND r.read_at >= b.start AND r.read_at < b.stop
              LEFT JOIN unnest(%s::int4[]) AS bd(id) ON bd.id = r.meter_id
             WHERE %s
             ORDER BY r.meter_id, r.read_at, r.id
            """,
                array_literal(ids),
                array_literal(starts),
                array_literal(stops),
                array_literal(banded),
                money,
            )
        )
        band_quantities = deduction.band_quantities
        clocks = {}
        clock_of = {}
        for row in rows:
            if row.tz not in clocks:
                clocks[row.tz] = LocalClock(row.tz)
            clock_of[row.meter_id] = clocks[row.tz]
        water = {row.meter_id for row in rows if row.water}
        banded_set = set(banded)
        for reading in cr.fetchall():
            (rid, meter_id, read_at, kwh, m3, anomaly, *bands) = reading
            entry = state[meter_id]
            quantity = m3 if meter_id in water else kwh
            entry["first"] = entry["first"] or rid
            entry["last"] = rid
            entry["count"] += 1
            previous_bands, entry["bands"] = entry["bands"], tuple(bands)
            if not quantity or quantity <= 0:
                continue
            if entry["usage"] is None:
                self._raise_no_version(meter_id, entry["tariff"], read_at)
            moved = None
            if meter_id in banded_set and anomaly == "none":
                moved = band_quantities(previous_bands, tuple(bands))
            local = clock_of[meter_id].local(read_at)
            try:
                entry["usage"].add(local, quantity, moved)
            except bill_pricing.NoVersion:
                self._raise_no_version(meter_id, entry["tariff"], read_at)
            entry["quantity"] += quantity

    def _add_days(self, rows, state):
        """Count the period's usage of the meters of ``rows`` a local day at
        a time (flat and tiered prices only depend on the day; the zone's UTC
        offset is fixed over the period): one row per meter and day, then the
        first and last readings' ids."""
        if not rows:
            return
        cr = self.env.cr
        money = self.env["prepaid.reading"]._money_sql("r")
        cr.execute(
            SQL(
                """
            SELECT r.meter_id,
                   (r.read_at + b.shift * interval '1 second')::date AS day,
                   (SUM(CASE WHEN b.water THEN r.delta_m3 ELSE r.delta_kwh END)
                        FILTER (WHERE CASE WHEN b.water THEN r.delta_m3
                                           ELSE r.delta_kwh END > 0))::float8,
                   COUNT(*), MIN(r.read_at), MAX(r.read_at)
              FROM unnest(%s::int4[], %s::timestamp[], %s::timestamp[],
                          %s::int4[], %s::bool[])
                   AS b(meter_id, start, stop, shift, water)
              JOIN prepaid_reading r ON r.meter_id = b.meter_id
                   AND r.read_at >= b.start AND r.read_at < b.stop
             WHERE %s
             GROUP BY 1, 2
             ORDER BY 1, 2
            """,
                array_literal(row.meter_id for row in rows),
                array_literal(row.start for row in rows),
                array_literal(row.stop for row in rows),
                array_literal(row.offset for row in rows),
                array_literal("t" if row.water else "f" for row in rows),
                money,
            )
        )
        first_at, last_at = {}, {}
        combine, midnight = datetime.combine, time.min
        for meter_id, day, quantity, count, first, last in cr.fetchall():
            entry = state[meter_id]
            entry["count"] += count
            first_at.setdefault(meter_id, first)
            last_at[meter_id] = last
            if not quantity or quantity <= 0:
                continue
            local = combine(day, midnight)
            if entry["usage"] is None:
                self._raise_no_version(meter_id, entry["tariff"], local)
            try:
                entry["usage"].add(local, quantity)
            except bill_pricing.NoVersion:
                self._raise_no_version(meter_id, entry["tariff"], local)
            entry["quantity"] += quantity
        if not first_at:
            return
        # the first reading is the lowest id at the first time, the last the
        # highest at the last time (the order of the per-reading path)
        ids = list(first_at) + list(last_at)
        times = list(first_at.values()) + list(last_at.values())
        cr.execute(
            SQL(
                """
            SELECT r.meter_id, r.read_at, MIN(r.id), MAX(r.id)
              FROM unnest(%s::int4[], %s::timestamp[]) AS p(meter_id, read_at)
              JOIN prepaid_reading r ON r.meter_id = p.meter_id
                   AND r.read_at = p.read_at
             WHERE %s
             GROUP BY 1, 2
            """,
                array_literal(ids),
                array_literal(times),
                money,
            )
        )
        found = {(row[0], row[1]): row[2:] for row in cr.fetchall()}
        for meter_id, first in first_at.items():
            state[meter_id]["first"] = found[meter_id, first][0]
            state[meter_id]["last"] = found[meter_id, last_at[meter_id]][1]

    def _raise_no_version(self, meter_id, tariff, read_at):
        raise UserError(
            self.env._(
                "Meter %(meter)s: tariff %(tariff)s has no version in force on "
                "%(day)s; add one before billing this period.",
                meter=self.env["prepaid.meter"].browse(meter_id).name,
                tariff=tariff.name,
                day=read_at.date(),
            )
        )

    @api.model
    def _core_versions(self, tariff_ids):
        """``{tariff id: {"versions": [TariffVersion], "tou": bool}}``."""
        result = {}
        versions = self.env["prepaid.tariff.version"].search(
            [("tariff_id", "in", list(tariff_ids))], order="tariff_id, date_from"
        )
        for version in versions:
            entry = result.setdefault(
                version.tariff_id.id, {"versions": [], "tou": False}
            )
            entry["versions"].append(version._core())
            entry["tou"] = entry["tou"] or version.kind == "tou"
        return result
