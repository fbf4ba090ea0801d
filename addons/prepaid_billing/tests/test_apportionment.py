from datetime import date

from odoo import Command
from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged

from .common_month import MonthCase


@tagged("post_install", "-at_install")
class TestApportionment(MonthCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.account1 = cls.open_account(cls.meter1, opening=500.0)
        cls.account2 = cls.open_account(cls.meter2, opening=500.0, partner=cls.tenant2)
        cls.master = cls.make_meter(cls.gateway, 9, is_master=True)
        cls.common = cls.make_tariff("Common 1.00", kind="flat", price=1.0)
        cls.common.product_id = cls.power

    def make_apportionment(self, method="area", lines=None, **vals):
        lines = lines or [
            {"room_id": self.room.id},
            {"room_id": self.room2.id},
        ]
        return self.env["prepaid.apportionment"].create(
            {
                "name": "Corridors",
                "master_meter_id": self.master.id,
                "tariff_id": self.common.id,
                "product_id": self.power.id,
                "method": method,
                "line_ids": [Command.create(line) for line in lines],
                **vals,
            }
        )

    def master_month(self, used=100.0):
        self.reading(self.master, 1000.0, "2025-12-31 12:00:00")
        self.reading(self.master, 1000.0 + used / 2, "2026-01-10 00:00:00")
        self.reading(self.master, 1000.0 + used, "2026-01-31 12:00:00")
        # after the period (local February): not counted
        self.reading(self.master, 1000.0 + used + 50, "2026-01-31 17:00:00")

    def new_run(self, apportionment):
        return self.env["prepaid.apportionment.run"].create(
            {
                "apportionment_id": apportionment.id,
                "period_start": date(2026, 1, 1),
                "period_end": date(2026, 1, 31),
            }
        )

    def test_area_split_sums_to_the_total_and_posts_once(self):
        run = self.new_run(self.make_apportionment())
        self.master_month(100.0)
        run.action_compute()
        self.assertEqual(run.master_quantity, 100.0)
        self.assertEqual(run.amount, 100.0)
        # 42.5 m² and 30 m²: 58.62 + 41.38
        shares = run.share_ids.sorted("id")
        self.assertEqual(shares.mapped("amount"), [58.62, 41.38])
        self.assertEqual(shares.account_id, self.account1 | self.account2)
        self.assertEqual(self.account1.balance, 500.0, "a preview posts nothing")
        run.action_post()
        self.assertEqual(self.account1.balance, 441.38)
        self.assertEqual(self.account2.balance, 458.62)
        self.assertEqual(shares.ledger_line_id.mapped("line_type"), ["charge"] * 2)
        self.assert_reconciled()
        with self.assertRaises(UserError):
            run.action_post()
        second = self.new_run(run.apportionment_id)
        with self.assertRaises(UserError):
            second.action_post()
        self.assertEqual(second.state, "draft")
        self.assertEqual(self.account1.balance, 441.38)

    def test_cancelling_a_posted_run_reverses_its_postings(self):
        run = self.new_run(self.make_apportionment())
        self.master_month(100.0)
        run.action_post()
        self.env["prepaid.billing.engine"]._recognize(self.company)
        run.action_cancel()
        self.assertEqual(run.state, "cancel")
        self.assertEqual(self.account1.balance, 500.0)
        self.assertEqual(self.account2.balance, 500.0)
        self.assertEqual(
            run.share_ids.reversal_line_id.reversed_line_id,
            run.share_ids.ledger_line_id,
        )
        self.assert_reconciled()
        self.env["prepaid.billing.engine"]._recognize(self.company)
        self.assertEqual(self.assert_reconciled()["unrecognised"], 0.0)
        # the period can be posted again once cancelled
        again = self.new_run(run.apportionment_id)
        again.action_post()
        self.assertEqual(again.state, "posted")

    def test_ratios_must_sum_to_one_hundred(self):
        Apportionment = self.env["prepaid.apportionment"]
        count = Apportionment.search_count([])
        with self.assertRaises(ValidationError) as caught:
            self.make_apportionment(
                "ratio",
                [
                    {"room_id": self.room.id, "ratio": 60.0},
                    {"room_id": self.room2.id, "ratio": 39.0},
                ],
            )
        self.assertIn("99 %, not 100 %", str(caught.exception))
        self.assertEqual(Apportionment.search_count([]), count)
        record = self.make_apportionment(
            "ratio",
            [
                {"room_id": self.room.id, "ratio": 60.0},
                {"room_id": self.room2.id, "ratio": 40.0},
            ],
        )
        run = self.new_run(record)
        self.master_month(33.34)
        run.action_compute()
        self.assertEqual(run.share_ids.sorted("id").mapped("amount"), [20.0, 13.34])

    def test_loss_allocation_shares_master_minus_subs_by_consumption(self):
        record = self.make_apportionment(
            "consumption",
            [{"meter_id": self.meter1.id}, {"meter_id": self.meter2.id}],
            loss_only=True,
        )
        self.assertEqual(record.line_ids.room_id, self.room | self.room2)
        self.master_month(100.0)
        self.reading(self.meter1, 10.0, "2025-12-31 12:00:00")
        self.reading(self.meter1, 40.0, "2026-01-20 00:00:00")
        self.reading(self.meter2, 5.0, "2025-12-31 12:00:00")
        self.reading(self.meter2, 25.0, "2026-01-20 00:00:00")
        run = self.new_run(record)
        run.action_compute()
        self.assertEqual((run.subs_quantity, run.shared_quantity), (50.0, 50.0))
        # 50.00 split 30:20
        self.assertEqual(run.share_ids.sorted("id").mapped("amount"), [30.0, 20.0])

    def test_master_time_of_use_bands_price_the_common_area(self):
        tou = self.make_tou("Common TOU")
        record = self.make_apportionment(tariff_id=tou.id)
        bands = {"sharp": 0.0, "flat": 0.0}
        self.reading(
            self.master, 1000.0, "2025-12-31 12:00:00", peak=500, valley=500, **bands
        )
        # 10 kWh: 6 in peak, 4 in valley registers
        self.reading(
            self.master, 1010.0, "2026-01-10 00:00:00", peak=506, valley=504, **bands
        )
        run = self.new_run(record)
        run.action_compute()
        self.assertEqual(run.amount, 6 * 1.1 + 4 * 0.35)
        self.assertIn("peak: 6", run.pricing_text)

    def test_subs_above_the_master_is_a_clear_error_and_nothing_changes(self):
        record = self.make_apportionment(
            "consumption", [{"meter_id": self.meter1.id}], loss_only=True
        )
        self.master_month(10.0)
        self.reading(self.meter1, 0.0, "2025-12-31 12:00:00")
        self.reading(self.meter1, 40.0, "2026-01-20 00:00:00")
        run = self.new_run(record)
        with self.assertRaises(UserError) as caught:
            run.action_compute()
        self.assertIn("more than the master", str(caught.exception))
        self.assertFalse(run.share_ids)
        self.assertEqual(self.account1.balance, 500.0)

    def test_invalid_period_is_refused(self):
        with self.assertRaises(ValidationError):
            self.env["prepaid.apportionment.run"].create(
                {
                    "apportionment_id": self.make_apportionment().id,
                    "period_start": date(2026, 2, 1),
                    "period_end": date(2026, 1, 1),
                }
            )
