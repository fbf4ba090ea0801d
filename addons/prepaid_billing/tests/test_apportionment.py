from datetime import date

from freezegun import freeze_time

from odoo import Command
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import Form, HttpCase, new_test_user, tagged

from .common_month import MonthCase, PostpaidCase


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


class AccountantRunCase(MonthCase):
    """An apportionment of the corridors over both shops and an accountant
    (billing user) of the test company only."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.account1 = cls.open_account(cls.meter1, opening=500.0)
        cls.account2 = cls.open_account(cls.meter2, opening=500.0, partner=cls.tenant2)
        cls.master = cls.make_meter(cls.gateway, 9, is_master=True)
        common = cls.make_tariff("Common 1.00", kind="flat", price=1.0)
        cls.corridors = cls.env["prepaid.apportionment"].create(
            {
                "name": "Corridors",
                "master_meter_id": cls.master.id,
                "tariff_id": common.id,
                "product_id": cls.power.id,
                "method": "area",
                "line_ids": [
                    Command.create({"room_id": cls.room.id}),
                    Command.create({"room_id": cls.room2.id}),
                ],
            }
        )
        cls.accountant = new_test_user(
            cls.env,
            login="run_accountant",
            groups="base.group_user,prepaid_billing.group_billing_user",
            company_id=cls.company.id,
            company_ids=[cls.company.id],
        )
        # January: 100 kWh on the master (local days, the site is UTC+8)
        cls.reading(cls, cls.master, 1000.0, "2025-12-31 12:00:00")
        cls.reading(cls, cls.master, 1100.0, "2026-01-31 12:00:00")


@tagged("post_install", "-at_install")
class TestAccountantRun(AccountantRunCase):
    def test_accountant_runs_last_month_from_a_new_run(self):
        Run = self.env["prepaid.apportionment.run"].with_user(self.accountant)
        Run = Run.with_context(allowed_company_ids=self.company.ids)
        with freeze_time("2026-02-05 03:00:00"):
            form = Form(Run)
            self.assertEqual(
                (form.period_start, form.period_end),
                (date(2026, 1, 1), date(2026, 1, 31)),
                "a new run proposes last month",
            )
            self.assertFalse(Run.new({}).name, "no 'False False - False' title")
            form.apportionment_id = self.corridors
            run = form.save()
        self.assertEqual(run.name, "Corridors 2026-01-01 - 2026-01-31")
        run.action_compute()
        self.assertEqual(run.amount, 100.0)
        run.action_post()
        self.assertEqual(run.state, "posted")
        self.assertEqual(self.account1.balance, 441.38)
        self.assertEqual(self.account2.balance, 458.62)

    def test_first_day_of_a_month_proposes_the_whole_month(self):
        with freeze_time("2026-02-05 03:00:00"):
            form = Form(self.env["prepaid.apportionment.run"])
            form.period_start = date(2025, 11, 1)
            self.assertEqual(form.period_end, date(2025, 11, 30))


@tagged("post_install", "-at_install")
class TestAccountantRunTour(HttpCase, AccountantRunCase):
    """Apportionment Runs -> New in a browser, as the accountant."""

    def test_accountant_previews_and_posts_from_the_menu(self):
        self.start_tour(
            "/odoo/action-prepaid_billing.prepaid_apportionment_run_action",
            "prepaid_apportionment_run_accountant",
            login="run_accountant",
        )
        run = self.env["prepaid.apportionment.run"].search(
            [("apportionment_id", "=", self.corridors.id)]
        )
        self.assertEqual(run.state, "posted")
        self.assertEqual(
            (run.period_start, run.period_end), (date(2026, 1, 1), date(2026, 1, 31))
        )
        self.assertEqual(self.account1.balance, 441.38)


@tagged("post_install", "-at_install")
class TestInvoicedShares(PostpaidCase):
    """Common-area shares of postpaid tenants go on their bills; cancelling
    the run or the bill afterwards loses no share and credits none twice."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.master = cls.make_meter(cls.gateway, 9, is_master=True)
        cls.common = cls.make_tariff("Common 1.00", kind="flat", price=1.0)
        cls.common.product_id = cls.power

    def invoiced_month(self):
        """January billed and invoiced: usage (200.00 and 80.00), rent on the
        first shop, the corridors' 100.00 split by area (58.62 and 41.38)."""
        self.january(self.meter1, used=250.0)
        self.january(self.meter2, used=100.0)
        self.reading(self.master, 1000.0, "2025-12-31 12:00:00")
        self.reading(self.master, 1100.0, "2026-01-31 12:00:00")
        apportionment = self.env["prepaid.apportionment"].create(
            {
                "name": "Corridors",
                "master_meter_id": self.master.id,
                "tariff_id": self.common.id,
                "product_id": self.power.id,
                "method": "area",
                "line_ids": [
                    Command.create({"room_id": self.room.id}),
                    Command.create({"room_id": self.room2.id}),
                ],
            }
        )
        apportionment_run = self.env["prepaid.apportionment.run"].create(
            {
                "apportionment_id": apportionment.id,
                "period_start": date(2026, 1, 1),
                "period_end": date(2026, 1, 31),
            }
        )
        apportionment_run.action_post()
        rent = self.january_rent()
        bill_run = self.new_run()
        bill_run.action_compute()
        self.confirm(bill_run)
        bills = bill_run.bill_ids.sorted(lambda bill: bill.account_id.id)
        shares = apportionment_run.share_ids.sorted(lambda s: s.account_id.id)
        self.assertEqual(bills.mapped("amount_total"), [1258.62, 121.38])
        self.assertEqual(shares.bill_id, bills)
        return apportionment_run, shares, bills, rent.line_ids

    def february(self):
        run = self.new_run(date(2026, 2, 1), date(2026, 2, 28))
        run.action_compute()
        return run

    def receivable(self, partner):
        """(balance, all reconciled) of the partner's posted receivable."""
        lines = self.env["account.move.line"].search(
            [
                ("partner_id", "=", partner.id),
                ("account_id.account_type", "=", "asset_receivable"),
                ("parent_state", "=", "posted"),
            ]
        )
        return round(sum(lines.mapped("balance")), 2), all(lines.mapped("reconciled"))

    def test_cancelling_a_run_credits_its_invoiced_shares_once(self):
        apportionment_run, shares, bills, _rent = self.invoiced_month()
        apportionment_run.action_cancel()
        notes = shares.refund_move_id
        self.assertEqual(len(notes), 2)
        self.assertEqual(notes.mapped("move_type"), ["out_refund"] * 2)
        self.assertEqual(notes.mapped("amount_total"), [58.62, 41.38])
        self.assertEqual(notes.reversed_entry_id, bills.move_id)
        # reconciled with the invoices: only the rest is due
        self.assertEqual(bills.mapped("amount_residual"), [1200.0, 80.0])
        self.assertEqual(self.receivable(self.tenant), (1200.0, False))
        apportionment_run.action_cancel()
        self.assertEqual(shares.refund_move_id, notes, "credited once")
        self.assertFalse(self.february().bill_ids.line_ids, "and never billed again")

    def test_cancelling_an_invoiced_bill_frees_its_share_for_the_next_run(self):
        _run, shares, bills, rent = self.invoiced_month()
        bill = bills[0]
        bill.action_cancel()
        self.assertEqual(bill.state, "cancel")
        self.assertEqual(bill.payment_state, "reversed")
        self.assertEqual(self.receivable(self.tenant), (0.0, True))
        self.assertFalse(shares[0].bill_id)
        self.assertFalse(rent.bill_id)
        self.assertEqual(shares[1].bill_id, bills[1], "the other bill keeps its own")
        february = self.february()
        lines = february.bill_ids.line_ids
        self.assertEqual(lines.share_id, shares[0], "billed again, once")
        self.assertEqual(lines.charge_line_id, rent)
        self.assertEqual(february.bill_ids.amount_total, 1058.62)
        with self.assertRaises(UserError):
            bill.unlink()

    def test_only_billing_managers_cancel_an_invoiced_bill(self):
        _run, shares, bills, _rent = self.invoiced_month()
        clerk = new_test_user(
            self.env,
            login="bill_clerk",
            groups="prepaid_billing.group_billing_user,account.group_account_invoice",
        )
        with self.assertRaises(AccessError):
            bills[0].with_user(clerk).action_cancel()
        self.assertEqual(bills[0].state, "confirmed")
        self.assertEqual(bills[0].payment_state, "not_paid")
        self.assertEqual(shares[0].bill_id, bills[0])

    def test_cancelling_the_bill_after_the_run_leaves_nothing_owed_or_credited(self):
        apportionment_run, shares, bills, rent = self.invoiced_month()
        apportionment_run.action_cancel()
        note = shares[0].refund_move_id
        bills[0].action_cancel()
        # invoice and share credit note both reversed: the tenant owes nothing
        # and has no credit left over
        self.assertEqual(note.reversal_move_ids.move_type, "out_invoice")
        self.assertEqual(self.receivable(self.tenant), (0.0, True))
        self.assertFalse(shares[0].bill_id)
        self.assertFalse(shares[0].refund_move_id)
        february = self.february()
        self.assertEqual(february.bill_ids.line_ids.charge_line_id, rent)
        self.assertFalse(february.bill_ids.line_ids.share_id)
        # the other tenant's bill stands, less its credited share
        self.assertEqual(self.receivable(self.tenant2), (80.0, False))

    def test_cancelling_the_run_after_the_bill_credits_only_invoiced_shares(self):
        apportionment_run, shares, bills, _rent = self.invoiced_month()
        bills[0].action_cancel()
        apportionment_run.action_cancel()
        self.assertFalse(shares[0].refund_move_id, "its invoice is reversed")
        self.assertEqual(shares[1].refund_move_id.amount_total, 41.38)
        self.assertEqual(self.receivable(self.tenant), (0.0, True))
        self.assertFalse(self.february().bill_ids.line_ids.share_id)

    def test_a_paid_bill_is_not_cancelled(self):
        _run, shares, bills, rent = self.invoiced_month()
        bill = bills[0]
        self.env["account.payment.register"].with_context(
            active_model="account.move", active_ids=bill.move_id.ids
        ).create({"journal_id": self.cash.id})._create_payments()
        with self.assertRaises(UserError) as caught:
            bill.action_cancel()
        self.assertIn("Unreconcile", str(caught.exception))
        self.assertEqual(bill.state, "confirmed")
        self.assertEqual(bill.payment_state, "paid")
        self.assertEqual(shares[0].bill_id, bill)
        self.assertEqual(rent.bill_id, bill)

    def test_a_bill_whose_invoice_was_credited_by_hand_is_cancelled_once(self):
        apportionment_run, shares, bills, rent = self.invoiced_month()
        apportionment_run.action_cancel()
        bill, note = bills[0], shares[0].refund_move_id
        # the accountant reversed the whole invoice in Odoo (full refund): the
        # share's credit note is left open
        by_hand = bill.move_id._reverse_moves(cancel=True)
        self.assertEqual(self.receivable(self.tenant), (-58.62, False))
        bill.action_cancel()
        self.assertEqual(bill.move_id.reversal_move_ids, note | by_hand, "once")
        self.assertEqual(note.reversal_move_ids.move_type, "out_invoice")
        self.assertEqual(self.receivable(self.tenant), (0.0, True))
        self.assertFalse(rent.bill_id)

    def test_a_share_whose_invoice_was_credited_by_hand_gets_no_credit_note(self):
        apportionment_run, shares, bills, _rent = self.invoiced_month()
        bills[0].move_id._reverse_moves(cancel=True)
        apportionment_run.action_cancel()
        self.assertFalse(shares[0].refund_move_id)
        self.assertEqual(self.receivable(self.tenant), (0.0, True))
        self.assertEqual(shares[1].refund_move_id.amount_total, 41.38)
