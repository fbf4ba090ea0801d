from datetime import date, datetime
from unittest.mock import patch

from freezegun import freeze_time

from odoo import Command
from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged

from odoo.addons.prepaid_metering.models.prepaid_reading_retention import (
    PrepaidReading as RetentionReading,
)

from .common import BillingCase

# 12:00 on 10 March 2026 in Shanghai: with 25 months, the readings of local
# days before 10 February 2024 may go, i.e. those read before
# 2024-02-09 16:00 UTC.
NOW = datetime(2026, 3, 10, 4, 0)
LAST_REMOVED = "2024-02-09 15:59:59"
FIRST_KEPT = "2024-02-09 16:00:00"


class WorkerKilled(BaseException):
    """The worker dies here; its transaction rolls back to its last commit."""


@tagged("post_install", "-at_install")
class TestReadingRetention(BillingCase):
    """Raw readings past the retention go in committed pieces, only once
    billed and added to the daily use; the charges keep what an auditor
    needs to price them again."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Reading = cls.env["prepaid.reading"]
        cls.env["ir.config_parameter"].sudo().set_param(
            "prepaid_metering.reading_retention_months", 25
        )
        with freeze_time("2024-01-15 00:00:00"):
            cls.meter = cls.make_meter(cls.gateway, 1)
            cls.account = cls.make_account(cls.meter, opening=500.0)
            cls.postpaid_meter = cls.make_meter(cls.gateway, 2, room=cls.room2)

    def purge(self, **kwargs):
        return self.Reading._cron_purge_old(meters=self.own_meters(), now=NOW, **kwargs)

    def history(self, meter, times, values=None):
        """Readings at ``times`` (by default rising by 10 kWh each)."""
        values = values or [1000.0 + 10 * i for i in range(len(times))]
        return self.Reading.concat(
            *(
                self.reading(meter, value, at)
                for value, at in zip(values, times, strict=True)
            )
        )

    def test_boundary_is_local_midnight_of_the_site(self):
        readings = self.history(
            self.meter,
            [
                "2024-02-01 00:00:00",
                LAST_REMOVED,
                FIRST_KEPT,
                "2024-03-01 00:00:00",
            ],
            # a second apart: the same counter (a rise would be a jump)
            [1000.0, 1010.0, 1010.0, 1020.0],
        )
        self.bill()
        self.assertEqual(self.purge(), 2)
        self.assertEqual(readings.exists(), readings[2:])
        self.assertEqual(
            self.env["ir.config_parameter"]
            .sudo()
            .get_param("prepaid_metering.readings_removed_before"),
            "2024-02-10",
        )

    def test_a_reading_not_billed_or_not_aggregated_stays(self):
        old = ["2024-02-01 00:00:00", "2024-02-02 00:00:00", "2024-02-03 00:00:00"]
        billed = self.history(self.meter, old)
        aggregated = self.history(self.postpaid_meter, old)
        self.assertEqual(self.purge(), 0, "nothing billed nor aggregated yet")
        self.bill()
        self.assertEqual(self.purge(), 2, "the billed ones, but the watermark")
        self.assertEqual(billed.exists(), billed[-1:])
        self.assertEqual(aggregated.exists(), aggregated)
        self.add_not_deducted()
        self.assertEqual(self.purge(), 2)
        self.assertEqual(aggregated.exists(), aggregated[-1:])
        self.assertEqual(self.meter.billed_reading_id, billed[-1])
        self.assertEqual(self.postpaid_meter.daily_reading_id, aggregated[-1])
        self.assertEqual(self.purge(), 0, "the last reading of a meter stays")

    def test_a_pending_suspect_and_the_readings_after_it_stay(self):
        good = self.reading(self.meter, 1000.0, "2024-02-01 00:00:00")
        self.reading(self.meter, 1010.0, "2024-02-01 01:00:00")
        # 50,000 kWh in an hour: far beyond the meter's rated 200 kW
        jump = self.reading(self.meter, 51000.0, "2024-02-01 02:00:00")
        after = self.reading(self.meter, 51001.0, "2024-02-01 03:00:00")
        self.assertEqual(jump.review_state, "suspect")
        self.bill()
        self.assertEqual(self.purge(), 1)
        self.assertFalse(good.exists())
        self.assertEqual((jump | after).exists(), jump | after)

    def test_a_reading_a_bill_names_stays(self):
        old = ["2024-02-01 00:00:00", "2024-02-02 00:00:00", "2024-02-03 00:00:00"]
        readings = self.history(self.meter, old + ["2024-02-04 00:00:00"])
        self.bill()
        bill = self.env["prepaid.bill"].create(
            {
                "name": "Evidence",
                "account_id": self.account.id,
                "partner_id": self.tenant.id,
                "company_id": self.company.id,
                "currency_id": self.company.currency_id.id,
                "date_from": "2024-02-01",
                "date_to": "2024-02-29",
                "line_ids": [
                    Command.create(
                        {
                            "product_id": self.env["product.product"]
                            .create({"name": "Energy"})
                            .id,
                            "name": "Energy",
                            "meter_id": self.meter.id,
                            "first_reading_id": readings[0].id,
                            "last_reading_id": readings[2].id,
                        }
                    )
                ],
            }
        )
        self.assertEqual(self.purge(), 1)
        self.assertEqual(readings.exists(), readings - readings[1])
        self.assertEqual(
            bill.line_ids.mapped("first_reading_id") | bill.line_ids.last_reading_id,
            readings[0] | readings[2],
        )

    def test_daily_use_and_wallet_are_unchanged(self):
        times = [f"2024-02-0{day} 0{hour}:00:00" for day in (1, 2) for hour in (1, 5)]
        self.history(self.meter, times)
        self.bill()
        Daily = self.env["prepaid.daily.usage"]
        days = Daily.search_read(
            [("meter_id", "=", self.meter.id)], ["date", "energy_kwh", "amount"]
        )
        lines = self.consumption(self.account)
        balance = self.account.balance
        self.assertEqual(self.purge(), 3)
        self.env.invalidate_all()
        self.assertEqual(
            Daily.search_read(
                [("meter_id", "=", self.meter.id)], ["date", "energy_kwh", "amount"]
            ),
            days,
        )
        self.assertEqual(self.consumption(self.account), lines)
        self.assertEqual(self.account.balance, balance)
        self.assert_reconciled()

    def test_balance_is_rebuilt_from_the_charge_rows_after_removal(self):
        times = [
            f"2024-02-0{day} 0{hour}:00:00" for day in range(1, 6) for hour in (1, 5)
        ]
        readings = Reading = self.Reading
        for i, at in enumerate(times):
            readings |= self.reading(self.meter, 1000.0 + 12.5 * i + (i % 3), at)
        self.bill()
        read_at = readings.mapped("read_at")
        self.assertEqual(self.purge(), len(times) - 1)
        self.assertEqual(readings.exists(), readings[-1:])
        charges = self.charges(self.meter)
        self.assertEqual(len(charges), len(times) - 1, "the first is the baseline")
        self.assertEqual(charges[:-1].reading_id, Reading, "their readings are gone")
        self.assertEqual(charges[-1].reading_id, readings[-1], "the last one stays")
        self.assertEqual(charges.mapped("read_at"), read_at[1:])
        registers = [1000.0] + charges.mapped("kept_energy_total_kwh")[:-1]
        registers.append(readings[-1].energy_total_kwh)
        version = self.flat.version_ids
        for charge, before, after in zip(
            charges, registers[:-1], registers[1:], strict=True
        ):
            self.assertAlmostEqual(after - before, charge.quantity)
            self.assertAlmostEqual(
                charge.amount, round(charge.quantity * version.price, 2)
            )
            self.assertEqual(charge.tariff_version_id, version)
        total = sum(charges.mapped("amount"))
        self.assertAlmostEqual(self.account.balance, 500.0 - total)
        lines = self.consumption(self.account)
        self.assertAlmostEqual(-sum(lines.mapped("amount")), total)
        self.assertEqual(lines.charge_ids, charges, "every line keeps its charges")
        self.assertEqual(
            lines.filtered("reading_id").reading_id,
            readings[-1:],
            "a wallet line whose last reading went keeps it in its charges",
        )
        self.assert_reconciled()

    def test_pieces_are_committed_and_a_crash_resumes(self):
        times = [
            f"2024-02-0{day} 0{hour}:00:00" for day in range(1, 5) for hour in (1, 5)
        ]
        readings = self.history(self.meter, times)
        self.assertEqual(self.bill(), len(times) - 1)
        calls = []
        real = RetentionReading._retention_delete

        def dies_second(model, ids, first_kept):
            calls.append(list(ids))
            if len(calls) == 2:
                raise WorkerKilled
            return real(model, ids, first_kept)

        # Each run in a transaction of its own: the registry's test mode turns
        # them into savepoints of the test's, and a crash rolls one back to
        # its last commit, as PostgreSQL does for a killed worker.
        self.env.flush_all()
        self.registry.enter_test_mode(self.cr)
        self.addCleanup(self.registry.leave_test_mode)
        died = False
        with (
            patch.object(RetentionReading, "_retention_delete", dies_second),
            self.registry.cursor() as cr,
        ):
            env = self.env(cr=cr)
            try:
                env["prepaid.reading"]._cron_purge_old(
                    commit=True, meters=self.own_meters(), now=NOW, piece=3
                )
            except WorkerKilled:
                died = True
        self.assertTrue(died)
        self.env.invalidate_all()
        self.assertEqual(len(calls[0]), 3)
        self.assertEqual(
            len(readings.exists()), len(times) - 3, "the first piece is committed"
        )
        with self.registry.cursor() as cr:
            removed = self.env(cr=cr)["prepaid.reading"]._cron_purge_old(
                commit=True, meters=self.own_meters(), now=NOW, piece=3
            )
        self.env.invalidate_all()
        self.assertEqual(removed, len(times) - 1 - 3)
        self.assertEqual(readings.exists(), readings[-1:])
        self.assertEqual(len(self.charges(self.meter)), len(times) - 1)

    def test_nothing_is_rebuilt_or_billed_from_removed_days(self):
        self.history(self.meter, ["2024-02-01 00:00:00", "2024-02-20 00:00:00"])
        self.bill()
        self.assertEqual(self.purge(), 1)
        Daily = self.env["prepaid.daily.usage"]
        with self.assertRaisesRegex(UserError, "retention"):
            Daily._rebuild(self.meter.ids, date(2024, 2, 1), date(2024, 2, 28))
        Daily._rebuild(self.meter.ids, date(2024, 2, 10), date(2024, 2, 28))

    def test_retention_setting_is_at_least_one_month(self):
        settings = self.env["res.config.settings"].create({})
        with self.assertRaisesRegex(ValidationError, "at least one month"):
            settings.prepaid_reading_retention_months = 0
            settings.execute()
