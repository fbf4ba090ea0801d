"""The notification (real HTTP on loopback) and the query race on two real
transactions: the wallet is credited once.

The registry is not in test mode, so Odoo's HTTP worker and the query thread
each open a real cursor of their own; the data they share is committed and
removed again in cleanup.
"""

import threading
import time
from functools import partial
from unittest.mock import patch

from odoo import SUPERUSER_ID, api
from odoo.modules.registry import DummyRLock, Registry
from odoo.service.model import retrying
from odoo.tests import HttpCase, tagged
from odoo.tools import mute_logger

from odoo.addons.prepaid_wechat.models.payment_transaction import PaymentTransaction

from .common import provider_vals

# billing's common puts the repository root (the simulator) on sys.path
from simulator.wechat_peer import WeChatPeer  # isort: skip

ROUNDS = 3


@tagged("post_install", "-at_install")
class TestNotificationQueryRace(HttpCase):
    registry_test_mode = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # The test runner holds the registry lock; test mode would swap it
        # for a dummy, and so must this test for Odoo's HTTP worker.
        cls.startClassPatcher(patch.object(Registry, "_lock", DummyRLock()))
        cls.peer = WeChatPeer(auto_notify=False).start()
        cls.addClassCleanup(cls.peer.stop)

    def setUp(self):
        super().setUp()
        self.addCleanup(self._remove_committed_data)
        self.ids = {}
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            company = env.ref("base.main_company")
            bank_account = env["account.account"].create(
                {"name": "Race bank", "code": "TWXR101", "account_type": "asset_cash"}
            )
            journal = env["account.journal"].create(
                {
                    "name": "Race WeChat settlements",
                    "code": "TWXR",
                    "type": "bank",
                    "default_account_id": bank_account.id,
                    "company_id": company.id,
                }
            )
            provider = env["payment.provider"].create(
                provider_vals(env, self.peer, company)
            )
            provider.journal_id = journal
            # the company's own prepayment accounts, whatever the database
            # (with or without demo data) had: restored by the clean-up
            liability = env["account.account"].create(
                {
                    "name": "Race prepayments",
                    "code": "TWXR219",
                    "account_type": "liability_current",
                }
            )
            transfers = env["account.journal"].create(
                {
                    "name": "Race prepaid transfers",
                    "code": "TWXRM",
                    "type": "general",
                    "company_id": company.id,
                }
            )
            self.company_before = {
                "prepaid_liability_account_id": company.prepaid_liability_account_id.id,
                "prepaid_journal_id": company.prepaid_journal_id.id,
            }
            company.write(
                {
                    "prepaid_liability_account_id": liability.id,
                    "prepaid_journal_id": transfers.id,
                }
            )
            partner = env["res.partner"].create({"name": "Race tenant"})
            account = env["prepaid.account"].create(
                {"partner_id": partner.id, "company_id": company.id}
            )
            # Opening needs meters; the race is about the wallet only.
            cr.execute(
                "UPDATE prepaid_account SET state = 'open' WHERE id = %s", [account.id]
            )
            account.invalidate_recordset()
            self.ids = {
                "bank_account": bank_account.id,
                "journal": journal.id,
                "liability": liability.id,
                "transfers": transfers.id,
                "company": company.id,
                "provider": provider.id,
                "partner": partner.id,
                "account": account.id,
            }
            txs = env["payment.transaction"].create(
                [
                    {
                        "provider_id": provider.id,
                        "payment_method_id": env.ref(
                            "payment.payment_method_wechat_pay"
                        ).id,
                        "reference": f"RACE-{account.id}-{i}",
                        "amount": 10.0 * i,
                        "currency_id": env.ref("base.CNY").id,
                        "partner_id": partner.id,
                        "prepaid_account_id": account.id,
                        "operation": "online_redirect",
                    }
                    for i in range(1, ROUNDS + 1)
                ]
            )
            for tx in txs:
                tx._wechatpay_create_order()
            self.tx_ids = txs.ids
            self.bodies = [
                self.peer.notification(
                    self.peer.pay(tx.wechatpay_out_trade_no, notify=False)
                )
                for tx in txs
            ]

    def _remove_committed_data(self):
        if not self.ids:
            return
        ids = self.ids
        with self.registry.cursor() as cr:
            tx_ids = self.tx_ids
            cr.execute(
                "UPDATE res_company SET prepaid_liability_account_id = %s, "
                "prepaid_journal_id = %s WHERE id = %s",
                [
                    self.company_before["prepaid_liability_account_id"] or None,
                    self.company_before["prepaid_journal_id"] or None,
                    ids["company"],
                ],
            )
            for query, value in [
                (
                    "DELETE FROM mail_activity WHERE res_model = 'prepaid.account' "
                    "AND res_id = %s",
                    ids["account"],
                ),
                (
                    "DELETE FROM prepaid_alarm_notice WHERE account_id = %s",
                    ids["account"],
                ),
                (
                    "DELETE FROM prepaid_ledger_line WHERE account_id = %s",
                    ids["account"],
                ),
                ("DELETE FROM account_move WHERE journal_id = %s", ids["journal"]),
                (
                    "DELETE FROM account_move WHERE journal_id = %s",
                    ids["transfers"],
                ),
                ("DELETE FROM payment_transaction WHERE id = ANY(%s)", tx_ids),
                ("DELETE FROM payment_provider WHERE id = %s", ids["provider"]),
                ("DELETE FROM account_journal WHERE id = %s", ids["journal"]),
                ("DELETE FROM account_account WHERE id = %s", ids["bank_account"]),
                ("DELETE FROM account_journal WHERE id = %s", ids["transfers"]),
                ("DELETE FROM account_account WHERE id = %s", ids["liability"]),
                (
                    "DELETE FROM mail_message WHERE (model = 'prepaid.account' "
                    "AND res_id = %s)",
                    ids["account"],
                ),
                (
                    "DELETE FROM mail_message WHERE model = 'payment.transaction' "
                    "AND res_id = ANY(%s)",
                    tx_ids,
                ),
                ("DELETE FROM prepaid_account WHERE id = %s", ids["account"]),
                ("DELETE FROM res_partner WHERE id = %s", ids["partner"]),
            ]:
                cr.execute(query, [value])

    def _race(self, tx_id, body):
        """POST the notification and run the query at the same moment."""
        start = threading.Barrier(2)
        outcome = {}

        def notify():
            start.wait(timeout=10)
            response = self.url_open(
                f"/payment/wechatpay/notify/{self.ids['provider']}",
                data=body,
                headers={
                    "Content-Type": "application/json",
                    **self.peer.signed_headers(body),
                },
                timeout=60,
            )
            outcome["notify"] = response.status_code

        def query():
            try:
                with self.registry.cursor() as cr:
                    cr.transaction = api.Transaction(self.registry)
                    env = api.Environment(cr, SUPERUSER_ID, {})
                    tx = env["payment.transaction"].browse(tx_id)
                    start.wait(timeout=10)
                    outcome["query"] = retrying(partial(self._sync, tx), env)
            except Exception as err:  # noqa: BLE001 - reported by the test
                outcome["query"] = repr(err)

        threads = [threading.Thread(target=notify), threading.Thread(target=query)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=90)
        return outcome

    @staticmethod
    def _sync(tx):
        tx.invalidate_recordset()
        return tx._wechatpay_sync()

    def test_notification_and_query_racing_credit_once(self):
        original = PaymentTransaction._wechatpay_credit_wallet
        credits = []

        def slow_credit(tx):
            # Whoever settles first keeps its transaction open a moment, so
            # the other path surely arrives while it is still uncommitted.
            credits.append(tx.id)
            original(tx)
            time.sleep(0.3)

        # The loser of each race fails on the row lock (a serialization
        # failure, logged by odoo.sql_db) and is retried, as Odoo retries any
        # HTTP request that hit one; the retry finds the payment settled.
        with (
            patch.object(PaymentTransaction, "_wechatpay_credit_wallet", slow_credit),
            mute_logger("odoo.sql_db"),
        ):
            outcomes = [
                self._race(tx_id, body)
                for tx_id, body in zip(self.tx_ids, self.bodies, strict=True)
            ]
        self.assertEqual(
            sorted(credits),
            sorted(self.tx_ids),
            "the path that lost the race never even tried to credit the wallet",
        )
        self.assertEqual(
            outcomes, [{"notify": 204, "query": "done"}] * ROUNDS, "both paths succeed"
        )
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            account = env["prepaid.account"].browse(self.ids["account"])
            for tx in env["payment.transaction"].browse(self.tx_ids):
                self.assertEqual(tx.state, "done")
                lines = env["prepaid.ledger.line"].search(
                    [("idempotency_key", "=", f"payment.transaction:{tx.id}")]
                )
                self.assertEqual(len(lines), 1, "one ledger line with the key")
                self.assertEqual(lines.amount, tx.amount)
            self.assertEqual(account.balance, 60.0, "10 + 20 + 30, each once")
            moves = env["account.move"].search(
                [("journal_id", "=", self.ids["journal"])]
            )
            self.assertEqual(len(moves), ROUNDS, "one bank entry per payment")

    def _wait_until_blocked_by(self, pid, timeout=60.0):
        """Return once another backend waits on a lock ``pid`` holds."""
        deadline = time.monotonic() + timeout
        with self.registry.cursor() as probe:
            while True:
                # pg_locks is read live (no snapshot): a new answer each time
                probe.execute(
                    "SELECT count(*) FROM pg_locks"
                    " WHERE NOT granted AND %s = ANY(pg_blocking_pids(pid))",
                    [pid],
                )
                if probe.fetchone()[0]:
                    return
                if time.monotonic() > deadline:
                    self.fail("the cron never waited on the locked order")
                time.sleep(0.02)

    def test_the_sync_cron_skips_an_order_settled_concurrently_and_goes_on(self):
        first, *others = self.tx_ids
        # Another transaction (a notification being settled) holds and
        # changes the first order while the cron runs.
        locker = self.registry.cursor()
        self.addCleanup(locker.close)
        locker.execute(
            "SELECT id FROM payment_transaction WHERE id = %s FOR UPDATE", [first]
        )
        locker.execute(
            "UPDATE payment_transaction SET state_message = 'settling' WHERE id = %s",
            [first],
        )
        outcome = {}

        def cron():
            try:
                with self.registry.cursor() as cr:
                    env = api.Environment(cr, SUPERUSER_ID, {})
                    env["payment.transaction"]._cron_wechatpay_sync(commit=True)
                outcome["cron"] = "ran"
            except Exception as err:  # noqa: BLE001 - reported by the test
                outcome["cron"] = repr(err)

        locker.execute("SELECT pg_backend_pid()")
        locker_pid = locker.fetchone()[0]
        thread = threading.Thread(target=cron)
        with mute_logger("odoo.sql_db"):
            thread.start()
            # Release the lock only once the cron waits on it (a fixed sleep
            # is too short on a loaded machine: the cron would then start
            # after the commit and see the order free).
            self._wait_until_blocked_by(locker_pid)
            locker.commit()
            thread.join(timeout=60)
        self.assertEqual(outcome, {"cron": "ran"}, "the run is not aborted")
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            txs = env["payment.transaction"].browse(self.tx_ids)
            states = dict(zip(txs.ids, txs.mapped("state"), strict=True))
            self.assertEqual([states[i] for i in others], ["done"] * len(others))
            self.assertNotEqual(states[first], "done", "left to the next run")
            account = env["prepaid.account"].browse(self.ids["account"])
            self.assertEqual(account.balance, 50.0, "20 + 30")
        # the next run settles it
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            env["payment.transaction"]._cron_wechatpay_sync(commit=True)
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            self.assertEqual(env["payment.transaction"].browse(first).state, "done")
            account = env["prepaid.account"].browse(self.ids["account"])
            self.assertEqual(account.balance, 60.0)
