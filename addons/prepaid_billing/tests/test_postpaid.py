from datetime import date

from freezegun import freeze_time

from odoo import Command
from odoo.exceptions import UserError
from odoo.tests import tagged

from .common_month import MonthCase


@tagged("post_install", "-at_install")
class PostpaidCase(MonthCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.account1 = cls.open_account(cls.meter1, opening=0.0, mode="postpaid")
        cls.account2 = cls.open_account(
            cls.meter2, opening=0.0, partner=cls.tenant2, mode="postpaid"
        )
        cls.sale = cls.env["account.journal"].create(
            {"name": "Test sales", "code": "TSAL", "type": "sale"}
        )
        receivable = cls.env["account.account"].create(
            {
                "name": "Test receivable",
                "code": "TRC121",
                "account_type": "asset_receivable",
                "reconcile": True,
            }
        )
        (cls.tenant | cls.tenant2).property_account_receivable_id = receivable
        cls.cash.inbound_payment_method_line_ids.payment_account_id = (
            cls.cash.default_account_id
        )

    def january(self, meter, start=100.0, used=250.0):
        self.reading(meter, start, "2025-12-31 12:00:00")
        self.reading(meter, start + used / 2, "2026-01-15 04:00:00")
        self.reading(meter, start + used, "2026-01-31 12:00:00")

    def new_run(self, date_from=date(2026, 1, 1), date_to=date(2026, 1, 31)):
        return self.env["prepaid.bill.run"].create(
            {"date_from": date_from, "date_to": date_to}
        )

    def confirm(self, run, when="2026-02-01"):
        with freeze_time(when):
            run.action_confirm()


class TestPostpaid(PostpaidCase):
    def test_postpaid_meters_are_polled_but_never_deducted(self):
        self.january(self.meter1)
        self.bill()
        self.assertFalse(self.consumption(self.account1))
        self.assertEqual(self.account1.balance, 0.0)

    def test_bill_run_prices_usage_charges_and_shares_into_posted_invoices(self):
        self.january(self.meter1, used=250.0)
        self.january(self.meter2, used=100.0)
        rent = self.make_item(
            name="Rent",
            product_id=self.rent.id,
            amount_type="fixed",
            amount=1000.0,
            collection="invoice",
            target_type="room",
            room_ids=[Command.set(self.room.ids)],
        )
        self.generate(rent, date(2026, 1, 1))
        run = self.new_run()
        run.action_compute()
        self.assertEqual(run.state, "computed")
        bill1 = run.bill_ids.filtered(lambda b: b.account_id == self.account1)
        self.assertEqual(len(run.bill_ids), 2)
        usage = bill1.line_ids.filtered(lambda line: line.kind == "usage")
        self.assertEqual(
            (usage.quantity, usage.unit_price, usage.amount), (250.0, 0.8, 200.0)
        )
        self.assertEqual(usage.reading_count, 2)
        self.assertEqual(bill1.amount_total, 1200.0)
        self.assertEqual(rent.line_ids.bill_id, bill1)
        self.confirm(run)
        invoice = bill1.move_id
        self.assertEqual(bill1.state, "confirmed")
        self.assertEqual(invoice.move_type, "out_invoice")
        self.assertEqual(invoice.state, "posted")
        self.assertEqual(invoice.invoice_line_ids.product_id, self.power | self.rent)
        self.assertEqual(invoice.amount_total, 1200.0)
        self.assertEqual(bill1.payment_state, "not_paid")
        # payment is Odoo's own
        self.env["account.payment.register"].with_context(
            active_model="account.move", active_ids=invoice.ids
        ).create({"journal_id": self.cash.id})._create_payments()
        self.assertEqual(bill1.payment_state, "paid")
        self.assertEqual(run.bill_ids.move_id.mapped("state"), ["posted"] * 2)

    def test_overlapping_bill_run_is_refused_and_writes_nothing(self):
        self.january(self.meter1)
        self.new_run().action_compute()
        Bill = self.env["prepaid.bill"]
        count = Bill.search_count([])
        later = self.new_run(date(2026, 1, 20), date(2026, 2, 28))
        with self.assertRaises(UserError) as caught:
            later.action_compute()
        self.assertIn("overlapping", str(caught.exception))
        self.assertEqual(Bill.search_count([]), count)
        self.assertEqual(later.state, "draft")

    def test_meter_without_tariff_is_a_clear_error_and_writes_nothing(self):
        meter = self.make_meter(self.gateway, 5, room=self.room2)
        account = self.open_account(meter, opening=0.0, mode="postpaid")
        account.tariff_id = False
        self.january(meter)
        run = self.new_run()
        with self.assertRaises(UserError) as caught:
            run.action_compute()
        self.assertIn(meter.name, str(caught.exception))
        self.assertFalse(self.env["prepaid.bill"].search([("run_id", "=", run.id)]))

    def test_reading_before_the_tariff_is_a_clear_error(self):
        tariff = self.make_tariff(
            "Late", kind="flat", price=1.0, date_from="2026-01-20"
        )
        tariff.product_id = self.power
        self.meter1.tariff_id = tariff
        self.january(self.meter1)
        with self.assertRaises(UserError) as caught:
            self.new_run().action_compute()
        self.assertIn("no version in force on 2026-01-15", str(caught.exception))

    def test_bill_run_ending_before_it_starts_is_refused(self):
        run = self.new_run(date(2026, 2, 1), date(2026, 1, 1))
        with self.assertRaises(UserError):
            run.action_compute()
        self.assertFalse(run.bill_ids)
