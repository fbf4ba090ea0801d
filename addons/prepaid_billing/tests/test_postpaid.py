import base64
import io
from datetime import date
from decimal import Decimal

import openpyxl
from freezegun import freeze_time

from odoo import Command
from odoo.exceptions import UserError
from odoo.tests import tagged

from .common_month import PostpaidCase


@tagged("post_install", "-at_install")
class TestPostpaid(PostpaidCase):
    def test_postpaid_meters_are_polled_but_never_deducted(self):
        self.january(self.meter1)
        self.bill()
        self.assertFalse(self.consumption(self.account1))
        self.assertEqual(self.account1.balance, 0.0)

    def test_bill_run_prices_usage_charges_and_shares_into_posted_invoices(self):
        self.january(self.meter1, used=250.0)
        self.january(self.meter2, used=100.0)
        rent = self.january_rent()
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

    def test_monthly_report_holds_every_bill_and_charge_of_the_month(self):
        self.january(self.meter1, used=250.0)
        self.january(self.meter2, used=100.0)
        self.january_rent()
        parking = self.make_item(
            name="Parking",
            product_id=self.rent.id,
            amount_type="fixed",
            amount=50.0,
            collection="invoice",
            target_type="account",
            account_ids=[Command.set(self.account2.ids)],
        )
        # a prepaid tenant whose meter is in no room pays an account charge
        meter = self.make_meter(self.gateway, 3, room_id=False)
        roomless = self.open_account(meter, opening=100.0)
        service = self.make_item(
            name="Service",
            amount_type="fixed",
            amount=20.0,
            target_type="account",
            account_ids=[Command.set(roomless.ids)],
        )
        self.generate(parking | service, date(2026, 1, 1))
        run = self.new_run()
        run.action_compute()
        self.confirm(run)
        rows = {
            row.room_id: row
            for row in self.env["prepaid.monthly.report"]._rows(
                self.company, date(2026, 1, 1)
            )
        }
        # shop 1: 250 kWh x 0.80 + rent; shop 2: 100 kWh x 0.80 + parking
        self.assertEqual(rows[self.room.id].usage.energy_amount, 200.0)
        self.assertEqual(rows[self.room.id].total, 1200.0)
        self.assertEqual(rows[self.room2.id].total, 130.0)
        self.assertEqual(rows[None].charges, 20.0)
        billed = sum(run.bill_ids.mapped("amount_total"))
        self.assertEqual(billed, 1330.0)
        self.assertEqual(sum(row.total for row in rows.values()), billed + 20.0)
        wizard = self.env["prepaid.monthly.report.wizard"].create(
            {"month": "2026-01-15", "company_id": self.company.id}
        )
        html, _kind = self.env["ir.actions.report"]._render_qweb_html(
            "prepaid_billing.report_monthly", wizard.ids
        )
        self.assertIn("No room", html.decode())
        wizard.action_export_xlsx()
        book = openpyxl.load_workbook(io.BytesIO(base64.b64decode(wizard.xlsx_file)))
        rows = list(book.active.iter_rows(min_row=2, values_only=True))
        # the rooms, the money of no room last, then the totals row
        self.assertEqual(rows[-2][1], "No room")
        self.assertEqual(rows[-1][0], "Total")

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


@tagged("post_install", "-at_install")
class TestPostpaidTiers(PostpaidCase):
    """Tiers count the meter's use in the tier period, whatever bill it went
    on: a bill starting inside a tier period continues from the use before."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.yearly = cls.tiered("Yearly tiers", "year")
        cls.monthly = cls.tiered("Monthly tiers", "month")

    @classmethod
    def tiered(cls, name, period):
        """Up to 100: 0.50, up to 300: 0.80, above: 1.20."""
        tariff = cls.make_tariff(
            name,
            kind="tiered",
            tier_period=period,
            tier_ids=[
                Command.create({"upto": 100.0, "price": 0.5}),
                Command.create({"upto": 300.0, "price": 0.8}),
                Command.create({"upto": 0.0, "price": 1.2}),
            ],
        )
        tariff.product_id = cls.power
        return tariff

    def usage_lines(self, run, meter):
        lines = run.bill_ids.line_ids.filtered(
            lambda line: line.kind == "usage" and line.meter_id == meter
        )
        return [(line.name, line.quantity, line.amount) for line in lines]

    def test_a_monthly_bill_continues_the_yearly_tiers_of_the_months_before(self):
        meter = self.meter1
        meter.tariff_id = self.yearly
        self.reading(meter, 1000.0, "2025-12-10 04:00:00")
        self.reading(meter, 1400.0, "2025-12-25 04:00:00")  # 400 kWh in 2025
        self.reading(meter, 1460.0, "2026-01-10 04:00:00")
        # the daily use holds the start of January, not its end
        self.add_not_deducted()
        self.reading(meter, 1550.0, "2026-01-20 04:00:00")
        self.reading(meter, 1650.0, "2026-02-15 04:00:00")
        january = self.new_run()
        january.action_compute()
        self.assertEqual(
            self.usage_lines(january, meter),
            [
                (f"{meter.name} tier 1 (2026)", 100.0, 50.0),
                (f"{meter.name} tier 2 (2026)", 50.0, 40.0),
            ],
            "a bill starting with the tier year carries nothing from 2025",
        )
        february = self.new_run(date(2026, 2, 1), date(2026, 2, 28))
        february.action_compute()
        self.assertEqual(
            self.usage_lines(february, meter),
            [(f"{meter.name} tier 2 (2026)", 100.0, 80.0)],
        )

    def test_two_half_month_bills_cost_the_whole_month_to_the_cent(self):
        meter = self.meter1
        meter.tariff_id = self.monthly
        for kwh, at in (
            (100.0, "2025-12-31 12:00:00"),
            (130.0, "2026-01-05 04:00:00"),
            (170.0, "2026-01-12 04:00:00"),  # 70 kWh in the first half
            (220.0, "2026-01-20 04:00:00"),
            (250.5, "2026-01-28 04:00:00"),  # 80.5 in the second
        ):
            self.reading(meter, kwh, at)
        first = self.new_run(date(2026, 1, 1), date(2026, 1, 15))
        first.action_compute()
        second = self.new_run(date(2026, 1, 16), date(2026, 1, 31))
        second.action_compute()
        self.assertEqual(
            self.usage_lines(first, meter),
            [(f"{meter.name} tier 1 (2026-01)", 70.0, 35.0)],
        )
        self.assertEqual(
            self.usage_lines(second, meter),
            [
                (f"{meter.name} tier 1 (2026-01)", 30.0, 15.0),
                (f"{meter.name} tier 2 (2026-01)", 50.5, 40.4),
            ],
        )
        whole = self.env["prepaid.bill.usage"]._meter_usage(
            meter, date(2026, 1, 1), date(2026, 1, 31), {meter.id: self.monthly}
        )[meter.id]
        self.assertEqual(
            sum(line.amount for line in whole.lines),
            Decimal("90.40"),
        )
        self.assertEqual(
            sum(line[2] for line in self.usage_lines(first | second, meter)), 90.4
        )

    def test_a_bill_starting_with_its_tier_month_carries_nothing(self):
        meter = self.meter1
        meter.tariff_id = self.monthly
        self.january(meter, used=250.0)
        self.reading(meter, 380.0, "2026-02-10 04:00:00")
        february = self.new_run(date(2026, 2, 1), date(2026, 2, 28))
        february.action_compute()
        self.assertEqual(
            self.usage_lines(february, meter),
            [(f"{meter.name} tier 1 (2026-02)", 30.0, 15.0)],
        )

    def test_the_tiers_count_from_the_start_of_the_tenants_account(self):
        """The shop was used before its tenant came: the tiers count the use
        after the reading billing started from (that day's included), as the
        prepaid engine does."""
        meter = self.make_meter(self.gateway, 5, room=self.room2)
        meter.tariff_id = self.yearly
        self.reading(meter, 0.0, "2026-01-02 01:00:00")
        self.reading(meter, 300.0, "2026-01-10 01:00:00")  # 09:00 on 10 January
        self.add_not_deducted()
        with freeze_time("2026-01-10 02:00:00"):
            self.make_account(meter, opening=0.0, mode="postpaid")
        self.reading(meter, 320.0, "2026-01-10 08:00:00")  # 16:00, the same day
        self.reading(meter, 400.0, "2026-01-20 04:00:00")
        self.add_not_deducted()
        self.reading(meter, 500.0, "2026-02-10 04:00:00")
        february = self.new_run(date(2026, 2, 1), date(2026, 2, 28))
        february.action_compute()
        # 100 kWh of the tenant's before February: the second tier
        self.assertEqual(
            self.usage_lines(february, meter),
            [(f"{meter.name} tier 2 (2026)", 100.0, 80.0)],
        )
