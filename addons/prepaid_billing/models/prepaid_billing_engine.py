import bisect
import io
import json
import logging
from datetime import datetime, time, timedelta
from decimal import Decimal

import pytz
from dateutil.relativedelta import relativedelta
from psycopg2.errors import UniqueViolation

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.modules import module as odoo_module

from odoo.addons.prepaid_metering.models.prepaid_meter_command import SWITCH_COMMANDS
from odoo.addons.prepaid_metering.tools.transactions import start_read_committed

from ..tools import batch as batch_core
from ..tools import money
from ..tools import protection as protection_core
from ..tools import tariff as core
from ..tools.clock import LocalClock

_logger = logging.getLogger(__name__)

BANDS = ("sharp", "peak", "flat", "valley")
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
    """Some readings of a batch were billed before (see ``_bill_claimed``)."""


class PrepaidBillingEngine(models.AbstractModel):
    """Turns readings into wallet lines, then alarms, cut-off and restore.

    Set-based: a batch of meters is priced in Python (the pricing core) and
    written with a constant number of statements, whatever its size.
    """

    _name = "prepaid.billing.engine"
    _description = "Prepaid Billing Engine"

    # ------------------------------------------------------------------
    # Deduction
    # ------------------------------------------------------------------
    @api.model
    def _claim_meters(self, limit, meter_ids=None, after_id=0):
        """Lock meters with readings still to bill (other workers skip them).

        Meters are claimed in id order from ``after_id`` on: a run goes
        through the meters once (a meter whose next reading has no tariff in
        force stays unbilled and is not claimed again and again; readings
        arriving meanwhile for meters already passed wait for the next run).
        """
        self.env.flush_all()
        self.env.cr.execute(
            """
            SELECT m.id FROM prepaid_meter m
              JOIN prepaid_account a ON a.id = m.billing_account_id
             WHERE a.state = 'open' AND a.mode = 'prepaid' AND m.active
               AND (%s::int4[] IS NULL OR m.id = ANY(%s::int4[]))
               AND m.id > %s
               AND EXISTS (SELECT 1 FROM prepaid_reading r
                            WHERE r.meter_id = m.id
                              AND r.id > COALESCE(m.billed_reading_id, 0)
                              AND (r.review_state IS NULL
                                   OR r.review_state = 'accepted'))
             ORDER BY m.id
             LIMIT %s
               FOR UPDATE OF m SKIP LOCKED
            """,
            [meter_ids, meter_ids, after_id, limit],
        )
        return [row[0] for row in self.env.cr.fetchall()]

    @api.model
    def _cron_bill(self, commit=None):
        """Bill every unbilled reading, batch by batch; returns readings charged."""
        if commit is None:
            commit = not odoo_module.current_test
        batch = int(
            self.env["ir.config_parameter"]
            .sudo()
            .get_param("prepaid_billing.bill_batch_meters", 1000)
        )
        done, last = 0, 0
        while True:
            if commit:
                # The batch (claim and billing) runs in READ COMMITTED: see
                # start_read_committed; wallets are locked row by row anyway.
                start_read_committed(self.env.cr)
            meter_ids = self._claim_meters(batch, after_id=last)
            if not meter_ids:
                break
            charged, resume_after = self._bill_claimed_upto(meter_ids)
            done += charged
            last = meter_ids[-1] if resume_after is None else resume_after
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
    def _bill_claimed(self, meter_ids):
        """Charge the unbilled readings of locked meters; returns how many."""
        return self._bill_claimed_upto(meter_ids)[0]

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

    @api.model
    def _bill_batch(self, meter_ids, skip_charged=False, limit=None):
        cr = self.env.cr
        cr.execute(
            """
            SELECT m.id, m.billing_account_id, m.billing_mode, m.meter_type,
                   m.billed_reading_id, m.bill_band_kwh, m.bill_period_start,
                   m.bill_period_qty, m.bill_carry, m.meter_balance_mirror,
                   COALESCE(m.tariff_id, CASE WHEN m.meter_type = 'water'
                            THEN a.water_tariff_id ELSE a.tariff_id END),
                   COALESCE(s.tz, 'UTC')
              FROM prepaid_meter m
              JOIN prepaid_account a ON a.id = m.billing_account_id
              LEFT JOIN prepaid_site s ON s.id = m.site_id
             WHERE m.id = ANY(%s)
            """,
            [meter_ids],
        )
        clocks = {}
        meters = {}
        for row in cr.fetchall():
            bands = row[5]
            tz = row[11]
            if tz not in clocks:
                clocks[tz] = LocalClock(tz)
            meters[row[0]] = {
                "id": row[0],
                "account_id": row[1],
                "mode": row[2],
                "water": row[3] == "water",
                "watermark": row[4],
                "bands": tuple(bands.get(b) for b in BANDS) if bands else None,
                "period_start": row[6],
                "period_qty": money.to_decimal(row[7] or 0.0),
                "carry": money.to_decimal(row[8] or 0.0),
                "mirror": row[9],
                "tariff_id": row[10],
                "clock": clocks[tz],
                "window": None,
                "stopped": False,
            }
        skip = (
            """AND NOT EXISTS (SELECT 1 FROM prepaid_reading_charge c
                                WHERE c.id = r.id)
               AND NOT EXISTS (SELECT 1 FROM prepaid_ledger_line l
                                WHERE l.reading_id = r.id
                                  AND l.line_type = 'consumption')"""
            if skip_charged
            else ""
        )
        pricing = self._pricing_context([m["tariff_id"] for m in meters.values()])
        # The band registers of every reading are needed by time-of-use
        # tariffs only; the other meters keep those of their last reading.
        banded = [
            m["id"]
            for m in meters.values()
            if not m["water"] and pricing.get(m["tariff_id"], {}).get("tou")
        ]
        # Suspect and rejected readings are no money; billing stops before a
        # meter's first pending suspect reading (its watermark never passes
        # it), so that once accepted it is billed, exactly once.
        cr.execute(
            f"""
            WITH hold AS (
                SELECT meter_id, min(id) AS id FROM prepaid_reading
                 WHERE meter_id = ANY(%s) AND review_state = 'suspect'
                 GROUP BY meter_id)
            SELECT r.id, r.meter_id, r.read_at, r.delta_kwh::float8,
                   r.delta_m3::float8, r.anomaly,
                   CASE WHEN b.id IS NOT NULL THEN r.energy_sharp_kwh::float8 END,
                   CASE WHEN b.id IS NOT NULL THEN r.energy_peak_kwh::float8 END,
                   CASE WHEN b.id IS NOT NULL THEN r.energy_flat_kwh::float8 END,
                   CASE WHEN b.id IS NOT NULL THEN r.energy_valley_kwh::float8 END,
                   CASE WHEN m.billing_mode = 'meter'
                        THEN (r.values_json->>'balance')::float8 END
              FROM prepaid_reading r
              JOIN prepaid_meter m ON m.id = r.meter_id
              LEFT JOIN unnest(%s::int4[]) AS b(id) ON b.id = r.meter_id
              LEFT JOIN hold h ON h.meter_id = r.meter_id
             WHERE r.meter_id = ANY(%s) AND r.id > COALESCE(m.billed_reading_id, 0)
               AND (r.review_state IS NULL OR r.review_state = 'accepted')
               AND (h.id IS NULL OR r.id < h.id)
                   {skip}
             ORDER BY r.meter_id, r.id
             LIMIT %s
            """,  # noqa: S608 - a constant of this method
            [meter_ids, banded, meter_ids, limit],
        )
        # (float8 columns: psycopg2 parses them in C; numeric goes through a
        # Python typecaster per value, a second per million readings.)
        readings = cr.fetchall()
        Line = self.env["prepaid.ledger.line"]
        # One wallet line per meter with consumption, usually: reserve their
        # ids so that the charges can be streamed to the database while the
        # next readings are priced (a backlog over a month end needs more,
        # given after the stream).
        expected = len({r[1] for r in readings if r[3] or r[4] or r[10] is not None})
        batch = batch_core.ChargeBatch(Line._reserve_ids(expected))
        copy = f"COPY prepaid_reading_charge ({', '.join(batch_core.COPY_COLUMNS)}) "
        copy += "FROM STDIN"
        stream = batch_core.CopyStream(
            batch, self._price_readings(readings, meters, pricing, batch)
        )
        cr.copy_expert(copy, stream)
        if stream.error:
            # what pricing raised (the savepoint of _bill_claimed drops the
            # rows streamed before)
            raise stream.error
        if batch.waiting:
            more = batch.assign(Line._reserve_ids(len(batch.waiting)))
            cr.copy_expert(copy, io.StringIO(more))
        self._post_batch(batch, meters)
        banded = set(banded)
        self._last_bands(
            [m for m in meters.values() if not m["water"] and m["id"] not in banded]
        )
        self._store_meter_billing(list(meters.values()))
        self.env["prepaid.daily.usage"]._add_batch(readings, meters, batch)
        accounts = self.env["prepaid.account"].browse(
            sorted({m["account_id"] for m in meters.values()})
        )
        self._after_balance_change(accounts)
        return len(batch), self._resume_after(readings, limit, meters)

    @staticmethod
    def _resume_after(readings, limit, meters):
        """Where the next batch starts when ``limit`` cut the readings: at the
        meter of the last reading taken (it may have more), unless pricing
        stopped there (no tariff in force: it would not move)."""
        if not limit or len(readings) < limit:
            return None
        meter_id = readings[-1][1]
        return meter_id if meters[meter_id]["stopped"] else meter_id - 1

    def _last_bands(self, meters):
        """Band registers of the last billed reading of ``meters`` (one
        statement): kept on the meter for a later time-of-use tariff."""
        watermarks = [m["watermark"] for m in meters if m["watermark"]]
        if not watermarks:
            return
        self.env.cr.execute(
            """SELECT meter_id, energy_sharp_kwh::float8, energy_peak_kwh::float8,
                      energy_flat_kwh::float8, energy_valley_kwh::float8
                 FROM prepaid_reading WHERE id = ANY(%s)""",
            [watermarks],
        )
        bands = {row[0]: row[1:] for row in self.env.cr.fetchall()}
        for meter in meters:
            if meter["id"] in bands:
                meter["bands"] = bands[meter["id"]]

    def _price_readings(self, readings, meters, pricing, batch, step=2000):
        """Price ``readings`` (in meter order) into ``batch``, pausing every
        ``step`` readings (a generator: the COPY stream drives it)."""
        for start in range(0, len(readings), step):
            for reading in readings[start : start + step]:
                meter = meters[reading[1]]
                if meter["stopped"]:
                    continue
                if meter["mode"] == "server":
                    self._charge_reading(meter, reading, pricing, batch)
                else:
                    self._mirror_reading(meter, reading, batch)
                if not meter["stopped"]:
                    meter["watermark"] = reading[0]
            yield

    @api.model
    def _pricing_context(self, tariff_ids):
        """Compiled pricers of the tariffs' versions, by tariff, sorted by date."""
        versions = self.env["prepaid.tariff.version"].search(
            [("tariff_id", "in", list({t for t in tariff_ids if t}))],
            order="tariff_id, date_from",
        )
        by_tariff = {}
        for version in versions:
            entry = by_tariff.setdefault(
                version.tariff_id.id,
                {"dates": [], "pricers": [], "tou": False},
            )
            entry["dates"].append(version.date_from)
            entry["pricers"].append(version._pricer())
            entry["tou"] = entry["tou"] or version.kind == "tou"
        return by_tariff

    @staticmethod
    def _version_window(entry, local):
        """(from, until, pricer) of the version in force at ``local``, or None."""
        if not entry:
            return None
        dates = entry["dates"]
        index = bisect.bisect_right(dates, local.date()) - 1
        if index < 0:
            return None
        return (
            datetime.combine(dates[index], time.min),
            datetime.combine(dates[index + 1], time.min)
            if index + 1 < len(dates)
            else datetime.max,
            entry["pricers"][index],
        )

    @staticmethod
    def _where(meter, version_key, unit, local, reading_id, read_at):
        """Where a charge belongs (see ``ChargeBatch.add``): its wallet line
        is per meter, account, version and local month."""
        return (
            meter["account_id"],
            meter["id"],
            version_key,
            unit,
            local.year * 12 + local.month,
            reading_id,
            read_at,
        )

    @staticmethod
    def _band_quantities(previous, current):
        """``{band: kWh}`` used in each time-of-use band register since
        ``previous`` (the bands that moved), or None when the registers cannot
        tell (missing, going backwards, not moving)."""
        if not previous or None in current or None in previous:
            return None
        moved = {}
        # Unrolled over the four bands: this runs for every reading of a
        # time-of-use meter, and usually one register moved.
        sharp, peak, flat, valley = current
        if sharp != previous[0]:
            moved["sharp"] = round(sharp - previous[0], 4)
        if peak != previous[1]:
            moved["peak"] = round(peak - previous[1], 4)
        if flat != previous[2]:
            moved["flat"] = round(flat - previous[2], 4)
        if valley != previous[3]:
            moved["valley"] = round(valley - previous[3], 4)
        if not moved:
            return None
        for delta in moved.values():
            if delta < 0:
                return None
        return {band: delta for band, delta in moved.items() if delta} or None

    @staticmethod
    def _unit_price(pricer, local, quantity, band_quantities):
        """(label, price) when one price applies to the whole delta, else None."""
        if band_quantities is None:
            return None if pricer.version.kind == "tiered" else pricer.unit_price(local)
        if len(band_quantities) == 1:
            # The whole delta in one band register (a reading every few
            # minutes, or an hour inside one band): one price too.
            ((band, band_quantity),) = band_quantities.items()
            if band_quantity == quantity:
                return band, pricer.band_price(band)
        return None

    def _charge_reading(self, meter, reading, pricing, batch):
        """Price one reading of a server-side meter into ``batch``."""
        (
            reading_id,
            _meter_id,
            read_at,
            delta_kwh,
            delta_m3,
            anomaly,
            sharp,
            peak,
            flat,
            valley,
            _balance,
        ) = reading
        water = meter["water"]
        quantity = delta_m3 if water else delta_kwh
        previous_bands = meter["bands"]
        band_values = (sharp, peak, flat, valley)
        if not quantity or quantity <= 0:
            if not water:
                meter["bands"] = band_values
            return
        local = meter["clock"].local(read_at)
        window = meter["window"]
        if window is None or not window[0] <= local < window[1]:
            window = meter["window"] = self._version_window(
                pricing.get(meter["tariff_id"]), local
            )
            if window is None:
                _logger.info(
                    "meter %s: no tariff in force on %s, reading %s left unbilled",
                    meter["id"],
                    local.date(),
                    reading_id,
                )
                meter["stopped"] = True
                return
        if not water:
            meter["bands"] = band_values
        pricer = window[2]
        kind = pricer.version.kind
        band_quantities = None
        if kind == "tou" and not water and anomaly == "none":
            band_quantities = self._band_quantities(previous_bands, band_values)
        where = self._where(
            meter, pricer.key, "m³" if water else "kWh", local, reading_id, read_at
        )
        unit_price = self._unit_price(pricer, local, quantity, band_quantities)
        if unit_price is not None:
            # One price for the whole delta: the fast path.
            label, price = unit_price
            quantity = Decimal(repr(quantity))
            amount, exact, meter["carry"] = pricer.price_at(
                quantity, price, meter["carry"]
            )
            batch.add_single(where, quantity, amount, label, price, exact)
            return
        used_before = money.ZERO
        if kind == "tiered":
            start = core.period_start(local.date(), pricer.version.tier_period)
            if meter["period_start"] != start:
                meter["period_start"], meter["period_qty"] = start, money.ZERO
            used_before = meter["period_qty"]
        if band_quantities is not None:
            band_quantities = {
                band: Decimal(repr(kwh)) for band, kwh in band_quantities.items()
            }
        charge = pricer.price(
            Decimal(repr(quantity)) if band_quantities is None else None,
            local,
            band_quantities,
            used_before,
            money.CENT,
            meter["carry"],
        )
        meter["carry"] = charge.carry
        if kind == "tiered":
            meter["period_qty"] = used_before + charge.quantity
        batch.add(where, charge.quantity, charge.amount, charge.lines)

    def _mirror_reading(self, meter, reading, batch):
        """Meter-side mode: the wallet follows the balance the meter keeps."""
        reading_id, _meter_id, read_at, delta_kwh, *_rest, balance = reading
        if balance is None:
            return
        previous, meter["mirror"] = meter["mirror"], balance
        used = round((previous or 0.0) - balance, 2)
        if previous is None or used <= 0:
            return
        local = meter["clock"].local(read_at)
        batch.add(
            self._where(meter, None, "kWh", local, reading_id, read_at),
            money.to_decimal(delta_kwh or 0.0),
            money.round_money(used),
            detail=self.env._(
                "Meter balance %(before).2f -> %(after).2f",
                before=previous,
                after=balance,
            ),
        )

    def _post_batch(self, batch, meters):
        """Post the wallet line of each group of ``batch``, with the id its
        charges already refer to."""
        if not batch.groups:
            return
        by_meter = self.env._("Deducted by the meter")
        several = self.env._("%(quantity)s %(unit)s (%(count)s readings)")
        groups, vals_list = [], []
        for group in batch.groups:
            if not group.amount:
                continue  # less than a cent in all: carried, nothing to post
            mirror = meters[group.meter_id]["mode"] != "server"
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
                name = f"{quantity} {group.unit}"
            groups.append(group)
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

    def _store_meter_billing(self, rows):
        if not rows:
            return
        for row in rows:
            bands = row["bands"]
            row["bands_json"] = (
                json.dumps(dict(zip(BANDS, bands, strict=True))) if bands else None
            )
            row["carry_float"] = float(row["carry"])
            row["period_float"] = float(row["period_qty"])
        columns = {
            "id": "id",
            "billed_reading_id": "watermark",
            "bill_band_kwh": "bands_json",
            "bill_period_start": "period_start",
            "bill_period_qty": "period_float",
            "bill_carry": "carry_float",
            "meter_balance_mirror": "mirror",
        }
        unnest = ", ".join(f"%s::{BILL_COLUMNS[c]}[]" for c in columns)
        sets = ", ".join(f"{c} = u.{c}" for c in list(columns)[1:])
        self.env.cr.execute(
            f"""
            UPDATE prepaid_meter m SET {sets}
              FROM unnest({unnest}) AS u({", ".join(columns)})
             WHERE m.id = u.id
            """,  # noqa: S608 - column names are constants of this module
            [[row[key] for row in rows] for key in columns.values()],
        )
        self.env["prepaid.meter"].invalidate_model(list(BILL_COLUMNS)[1:])

    # ------------------------------------------------------------------
    # Alarms, cut-off and restore
    # ------------------------------------------------------------------
    @api.model
    def _after_balance_change(self, accounts):
        """Alarm levels, cut-off and restore after the balances moved.

        Works on the whole batch at once: a few statements whatever the number
        of accounts (one write per alarm level, one notice search and create,
        one command create for all meters to cut).
        """
        accounts = accounts.filtered(
            lambda a: a.state == "open" and a.mode == "prepaid"
        )
        if not accounts:
            return
        accounts.invalidate_recordset(["balance"])
        raise_events, resets, by_level, to_cut, to_restore = [], [], {}, [], []
        for account in accounts:
            currency = account.currency_id
            level = account._level_for(account.balance)
            if level > account.alarm_level:
                raise_events.append((account, f"alarm{level}"))
            elif level < account.alarm_level:
                resets.append((account, level))
            if level != account.alarm_level:
                by_level.setdefault(level, []).append(account.id)
            exhausted = (
                currency.compare_amounts(account.balance, -account.credit_limit) <= 0
            )
            if exhausted and account.supply_state == "on":
                to_cut.append(account)
            elif (
                account.supply_state in ("cut_off", "cut_pending", "cut_failed")
                and currency.compare_amounts(account.balance, 0) > 0
            ):
                to_restore.append(account)
        Account, Notice = self.env["prepaid.account"], self.env["prepaid.alarm.notice"]
        for level, ids in by_level.items():
            Account.browse(ids)._write_guarded({"alarm_level": level})
        Notice._reset_batch(resets)
        Notice._raise_batch(raise_events)
        if to_cut:
            self._cut_or_defer_batch(
                Account.browse([a.id for a in to_cut]), fields.Datetime.now()
            )
        for account in to_restore:
            self._restore(account)

    def _cut_or_defer(self, account, now, reason=None):
        """Cut one account's supply now, or defer it; True when cut."""
        return bool(self._cut_or_defer_batch(account, now, reason=reason))

    def _cut_or_defer_batch(self, accounts, now, reason=None):
        """Queue the cut-off of ``accounts`` (or defer those protected now).

        Returns the accounts actually cut.
        """
        deferred, cut, notes = [], [], {}
        rules_by_company = {}
        # One read for every meter (and its site) of the batch, not one per
        # account.
        accounts.meter_ids.fetch(["billing_mode", "profile_ids", "site_id"])
        accounts.meter_ids.site_id.fetch(["tz"])
        for account in accounts:
            company = account.company_id
            if company not in rules_by_company:
                rules_by_company[company] = self.env[
                    "prepaid.protection.period"
                ]._rules(company)
            protected, why = self._protection(account, now, rules_by_company[company])
            if protected:
                if account.supply_state != "cut_pending":
                    deferred.append(account.id)
                    notes[account.id] = self.env._(
                        "Balance exhausted; cut-off deferred: %s", why
                    )
                continue
            if account.meter_ids.filtered(self._switchable):
                cut.append(account.id)
                notes[account.id] = reason or self.env._(
                    "Balance exhausted: supply cut off."
                )
            # Meter-side meters open their own relay; nothing to switch here.
        Account = self.env["prepaid.account"]
        cut = Account.browse(cut)
        if deferred:
            Account.browse(deferred)._write_guarded({"supply_state": "cut_pending"})
        if cut:
            command_reason = reason or (
                self.env._("Prepaid balance exhausted (%s)", cut.name)
                if len(cut) == 1
                else self.env._("Prepaid balance exhausted")
            )
            cut.meter_ids.filtered(self._switchable)._queue_commands(
                lambda m: m._switch_command_type(False), command_reason
            )
            cut._write_guarded({"supply_state": "cut_off"})
            self.env["prepaid.alarm.notice"]._raise_batch(
                [(account, "cutoff") for account in cut]
            )
        if notes:
            Account.browse(list(notes))._message_log_batch(notes)
        return cut

    @staticmethod
    def _switchable(meter):
        return meter.billing_mode == "server" and meter.profile_ids._switch_profile()

    def _restore(self, account, reason=None, force=False):
        meters = account.meter_ids.filtered(self._switchable)
        was_cut = force or account.supply_state in ("cut_off", "cut_failed")
        account._write_guarded({"supply_state": "on"})
        if meters and was_cut:
            meters._queue_commands(
                lambda m: m._switch_command_type(True),
                reason or self.env._("Recharged (%s)", account.name),
            )
            self.env["prepaid.alarm.notice"]._raise_batch([(account, "restore")])
        account.message_post(body=reason or self.env._("Supply restored."))

    def _switch_settled(self, command):
        """A relay or valve command of an account's meter ended: the account's
        supply state follows. A failed cut-off or restore shows as "cut-off
        failed" / "restore failed" with a to-do for the operator; a later
        command that succeeds puts it back to "cut off" / "on"."""
        meter = command.meter_id
        account = meter.billing_account_id
        if not account or account.state != "open" or not self._switchable(meter):
            return
        supply_on = SWITCH_COMMANDS[command.command_type][1]
        wanted = ("on", "restore_failed") if supply_on else ("cut_off", "cut_failed")
        if account.supply_state not in wanted:
            # The account wants the other way by now; this outcome is history.
            return
        failed = self._failed_switch_meters(account, supply_on)
        new = wanted[1] if failed else wanted[0]
        if new == account.supply_state:
            return
        account._write_guarded({"supply_state": new})
        if not failed:
            account.message_post(
                body=self.env._("Supply state back to normal (%s).", command.name)
            )
            return
        summary = (
            self.env._("Restore failed on %s", ", ".join(failed.mapped("name")))
            if supply_on
            else self.env._("Cut-off failed on %s", ", ".join(failed.mapped("name")))
        )
        account.message_post(body=f"{summary}: {command.last_error or ''}")
        account.sudo().activity_schedule(
            "mail.mail_activity_data_todo",
            summary=summary,
            note=self.env._(
                "Command %(command)s failed: %(error)s. Check the meter and its "
                "gateway, then retry the command or switch the supply by hand.",
                command=command.name,
                error=command.last_error,
            ),
            user_id=self._supply_operator(command).id,
        )

    def _failed_switch_meters(self, account, supply_on):
        """Meters of ``account`` whose latest settled command switching the
        supply ``supply_on`` failed."""
        types = [t for t, (_k, on) in SWITCH_COMMANDS.items() if on == supply_on]
        meters = account.meter_ids.filtered(self._switchable)
        latest = {}
        for command in self.env["prepaid.meter.command"].search(
            [
                ("meter_id", "in", meters.ids),
                ("command_type", "in", types),
                ("state", "in", ("done", "failed")),
            ],
            order="id desc",
        ):
            latest.setdefault(command.meter_id, command.state)
        return meters.filtered(lambda m: latest.get(m) == "failed")

    def _supply_operator(self, command):
        """Who gets the to-do of a failed switch: the person who asked for it,
        else (an automatic cut-off) the administrator."""
        user = command.requested_by
        if user and user.active and not user.share and not user._is_superuser():
            return user
        admin = self.env.ref("base.user_admin", raise_if_not_found=False)
        return admin if admin and admin.active else self.env.user

    def _protection(self, account, now, rules=None):
        """(protected?, why) for an automatic cut-off of ``account`` at ``now``."""
        if account.protected:
            return True, self.env._("the account is protected")
        if account.keep_on_until and account.keep_on_until > now:
            return True, self.env._(
                "supply kept on until %s by a manual override", account.keep_on_until
            )
        if rules is None:
            rules = self.env["prepaid.protection.period"]._rules(account.company_id)
        tz = account.meter_ids[:1].site_id.tz or "UTC"
        local = (
            pytz.utc.localize(now).astimezone(pytz.timezone(tz)).replace(tzinfo=None)
        )
        if protection_core.is_protected(rules, local):
            return True, self.env._(
                "protection period (%s local time)", local.strftime("%Y-%m-%d %H:%M")
            )
        return False, ""

    @api.model
    def _cron_deferred_cutoffs(self):
        """Carry out cut-offs deferred by protection periods once they end."""
        now = fields.Datetime.now()
        accounts = self.env["prepaid.account"].search(
            [("supply_state", "=", "cut_pending"), ("state", "=", "open")]
        )
        recovered = accounts.filtered(
            lambda a: a.currency_id.compare_amounts(a.balance, -a.credit_limit) > 0
        )
        recovered._write_guarded({"supply_state": "on"})
        return len(self._cut_or_defer_batch(accounts - recovered, now))

    @api.model
    def _next_unprotected(self, account, now):
        rules = self.env["prepaid.protection.period"]._rules(account.company_id)
        return protection_core.next_unprotected(rules, now) or now + timedelta(hours=1)

    # ------------------------------------------------------------------
    # Minimum monthly charge
    # ------------------------------------------------------------------
    @api.model
    def _cron_minimum_charges(self, month_start=None):
        """Top up last month's consumption to the tariff's monthly minimum.

        For every server-side meter of an open prepaid account whose tariff
        version (in force at the month's end) has a minimum: one "charge"
        line for the shortfall, keyed by meter and month so that running the
        job twice charges once. ``month_start`` is the first day of the month
        to charge (default: last month).
        """
        if month_start is None:
            month_start = fields.Date.context_today(self).replace(
                day=1
            ) - relativedelta(months=1)
        month_end = month_start + relativedelta(months=1)
        meters = self.env["prepaid.meter"].search(
            [
                ("billing_account_id.state", "=", "open"),
                ("billing_account_id.mode", "=", "prepaid"),
                ("billing_mode", "=", "server"),
            ]
        )
        if not meters:
            return 0
        self.env.flush_all()
        self.env.cr.execute(
            """SELECT meter_id, COALESCE(SUM(-amount), 0) FROM prepaid_ledger_line
                WHERE meter_id = ANY(%s) AND line_type = 'consumption'
                  AND date >= %s AND date < %s
                GROUP BY meter_id""",
            [meters.ids, month_start, month_end],
        )
        used = dict(self.env.cr.fetchall())
        label = month_start.strftime("%Y-%m")
        lines = []
        for meter in meters:
            account = meter.billing_account_id
            tariff = account._tariff_for(meter)
            valid = tariff.version_ids.filtered(lambda v: v.date_from < month_end)
            version = valid.sorted("date_from")[-1:]
            if not version or not version.minimum_monthly:
                continue
            due = core.minimum_charge_due(
                version._core(), money.to_decimal(float(used.get(meter.id, 0.0)))
            )
            if not due:
                continue
            lines.append(
                {
                    "account_id": account.id,
                    "line_type": "charge",
                    "amount": -float(due),
                    "date": month_end - relativedelta(seconds=1),
                    "name": self.env._("Minimum monthly charge %s", label),
                    "meter_id": meter.id,
                    "tariff_version_id": version.id,
                    "idempotency_key": f"minimum:{meter.id}:{label}",
                }
            )
        posted = self.env["prepaid.ledger.line"]._post(lines)
        self._after_balance_change(posted.account_id)
        return len(posted)

    # ------------------------------------------------------------------
    # Revenue recognition and reconciliation
    # ------------------------------------------------------------------
    @api.model
    def _cron_recognize(self):
        """Daily: recognise the consumption billed before today as revenue."""
        companies = self.env["res.company"].search(
            [
                ("prepaid_liability_account_id", "!=", False),
                ("prepaid_journal_id", "!=", False),
            ]
        )
        for company in companies:
            self._recognize(company)

    @api.model
    def _recognize(self, company, up_to=None):
        """One journal entry for ``company``: Dr prepayment liability, Cr
        revenue (and taxes, price included) for the consumption and charges
        not yet recognised. Returns the move (or an empty recordset)."""
        up_to = up_to or fields.Datetime.now()
        self.env.flush_all()
        cr = self.env.cr
        cr.execute(
            """
            SELECT l.id, -l.amount, l.account_id, COALESCE(l.product_id, t.product_id)
              FROM prepaid_ledger_line l
              LEFT JOIN prepaid_tariff_version v ON v.id = l.tariff_version_id
              LEFT JOIN prepaid_tariff t ON t.id = v.tariff_id
             WHERE l.company_id = %s AND l.line_type IN ('consumption', 'charge')
               AND l.recognition_move_id IS NULL AND l.date <= %s
               FOR UPDATE OF l SKIP LOCKED
            """,
            [company.id, up_to],
        )
        rows = cr.fetchall()
        if not rows:
            return self.env["account.move"]
        accounts = self.env["prepaid.account"].browse({r[2] for r in rows})
        partner_of = {a.id: a.partner_id for a in accounts}
        FiscalPosition = self.env["account.fiscal.position"].with_company(company)
        positions = {}
        groups = {}
        for _line_id, amount, account_id, product_id in rows:
            partner = partner_of[account_id]
            if partner not in positions:
                positions[partner] = FiscalPosition._get_fiscal_position(partner)
            key = (product_id, positions[partner])
            groups[key] = groups.get(key, 0.0) + float(amount)
        currency = company.currency_id
        liability = company._prepaid_liability_account()
        move_lines, total = [], 0.0
        for (product_id, position), amount in groups.items():
            amount = currency.round(amount)
            if currency.is_zero(amount):
                continue
            total += amount
            move_lines.extend(
                self._revenue_lines(company, product_id, position, amount)
            )
        move_lines.insert(
            0,
            fields.Command.create(
                {
                    "account_id": liability.id,
                    "debit": currency.round(total) if total > 0 else 0.0,
                    "credit": -currency.round(total) if total < 0 else 0.0,
                    "name": self.env._("Prepaid consumption recognised"),
                }
            ),
        )
        move = (
            self.env["account.move"]
            .sudo()
            .create(
                {
                    "move_type": "entry",
                    "journal_id": company.prepaid_journal_id.id,
                    "company_id": company.id,
                    "date": fields.Date.context_today(self, up_to),
                    "ref": self.env._("Prepaid consumption up to %s", up_to),
                    "line_ids": move_lines,
                }
            )
        )
        move.action_post()
        cr.execute(
            "UPDATE prepaid_ledger_line SET recognition_move_id = %s "
            "WHERE id = ANY(%s)",
            [move.id, [r[0] for r in rows]],
        )
        self.env["prepaid.ledger.line"].invalidate_model(["recognition_move_id"])
        self.env["prepaid.account"].invalidate_model(["ledger_line_ids"])
        return move

    def _revenue_lines(self, company, product_id, position, amount):
        product = self.env["product.product"].browse(product_id).with_company(company)
        income = (
            product and product._get_product_accounts()["income"]
        ) or company.prepaid_revenue_account_id
        if not income:
            raise UserError(
                self.env._(
                    "Set a utility revenue account in Settings or an income account "
                    "on the tariff's product."
                )
            )
        if position:
            income = position.map_account(income)
        taxes = product.taxes_id.filtered(lambda t: t.company_id == company)
        if position:
            taxes = position.map_tax(taxes)
        currency = company.currency_id
        label = product.display_name if product else self.env._("Utility revenue")
        if not taxes:
            return [
                fields.Command.create(
                    {
                        "account_id": income.id,
                        "credit": amount if amount > 0 else 0.0,
                        "debit": -amount if amount < 0 else 0.0,
                        "name": label,
                    }
                )
            ]
        result = taxes.with_context(force_price_include=True).compute_all(
            amount, currency=currency, product=product
        )
        base = result["total_excluded"]
        lines = [
            fields.Command.create(
                {
                    "account_id": income.id,
                    "credit": base,
                    "debit": 0.0,
                    "name": label,
                    "tax_ids": [fields.Command.set(taxes.ids)],
                }
            )
        ]
        for tax in result["taxes"]:
            lines.append(
                fields.Command.create(
                    {
                        "account_id": tax["account_id"] or income.id,
                        "credit": tax["amount"],
                        "debit": 0.0,
                        "name": tax["name"],
                        "tax_repartition_line_id": tax["tax_repartition_line_id"],
                        "tax_base_amount": base,
                    }
                )
            )
        return lines

    @api.model
    def _reconciliation(self, company):
        """Wallets against the liability account, to the cent.

        The liability holds what tenants paid in minus refunds and minus the
        consumption already recognised; the wallets hold the same minus all
        consumption. So: liability == wallets + consumption not yet
        recognised.
        """
        self.env.flush_all()
        cr = self.env.cr
        cr.execute(
            "SELECT COALESCE(SUM(balance), 0) FROM prepaid_account "
            "WHERE company_id = %s AND state != 'draft'",
            [company.id],
        )
        wallets = float(cr.fetchone()[0])
        cr.execute(
            """SELECT COALESCE(SUM(-amount), 0) FROM prepaid_ledger_line
                WHERE company_id = %s AND line_type IN ('consumption', 'charge')
                  AND recognition_move_id IS NULL""",
            [company.id],
        )
        unrecognised = float(cr.fetchone()[0])
        liability = 0.0
        if company.prepaid_liability_account_id:
            cr.execute(
                """SELECT COALESCE(SUM(credit - debit), 0) FROM account_move_line
                    WHERE company_id = %s AND account_id = %s
                      AND parent_state = 'posted'""",
                [company.id, company.prepaid_liability_account_id.id],
            )
            liability = float(cr.fetchone()[0])
        currency = company.currency_id
        difference = currency.round(liability - wallets - unrecognised)
        return {
            "wallets": currency.round(wallets),
            "unrecognised": currency.round(unrecognised),
            "liability": currency.round(liability),
            "difference": difference,
            "balanced": currency.is_zero(difference),
        }
