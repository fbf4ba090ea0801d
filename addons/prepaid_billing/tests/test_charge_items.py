from datetime import date, datetime

from freezegun import freeze_time

from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged

from .common_month import MonthCase


@tagged("post_install", "-at_install")
class TestChargeItems(MonthCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.account1 = cls.open_account(cls.meter1, opening=500.0)
        cls.account2 = cls.open_account(cls.meter2, opening=500.0, partner=cls.tenant2)

    def charge_lines(self, account):
        return account.ledger_line_ids.filtered(lambda line: line.line_type == "charge")

    def test_generation_is_idempotent_and_catches_up_missed_periods(self):
        item = self.make_item()
        lines = self.generate(item, date(2026, 3, 15))
        # January, February and March for both shops, per m² of their area
        self.assertEqual(len(lines), 6)
        self.assertEqual(
            sorted(lines.mapped("amount")), [60.0, 60.0, 60.0, 85.0, 85.0, 85.0]
        )
        self.assertEqual(self.account1.balance, 500.0 - 3 * 85.0)
        wallet = self.charge_lines(self.account1)
        self.assertEqual(len(wallet), 3)
        self.assertEqual(wallet.product_id, self.fee)
        self.assertEqual(sorted(wallet.mapped("amount")), [-85.0] * 3)
        # running again (same day or later in March) charges nothing more
        self.assertFalse(self.generate(item, date(2026, 3, 15)))
        self.assertFalse(self.generate(item, date(2026, 3, 31)))
        self.assertEqual(self.account1.balance, 245.0)
        # April is charged once its due day has come
        self.assertEqual(len(self.generate(item, date(2026, 4, 1))), 2)

    def test_wallet_charges_are_recognised_and_reconcile(self):
        self.generate(self.make_item(), date(2026, 1, 5))
        before = self.assert_reconciled()
        self.assertEqual(before["unrecognised"], 145.0)
        move = self.env["prepaid.billing.engine"]._recognize(self.company)
        revenue = move.line_ids.filtered(lambda line: line.account_id == self.revenue)
        self.assertEqual(sum(revenue.mapped("credit")), 145.0)
        after = self.assert_reconciled()
        self.assertEqual(after["unrecognised"], 0.0)

    def test_item_ending_mid_period_is_prorated_by_days(self):
        item = self.make_item(
            amount_type="fixed",
            amount=310.0,
            target_type="room",
            room_ids=[(6, 0, self.room.ids)],
            date_end=date(2026, 1, 10),
        )
        (line,) = self.generate(item, date(2026, 3, 1))
        self.assertEqual((line.days, line.period_days, line.amount), (10, 31, 100.0))

    def test_no_proration_when_the_setting_is_off(self):
        item = self.make_item(
            amount_type="fixed",
            amount=310.0,
            target_type="account",
            account_ids=[(6, 0, self.account1.ids)],
            date_start=date(2026, 1, 20),
            prorate=False,
        )
        (line,) = self.generate(item, date(2026, 1, 31))
        self.assertEqual(line.amount, 310.0)
        self.assertFalse(line.room_id)

    def test_account_opened_mid_period_pays_its_days_only(self):
        meter = self.make_meter(self.gateway, 3, room=self.room2)
        late = self.make_account(meter, opening=100.0, partner_id=self.tenant2.id)
        late.opened_at = datetime(2026, 1, 22, 4, 0)
        item = self.make_item(
            amount_type="fixed",
            amount=31.0,
            target_type="account",
            account_ids=[(6, 0, late.ids)],
            date_start=date(2025, 11, 1),
        )
        # November and December were before the tenant: not charged
        (line,) = self.generate(item, date(2026, 1, 31))
        self.assertEqual(
            (line.period_start, line.days, line.amount), (date(2026, 1, 1), 10, 10.0)
        )

    def test_moving_in_at_7_in_shanghai_pays_from_that_local_day(self):
        meter = self.make_meter(self.gateway, 3, room=self.room2)
        late = self.make_account(meter, opening=100.0, partner_id=self.tenant2.id)
        # 2026-01-22 07:00 in Shanghai is still the 21st in UTC
        late.opened_at = datetime(2026, 1, 21, 23, 0)
        item = self.make_item(
            amount_type="fixed",
            amount=31.0,
            target_type="room",
            room_ids=[(6, 0, self.room2.ids)],
        )
        lines = self.generate(item, date(2026, 1, 31))
        line = lines.filtered(lambda charge: charge.account_id == late)
        self.assertEqual((line.days, line.amount), (10, 10.0))

    def test_a_charge_falls_due_on_the_site_s_calendar_day(self):
        item = self.make_item(
            amount_type="fixed",
            amount=31.0,
            target_type="account",
            account_ids=[(6, 0, self.account1.ids)],
        )
        # 2026-02-01 06:30 in Shanghai: February is due there, not in UTC
        with freeze_time("2026-01-31 22:30:00"):
            lines = self.env["prepaid.charge.line"]._generate(item)
        self.assertEqual(
            sorted(lines.mapped("period_start")), [date(2026, 1, 1), date(2026, 2, 1)]
        )

    def test_leaving_at_7_in_shanghai_pays_that_local_day(self):
        item = self.make_item(
            amount_type="fixed",
            amount=310.0,
            target_type="account",
            account_ids=[(6, 0, self.account1.ids)],
        )
        (line,) = self.generate(item, date(2026, 1, 1))
        # 2026-01-21 07:00 in Shanghai (the 20th in UTC): the 21st was used
        self.account1.write({"state": "closed", "closed_at": datetime(2026, 1, 20, 23)})
        self.env["prepaid.charge.line"]._credit_vacated()
        # 10 days (22nd to 31st) of 31 credited back
        self.assertEqual(line.credit_amount, 100.0)
        self.assertEqual(self.account1.balance, 290.0)

    def test_vacated_room_gets_the_unused_days_back(self):
        item = self.make_item(
            amount_type="fixed",
            amount=310.0,
            target_type="room",
            room_ids=[(6, 0, self.room.ids)],
        )
        (line,) = self.generate(item, date(2026, 1, 1))
        self.assertEqual(self.account1.balance, 190.0)
        self.account1.write({"state": "closed", "closed_at": datetime(2026, 1, 21, 3)})
        self.env["prepaid.charge.line"]._credit_vacated()
        # 10 days (22nd to 31st) of 31 credited back
        self.assertEqual(line.credit_amount, 100.0)
        self.assertEqual(line.credit_ledger_line_id.amount, 100.0)
        self.assertEqual(self.account1.balance, 290.0)
        self.env["prepaid.charge.line"]._credit_vacated()
        self.assertEqual(self.account1.balance, 290.0)
        self.assert_reconciled()

    def test_closing_credits_the_unused_days_then_refunds_everything(self):
        item = self.make_item(
            amount_type="fixed",
            amount=310.0,
            target_type="account",
            account_ids=[(6, 0, self.account1.ids)],
        )
        (line,) = self.generate(item, date(2026, 1, 1))
        self.assertEqual(self.account1.balance, 190.0)
        with freeze_time("2026-01-21 03:00:00"):
            self.env["prepaid.account.close.wizard"].create(
                {
                    "account_id": self.account1.id,
                    "read_meters": False,
                    "journal_id": self.cash.id,
                }
            ).action_close()
        self.assertEqual(self.account1.state, "closed")
        self.assertEqual(line.credit_amount, 100.0)
        refund = self.account1.ledger_line_ids.filtered(
            lambda ledger: ledger.line_type == "refund"
        )
        self.assertEqual(refund.amount, -290.0)
        # the charge job finds nothing left to credit: no money stays behind
        self.env["prepaid.charge.line"]._credit_vacated()
        self.assertEqual(self.account1.balance, 0.0)
        self.assertFalse(self.account1.meter_ids)
        self.assert_reconciled()

    def test_a_charge_can_exhaust_the_wallet_and_cut_the_supply(self):
        item = self.make_item(
            amount_type="fixed",
            amount=600.0,
            target_type="account",
            account_ids=[(6, 0, self.account1.ids)],
        )
        self.generate(item, date(2026, 1, 1))
        self.assertEqual(self.account1.balance, -100.0)
        self.assertEqual(self.account1.alarm_level, 3)
        self.assertEqual(self.account1.supply_state, "cut_off")
        commands = self.env["prepaid.meter.command"].search(
            [("meter_id", "=", self.meter1.id)]
        )
        self.assertTrue(commands)
        self.assertEqual(self.account2.supply_state, "on")

    def test_postpaid_accounts_get_wallet_items_on_their_invoice(self):
        self.account2.mode = "postpaid"
        lines = self.generate(self.make_item(), date(2026, 1, 1))
        postpaid = lines.filtered(lambda line: line.account_id == self.account2)
        self.assertEqual(postpaid.collection, "invoice")
        self.assertFalse(postpaid.ledger_line_id)
        self.assertEqual(self.account2.balance, 500.0)
        self.assertEqual(postpaid.state, "to_invoice")

    def test_bad_items_are_refused_and_nothing_is_created(self):
        Item = self.env["prepaid.charge.item"]
        count = Item.search_count([])
        for vals in (
            {"rate_m2": 0.0},
            {"date_end": date(2025, 12, 1)},
            {"day_of_period": 32},
        ):
            with self.subTest(vals=vals), self.assertRaises(ValidationError):
                self.make_item(**vals)
        self.assertEqual(Item.search_count([]), count)

    def test_generated_charges_cannot_be_edited_or_deleted(self):
        (line, _other) = self.generate(self.make_item(), date(2026, 1, 1))
        with self.assertRaises(UserError):
            line.write({"amount": 1.0})
        with self.assertRaises(UserError):
            line.unlink()
        with self.assertRaises(UserError):
            self.env["prepaid.charge.line"].create({"item_id": line.item_id.id})
        self.assertEqual(line.amount, 85.0)
