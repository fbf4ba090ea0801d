from contextlib import contextmanager

from freezegun import freeze_time

from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged

from .common import MOVE_OUT, TenancyCase


class DebtRetentionCase(TenancyCase):
    """A tenant debt account (no recovery from top-ups: the settlement alone
    takes the debt) and an income account for deposits retained."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        Account = cls.env["account.account"]
        cls.debt_account = Account.create(
            {
                "name": "Test tenant debt",
                "code": "TTD112",
                "account_type": "asset_receivable",
                "reconcile": True,
            }
        )
        cls.retained_income = Account.create(
            {
                "name": "Test retained deposits",
                "code": "TRD758",
                "account_type": "income",
            }
        )
        cls.company.write(
            {
                "prepaid_debt_account_id": cls.debt_account.id,
                "prepaid_debt_percent": 0.0,
                "prepaid_debt_min": 0.0,
                "prepaid_debt_max": 0.0,
                "prepaid_debt_daily": 0.0,
                "prepaid_deposit_retained_account_id": cls.retained_income.id,
            }
        )

    def balance_of(self, account):
        """Debit - credit of the posted lines of ``account``."""
        self.env.flush_all()
        lines = self.env["account.move.line"].search(
            [("account_id", "=", account.id), ("parent_state", "=", "posted")]
        )
        return round(sum(lines.mapped("balance")), 2)

    def add_debt(self, tenancy, amount):
        return tenancy.account_id._add_debt(
            amount, "tenancy", "Electricity of an earlier tenancy", key="t-debt"
        )

    @contextmanager
    def refused(self, error, text):
        with self.assertRaises(error) as caught:
            yield
        self.assertIn(text, str(caught.exception))


@tagged("post_install", "-at_install")
class TestSettlementWithDebt(DebtRetentionCase):
    def test_the_debt_is_paid_from_wallet_and_deposit_before_the_refund(self):
        tenancy = self.move_in(deposit_amount=500.0)
        self.recharge(tenancy, 300.0)  # 300.00 - 210.00 rent = 90.00
        self.add_debt(tenancy, 150.25)
        account = tenancy.account_id
        self.assertEqual(self.balance_of(self.debt_account), 150.25)
        self.sim.energy_total = 1100.0  # 100 kWh at 0.80: 80.00
        self.move_out(tenancy, settle=False)
        # 90.00 - 80.00 + 100.00 rent credited = 110.00; + 500.00 - 150.25
        self.assertEqual(
            (tenancy.preview_wallet, tenancy.preview_debt, tenancy.preview_net),
            (110.0, 150.25, 459.75),
        )
        self.settle(tenancy)
        self.assertEqual(
            (
                tenancy.settle_wallet,
                tenancy.settle_deposit,
                tenancy.settle_unpaid,
                tenancy.settle_debt,
                tenancy.settle_refund,
                tenancy.settle_owed,
            ),
            (110.0, 500.0, 0.0, 150.25, 459.75, 0.0),
        )
        (recovery,) = self.lines(tenancy, "debt_recovery")
        self.assertEqual(recovery.amount, -150.25)
        self.assertIn(recovery, tenancy.settle_line_ids)
        self.assertEqual(self.lines(tenancy, "refund").amount, -459.75)
        paid = account.debt_line_ids.filtered(lambda line: line.source == "closing")
        self.assertEqual((paid.amount, paid.debt_after), (-150.25, 0.0))
        # nothing stranded: wallet, deposit and debt at zero, in the GL too
        self.assertEqual((account.balance, account.debt_amount), (0.0, 0.0))
        self.assertEqual(self.balance_of(self.debt_account), 0.0)
        self.assertEqual(self.deposit_balance(), 0.0)
        self.assert_reconciled()
        # the reversal makes the debt owed again, with its entry reversed
        with freeze_time(MOVE_OUT):
            tenancy.action_reverse_settlement()
        self.assertEqual((account.balance, account.debt_amount), (110.0, 150.25))
        self.assertEqual(self.balance_of(self.debt_account), 150.25)
        self.assertEqual(account.debt_line_ids.sorted("id")[-1:].source, "reversal")
        self.assert_reconciled()
        self.settle(tenancy)
        self.assertEqual((tenancy.settle_debt, tenancy.settle_refund), (150.25, 459.75))
        self.assertEqual((account.balance, account.debt_amount), (0.0, 0.0))
        self.assertEqual(self.balance_of(self.debt_account), 0.0)
        self.assert_reconciled()

    def test_a_debt_beyond_wallet_and_deposit_is_invoiced_as_owed(self):
        tenancy = self.move_in(deposit_amount=100.0, charge_item_ids=[])
        self.recharge(tenancy, 50.0)
        self.add_debt(tenancy, 300.0)
        self.sim.energy_total = 1010.0  # 8.00
        self.move_out(tenancy)
        # 42.00 + 100.00 - 300.00
        self.assertEqual(
            (tenancy.settle_wallet, tenancy.settle_debt, tenancy.settle_owed),
            (42.0, 300.0, 158.0),
        )
        self.assertEqual(tenancy.settle_refund, 0.0)
        owed = tenancy.owed_move_id
        self.assertEqual((owed.move_type, owed.amount_total), ("out_invoice", 158.0))
        account = tenancy.account_id
        self.assertEqual((account.balance, account.debt_amount), (0.0, 0.0))
        self.assertEqual(self.balance_of(self.debt_account), 0.0)
        self.assertEqual(self.deposit_balance(), 0.0)
        self.assert_reconciled()


@tagged("post_install", "-at_install")
class TestDepositRetention(DebtRetentionCase):
    def test_part_of_the_deposit_is_retained_into_income_with_its_reason(self):
        tenancy = self.move_in(deposit_amount=500.0, charge_item_ids=[])
        self.recharge(tenancy, 50.0)
        self.sim.energy_total = 1010.0  # 8.00
        self.move_out(tenancy, deposit_retained=120.5, retention_reason="Broken window")
        self.assertEqual(tenancy.state, "ended")
        # 42.00 + 500.00 - 120.50 retained
        self.assertEqual(
            (
                tenancy.settle_wallet,
                tenancy.settle_deposit,
                tenancy.settle_retained,
                tenancy.settle_refund,
            ),
            (42.0, 500.0, 120.5, 421.5),
        )
        self.assertEqual(tenancy.retention_reason, "Broken window")
        entry = tenancy.retention_move_id
        self.assertEqual(entry.state, "posted")
        self.assertIn("Broken window", entry.line_ids[0].name)
        self.assertEqual(self.balance_of(self.retained_income), -120.5)
        self.assertEqual(self.lines(tenancy, "refund").amount, -421.5)
        self.assertEqual((tenancy.deposit_held, self.deposit_balance()), (0.0, 0.0))
        self.assertEqual(tenancy.account_id.balance, 0.0)
        self.assert_reconciled()
        figures = tenancy._statement_figures()
        self.assertEqual(
            (figures["retained"], figures["returned"], figures["retention_reason"]),
            (120.5, 379.5, "Broken window"),
        )
        # reversed: the deposit is held in full again, the income undone
        with freeze_time(MOVE_OUT):
            tenancy.action_reverse_settlement()
        self.assertEqual(tenancy.deposit_held, 500.0)
        self.assertEqual(self.balance_of(self.retained_income), 0.0)
        self.assertFalse(tenancy.retention_move_id)
        self.assert_reconciled()

    def test_a_retention_above_the_deposit_held_writes_nothing(self):
        tenancy = self.move_in(deposit_amount=100.0, charge_item_ids=[])
        self.move_out(tenancy, settle=False)
        moves = tenancy.move_ids
        lines = tenancy.account_id.ledger_line_ids
        with self.refused(ValidationError, "is held for tenancy"):
            with freeze_time(MOVE_OUT):
                self.env["prepaid.tenancy.move.out.wizard"].with_context(
                    default_tenancy_id=tenancy.id, default_step="settle"
                ).create(
                    {
                        "journal_id": self.cash.id,
                        "deposit_retained": 100.01,
                        "retention_reason": "Repainting",
                    }
                ).action_confirm()
        # the settle dialog previews the refund with what is retained
        wizard = (
            self.env["prepaid.tenancy.move.out.wizard"]
            .with_context(default_tenancy_id=tenancy.id, default_step="settle")
            .create({"journal_id": self.cash.id})
        )
        self.assertEqual((wizard.deposit_held, wizard.preview_net), (100.0, 100.0))
        wizard.deposit_retained = 35.0
        self.assertEqual(wizard.preview_net, 65.0)
        with self.refused(ValidationError, "Say why"):
            tenancy.write({"deposit_retained": 10.0})
        with self.refused(ValidationError, "cannot be negative"):
            tenancy.write({"deposit_retained": -1.0, "retention_reason": "x"})
        self.assertEqual(tenancy.state, "ending")
        self.assertEqual(tenancy.deposit_retained, 0.0)
        self.assertEqual(tenancy.deposit_held, 100.0)
        self.assertEqual(tenancy.move_ids, moves)
        self.assertEqual(tenancy.account_id.ledger_line_ids, lines)
        # without an income account for it: a clear error, nothing written
        self.company.prepaid_deposit_retained_account_id = False
        tenancy.write({"deposit_retained": 40.0, "retention_reason": "Cleaning"})
        with self.refused(UserError, "retained deposits account"):
            with freeze_time(MOVE_OUT):
                tenancy._settle(self.cash)
        self.assertEqual(tenancy.state, "ending")
        self.assertEqual(tenancy.move_ids, moves)
        self.assertEqual(tenancy.account_id.ledger_line_ids, lines)

    def test_the_account_form_links_to_its_tenancy(self):
        tenancy = self.move_in(charge_item_ids=[])
        account = tenancy.account_id
        self.assertEqual(account.tenancy_id, tenancy)
        action = account.action_view_tenancy()
        self.assertEqual(
            (action["res_model"], action["res_id"]), ("prepaid.tenancy", tenancy.id)
        )
        arch = account.get_views([(False, "form")])["views"]["form"]["arch"]
        self.assertIn('name="action_view_tenancy"', arch)
        self.assertIn('name="tenancy_id"', arch)


@tagged("post_install", "-at_install")
class TestBatchSettlementWithDebt(DebtRetentionCase):
    def test_a_batch_settles_debt_and_retention_like_the_single_path(self):
        tenancy = self.move_in(deposit_amount=500.0, charge_item_ids=[])
        self.recharge(tenancy, 50.0)
        self.add_debt(tenancy, 30.0)
        self.sim.energy_total = 1010.0  # 8.00
        self.move_out(tenancy, settle=False)
        tenancy.write({"deposit_retained": 100.0, "retention_reason": "Cleaning"})
        with freeze_time(MOVE_OUT):
            tenancy._settle_batch(self.cash)
        self.assertEqual(tenancy.state, "ended")
        # 42.00 + 500.00 - 100.00 retained - 30.00 debt
        self.assertEqual(
            (
                tenancy.settle_wallet,
                tenancy.settle_deposit,
                tenancy.settle_retained,
                tenancy.settle_refund,
            ),
            (42.0, 500.0, 100.0, 412.0),
        )
        self.assertEqual(tenancy.account_id.debt_amount, 0.0)
        self.assertEqual(self.balance_of(self.retained_income), -100.0)
        self.assertEqual(self.balance_of(self.debt_account), 0.0)
        self.assertEqual((tenancy.deposit_held, self.deposit_balance()), (0.0, 0.0))
        self.assertEqual(tenancy.account_id.balance, 0.0)
        self.assert_reconciled()
