import threading

from odoo import SUPERUSER_ID, Command, api
from odoo.tests import TransactionCase, tagged

from odoo.addons.prepaid_metering.tests.common import Fleet, electric, fleet_spec

#: Seconds the call may take before the test calls it a hang (the meter
#: answers in milliseconds; the wizard waits at most 5 s for it).
HANG_AFTER_S = 30


@tagged("post_install", "-at_install")
class TestMeterRechargeInOneTransaction(TransactionCase):
    """A meter-side recharge whose wizard is created in the same transaction
    that confirms it (one server-side call: an automated action, an RPC
    method) is applied and credited; the command's own transaction never
    waits for the caller's transaction.

    The caller and the command's transaction are real, separate PostgreSQL
    sessions (no test mode), so the data they share is committed here and
    removed again in cleanup.
    """

    def setUp(self):
        super().setUp()
        self.fleet = Fleet.from_spec(
            fleet_spec(
                [
                    (
                        "socket",
                        [
                            electric(
                                1,
                                energy_kwh=500.0,
                                balance=20.0,
                                unit_price=1.0,
                                purchase_count=4,
                            )
                        ],
                    )
                ]
            )
        ).start()
        self.addCleanup(self.fleet.stop)
        self.sim = self.fleet.meter(0, 1)
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {"tracking_disable": True})
            company = env.company
            self.saved_liability = company.prepaid_liability_account_id.id
            self.company_id = company.id
            Account = env["account.account"]
            liability = Account.create(
                {
                    "name": "Lock test prepayments",
                    "code": "TLK219",
                    "account_type": "liability_current",
                    "company_ids": [Command.set(company.ids)],
                }
            )
            cash = Account.create(
                {
                    "name": "Lock test cash",
                    "code": "TLK101",
                    "account_type": "asset_cash",
                    "company_ids": [Command.set(company.ids)],
                }
            )
            journal = env["account.journal"].create(
                {
                    "name": "Lock test cash",
                    "code": "TLKC",
                    "type": "cash",
                    "company_id": company.id,
                    "default_account_id": cash.id,
                }
            )
            company.prepaid_liability_account_id = liability
            partner = env["res.partner"].create({"name": "Lock test tenant"})
            tariff = env["prepaid.tariff"].create(
                {
                    "name": "Lock test flat",
                    "version_ids": [
                        Command.create(
                            {"date_from": "2020-01-01", "kind": "flat", "price": 1.0}
                        )
                    ],
                }
            )
            site = env["prepaid.site"].create(
                {"name": "Lock test site", "tz": "Asia/Shanghai"}
            )
            gateway = env["prepaid.gateway"].create(
                {
                    "name": "Lock test bus",
                    "site_id": site.id,
                    "protocol": "modbus_tcp",
                    "host": "127.0.0.1",
                    "port": self.fleet.gateways[0].port,
                    "timeout_s": 0.5,
                    "next_poll_at": "2999-01-01 00:00:00",
                }
            )
            meter = env["prepaid.meter"].create(
                {
                    "name": "Lock test meter",
                    "gateway_id": gateway.id,
                    "device_id": 1,
                    "billing_mode": "meter",
                    "profile_ids": [
                        Command.set(
                            (
                                env.ref("prepaid_metering.profile_acrel_ddsy1352")
                                | env.ref("prepaid_metering.profile_px_prepaid_v1")
                            ).ids
                        )
                    ],
                }
            )
            account = env["prepaid.account"].create(
                {
                    "partner_id": partner.id,
                    "tariff_id": tariff.id,
                    "meter_link_ids": [Command.set(meter.ids)],
                }
            )
            account._open()
            self.ids = {
                "accounts": [liability.id, cash.id],
                "journal": journal.id,
                "partner": partner.id,
                "tariff": tariff.id,
                "site": site.id,
                "gateway": gateway.id,
                "meter": meter.id,
                "account": account.id,
            }
        self.addCleanup(self._remove_committed_data)

    def _remove_committed_data(self):
        ids = self.ids
        with self.registry.cursor() as cr:
            for statement, value in [
                (
                    "DELETE FROM prepaid_recharge_wizard WHERE account_id = %s",
                    "account",
                ),
                ("DELETE FROM prepaid_ledger_line WHERE account_id = %s", "account"),
                ("DELETE FROM prepaid_alarm_notice WHERE account_id = %s", "account"),
                ("DELETE FROM account_move WHERE journal_id = %s", "journal"),
                ("DELETE FROM prepaid_meter_command WHERE meter_id = %s", "meter"),
                ("DELETE FROM prepaid_reading WHERE meter_id = %s", "meter"),
                (
                    "UPDATE prepaid_meter SET billing_account_id = NULL WHERE id = %s",
                    "meter",
                ),
                ("DELETE FROM prepaid_account WHERE id = %s", "account"),
                ("DELETE FROM prepaid_meter WHERE id = %s", "meter"),
                ("DELETE FROM prepaid_gateway WHERE id = %s", "gateway"),
                ("DELETE FROM prepaid_site WHERE id = %s", "site"),
                ("DELETE FROM prepaid_tariff WHERE id = %s", "tariff"),
                ("DELETE FROM account_journal WHERE id = %s", "journal"),
                ("DELETE FROM res_partner WHERE id = %s", "partner"),
                (
                    "DELETE FROM mail_message WHERE model = 'prepaid.account' "
                    "AND res_id = %s",
                    "account",
                ),
                (
                    "DELETE FROM mail_message WHERE model = 'prepaid.meter' "
                    "AND res_id = %s",
                    "meter",
                ),
            ]:
                cr.execute(statement, [ids[value]])
            env = api.Environment(cr, SUPERUSER_ID, {})
            env["res.company"].browse(self.company_id).write(
                {"prepaid_liability_account_id": self.saved_liability}
            )
            cr.execute(
                "DELETE FROM account_account WHERE id = ANY(%s)", [ids["accounts"]]
            )

    def _confirm_in_one_transaction(self, amount):
        """Create the wizard and confirm it in one real transaction, committed
        at the end as an RPC call is; returns the action.

        A watchdog guards against a hang: after ``HANG_AFTER_S`` it cancels
        the sessions waiting for the caller's transaction, so that a hang
        fails the test instead of stopping the suite. (The call runs in the
        test's thread, which holds the registry lock the code under test
        takes for its own cursors.)
        """
        caller, cancelled, done = {}, [], threading.Event()

        def watchdog():
            if done.wait(HANG_AFTER_S):
                return
            with self.registry.cursor() as cr:
                cr.execute(
                    "SELECT pid, pg_cancel_backend(pid) FROM pg_stat_activity "
                    "WHERE %s = ANY(pg_blocking_pids(pid))",
                    [caller["pid"]],
                )
                cancelled.extend(row[0] for row in cr.fetchall())

        guard = threading.Thread(target=watchdog)
        try:
            with self.registry.cursor() as cr:
                cr.execute("SELECT pg_backend_pid()")
                caller["pid"] = cr.fetchone()[0]
                guard.start()
                env = api.Environment(cr, SUPERUSER_ID, {})
                wizard = env["prepaid.recharge.wizard"].create(
                    {
                        "account_id": self.ids["account"],
                        "amount": amount,
                        "journal_id": self.ids["journal"],
                        "meter_id": self.ids["meter"],
                    }
                )
                action = wizard.action_confirm()
        finally:
            done.set()
            if guard.is_alive():
                guard.join()
        self.assertFalse(
            cancelled,
            f"sessions {cancelled} waited more than {HANG_AFTER_S} s for the "
            "caller's own transaction (cancelled)",
        )
        return action

    def test_wizard_created_and_confirmed_in_one_transaction_is_applied(self):
        action = self._confirm_in_one_transaction(30.0)
        self.assertEqual(action["params"]["type"], "success", action)
        self.assertEqual(self.sim.purchase_count, 5, "one record on the meter")
        self.assertAlmostEqual(self.sim.balance, 50.0, places=2)
        with self.registry.cursor() as cr:
            cr.execute(
                """SELECT state, followup_pending FROM prepaid_meter_command
                    WHERE meter_id = %s""",
                [self.ids["meter"]],
            )
            self.assertEqual(cr.fetchall(), [("done", False)])
            cr.execute(
                """SELECT line_type, amount FROM prepaid_ledger_line
                    WHERE account_id = %s""",
                [self.ids["account"]],
            )
            self.assertEqual(
                [(t, float(a)) for t, a in cr.fetchall()], [("recharge", 30.0)]
            )
            cr.execute(
                "SELECT balance FROM prepaid_account WHERE id = %s",
                [self.ids["account"]],
            )
            self.assertEqual(float(cr.fetchone()[0]), 30.0)
