"""Who may move money: guarded account fields, journals, caps, rules, channels."""

from datetime import datetime

from odoo import Command
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import new_test_user, tagged

from .common import BillingCase

GUARDED_BY_ACTIONS = {
    "state": "closed",
    "supply_state": "cut_off",
    "keep_on_until": datetime(2030, 1, 1),
    "opened_at": datetime(2020, 1, 1),
    "closed_at": datetime(2030, 1, 1),
    "alarm_level": 3,
}


class MoneyCase(BillingCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.meter = cls.make_meter(cls.gateway, 1)
        cls.account = cls.make_account(cls.meter, opening=30.0)
        company = {"company_id": cls.company.id, "company_ids": [cls.company.id]}
        cls.operator = new_test_user(
            cls.env,
            login="sec_operator",
            groups="prepaid_metering.group_metering_user",
            **company,
        )
        cls.accountant = new_test_user(
            cls.env,
            login="sec_accountant",
            groups="prepaid_billing.group_billing_user",
            **company,
        )
        cls.boss = new_test_user(
            cls.env,
            login="sec_boss",
            groups="prepaid_billing.group_billing_manager",
            **company,
        )
        cls.company_b = cls.env["res.company"].create(
            {"name": "Other Prepaid Co", "currency_id": cls.company.currency_id.id}
        )

    def money_counts(self):
        """Wallet lines and journal entries of the whole database."""
        return (
            self.env["prepaid.ledger.line"].sudo().search_count([]),
            self.env["account.move"].sudo().search_count([]),
        )

    def guarded_values(self, account):
        account.invalidate_recordset()
        return {
            name: account[name]
            for name in (*GUARDED_BY_ACTIONS, "credit_limit", "protected")
        }


@tagged("post_install", "-at_install")
class TestAccountGuards(MoneyCase):
    def test_users_cannot_write_fields_owned_by_the_actions(self):
        before = self.guarded_values(self.account)
        for user in (self.accountant, self.boss):
            for name, value in GUARDED_BY_ACTIONS.items():
                with (
                    self.subTest(user=user.login, field=name),
                    self.assertRaises(AccessError),
                ):
                    self.account.with_user(user).write({name: value})
        self.assertEqual(self.guarded_values(self.account), before)

    def test_rewriting_the_current_value_is_not_a_change(self):
        self.account.with_user(self.accountant).write(
            {"state": "open", "supply_state": "on", "protected": False}
        )
        self.assertEqual(self.account.state, "open")

    def test_credit_and_protection_are_for_billing_managers(self):
        account = self.account.with_user(self.accountant)
        with self.assertRaises(AccessError):
            account.write({"credit_limit": 500.0})
        with self.assertRaises(AccessError):
            account.protected = True
        self.assertEqual(self.account.credit_limit, 0.0)
        self.assertFalse(self.account.protected)
        self.account.with_user(self.boss).write(
            {"credit_limit": 500.0, "protected": True}
        )
        self.assertEqual(self.account.credit_limit, 500.0)
        self.assertTrue(self.account.protected)

    def test_only_managers_switch_an_open_account_between_prepaid_and_postpaid(
        self,
    ):
        with self.assertRaises(AccessError):
            self.account.with_user(self.accountant).mode = "postpaid"
        self.assertEqual(self.account.mode, "prepaid")
        self.account.with_user(self.boss).mode = "postpaid"
        self.assertEqual(self.account.mode, "postpaid")

    def test_a_user_cannot_create_an_account_past_its_actions(self):
        Account = self.env["prepaid.account"].with_user(self.accountant)
        base = {"partner_id": self.tenant.id, "tariff_id": self.flat.id}
        count = self.env["prepaid.account"].search_count([])
        for vals in (
            {"state": "open"},
            {"supply_state": "cut_off"},
            {"keep_on_until": datetime(2030, 1, 1)},
            {"credit_limit": 1000.0},
            {"protected": True},
        ):
            with self.subTest(vals=vals), self.assertRaises(AccessError):
                Account.create({**base, **vals})
        with self.assertRaises(UserError):
            Account.create({**base, "balance": 1000.0})
        with self.assertRaises(AccessError):
            Account.with_context(default_state="open").create(base)
        with self.assertRaises(AccessError):
            Account.with_context(default_credit_limit=99.0).create(base)
        self.assertEqual(self.env["prepaid.account"].search_count([]), count)
        draft = Account.create({**base, "state": "draft", "credit_limit": 0.0})
        self.assertEqual(draft.state, "draft")

    def test_company_changes_only_while_draft(self):
        with self.assertRaises(UserError):
            self.account.write({"company_id": self.company_b.id})
        self.assertEqual(self.account.company_id, self.company)
        draft = self.env["prepaid.account"].create({"partner_id": self.tenant.id})
        draft.company_id = self.company_b
        self.assertEqual(draft.company_id, self.company_b)

    def test_billing_users_run_the_actions_that_move_state_and_supply(self):
        self.account._write_guarded({"supply_state": "cut_off"})
        wizard = (
            self.env["prepaid.recharge.wizard"]
            .with_user(self.accountant)
            .create(
                {
                    "account_id": self.account.id,
                    "amount": 30.0,
                    "journal_id": self.cash.id,
                }
            )
        )
        alarm = self.env["prepaid.alarm.notice"].search(
            [("account_id", "=", self.account.id), ("event", "=", "alarm1")]
        )
        self.assertEqual(alarm.state, "pending", "30 is below the level 1 (50)")
        wizard.action_confirm()
        self.assertEqual(self.account.balance, 60.0)
        self.assertEqual(alarm.state, "reset", "the recharge lifted the alarm")
        self.assertEqual(self.account.supply_state, "on", "restored by the engine")
        self.assertEqual(self.account.notice_ids[:1].event, "restore")
        self.env["prepaid.account.close.wizard"].with_user(self.accountant).create(
            {
                "account_id": self.account.id,
                "read_meters": False,
                "journal_id": self.cash.id,
            }
        ).action_close()
        self.assertEqual(self.account.state, "closed")
        self.assertEqual(self.account.balance, 0.0)
        draft = self.make_account(self.make_meter(self.gateway, 2), open_it=False)
        self.env["prepaid.account.open.wizard"].with_user(self.accountant).create(
            {"account_ids": [Command.set(draft.ids)]}
        ).action_open()
        self.assertEqual(draft.state, "open")

    def test_metering_users_cannot_move_money_even_server_side(self):
        counts = self.money_counts()
        account = self.account.with_user(self.operator)
        with self.assertRaises(AccessError):
            account._recharge(10.0, self.cash, "op-recharge", "cash")
        with self.assertRaises(AccessError):
            account._refund(10.0, self.cash, "op-refund", "cash")
        with self.assertRaises(AccessError):
            account.action_recharge()
        draft = self.make_account(self.make_meter(self.gateway, 3), open_it=False)
        with self.assertRaises(AccessError):
            draft.with_user(self.operator)._open()
        self.assertEqual(draft.state, "draft")
        self.assertEqual(self.money_counts(), counts)
        self.assertEqual(self.account.balance, 30.0)

    def test_supply_override_is_checked_for_managers_on_the_server(self):
        wizard = self.env["prepaid.supply.override.wizard"].create(
            {
                "account_id": self.account.id,
                "action": "keep_on",
                "keep_on_until": datetime(2099, 1, 1),
                "reason": "hospital",
            }
        )
        with self.assertRaises(AccessError):
            wizard.with_user(self.accountant).action_apply()
        self.assertFalse(self.account.keep_on_until)
        wizard.with_user(self.boss).action_apply()
        self.assertEqual(self.account.keep_on_until, datetime(2099, 1, 1))


@tagged("post_install", "-at_install")
class TestMoneyJournals(MoneyCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        Journal = cls.env["account.journal"]
        cls.sale = Journal.create(
            {"name": "Test sales", "code": "TPSAL", "type": "sale"}
        )
        cls.cash_b = (
            Journal.with_company(cls.company_b)
            .sudo()
            .create(
                {
                    "name": "Other cash",
                    "code": "TPOCS",
                    "type": "cash",
                    "company_id": cls.company_b.id,
                }
            )
        )

    def assert_refused(self, post, *args):
        counts = self.money_counts()
        with self.assertRaises(UserError) as caught:
            post(*args)
        self.assertEqual(self.money_counts(), counts, "nothing posted")
        self.account.invalidate_recordset(["balance"])
        self.assertEqual(self.account.balance, 30.0)
        return str(caught.exception)

    def test_a_journal_of_another_company_is_refused(self):
        message = self.assert_refused(
            self.account._recharge, 10.0, self.cash_b, "other-co", "cash"
        )
        self.assertIn("Other Prepaid Co", message)
        self.assert_refused(
            self.account._refund, 10.0, self.cash_b, "other-co-r", "cash"
        )

    def test_only_cash_or_bank_journals_take_recharges_and_refunds(self):
        self.assert_refused(self.account._recharge, 10.0, self.sale, "sale", "cash")
        self.assert_refused(self.account._refund, 10.0, self.sale, "sale-r", "cash")
        self.assert_refused(self.account._recharge, 10.0, self.misc, "misc", "cash")

    def test_the_wizard_cannot_bypass_its_journal_domain(self):
        wizard = (
            self.env["prepaid.recharge.wizard"]
            .with_user(self.accountant)
            .create(
                {
                    "account_id": self.account.id,
                    "amount": 10.0,
                    "journal_id": self.sale.id,
                }
            )
        )
        self.assert_refused(wizard.action_confirm)

    def test_recharges_are_positive_and_capped_per_company(self):
        self.assertEqual(self.company.prepaid_max_recharge_amount, 50000.0)
        self.company.prepaid_max_recharge_amount = 1000.0
        for amount in (-5.0, 0.0, 1000.01, 1e9):
            with self.subTest(amount=amount):
                self.assert_refused(
                    self.account._recharge, amount, self.cash, f"cap:{amount}", "cash"
                )
        self.account._recharge(1000.0, self.cash, "cap:ok", "cash")
        self.assertEqual(self.account.balance, 1030.0)

    def test_the_cap_must_be_positive(self):
        for cap in (0.0, -1.0):
            with self.subTest(cap=cap), self.assertRaises(ValidationError):
                self.company.prepaid_max_recharge_amount = cap

    def test_a_meter_side_recharge_above_the_cap_queues_no_command(self):
        meter = self.make_meter(self.gateway, 4, billing_mode="meter")
        account = self.make_account(meter)
        self.company.prepaid_max_recharge_amount = 100.0
        Command_ = self.env["prepaid.meter.command"]
        commands = Command_.search_count([])
        wizard = (
            self.env["prepaid.recharge.wizard"]
            .with_user(self.accountant)
            .create(
                {
                    "account_id": account.id,
                    "meter_id": meter.id,
                    "amount": 100.01,
                    "journal_id": self.cash.id,
                }
            )
        )
        with self.assertRaises(UserError):
            wizard.action_confirm()
        self.assertEqual(Command_.search_count([]), commands)

    def test_an_opening_balance_may_come_from_a_transfer_journal(self):
        transfer_account = self.env["account.account"].create(
            {
                "name": "Previous system",
                "code": "TPTRF",
                "account_type": "asset_current",
            }
        )
        transfer = self.env["account.journal"].create(
            {
                "name": "Transfer",
                "code": "TPTRJ",
                "type": "general",
                "default_account_id": transfer_account.id,
            }
        )
        draft = self.make_account(
            self.make_meter(self.gateway, 5), opening=12.0, open_it=False
        )
        draft.with_context(prepaid_opening_journal_id=transfer.id)._open()
        self.assertEqual(draft.balance, 12.0)
        other = self.make_account(
            self.make_meter(self.gateway, 6), opening=12.0, open_it=False
        )
        with self.assertRaises(UserError):
            other.with_context(prepaid_opening_journal_id=self.sale.id)._open()
        self.assertEqual(other.state, "draft")


@tagged("post_install", "-at_install")
class TestTariffCompanies(MoneyCase):
    def test_a_user_of_another_company_cannot_read_tariff_versions(self):
        tiered = self.make_tariff(
            "Tiered",
            kind="tiered",
            tier_ids=[
                Command.create({"upto": 100.0, "price": 0.5}),
                Command.create({"upto": 0.0, "price": 0.9}),
            ],
        )
        user_b = new_test_user(
            self.env,
            login="sec_user_b",
            groups="prepaid_billing.group_billing_manager",
            company_id=self.company_b.id,
            company_ids=[self.company_b.id],
        )
        versions = (self.flat | tiered).version_ids
        env_b = self.env(
            user=user_b, context={"allowed_company_ids": [user_b.company_id.id]}
        )
        Version = env_b["prepaid.tariff.version"]
        self.assertFalse(Version.search([("id", "in", versions.ids)]))
        with self.assertRaises(AccessError):
            versions.with_env(env_b).read(["price"])
        tiers = tiered.version_ids.tier_ids
        self.assertEqual(len(tiers), 2)
        self.assertFalse(env_b["prepaid.tariff.tier"].search([("id", "in", tiers.ids)]))
        with self.assertRaises(AccessError):
            tiers.with_env(env_b).read(["price"])
        own = (
            self.env["prepaid.tariff.version"]
            .with_user(self.accountant)
            .search([("id", "in", versions.ids)])
        )
        self.assertEqual(own, versions, "the tariff's own company still reads them")


@tagged("post_install", "-at_install")
class TestNotificationChannels(MoneyCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.admin = new_test_user(
            cls.env,
            login="sec_admin",
            groups="base.group_system",
            company_id=cls.company.id,
            company_ids=[cls.company.id],
        )
        cls.shared = cls.env["prepaid.notification.channel"].create(
            {"name": "Shared mail", "channel_type": "email", "company_id": False}
        )
        cls.icp = cls.env["ir.config_parameter"].sudo()
        cls.icp.set_param("prepaid_billing.webhook_allow_private", "")

    def webhook_vals(self, **vals):
        return {
            "name": "Hook",
            "channel_type": "webhook",
            "webhook_url": "https://8.8.8.8/hook",
            "webhook_secret": "s3cret",
            **vals,
        }

    def test_only_the_administrator_edits_channels(self):
        for user in (self.accountant, self.boss):
            channel = self.shared.with_user(user)
            self.assertEqual(channel.name, "Shared mail", "readable")
            with self.subTest(user=user.login), self.assertRaises(AccessError):
                channel.write({"on_alarm1": False})
            with self.subTest(user=user.login), self.assertRaises(AccessError):
                channel.create({"name": "Mine", "channel_type": "email"})
        self.assertTrue(self.shared.on_alarm1)
        self.shared.with_user(self.admin).write({"on_alarm1": False})
        self.assertFalse(self.shared.on_alarm1)

    def test_webhook_urls_to_internal_addresses_are_refused(self):
        Channel = self.env["prepaid.notification.channel"]
        for url in (
            "http://127.0.0.1:8069/web",
            "http://localhost/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://10.0.0.5/hook",
            "http://[::1]/hook",
            "http://[fe80::1]/hook",
            "ftp://8.8.8.8/hook",
            "https://user:pw@8.8.8.8/hook",
        ):
            with self.subTest(url=url), self.assertRaises(ValidationError):
                Channel.create(self.webhook_vals(webhook_url=url))
        self.icp.set_param("prepaid_billing.webhook_allow_private", "True")
        channel = Channel.create(self.webhook_vals(webhook_url="http://127.0.0.1/x"))
        self.assertEqual(channel.webhook_url, "http://127.0.0.1/x")

    def test_webhook_needs_a_secret_and_a_bounded_timeout(self):
        Channel = self.env["prepaid.notification.channel"]
        for vals in (
            {"webhook_secret": False},
            {"webhook_secret": ""},
            {"webhook_timeout_s": 0.5},
            {"webhook_timeout_s": 30.5},
            {"webhook_timeout_s": 0.0},
        ):
            with self.subTest(vals=vals), self.assertRaises(ValidationError):
                Channel.create(self.webhook_vals(**vals))
        channel = Channel.create(self.webhook_vals(webhook_timeout_s=30.0))
        with self.assertRaises(ValidationError):
            channel.webhook_secret = False

    def test_the_address_is_checked_again_when_sending(self):
        self.icp.set_param("prepaid_billing.webhook_allow_private", "True")
        channel = self.env["prepaid.notification.channel"].create(
            self.webhook_vals(webhook_url="http://127.0.0.1:9/hook")
        )
        self.icp.set_param("prepaid_billing.webhook_allow_private", "")
        notice = self.env["prepaid.alarm.notice"].create(
            {"account_id": self.account.id, "event": "alarm1"}
        )
        ok, message = channel._dispatch(notice)
        self.assertFalse(ok)
        self.assertIn("127.0.0.1", message)
