from unittest.mock import patch

from freezegun import freeze_time

from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import new_test_user, tagged

from .common import BillingCase
from .test_meter_side import MeterSideCase


def set_up_debt(cls):
    """A tenant debt account and a recovery of 25 % of each top-up."""
    cls.debt_account = cls.env["account.account"].create(
        {
            "name": "Test tenant debt",
            "code": "TPD112",
            "account_type": "asset_receivable",
            "reconcile": True,
        }
    )
    cls.company.write(
        {
            "prepaid_debt_account_id": cls.debt_account.id,
            "prepaid_debt_percent": 25.0,
            "prepaid_debt_min": 0.0,
            "prepaid_debt_max": 0.0,
            "prepaid_debt_daily": 0.0,
        }
    )


class DebtCase(BillingCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        set_up_debt(cls)
        cls.meter = cls.make_meter(cls.gateway, 1)
        cls.account = cls.make_account(cls.meter, opening=0.0)

    def recharge(self, amount, key):
        return self.account._recharge(amount, self.cash, key, "cash")

    def debt_in_accounting(self):
        self.env.flush_all()
        lines = self.env["account.move.line"].search(
            [
                ("account_id", "=", self.debt_account.id),
                ("parent_state", "=", "posted"),
            ]
        )
        return round(sum(lines.mapped("debit")) - sum(lines.mapped("credit")), 2)


@tagged("post_install", "-at_install")
class TestDebtRecovery(DebtCase):
    def test_a_quarter_of_three_top_ups_with_min_and_max(self):
        self.company.write({"prepaid_debt_min": 5.0, "prepaid_debt_max": 30.0})
        self.account._add_debt(100.0, "manual", "Broken meter seal", key="d1")
        self.assertEqual(self.debt_in_accounting(), 100.0)
        # 25 % of 40 = 10.00; of 10 = 2.50 raised to 5.00; of 200 = 50.00
        # lowered to 30.00
        for amount, key in ((40.0, "t1"), (10.0, "t2"), (200.0, "t3")):
            self.recharge(amount, key)
        recoveries = self.account.debt_line_ids.filtered(
            lambda line: line.source == "top_up"
        ).sorted("id")
        self.assertEqual(recoveries.mapped("amount"), [-10.0, -5.0, -30.0])
        self.assertEqual(recoveries.mapped("debt_after"), [90.0, 85.0, 55.0])
        self.assertEqual(self.account.debt_amount, 55.0)
        # the wallet got 250 and gave 45 to the debt, never below zero
        self.assertEqual(self.account.balance, 205.0)
        wallet = recoveries.ledger_line_id
        self.assertEqual(set(wallet.mapped("line_type")), {"debt_recovery"})
        self.assertEqual(sum(wallet.mapped("amount")), -45.0)
        # receivable down, wallet (liability) less
        self.assertEqual(self.debt_in_accounting(), 55.0)
        move = recoveries[0].move_id
        self.assertEqual(move.line_ids.filtered("debit").account_id, self.liability)
        self.assertEqual(move.line_ids.filtered("credit").account_id, self.debt_account)
        self.assert_reconciled()

    def test_a_top_up_of_ten_does_not_wipe_a_debt_of_five_hundred(self):
        self.account._add_debt(500.0, "tenancy", "Earlier tenancy of room 101")
        self.recharge(10.0, "small")
        self.assertEqual(self.account.debt_amount, 497.5)
        self.assertEqual(self.account.balance, 7.5)

    def test_the_debt_is_paid_off_exactly_and_recovery_stops(self):
        self.company.prepaid_debt_min = 10.0
        self.account._add_debt(7.35, "manual", "Key replacement")
        self.recharge(100.0, "big")
        self.assertEqual(self.account.debt_amount, 0.0)
        self.assertEqual(self.account.balance, 92.65)
        self.recharge(100.0, "after")
        self.assertEqual(self.account.balance, 192.65)
        self.assertEqual(len(self.account.debt_line_ids), 2)
        self.assertEqual(self.debt_in_accounting(), 0.0)
        self.assert_reconciled()

    def test_a_repeated_top_up_recovers_once(self):
        self.account._add_debt(100.0, "manual", "Damage")
        first = self.recharge(40.0, "same")
        second = self.recharge(40.0, "same")
        self.assertEqual(first, second)
        self.assertEqual(self.account.debt_amount, 90.0)
        self.assertEqual(self.account.balance, 30.0)
        # a debt added after a top-up is no part of that top-up's retry
        self.account._add_debt(50.0, "manual", "More damage")
        self.recharge(40.0, "same")
        self.assertEqual(self.account.debt_amount, 140.0)

    def test_a_crash_between_the_credit_and_the_recovery_posts_neither(self):
        self.account._add_debt(100.0, "manual", "Damage")
        moves = self.env["account.move"].search_count([])
        Account = type(self.env["prepaid.account"])
        # the wallet is credited and the recovery's wallet line and entry are
        # written; the process dies before the debt line
        with (
            patch.object(Account, "_post_debt_line", side_effect=OSError("crash")),
            self.assertRaises(OSError),
            self.env.cr.savepoint(),
        ):
            self.recharge(40.0, "crash")
        self.env.invalidate_all()
        self.assertEqual(self.account.balance, 0.0)
        self.assertEqual(self.account.debt_amount, 100.0)
        self.assertEqual(self.env["account.move"].search_count([]), moves)
        # the payment is retried: credited and recovered once
        self.recharge(40.0, "crash")
        self.recharge(40.0, "crash")
        self.assertEqual(self.account.balance, 30.0)
        self.assertEqual(self.account.debt_amount, 90.0)
        self.assertEqual(len(self.account.debt_line_ids), 2)
        self.assert_reconciled()

    def test_an_account_rule_replaces_the_companys(self):
        self.account.write(
            {"debt_recovery_override": True, "debt_recovery_percent": 50.0}
        )
        self.account._add_debt(100.0, "manual", "Damage")
        self.recharge(40.0, "half")
        self.assertEqual(self.account.debt_amount, 80.0)

    def test_the_note_tells_the_tenant_what_the_next_top_up_recovers(self):
        self.account._add_debt(500.0, "manual", "Damage")
        self.assertEqual(
            self.account.debt_note,
            f"Debt owed: {self.account.currency_id.format(500.0)}. Your next "
            f"top-up of {self.account.currency_id.format(100.0)} pays "
            f"{self.account.currency_id.format(25.0)} of it.",
        )

    def test_bad_debts_write_nothing(self):
        lines = self.env["prepaid.debt.line"].search_count([])
        moves = self.env["account.move"].search_count([])
        for amount, source, reason in (
            (-5.0, "manual", "x"),
            (0.0, "manual", "x"),
            (10.0, "manual", "  "),
            (10.0, "top_up", "x"),
        ):
            with self.assertRaises(UserError):
                self.account._add_debt(amount, source, reason)
        clerk = new_test_user(
            self.env,
            "debt_clerk",
            groups="prepaid_billing.group_billing_user",
            company_id=self.company.id,
        )
        with self.assertRaises(AccessError):
            self.account.with_user(clerk)._add_debt(10.0, "manual", "x")
        with self.assertRaises(ValidationError):
            self.account.write(
                {"debt_recovery_override": True, "debt_recovery_percent": 120.0}
            )
        self.assertEqual(self.env["prepaid.debt.line"].search_count([]), lines)
        self.assertEqual(self.env["account.move"].search_count([]), moves)
        self.assertEqual(self.account.debt_amount, 0.0)

    def test_debt_lines_are_immutable(self):
        line = self.account._add_debt(10.0, "manual", "Damage")
        with self.assertRaises(UserError):
            line.write({"amount": 1.0})
        with self.assertRaises(UserError):
            line.unlink()
        with self.assertRaises(UserError):
            self.env["prepaid.debt.line"].create(
                {
                    "account_id": self.account.id,
                    "company_id": self.company.id,
                    "currency_id": self.account.currency_id.id,
                    "source": "manual",
                    "name": "by hand",
                    "amount": 1.0,
                }
            )


@tagged("post_install", "-at_install")
class TestDailyDebtRecovery(DebtCase):
    def test_daily_recovery_across_a_month_pays_the_debt_exactly(self):
        self.company.write({"prepaid_debt_percent": 0.0, "prepaid_debt_daily": 3.5})
        Account = self.env["prepaid.account"]
        # 31 March 10:00 local (02:00 UTC): the debt is added that day
        with freeze_time("2026-03-31 02:00:00"):
            self.recharge(300.0, "money")
            self.account._add_debt(100.0, "manual", "Damage")
            self.assertEqual(Account._cron_debt_daily(self.account), 0)
        # 30 April 00:30 local is still 29 April 16:30 UTC: 1-30 April
        with freeze_time("2026-04-29 16:30:00"):
            # 28 days of 3.50 = 98.00, then 2.00 on 29 April; nothing on the 30th
            self.assertEqual(Account._cron_debt_daily(self.account), 29)
            self.assertEqual(Account._cron_debt_daily(self.account), 0)
        days = self.account.debt_line_ids.filtered(
            lambda line: line.source == "daily"
        ).sorted("recovery_day")
        self.assertEqual(str(days[0].recovery_day), "2026-04-01")
        self.assertEqual(days[-1].amount, -2.0)
        self.assertEqual(str(days[-1].recovery_day), "2026-04-29")
        self.assertEqual(self.account.debt_amount, 0.0)
        self.assertEqual(self.account.balance, 200.0)
        self.assertEqual(str(self.account.debt_daily_last_day), "2026-04-30")
        self.assertEqual(self.debt_in_accounting(), 0.0)
        self.assert_reconciled()

    def test_daily_recovery_never_takes_the_wallet_below_zero(self):
        self.company.write({"prepaid_debt_percent": 0.0, "prepaid_debt_daily": 3.0})
        with freeze_time("2026-04-01 02:00:00"):
            self.recharge(4.0, "little")
            self.account._add_debt(100.0, "manual", "Damage")
        with freeze_time("2026-04-05 02:00:00"):
            self.env["prepaid.account"]._cron_debt_daily(self.account)
        self.assertEqual(self.account.balance, 0.0)
        self.assertEqual(self.account.debt_amount, 96.0)


@tagged("post_install", "-at_install")
class TestDebtAtRefundAndClosing(DebtCase):
    """A refund or a closing never pays out the money that a debt is owed."""

    def setUp(self):
        super().setUp()
        self.company.prepaid_debt_percent = 0.0  # the top-ups stay whole
        self.recharge(200.0, "whole")
        self.account._add_debt(150.0, "manual", "Broken meter seal", key="seal")

    def close(self):
        self.env["prepaid.account.close.wizard"].create(
            {
                "account_id": self.account.id,
                "read_meters": False,
                "journal_id": self.cash.id,
            }
        ).action_close()

    def test_a_refund_takes_only_what_exceeds_the_debt(self):
        lines = self.account.ledger_line_ids
        with self.assertRaisesRegex(UserError, "at most"):
            self.account._refund(50.01, self.cash, "too-much", "cash")
        self.assertEqual(self.account.ledger_line_ids, lines)
        self.account._refund(50.0, self.cash, "the-rest", "cash")
        self.assertEqual(
            (self.account.balance, self.account.debt_amount), (150.0, 150.0)
        )
        with self.assertRaisesRegex(UserError, "at most"):
            self.account._refund(0.01, self.cash, "nothing-left", "cash")
        self.assert_reconciled()

    def test_closing_pays_the_debt_from_the_balance_and_refunds_the_rest(self):
        self.close()
        account = self.account
        self.assertEqual(account.state, "closed")
        self.assertEqual((account.balance, account.debt_amount), (0.0, 0.0))
        recovery = account.ledger_line_ids.filtered(
            lambda line: line.line_type == "debt_recovery"
        )
        refund = account.ledger_line_ids.filtered(
            lambda line: line.line_type == "refund"
        )
        self.assertEqual((recovery.amount, refund.amount), (-150.0, -50.0))
        paid = account.debt_line_ids.filtered(lambda line: line.source == "closing")
        self.assertEqual((paid.amount, paid.ledger_line_id), (-150.0, recovery))
        self.assertEqual(self.debt_in_accounting(), 0.0)
        self.assert_reconciled()

    def test_a_debt_above_the_balance_takes_it_all_and_the_rest_stays_owed(self):
        self.account._add_debt(100.0, "manual", "Lost key", key="key")
        self.close()
        account = self.account
        # 200.00 paid towards the 250.00 owed, nothing refunded
        self.assertEqual((account.balance, account.debt_amount), (0.0, 50.0))
        self.assertFalse(
            account.ledger_line_ids.filtered(lambda line: line.line_type == "refund")
        )
        self.assertEqual(self.debt_in_accounting(), 50.0)
        self.assert_reconciled()


@tagged("post_install", "-at_install")
class TestEmergencyCredit(DebtCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company.prepaid_emergency_credit_amount = 20.0
        cls.fresh = cls.make_account(cls.make_meter(cls.gateway, 2), opening=30.0)

    def use(self, kwh_from, kwh_to, at):
        meter = self.fresh.meter_ids
        self.reading(meter, kwh_from, at)
        self.reading(meter, kwh_to, at.replace("00:00", "30:00"))
        self.bill()

    def test_emergency_credit_taken_used_and_repaid_from_the_next_top_up(self):
        account = self.fresh
        with freeze_time("2026-03-02 06:00:00"):  # 14:00 local
            self.assertFalse(account.emergency_offered)
            with self.assertRaises(UserError):
                account.action_take_emergency_credit()
            # 30 - 32 x 0.80 = 4.40: the last alarm level (5.00)
            self.use(1000.0, 1032.0, "2026-03-02 02:00:00")
            self.assertEqual(account.alarm_level, 3)
            self.assertTrue(account.emergency_offered)
            notice = account.notice_ids.filtered(lambda n: n.event == "alarm3")
            self.assertIn("emergency credit", notice.recovery_note)
            account.action_take_emergency_credit()
            self.assertEqual(account.emergency_state, "taken")
            self.assertFalse(account.emergency_offered)
            # 4.40 - 20 x 0.80 = -11.60: below zero, on the emergency credit
            self.use(1032.0, 1052.0, "2026-03-02 03:00:00")
            self.assertEqual(account.balance, -11.6)
            self.assertEqual(account.emergency_state, "in_use")
            self.assertEqual(account.supply_state, "on")
            # -11.60 - 11 x 0.80 = -20.40: used up, the normal cut-off
            self.use(1052.0, 1063.0, "2026-03-02 04:00:00")
        self.assertEqual(account.supply_state, "cut_off")
        self.assertEqual(self.fresh.meter_ids.command_ids.command_type, "relay_off")
        # the debt's share is taken only from what is left after the hole
        account._add_debt(100.0, "manual", "Damage")
        # used up: a top-up that leaves the balance below zero restores nothing
        account._recharge(10.0, self.cash, "partial", "cash")
        self.assertEqual(account.balance, -10.4)
        self.assertEqual(account.supply_state, "cut_off")
        self.assertEqual(account.debt_amount, 100.0)
        account._recharge(100.40, self.cash, "repay", "cash")
        # 10.40 repays the rest of the emergency credit; 25 % of the 90.00
        # left = 22.50
        self.assertEqual(account.debt_amount, 77.5)
        self.assertEqual(account.balance, 67.5)
        self.assertEqual(account.emergency_state, "none")
        self.assertEqual(account.emergency_taken_amount, 0.0)
        self.assertEqual(account.supply_state, "on")
        self.assert_reconciled()

    def test_no_offer_when_the_credit_would_not_bring_the_supply_back(self):
        account = self.fresh
        with freeze_time("2026-03-02 04:00:00"):
            # 30 - 62.5 x 0.80 = -20.00: a credit of 20.00 reaches only zero
            self.use(1000.0, 1062.5, "2026-03-02 02:00:00")
            self.assertEqual(account.balance, -20.0)
            self.assertEqual(account.supply_state, "cut_off")
            self.assertFalse(account.emergency_offered)
            with self.assertRaises(UserError):
                account.action_take_emergency_credit()
        self.assertEqual(account.emergency_state, "none")

    def test_emergency_credit_taken_after_a_cut_off_restores_the_supply(self):
        account = self.fresh
        with freeze_time("2026-03-02 04:00:00"):
            self.use(1000.0, 1040.0, "2026-03-02 02:00:00")  # 30 - 32 = -2
            self.assertEqual(account.supply_state, "cut_off")
            account.action_take_emergency_credit()
        self.assertEqual(account.supply_state, "on")
        self.assertEqual(account.emergency_state, "in_use")
        relay = self.fresh.meter_ids.command_ids.sorted("id").mapped("command_type")
        self.assertEqual(relay, ["relay_off", "relay_on"])
        with self.assertRaises(UserError):
            account.action_take_emergency_credit()


@tagged("post_install", "-at_install")
class TestDebtOnAMeterKeepingTheBalance(MeterSideCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        set_up_debt(cls)

    def test_the_meter_gets_the_top_up_less_the_debts_share(self):
        self.account._add_debt(100.0, "manual", "Damage")
        self.account._recharge(40.0, self.cash, "online-1", "cash")
        command = self.commands()
        self.assertEqual(command.params["amount"], 30.0)
        self.process_commands()
        self.assertEqual(command.state, "done", command.last_error)
        self.assertAlmostEqual(self.sim.balance, 50.0, places=2)
        self.assertEqual(self.account.debt_amount, 90.0)
        self.assertEqual(self.account.balance, 30.0)

    def test_a_refund_from_the_meter_keeps_what_the_debt_is_owed(self):
        self.account._add_debt(20.0, "manual", "Damage")
        self.account._recharge(40.0, self.cash, "online-2", "cash")
        self.process_commands()
        # 10.00 recovered: 30.00 in the wallet (and on the meter), 10.00 owed
        self.assertEqual((self.account.balance, self.account.debt_amount), (30.0, 10.0))
        purchases = self.sim.purchase_count
        with self.assertRaisesRegex(UserError, "at most"):
            self.wizard(20.01, operation="refund").action_confirm()
        self.assertEqual(self.sim.purchase_count, purchases)
        self.assertEqual(self.account.balance, 30.0)
        self.wizard(20.0, operation="refund").action_confirm()
        self.env.invalidate_all()
        self.assertEqual((self.account.balance, self.account.debt_amount), (10.0, 10.0))
        self.assert_reconciled()
