import random
import threading

import psycopg2

from odoo import SUPERUSER_ID, api
from odoo.exceptions import UserError
from odoo.tests import tagged
from odoo.tools import mute_logger

from .common import BillingCase


@tagged("post_install", "-at_install")
class TestWallet(BillingCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.meter = cls.make_meter(cls.gateway, 1)
        cls.account = cls.make_account(cls.meter, opening=30.0)

    def recharge(self, amount, key=None):
        return self.account._recharge(
            amount, self.cash, key or f"test:{random.random()}", "cash"
        )

    def test_opening_balance_is_posted_in_wallet_and_accounting(self):
        line = self.account.ledger_line_ids
        self.assertEqual(line.line_type, "opening")
        self.assertEqual(self.account.balance, 30.0)
        self.assertEqual(line.move_id.state, "posted")
        self.assert_reconciled()

    def test_recharge_debits_cash_and_credits_the_liability(self):
        line = self.recharge(70.0)
        self.assertEqual(self.account.balance, 100.0)
        self.assertEqual(line.balance_after, 100.0)
        move = line.move_id
        cash_line = move.line_ids.filtered(lambda line: line.debit)
        liability_line = move.line_ids.filtered(lambda line: line.credit)
        self.assertEqual(cash_line.account_id, self.cash.default_account_id)
        self.assertEqual(liability_line.account_id, self.liability)
        self.assertEqual(liability_line.credit, 70.0)
        self.assertEqual(liability_line.partner_id, self.tenant)
        self.assert_reconciled()

    def test_refund_reverses_and_cannot_exceed_the_balance(self):
        self.account._refund(10.0, self.cash, "refund-1", "cash")
        self.assertEqual(self.account.balance, 20.0)
        moves_before = self.env["account.move"].search_count([])
        with self.assertRaises(UserError):
            self.account._refund(20.01, self.cash, "refund-2", "cash")
        self.assertEqual(self.account.balance, 20.0)
        self.assertEqual(self.env["account.move"].search_count([]), moves_before)
        self.assert_reconciled()

    def test_recharge_and_refund_dialogs_are_titled_in_the_user_s_language(self):
        name = self.account.display_name
        self.assertEqual(self.account.action_recharge()["name"], f"Recharge {name}")
        self.assertEqual(self.account.action_refund()["name"], f"Refund {name}")
        self.env["res.lang"]._activate_lang("zh_CN")
        chinese = self.account.with_context(lang="zh_CN")
        self.assertEqual(chinese.action_recharge()["name"], f"充值：{name}")
        self.assertEqual(chinese.action_refund()["name"], f"退费：{name}")
        self.assertEqual(chinese.action_close()["name"], "销户")

    def test_bad_recharges_write_nothing(self):
        lines_before = len(self.account.ledger_line_ids)
        for amount in (0, -5, 0.004):
            with self.subTest(amount=amount), self.assertRaises(UserError):
                self.recharge(amount)
        usd = self.env.ref("base.USD")
        eur = self.env.ref("base.EUR")
        foreign = usd if self.company.currency_id != usd else eur
        foreign.active = True
        foreign_journal = self.env["account.journal"].create(
            {
                "name": "Foreign",
                "code": "TPFX",
                "type": "bank",
                "currency_id": foreign.id,
            }
        )
        with self.assertRaises(UserError):
            self.account._recharge(10.0, foreign_journal, "fx", "bank")
        closed = self.make_account(self.make_meter(self.gateway, 2), open_it=False)
        with self.assertRaises(UserError):
            closed._recharge(10.0, self.cash, "draft", "cash")
        self.account.invalidate_recordset()
        self.assertEqual(len(self.account.ledger_line_ids), lines_before)
        self.assertEqual(self.account.balance, 30.0)

    def test_same_operation_posted_twice_counts_once(self):
        self.recharge(15.0, key="double-click")
        self.recharge(15.0, key="double-click")
        self.assertEqual(self.account.balance, 45.0)
        self.assertEqual(
            len(
                self.account.ledger_line_ids.filtered(
                    lambda line: line.line_type == "recharge"
                )
            ),
            1,
        )

    def test_posted_lines_are_immutable_and_corrected_by_reversal(self):
        line = self.recharge(5.0)
        with self.assertRaises(UserError):
            line.amount = 50.0
        with self.assertRaises(UserError):
            line.unlink()
        with self.assertRaises(UserError):
            self.env["prepaid.ledger.line"].create(
                {
                    "account_id": self.account.id,
                    "line_type": "adjustment",
                    "amount": 1.0,
                }
            )
        with self.assertRaises(UserError):
            self.account.write({"balance": 1000.0})
        reversal = self.env["prepaid.ledger.line"]._post(
            [line._prepare_reversal("typo")]
        )
        self.assertEqual(reversal.amount, -5.0)
        self.assertEqual(self.account.balance, 30.0)
        again = self.env["prepaid.ledger.line"]._post([line._prepare_reversal("typo")])
        self.assertFalse(again, "a line is reversed once")

    def test_randomized_operations_keep_wallets_equal_to_the_ledger_and_gl(self):
        rng = random.Random(20261125)
        engine = self.env["prepaid.billing.engine"]
        accounts = self.account | self.make_account(
            self.make_meter(self.gateway, 3), opening=0.0
        )
        kwh = {meter: 1000.0 for meter in accounts.meter_ids}
        hour = 0
        # 500 operations (recharges, refunds, readings billed now and then,
        # revenue recognised twice): about a minute on the 2-core machine
        for step in range(500):
            account = rng.choice(accounts)
            operation = rng.random()
            if operation < 0.35:
                amount = round(rng.uniform(0.01, 80), 2)
                account._recharge(amount, self.cash, f"rnd:{step}", "cash")
            elif operation < 0.45 and account.balance > 0.01:
                amount = round(rng.uniform(0.01, account.balance), 2)
                account._refund(amount, self.cash, f"rnd:{step}", "cash")
            else:
                meter = account.meter_ids
                kwh[meter] = round(kwh[meter] + rng.uniform(0, 7.3), 3)
                hour += 1
                self.reading(
                    meter,
                    kwh[meter],
                    f"2026-03-{1 + hour // 24:02d} {hour % 24:02d}:00:00",
                )
                if rng.random() < 0.3:
                    self.bill()
            if step % 250 == 0:
                engine._recognize(self.company)
        self.bill()
        for account in accounts:
            ledger = sum(account.ledger_line_ids.mapped("amount"))
            self.assertAlmostEqual(account.balance, ledger, places=2)
            last = account.ledger_line_ids.sorted("id")[-1]
            self.assertAlmostEqual(last.balance_after, account.balance, places=2)
        self.assert_reconciled()
        engine._recognize(self.company)
        result = self.assert_reconciled()
        self.assertEqual(result["unrecognised"], 0.0)
        self.assertAlmostEqual(result["liability"], result["wallets"], places=2)


@tagged("post_install", "-at_install")
class TestWalletLocking(BillingCase):
    """A recharge and a deduction on one wallet serialize (row lock)."""

    def test_second_cursor_waits_for_the_wallet_lock(self):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            partner = env["res.partner"].create({"name": "Lock tenant"})
            account = env["prepaid.account"].create(
                {"partner_id": partner.id, "state": "open"}
            )
            account_id, partner_id = account.id, partner.id
        self.addCleanup(self._drop, account_id, partner_id)
        holder = self.registry.cursor()
        self.addCleanup(holder.close)
        holder_env = api.Environment(holder, SUPERUSER_ID, {})
        holder_env["prepaid.ledger.line"]._post(
            [
                {
                    "account_id": account_id,
                    "line_type": "adjustment",
                    "amount": 10.0,
                    "idempotency_key": "lock-1",
                }
            ]
        )
        blocked = []

        def deduct():
            with self.registry.cursor() as cr:
                cr.transaction = api.Transaction(self.registry)
                env = api.Environment(cr, SUPERUSER_ID, {})
                cr.execute("SET LOCAL lock_timeout = '500ms'")
                try:
                    with mute_logger("odoo.sql_db"):
                        env["prepaid.ledger.line"]._post(
                            [
                                {
                                    "account_id": account_id,
                                    "line_type": "consumption",
                                    "amount": -3.0,
                                    "idempotency_key": "lock-2",
                                }
                            ]
                        )
                except psycopg2.errors.LockNotAvailable:
                    blocked.append(True)
                    cr.rollback()

        thread = threading.Thread(target=deduct)
        thread.start()
        thread.join(10)
        self.assertEqual(blocked, [True], "the deduction had to wait for the lock")
        holder.commit()
        thread = threading.Thread(target=deduct)
        thread.start()
        thread.join(10)
        with self.registry.cursor() as cr:
            cr.execute(
                "SELECT balance FROM prepaid_account WHERE id = %s", [account_id]
            )
            self.assertEqual(float(cr.fetchone()[0]), 7.0)

    def _drop(self, account_id, partner_id):
        with self.registry.cursor() as cr:
            cr.execute(
                "DELETE FROM prepaid_ledger_line WHERE account_id = %s", [account_id]
            )
            cr.execute("DELETE FROM prepaid_account WHERE id = %s", [account_id])
            cr.execute("DELETE FROM res_partner WHERE id = %s", [partner_id])
