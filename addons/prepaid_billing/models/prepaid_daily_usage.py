from decimal import Decimal
from functools import partial
from operator import is_not, itemgetter

from odoo import api, fields, models
from odoo.modules import module as odoo_module
from odoo.tools import SQL, sql

from odoo.addons.prepaid_metering.tools.tables import set_fillfactor
from odoo.addons.prepaid_metering.tools.transactions import start_read_committed

from ..tools import daily, rebuild
from ..tools.sql_arrays import plain_array_literal
from ..tools.tariff import BANDS
from .prepaid_daily_usage_labels import create_forget_triggers

#: A meter's daily watermark (SQL on ``m``, a prepaid_meter): its readings up
#: to here are in its days, whoever counted them (billing for a deducted meter,
#: ``_add_not_deducted`` for the others; the later of the two, so a meter that
#: changed mode is never counted twice).
DAILY_WATERMARK = (
    "GREATEST(COALESCE(m.daily_reading_id, 0), COALESCE((SELECT"
    " mb.billed_reading_id FROM prepaid_meter_billing mb WHERE mb.meter_id = m.id),"
    " 0))"
)
# Columns written by _upsert, in the order of its arrays, with their types.
SUM_COLUMNS = {
    "meter_id": "int4",
    "date": "date",
    "energy_kwh": "float8",
    "volume_m3": "float8",
    "amount": "numeric",
    "charge_count": "int4",
    **{f"{band}_kwh": "numeric" for band in BANDS},
    **{f"{band}_cost": "numeric" for band in BANDS},
}
# The day's first and last reading: kept by a batch when earlier (first) or
# not earlier (last) than the row's.
EDGE_COLUMNS = {
    f"{edge}_{column}": kind
    for edge in ("first", "last")
    for column, kind in (
        ("read_at", "timestamp"),
        ("energy_kwh", "float8"),
        ("volume_m3", "float8"),
    )
}
# Summed into an existing row by a billing batch (the others are labels).
ADDED = [c for c in SUM_COLUMNS if c not in ("meter_id", "date")]
_is_value = partial(is_not, None)


def upsert_statement(days):
    """The upsert of ``days`` (``tools/daily``: Days or DayColumns) as
    ``(query, params)``."""
    days = days.columns()
    count = len(days)
    values = {
        "meter_id": days.meter_id,
        "date": days.date,
        "energy_kwh": days.kwh,
        "volume_m3": days.m3,
        "amount": days.amount,
        "charge_count": days.charged,
    }
    # Flat and tiered charges name no band: their band columns are zeros
    # made by PostgreSQL instead of arrays built and parsed here.
    if any(days.band_kwh):
        for index, band in enumerate(BANDS):
            values[f"{band}_kwh"] = [
                bands[index] if bands else 0 for bands in days.band_kwh
            ]
            values[f"{band}_cost"] = [
                bands[index] if bands else 0 for bands in days.band_cost
            ]
    for edge, readings in (("first", days.first), ("last", days.last)):
        for index, column in zip(
            days.edge, ("read_at", "energy_kwh", "volume_m3"), strict=True
        ):
            values[f"{edge}_{column}"] = list(map(itemgetter(index), readings))
    # A column of nulls only or zeros only (the water of electricity
    # meters, the bands of flat tariffs) is made by PostgreSQL, not sent.
    columns = {**SUM_COLUMNS, **EDGE_COLUMNS}
    arrays, params = [], []
    for column, kind in columns.items():
        value = values.get(column)
        if value is None:
            fill = "0"
        elif column in ("meter_id", "date") or any(value):
            fill = None
        elif not any(map(_is_value, value)):
            fill = "NULL"
        else:
            fill = "0" if all(map(_is_value, value)) else None
        if fill is None:
            arrays.append(f"%s::{kind}[]")
            params.append(
                plain_array_literal(value, repeated=kind in ("date", "timestamp"))
            )
        else:
            arrays.append(f"array_fill({fill}::{kind}, ARRAY[{count}])")
    unnest = ", ".join(arrays)
    added = [f"{c} = d.{c} + EXCLUDED.{c}" for c in ADDED]
    earlier = "d.first_read_at IS NULL OR EXCLUDED.first_read_at < d.first_read_at"
    later = "d.last_read_at IS NULL OR EXCLUDED.last_read_at >= d.last_read_at"
    edges = [
        f"{c} = CASE WHEN {earlier if c.startswith('first') else later} "
        f"THEN EXCLUDED.{c} ELSE d.{c} END"
        for c in EDGE_COLUMNS
    ]
    return (
        f"""
        INSERT INTO prepaid_daily_usage AS d (
            {", ".join(columns)}, utility, room_id, floor_id, building_id,
            site_id, company_id, account_id, partner_id)
        SELECT u.*, CASE WHEN m.meter_type = 'water' THEN 'water'
                         ELSE 'electricity' END,
               m.room_id, m.floor_id, m.building_id, m.site_id, m.company_id,
               m.billing_account_id, a.partner_id
          FROM unnest({unnest}) AS u({", ".join(columns)})
          JOIN prepaid_meter m ON m.id = u.meter_id
          LEFT JOIN prepaid_account a ON a.id = m.billing_account_id
            ON CONFLICT (meter_id, date) DO UPDATE
           SET {", ".join(added + edges)}
        """,  # noqa: S608 - column names are constants of this module
        params,
    )


class PrepaidDailyUsage(models.Model):
    """What one meter used and cost on one local day (site time zone).

    Maintained by billing, batch by batch, in the batch's transaction (see
    ``_add_batch``); ``_rebuild`` recomputes a date range from the readings
    and their charges with the same rule (``tools/daily``). Every report
    reads this table, never the raw readings.

    Where the day belongs (room, floor, building, account, tenant) is taken
    when the day is first written: a shop that changes tenant keeps its
    history under the tenant of the time.
    """

    _name = "prepaid.daily.usage"
    _description = "Daily Meter Use"
    _inherit = ["prepaid.daily.usage.labels"]
    _order = "date desc, meter_id"
    _rec_name = "date"
    # Written by billing in bulk, never by hand: no create/write stamps (two
    # foreign keys less to check on every row a batch adds).
    _log_access = False

    # Searched by company and date (prepaid_daily_usage_company_date_index),
    # by meter and date (the unique key), by room or by account: no index of
    # its own on date or company (each index is written for every new day).
    date = fields.Date(required=True, readonly=True)
    utility = fields.Selection(
        [("electricity", "Electricity"), ("water", "Water")],
        required=True,
        readonly=True,
    )
    currency_id = fields.Many2one(related="company_id.currency_id")
    energy_kwh = fields.Float(string="Energy (kWh)", readonly=True, digits=(16, 3))
    sharp_kwh = fields.Float(string="Sharp (kWh)", readonly=True, digits=(16, 3))
    peak_kwh = fields.Float(string="Peak (kWh)", readonly=True, digits=(16, 3))
    flat_kwh = fields.Float(string="Flat (kWh)", readonly=True, digits=(16, 3))
    valley_kwh = fields.Float(string="Valley (kWh)", readonly=True, digits=(16, 3))
    volume_m3 = fields.Float(string="Water (m³)", readonly=True, digits=(16, 3))
    sharp_cost = fields.Monetary(readonly=True)
    peak_cost = fields.Monetary(readonly=True)
    flat_cost = fields.Monetary(readonly=True)
    valley_cost = fields.Monetary(readonly=True)
    amount = fields.Monetary(
        string="Charged",
        readonly=True,
        help="What the day's readings took from the wallet (the rounded charges).",
    )
    charge_count = fields.Integer(string="Charged Readings", readonly=True)
    first_read_at = fields.Datetime(readonly=True)
    last_read_at = fields.Datetime(readonly=True)
    first_energy_kwh = fields.Float(
        string="First Counter (kWh)", readonly=True, digits=(16, 2)
    )
    last_energy_kwh = fields.Float(
        string="Last Counter (kWh)", readonly=True, digits=(16, 2)
    )
    first_volume_m3 = fields.Float(
        string="First Counter (m³)", readonly=True, digits=(16, 3)
    )
    last_volume_m3 = fields.Float(
        string="Last Counter (m³)", readonly=True, digits=(16, 3)
    )

    _sql_constraints = [
        (
            "meter_date_unique",
            "UNIQUE (meter_id, date)",
            "One daily use per meter and day.",
        )
    ]

    def init(self):
        cr = self.env.cr
        # The first and last reading of a meter's local day (see
        # _refresh_counters and _rebuild) are found by meter and time.
        sql.create_index(
            cr,
            "prepaid_reading_meter_read_at_index",
            "prepaid_reading",
            ["meter_id", "read_at"],
        )
        # The portal's usage page reads an account's last days and months:
        # one range of this index, however many years the account has.
        sql.create_index(
            cr,
            "prepaid_daily_usage_account_date_index",
            self._table,
            ["account_id", "date"],
        )
        # the indexes of an earlier version (see date; account_id: the
        # account and date index above)
        cr.execute(
            "DROP INDEX IF EXISTS prepaid_daily_usage__date_index, "
            "prepaid_daily_usage__company_id_index, "
            "prepaid_daily_usage__account_id_index"
        )
        create_forget_triggers(cr)
        # Every billing batch adds to each billed meter's day (an upsert):
        # keep those updates HOT (see set_fillfactor).
        set_fillfactor(cr, "prepaid_daily_usage", 70)

    # ------------------------------------------------------------------
    # Maintenance
    # ------------------------------------------------------------------
    @api.model
    def _count_batch(self, readings, meters, batch):
        """Start counting a billing batch into days (the engine's hook,
        before pricing): a ``tools/daily.BatchDays`` whose ``follow`` the
        engine wraps its pricing in, so that each meter is counted as soon as
        it is priced; :meth:`_add_batch` writes the days.

        ``readings`` are the engine's rows in ``ReadingRow``'s field order
        (``tools/deduction``) in meter order, ``meters`` its ``MeterBilling``
        states by meter id, ``batch`` the ChargeBatch whose charges follow
        the readings in the same order.
        """
        return daily.BatchDays(readings, meters, batch.groups)

    @api.model
    def _add_batch(self, counting):
        """Add the days of a priced batch (:meth:`_count_batch`) to their
        rows (one upsert)."""
        if counting is not None:
            self._upsert(counting.count())

    @api.model
    def _cron_not_deducted(self, commit=None, batch=1000, meters=None):
        """Add the readings of the meters billing does not deduct (postpaid
        accounts, meters without an open prepaid account) to their days:
        energy, water and counters, no money (a postpaid bill prices them).

        Set-based like billing: a batch of meters, their readings after their
        watermark, one upsert. Suspect and rejected readings are left out and
        a pending suspect stops its meter, as in billing. The watermark is
        the later of ``daily_reading_id`` and billing's own, so a meter that
        was deducted before is never counted twice. Returns readings added.

        ``meters``: only those (a test's own); the cron takes every meter.
        """
        if commit is None:
            commit = not odoo_module.current_test
        done, last = 0, 0
        while True:
            if commit:
                start_read_committed(self.env.cr)
            meter_ids = self._claim_not_deducted(batch, last, meters)
            if not meter_ids:
                break
            done += self._add_not_deducted(meter_ids)
            last = meter_ids[-1]
            if commit:
                self.env.cr.commit()  # pylint: disable=invalid-commit
            self.env["ir.cron"]._notify_progress(done=done, remaining=0)
        return done

    def _claim_not_deducted(self, limit, after_id, meters=None):
        """Lock up to ``limit`` meters after ``after_id`` (of ``meters``, when
        given) that billing does not deduct and that have readings to add
        (other workers skip them)."""
        Meter = self.env["prepaid.meter"].sudo().with_context(active_test=False)
        billable = Meter._search(Meter._get_billable_meter_domain())
        domain = [
            ("active", "=", True),
            ("id", ">", after_id),
            ("id", "not in", billable),
        ]
        if meters is not None:
            domain.append(("id", "in", meters.ids))
        return Meter._claim_with_readings_after(
            domain,
            limit,
            ["daily_reading_id", "billed_reading_id"],
        )

    def _add_not_deducted(self, meter_ids):
        """Add the good readings of the locked ``meter_ids`` after their
        watermark to their days and move the watermark (one upsert)."""
        cr = self.env.cr
        Reading = self.env["prepaid.reading"]
        cr.execute(
            SQL(
                f"""
            SELECT m.id,
                   (r.read_at AT TIME ZONE 'UTC' AT TIME ZONE m.tz)::date,
                   r.id, r.read_at, r.energy_total_kwh::float8, r.volume_m3::float8,
                   r.delta_kwh::float8, r.delta_m3::float8, %s
              FROM (SELECT m.id, COALESCE(s.tz, 'UTC') AS tz,
                           {DAILY_WATERMARK} AS watermark,
                           %s AS hold
                      FROM prepaid_meter m
                      LEFT JOIN prepaid_site s ON s.id = m.site_id
                     WHERE m.id = ANY(%s)) m
             CROSS JOIN LATERAL (
                   SELECT r.id, r.read_at, r.energy_total_kwh, r.volume_m3,
                          r.delta_kwh, r.delta_m3, r.review_state
                     FROM prepaid_reading r
                    WHERE r.meter_id = m.id AND r.id > m.watermark
                      AND (m.hold IS NULL OR r.id < m.hold)
                    ORDER BY r.id) r
             ORDER BY m.id, r.id
            """,
                Reading._money_sql("r"),
                Reading._pending_suspect_sql("m"),
                meter_ids,
            )
        )
        days = daily.Days()
        watermarks = {}
        added = 0
        for (
            meter_id,
            day,
            reading_id,
            read_at,
            total,
            volume,
            kwh,
            m3,
            money,
        ) in cr.fetchall():
            watermarks[meter_id] = reading_id
            if not money:
                continue  # no use, but passed
            days.add(meter_id, day, (read_at, total, volume), kwh, m3)
            added += 1
        if days:
            self._upsert(days)
        if watermarks:
            cr.execute(
                """UPDATE prepaid_meter m SET daily_reading_id = u.reading_id
                     FROM unnest(%s::int4[], %s::int4[]) AS u(meter_id, reading_id)
                    WHERE m.id = u.meter_id""",
                [list(watermarks), list(watermarks.values())],
            )
            self.env["prepaid.meter"].invalidate_model(["daily_reading_id"])
        return added

    @api.model
    def _rebuild(self, meter_ids, date_from, date_to):
        """Recompute the days ``date_from``..``date_to`` (local, inclusive) of
        ``meter_ids`` from their readings and charges.

        Call it after a billed reading changed (a suspect reading accepted, a
        reading billed late): the days become what billing them afresh would
        have added up. The readings counted are the good ones up to the
        meter's watermark, the later of ``billed_reading_id`` and
        ``daily_reading_id`` as in ``_add_not_deducted``: a meter billing does
        not deduct (postpaid, no account) gets back the use those added, with
        no money. Returns the number of days written.

        The meters are locked first: a billing batch of them in progress ends
        before, and billing skips them until the transaction ends (it claims
        meters with SKIP LOCKED), so no batch adds to a day half rebuilt.
        """
        self.env["prepaid.reading"]._check_readings_kept(
            date_from, self.env._("Rebuilding the daily use")
        )
        self.env.flush_all()
        cr = self.env.cr
        cr.execute(
            "SELECT id FROM prepaid_meter WHERE id = ANY(%s) "
            "ORDER BY id FOR NO KEY UPDATE",
            [list(meter_ids)],
        )
        cr.execute(
            "DELETE FROM prepaid_daily_usage "
            "WHERE meter_id = ANY(%s) AND date BETWEEN %s AND %s",
            [list(meter_ids), date_from, date_to],
        )
        cr.execute(
            SQL(
                f"""
            SELECT r.meter_id,
                   (r.read_at AT TIME ZONE 'UTC'
                              AT TIME ZONE COALESCE(s.tz, 'UTC'))::date,
                   r.read_at, r.energy_total_kwh::float8, r.volume_m3::float8,
                   r.delta_kwh::float8, r.delta_m3::float8, c.amount::text, c.detail
              FROM prepaid_meter m
              LEFT JOIN prepaid_site s ON s.id = m.site_id
              JOIN prepaid_reading r ON r.meter_id = m.id
                   AND r.id <= {DAILY_WATERMARK}
                   AND r.read_at >= (%s::timestamp AT TIME ZONE COALESCE(s.tz, 'UTC'))
                                    AT TIME ZONE 'UTC'
                   AND r.read_at < ((%s::date + 1)::timestamp
                                    AT TIME ZONE COALESCE(s.tz, 'UTC'))
                                    AT TIME ZONE 'UTC'
              LEFT JOIN prepaid_reading_charge c ON c.id = r.id
             WHERE m.id = ANY(%s) AND %s
             ORDER BY r.meter_id, r.read_at, r.id
            """,
                date_from,
                date_to,
                list(meter_ids),
                self.env["prepaid.reading"]._money_sql("r"),
            )
        )
        days = daily.Days()
        for (
            meter_id,
            day,
            read_at,
            total,
            volume,
            kwh,
            m3,
            amount,
            detail,
        ) in cr.fetchall():
            # (numeric as text: Odoo reads numeric columns as floats)
            days.add(
                meter_id,
                day,
                (read_at, total, volume),
                kwh,
                m3,
                amount and Decimal(amount),
                detail,
            )
        if days:
            self._upsert(days)
        self.invalidate_model()
        return len(days)

    @api.model
    def _local_today(self, meters):
        """The latest local date among the sites of ``meters``: their days
        are local, and a site east of the user is already a day ahead."""
        zones = set(meters.site_id.mapped("tz"))
        if not zones or meters.filtered(lambda meter: not meter.site_id):
            zones.add("UTC")
        now = fields.Datetime.now()
        return max(meters._local_date(now, zone) for zone in zones)

    @api.model
    def _rebuild_in_pieces(
        self,
        meter_ids,
        date_from,
        date_to,
        commit=None,
        meters_per_piece=rebuild.METERS_PER_PIECE,
        meter_days_per_piece=rebuild.METER_DAYS_PER_PIECE,
    ):
        """``_rebuild`` piece by piece (``tools/rebuild``), a transaction
        each when ``commit`` (in READ COMMITTED, like billing: a day billing
        just added to is re-read, not a serialization failure). Returns the
        days written."""
        if commit is None:
            commit = not odoo_module.current_test
        written = 0
        for piece in rebuild.pieces(
            meter_ids,
            date_from,
            date_to,
            meters=meters_per_piece,
            meter_days=meter_days_per_piece,
        ):
            if commit:
                start_read_committed(self.env.cr)
            written += self._rebuild(piece.meter_ids, piece.date_from, piece.date_to)
        return written

    def _upsert(self, days):
        """Add ``days`` (``tools/daily``: Days or DayColumns) to their rows
        (created when missing), in one statement; a row's first and last
        reading move when the batch has an earlier first or a later last
        one."""
        if days:
            # the labels are read from the meters and accounts in SQL
            self.env["prepaid.meter"].flush_model(
                ["meter_type", "room_id", "floor_id", "building_id", "site_id"]
                + ["company_id", "billing_account_id"]
            )
            self.env["prepaid.account"].flush_model(["partner_id"])
            self.env.cr.execute(*upsert_statement(days))
        self.invalidate_model()

    # ------------------------------------------------------------------
    # Demo
    # ------------------------------------------------------------------
    @api.model
    def _demo_history(self, days=365):
        """Demo only: a year of plausible days before today for every meter
        in a room that has none yet (one statement), so the reports, the
        dashboard and the room charts show something on the first visit.

        These days have no readings behind them: a ``_rebuild`` of the range
        empties them.
        """
        today = fields.Date.context_today(self)
        self.env.cr.execute(
            """
            INSERT INTO prepaid_daily_usage AS d (
                meter_id, date, utility, room_id, floor_id, building_id, site_id,
                company_id, account_id, partner_id, energy_kwh, sharp_kwh, peak_kwh,
                flat_kwh, valley_kwh, volume_m3, sharp_cost, peak_cost, flat_cost,
                valley_cost, amount, charge_count)
            SELECT m.id, g.day, CASE WHEN m.meter_type = 'water' THEN 'water'
                                     ELSE 'electricity' END,
                   m.room_id, m.floor_id, m.building_id, m.site_id, m.company_id,
                   m.billing_account_id, a.partner_id,
                   u.kwh, u.kwh * 0.1, u.kwh * 0.25, u.kwh * 0.35, u.kwh * 0.3,
                   u.m3, u.kwh * 0.13, u.kwh * 0.275, u.kwh * 0.245, u.kwh * 0.105,
                   ROUND((u.kwh * 0.755 + u.m3 * 4)::numeric, 2), 24
              FROM prepaid_meter m
              LEFT JOIN prepaid_account a ON a.id = m.billing_account_id
             CROSS JOIN LATERAL (
                   SELECT (%s::date - n) AS day
                     FROM generate_series(1, %s) AS n) g
             CROSS JOIN LATERAL (
                   SELECT CASE WHEN m.meter_type = 'water' THEN 0
                               ELSE ROUND((8 + (m.id %% 7) * 3
                                    + 6 * sin(extract(doy FROM g.day) / 58.0)
                                    + (hashint4(m.id * 1000 + extract(doy FROM
                                       g.day)::int4) %% 5))::numeric, 2)::float8
                          END AS kwh,
                          CASE WHEN m.meter_type = 'water'
                               THEN 0.3 + (m.id %% 4) * 0.1 ELSE 0 END AS m3) u
             WHERE m.room_id IS NOT NULL AND m.active
               AND NOT EXISTS (SELECT 1 FROM prepaid_daily_usage x
                                WHERE x.meter_id = m.id)
                ON CONFLICT (meter_id, date) DO NOTHING
            """,
            [today, days],
        )
        self.invalidate_model()
