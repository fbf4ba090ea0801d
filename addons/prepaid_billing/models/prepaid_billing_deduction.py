import io
import json
import logging

from psycopg2.errors import UniqueViolation

from odoo import api, models
from odoo.modules import module as odoo_module
from odoo.tools import SQL

from odoo.addons.prepaid_metering.tools.transactions import (
    local_settings,
    start_read_committed,
)

from ..tools import batch as batch_core
from ..tools import deduction
from ..tools.sql_arrays import array_literal

_logger = logging.getLogger(__name__)

# Billing state of a meter written back by _store_meter_billing, with the
# PostgreSQL type of its unnest array.
#: Settings of the statement reading a batch's readings (see _unbilled_readings).
BATCH_READ_SETTINGS = {"work_mem": "64MB", "jit": "off"}
BILL_COLUMNS = {
    "id": "int4",
    "billed_reading_id": "int4",
    "bill_band_kwh": "jsonb",
    "bill_period_start": "date",
    "bill_period_qty": "float8",
    "bill_carry": "float8",
    "meter_balance_mirror": "float8",
}


class AlreadyBilled(Exception):
    """Some readings of a batch were billed before (see ``_bill_claimed_upto``)."""


class PrepaidBillingDeduction(models.AbstractModel):
    """Turns readings into wallet lines: claims meters, prices their unbilled
    readings (``tools/deduction``), stores the charges and wallet lines, and
    moves each meter's billing watermark.

    Set-based: a batch of meters is priced in Python and written with a
    constant number of statements, whatever its size. Part of
    ``prepaid.billing.engine``, which the rest of the module calls.
    """

    _name = "prepaid.billing.deduction"
    _inherit = "prepaid.supply.control"
    _description = "Prepaid Billing Deduction"

    # ------------------------------------------------------------------
    # Claim
    # ------------------------------------------------------------------
    @api.model
    def _claim_meters(self, limit, meter_ids=None, after_id=0):
        """Lock billable meters with readings still to bill (other workers
        skip them).

        Meters are claimed in id order from ``after_id`` on: a run goes
        through the meters once (a meter whose next reading has no tariff in
        force stays unbilled and is not claimed again and again; readings
        arriving meanwhile for meters already passed wait for the next run).
        """
        if meter_ids is not None and not meter_ids:
            return []
        Meter = self.env["prepaid.meter"]
        domain = [*Meter._get_billable_meter_domain(), ("id", ">", after_id)]
        if meter_ids is not None:
            domain.append(("id", "in", list(meter_ids)))
        return Meter._claim_with_readings_after(
            domain, limit, ["billed_reading_id"], good_only=True
        )

    # ------------------------------------------------------------------
    # Runs
    # ------------------------------------------------------------------
    @api.model
    def _cron_bill(self, commit=None, meters=None):
        """Bill every unbilled reading, batch by batch; returns readings charged.

        ``meters``: only theirs (a test's own); the cron bills every meter.
        """
        if commit is None:
            commit = not odoo_module.current_test
        params = self.env["ir.config_parameter"].sudo()
        batch = int(params.get_param("prepaid_billing.bill_batch_meters", 1000))
        steady = max(
            batch,
            int(params.get_param("prepaid_billing.bill_batch_meters_steady", 5000)),
        )
        done, last, size = 0, 0, batch
        while True:
            if commit:
                # The batch (claim and billing) runs in READ COMMITTED: see
                # start_read_committed; wallets are locked row by row anyway.
                start_read_committed(self.env.cr)
            meter_ids = self._claim_meters(
                size,
                meter_ids=meters.ids if meters is not None else None,
                after_id=last,
            )
            if not meter_ids:
                break
            charged, resume_after = self._bill_claimed_upto(meter_ids)
            done += charged
            last = meter_ids[-1] if resume_after is None else resume_after
            size = batch_core.next_batch_size(
                batch, steady, len(meter_ids), charged, resume_after is None
            )
            if commit:
                # Each batch is committed so that the meter locks are released
                # and a crash or timeout does not roll back the batches billed.
                self.env.cr.commit()  # pylint: disable=invalid-commit
            self.env["ir.cron"]._notify_progress(done=done, remaining=0)
        return done

    @api.model
    def _bill(self, meter_ids):
        """Bill the given meters now, every unbilled reading (skips meters
        another worker holds); returns the readings charged."""
        done, last = 0, 0
        while True:
            claimed = self._claim_meters(
                len(meter_ids) or 1, meter_ids=meter_ids, after_id=last
            )
            if not claimed:
                return done
            charged, resume_after = self._bill_claimed_upto(claimed)
            done += charged
            if resume_after is None:
                return done
            last = resume_after

    @api.model
    def _bill_claimed_upto(self, meter_ids):
        """Charge the unbilled readings of locked meters, at most
        ``prepaid_billing.bill_batch_readings`` of them (a backlog after an
        outage must not load millions of rows at once).

        Returns ``(readings charged, resume_after)``: ``resume_after`` is None
        when every reading of the meters was taken, else the id after which
        the meters still have readings to bill.

        The primary key of the charges is the reading: a reading charged
        before (a watermark moved back by hand, a restored backup) makes the
        batch fail as a whole, which is then billed again without the readings
        already charged.
        """
        limit = int(
            self.env["ir.config_parameter"]
            .sudo()
            .get_param("prepaid_billing.bill_batch_readings", 200000)
        )
        try:
            with self.env.cr.savepoint():
                return self._bill_batch(meter_ids, limit=limit)
        except (UniqueViolation, AlreadyBilled):
            _logger.info(
                "meters %s: readings behind the billing watermark were already "
                "charged; billing the others",
                meter_ids,
            )
            self.env.invalidate_all()
            return self._bill_batch(meter_ids, skip_charged=True, limit=limit)

    # ------------------------------------------------------------------
    # One batch
    # ------------------------------------------------------------------
    @api.model
    def _bill_batch(self, meter_ids, skip_charged=False, limit=None):
        """Price and store the unbilled readings of the locked ``meter_ids``
        (at most ``limit``); returns ``(readings charged, resume_after)``."""
        meters = self._meter_states(meter_ids)
        pricing = self._pricing_context([m.tariff_id for m in meters.values()])
        # The band registers of every reading are needed by time-of-use
        # tariffs only; the other meters keep those of their last reading.
        for meter in meters.values():
            versions = pricing.get(meter.tariff_id)
            meter.banded = not meter.water and versions is not None and versions.tou
        banded = [m.id for m in meters.values() if m.banded]
        rows = self._unbilled_readings(meter_ids, banded, skip_charged, limit)
        Line = self.env["prepaid.ledger.line"]
        # One wallet line per meter with consumption, usually: reserve their
        # ids so that the charges can be streamed to the database while the
        # next readings are priced (a backlog over a month end needs more,
        # given after the stream).
        batch = batch_core.ChargeBatch(
            Line._reserve_ids(deduction.expected_lines(rows))
        )
        copy = f"COPY prepaid_reading_charge ({', '.join(batch_core.COPY_COLUMNS)}) "
        copy += "FROM STDIN"
        mirror_detail = self.env._("Meter balance %(before).2f -> %(after).2f")
        pump = deduction.price_readings(rows, meters, pricing, batch, mirror_detail)
        # the daily use of the batch, counted meter by meter as it is priced
        Daily = self.env["prepaid.daily.usage"]
        counting = Daily._count_batch(rows, meters, batch)
        stream = batch_core.CopyStream(
            batch, counting.follow(pump) if counting is not None else pump
        )
        self.env.cr.copy_expert(copy, stream)
        if stream.error:
            # what pricing raised (the savepoint of _bill_claimed_upto drops
            # the rows streamed before)
            raise stream.error
        if batch.waiting:
            more = batch.assign(Line._reserve_ids(len(batch.waiting)))
            self.env.cr.copy_expert(copy, io.StringIO(more))
        self._post_batch(batch, meters)
        self._last_bands([m for m in meters.values() if not m.water and not m.banded])
        self._store_meter_billing(list(meters.values()))
        Daily._add_batch(counting)
        accounts = self.env["prepaid.account"].browse(
            sorted({m.account_id for m in meters.values()})
        )
        self._after_balance_change(accounts)
        self.env["prepaid.account"]._check_limits_after_billing(meter_ids)
        return len(batch), deduction.resume_after(rows, limit, meters)

    def _meter_states(self, meter_ids):
        """``{meter id: MeterBilling}`` of ``meter_ids`` (one statement)."""
        self.env.cr.execute(
            """
            SELECT m.id, m.billing_account_id, m.billing_mode, m.meter_type,
                   b.billed_reading_id, b.bill_band_kwh, b.bill_period_start,
                   b.bill_period_qty, b.bill_carry, b.meter_balance_mirror,
                   COALESCE(m.tariff_id, CASE WHEN m.meter_type = 'water'
                            THEN a.water_tariff_id ELSE a.tariff_id END),
                   COALESCE(s.tz, 'UTC')
              FROM prepaid_meter m
              JOIN prepaid_account a ON a.id = m.billing_account_id
              LEFT JOIN prepaid_meter_billing b ON b.meter_id = m.id
              LEFT JOIN prepaid_site s ON s.id = m.site_id
             WHERE m.id = ANY(%s)
            """,
            [meter_ids],
        )
        return deduction.meter_states(
            map(deduction.MeterRow._make, self.env.cr.fetchall())
        )

    def _unbilled_readings(self, meter_ids, banded, skip_charged, limit):
        """The readings to bill of ``meter_ids`` in meter order, as plain
        rows in ``tools.deduction.ReadingRow``'s field order (one statement);
        band registers for the meters ``banded``.

        Suspect and rejected readings are no money; billing stops before a
        meter's first pending suspect reading (its watermark never passes
        it), so that once accepted it is billed, exactly once.
        """
        skip = SQL(
            """AND NOT EXISTS (SELECT 1 FROM prepaid_reading_charge c
                                WHERE c.id = r.id)
               AND NOT EXISTS (SELECT 1 FROM prepaid_ledger_line l
                                WHERE l.reading_id = r.id
                                  AND l.line_type = 'consumption')"""
            if skip_charged
            else ""
        )
        Reading = self.env["prepaid.reading"]
        # Driven by the meters: each meter's readings after its watermark
        # are one range of the (meter_id, id) index, up to its first pending
        # suspect (the partial index of suspects). A batch's hundred thousand
        # rows are sorted in memory, and the plan is not JIT-compiled (its
        # cost estimate asks for it; compiling takes longer than the reading).
        with local_settings(self.env.cr, **BATCH_READ_SETTINGS):
            self.env.cr.execute(
                SQL(
                    """
                SELECT r.id, r.meter_id, r.read_at, r.delta_kwh::float8,
                       r.delta_m3::float8, r.anomaly,
                       CASE WHEN m.banded THEN r.energy_sharp_kwh::float8 END,
                       CASE WHEN m.banded THEN r.energy_peak_kwh::float8 END,
                       CASE WHEN m.banded THEN r.energy_flat_kwh::float8 END,
                       CASE WHEN m.banded THEN r.energy_valley_kwh::float8 END,
                       CASE WHEN m.billing_mode = 'meter'
                            THEN (r.values_json->>'balance')::float8 END,
                       r.energy_total_kwh::float8, r.volume_m3::float8
                  FROM (SELECT m.id, m.billing_mode,
                               COALESCE(b.billed_reading_id, 0) AS watermark,
                               m.id = ANY(%s) AS banded,
                               %s AS hold
                          FROM prepaid_meter m
                          LEFT JOIN prepaid_meter_billing b ON b.meter_id = m.id
                         WHERE m.id = ANY(%s)) m
                 CROSS JOIN LATERAL (
                       SELECT r.id, r.meter_id, r.read_at, r.delta_kwh, r.delta_m3,
                              r.anomaly, r.energy_sharp_kwh, r.energy_peak_kwh,
                              r.energy_flat_kwh, r.energy_valley_kwh, r.values_json,
                              r.energy_total_kwh, r.volume_m3
                         FROM prepaid_reading r
                        WHERE r.meter_id = m.id AND r.id > m.watermark
                          AND (m.hold IS NULL OR r.id < m.hold)
                          AND %s
                              %s
                        ORDER BY r.id) r
                 ORDER BY r.meter_id, r.id
                 LIMIT %s
                """,
                    banded,
                    Reading._pending_suspect_sql("m"),
                    meter_ids,
                    Reading._money_sql("r"),
                    skip,
                    limit,
                )
            )
            # (float8 columns: psycopg2 parses them in C; numeric goes through a
            # Python typecaster per value, a second per million readings.)
            return self.env.cr.fetchall()

    @api.model
    def _pricing_context(self, tariff_ids):
        """``{tariff id: TariffVersions}``: the compiled pricers of the
        tariffs' versions, sorted by date."""
        versions = self.env["prepaid.tariff.version"].search(
            [("tariff_id", "in", list({t for t in tariff_ids if t}))],
            order="tariff_id, date_from",
        )
        return deduction.tariff_versions(
            (version.tariff_id.id, version.date_from, version._pricer())
            for version in versions
        )

    # ------------------------------------------------------------------
    # Storage
    # ------------------------------------------------------------------
    def _last_bands(self, meters):
        """Band registers of the last billed reading of ``meters`` (one
        statement): kept on the meter for a later time-of-use tariff."""
        watermarks = [m.watermark for m in meters if m.watermark]
        if not watermarks:
            return
        self.env.cr.execute(
            """SELECT meter_id, energy_sharp_kwh::float8, energy_peak_kwh::float8,
                      energy_flat_kwh::float8, energy_valley_kwh::float8
                 FROM prepaid_reading WHERE id = ANY(%s)""",
            [watermarks],
        )
        bands = {
            meter_id: (sharp, peak, flat, valley)
            for meter_id, sharp, peak, flat, valley in self.env.cr.fetchall()
        }
        for meter in meters:
            if meter.id in bands:
                meter.bands = bands[meter.id]

    def _post_batch(self, batch, meters):
        """Post the wallet line of each group of ``batch``, with the id its
        charges already refer to."""
        if not batch.groups:
            return
        by_meter = self.env._("Deducted by the meter")
        several = self.env._("%(quantity)s %(unit)s (%(count)s readings)")
        vals_list = []
        for group in batch.groups:
            if not group.amount:
                continue  # less than a cent in all: carried, nothing to post
            mirror = not meters[group.meter_id].server
            quantity = group.quantity.normalize()
            if mirror:
                name = by_meter
            elif group.count > 1:
                name = several % {
                    "quantity": quantity,
                    "unit": group.unit,
                    "count": group.count,
                }
            else:
                name = f"{quantity!s} {group.unit}"
            vals_list.append(
                {
                    "id": group.line_id,
                    "account_id": group.account_id,
                    "line_type": "consumption",
                    "amount": -float(group.amount),
                    "date": group.last_read_at,
                    "name": name,
                    "meter_id": group.meter_id,
                    "reading_id": group.last_reading_id,
                    "reading_count": group.count,
                    "quantity": float(group.quantity),
                    "unit": group.unit,
                    "tariff_version_id": group.version_key,
                    "payment_method": "meter" if mirror else None,
                    # No "posted by": billing posts them, and the cron's user
                    # is the line's create_uid already (one foreign key less
                    # to check for each line of a batch).
                    "user_id": None,
                    "pricing_detail": json.dumps(
                        {"readings": group.count, "lines": group.summary()}
                    ),
                }
            )
        posted = self.env["prepaid.ledger.line"]._post(vals_list)
        if len(posted) != len(vals_list):
            # A group's last reading already has its wallet line: its charges
            # would point to no line. Bill again without the readings billed.
            raise AlreadyBilled()
        self.env["prepaid.ledger.line"].invalidate_model(["charge_ids"])

    def _store_meter_billing(self, meters):
        """Write the billing state of ``meters`` (``MeterBilling``) back to
        their records, in one statement."""
        if not meters:
            return
        values = {
            "id": [m.id for m in meters],
            "billed_reading_id": [m.watermark for m in meters],
            "bill_band_kwh": [
                json.dumps(dict(zip(deduction.BANDS, m.bands, strict=True)))
                if m.bands
                else None
                for m in meters
            ],
            "bill_period_start": [m.period_start for m in meters],
            "bill_period_qty": [float(m.period_qty) for m in meters],
            "bill_carry": [float(m.carry) for m in meters],
            "meter_balance_mirror": [m.mirror for m in meters],
        }
        unnest = ", ".join(f"%s::{kind}[]" for kind in BILL_COLUMNS.values())
        names = list(BILL_COLUMNS)[1:]
        sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in names)
        # The narrow table of the billing state (prepaid_meter.init): the
        # update of a meter billed before is HOT, the first one inserts.
        self.env.cr.execute(
            f"""
            INSERT INTO prepaid_meter_billing (meter_id, {", ".join(names)})
            SELECT * FROM unnest({unnest})
            ON CONFLICT (meter_id) DO UPDATE SET {sets}
            """,  # noqa: S608 - column names are constants of this module
            [array_literal(values[column]) for column in BILL_COLUMNS],
        )
        self.env["prepaid.meter"].invalidate_model(list(BILL_COLUMNS)[1:])
