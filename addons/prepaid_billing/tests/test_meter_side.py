from unittest.mock import patch

from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user, tagged

from odoo.addons.prepaid_metering.tests.common import electric

from ..models import prepaid_account_meter_record as meter_record
from .common import BillingCase


class MeterSideCase(BillingCase):
    """A px_prepaid_v1 meter that keeps the balance itself (purchase count 4,
    20.00 on it), billed to one account.

    The recharge wizard commits its command in a transaction of its own; the
    registry's test mode turns those transactions into savepoints of the
    test's transaction, so that they see the test's data and vanish with it.
    """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.meter = cls.make_meter(cls.gateway, 1, billing_mode="meter")
        cls.account = cls.make_account(cls.meter)

    def setUp(self):
        super().setUp()
        self.fleet = self.start_fresh_fleet(
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
            ],
            [self.gateway],
        )
        self.sim = self.fleet.meter(0, 1)
        self.env.flush_all()
        self.registry.enter_test_mode(self.cr)
        self.addCleanup(self.registry.leave_test_mode)

    def wizard(self, amount, operation="recharge", meter=True, user=None):
        env = self.env(user=user) if user else self.env
        return env["prepaid.recharge.wizard"].create(
            {
                "account_id": self.account.id,
                "operation": operation,
                "amount": amount,
                "journal_id": self.cash.id,
                "meter_id": self.meter.id if meter else False,
            }
        )

    def recharge(self, amount, **kw):
        result = self.wizard(amount, **kw).action_confirm()
        self.env.invalidate_all()
        return result

    def commands(self):
        return self.env["prepaid.meter.command"].search(
            [("meter_id", "=", self.meter.id), ("command_type", "=", "record_write")]
        )

    def wallet_lines(self):
        return self.account.ledger_line_ids.filtered(
            lambda line: line.line_type in ("recharge", "refund")
        )


@tagged("post_install", "-at_install")
class TestMeterSideRecharge(MeterSideCase):
    def test_recharge_is_credited_when_the_meter_accepts_it(self):
        result = self.recharge(30.0)
        self.assertEqual(result["params"]["type"], "success")
        self.assertAlmostEqual(self.sim.balance, 50.0, places=2)
        self.assertEqual(self.sim.purchase_count, 5)
        command = self.commands()
        self.assertEqual(command.state, "done", command.last_error)
        self.assertEqual(command.expected_count, 5)
        line = self.wallet_lines()
        self.assertEqual(line.amount, 30.0)
        self.assertEqual(line.meter_id, self.meter)
        self.assertEqual(line.move_id.state, "posted")
        self.assertEqual(self.meter.meter_balance_mirror, 50.0)
        self.assert_reconciled()

    def test_meter_deduction_is_mirrored_in_the_wallet(self):
        # The simulated load jumps 12.5 kWh at once: make that plausible.
        self.meter.rated_power_kw = 100000.0
        self.gateway._poll_now()
        self.recharge(30.0)
        self.sim.consume(12.5)  # 12.5 kWh x 1.00 deducted by the meter
        self.gateway._poll_now()
        self.bill()
        self.assertAlmostEqual(self.sim.balance, 37.5, places=2)
        consumption = self.consumption(self.account)
        self.assertEqual(consumption.amount, -12.5)
        self.assertEqual(consumption.payment_method, "meter")
        self.assertEqual(self.account.balance, 30.0 - 12.5)

    def test_confirming_twice_writes_one_record_and_credits_once(self):
        wizard = self.wizard(30.0)
        wizard.action_confirm()
        wizard.action_confirm()
        self.env.invalidate_all()
        self.assertEqual(len(self.commands()), 1)
        self.assertEqual(self.sim.purchase_count, 5)
        self.assertEqual(self.account.balance, 30.0)

    def test_recharge_of_an_unreachable_meter_credits_nothing(self):
        self.sim.inject("timeout")
        with self.assertRaisesRegex(UserError, "did not apply"):
            self.recharge(10.0)
        self.env.invalidate_all()
        command = self.commands()
        self.assertEqual(command.state, "failed", "kept, with its reason")
        self.assertIn("nothing written", command.last_error)
        self.assertFalse(self.account.ledger_line_ids)
        self.assertEqual(self.sim.purchase_count, 4)

    def test_meter_still_retrying_is_reported_as_sending(self):
        self.env["ir.config_parameter"].sudo().set_param(
            "prepaid_metering.command_max_attempts", 3
        )
        self.sim.inject("timeout")
        result = self.recharge(10.0)
        self.assertEqual(result["params"]["type"], "warning")
        command = self.commands()
        self.assertEqual(result["params"]["next"]["res_id"], command.id)
        self.assertEqual(command.state, "queued")
        self.assertFalse(self.account.ledger_line_ids)
        # The command job finishes it later; the wallet follows then.
        self.sim.clear_faults()
        command.sudo().write({"next_attempt_at": False})
        self.process_commands()
        self.assertEqual(command.state, "done", command.last_error)
        self.assertEqual(self.sim.purchase_count, 5)
        self.assertEqual(self.account.balance, 10.0)

    def test_recharge_on_a_bus_being_polled_waits_in_the_queue(self):
        self.gateway._claim_bus("poll")
        with patch.object(meter_record, "METER_WAIT_S", 0.0):
            result = self.recharge(30.0)
        self.assertEqual(result["params"]["type"], "warning")
        self.assertIn(
            f"The bus of gateway {self.gateway.name} is busy (being polled)",
            result["params"]["message"],
        )
        command = self.commands()
        self.assertEqual(command.state, "queued")
        self.assertFalse(command.expected_count, "the meter was not spoken to")
        self.assertEqual(self.sim.purchase_count, 4)
        self.assertFalse(self.account.ledger_line_ids)
        # The poll ends; the command job sends it and the wallet follows.
        self.gateway._release_bus("poll")
        self.process_commands()
        self.assertEqual(command.state, "done", command.last_error)
        self.assertEqual(self.sim.purchase_count, 5)
        self.assertEqual(self.account.balance, 30.0)

    def test_refund_takes_the_money_off_the_meter_first(self):
        self.recharge(30.0)
        result = self.recharge(10.0, operation="refund")
        self.assertEqual(result["params"]["type"], "success")
        self.assertAlmostEqual(self.sim.balance, 40.0, places=2)
        self.assertEqual(self.sim.purchase_count, 6)
        refund = self.wallet_lines().filtered(lambda line: line.line_type == "refund")
        self.assertEqual(refund.amount, -10.0)
        self.assertEqual(refund.move_id.state, "posted")
        self.assertEqual(self.account.balance, 20.0)
        self.assertEqual(self.meter.meter_balance_mirror, 40.0)
        self.assert_reconciled()

    def test_refund_the_meter_refuses_leaves_the_wallet_alone(self):
        self.recharge(10.0)
        self.sim.consume(25.0)  # the meter now holds 5.00; not read yet
        with self.assertRaisesRegex(UserError, "did not apply"):
            self.recharge(10.0, operation="refund")
        self.env.invalidate_all()
        self.assertAlmostEqual(self.sim.balance, 5.0, places=2)
        self.assertEqual(self.sim.purchase_count, 5)
        self.assertEqual(self.wallet_lines().mapped("amount"), [10.0])
        self.assertEqual(self.account.balance, 10.0)

    def test_wallet_refund_refused_while_a_meter_keeps_the_money(self):
        self.recharge(30.0)
        with self.assertRaisesRegex(UserError, "Choose the meter"):
            self.recharge(10.0, operation="refund", meter=False)
        self.assertEqual(self.account.balance, 30.0)
        self.assertAlmostEqual(self.sim.balance, 50.0, places=2)

    def test_closing_refused_while_a_meter_keeps_the_money(self):
        self.recharge(30.0)
        wizard = self.env["prepaid.account.close.wizard"].create(
            {
                "account_id": self.account.id,
                "read_meters": False,
                "journal_id": self.cash.id,
            }
        )
        with self.assertRaisesRegex(UserError, "Refund it from the meter first"):
            wizard.action_close()
        self.assertEqual(self.account.state, "open")
        self.assertEqual(self.account.balance, 30.0)
        self.assertEqual(self.meter.billing_account_id, self.account)

    def test_a_manager_cuts_and_restores_a_meter_side_meter_by_hand(self):
        # Billing never switches a meter-side meter on its own; a manager's
        # override does, both ways, and the meter's relay follows.
        Wizard = self.env["prepaid.supply.override.wizard"]
        for action, relay_open in (("cut", True), ("restore", False)):
            Wizard.create(
                {"account_id": self.account.id, "action": action, "reason": "test"}
            ).action_apply()
            command = self.meter.command_ids.sorted("id")[-1]
            self.assertEqual(
                command.command_type, "relay_off" if relay_open else "relay_on"
            )
            self.process_commands()
            self.assertEqual(command.state, "done", command.last_error)
            self.assertEqual(self.sim.relay_open, relay_open, action)
        self.assertEqual(self.account.supply_state, "on")

    def test_a_top_up_restores_a_meter_side_meter_a_manager_cut(self):
        self.env["prepaid.supply.override.wizard"].create(
            {"account_id": self.account.id, "action": "cut", "reason": "test"}
        ).action_apply()
        Command = self.env["prepaid.meter.command"]
        Command._cron_process()
        self.assertTrue(self.sim.relay_open)
        self.assertEqual(self.account.supply_state, "cut_off")
        self.recharge(30.0)
        Command._cron_process()
        self.env.invalidate_all()
        self.assertEqual(self.account.supply_state, "on")
        self.assertFalse(self.sim.relay_open, "the meter the manager cut is on")
        self.assertEqual(self.meter.command_ids.sorted("id")[-1].state, "done")
        self.assertFalse(self.account.supply_mismatch)

    def test_a_meter_side_relay_contradicting_the_supply_is_flagged(self):
        self.assertFalse(self.account.supply_mismatch)
        # A poll reads the meter's relay open while the account says "On".
        self.env.cr.execute(
            "UPDATE prepaid_meter SET switch_state = 'off' WHERE id = %s",
            [self.meter.id],
        )
        self.env.invalidate_all()
        self.assertEqual(self.account.supply_state, "on")
        self.assertTrue(self.account.supply_mismatch)
        self.assertIn(
            self.account,
            self.env["prepaid.account"].search([("supply_mismatch", "=", True)]),
        )

    def test_a_cut_account_expects_only_its_server_side_meters_off(self):
        own = self.make_meter(self.gateway, 3, billing_mode="meter")
        server = self.make_meter(self.gateway, 2)
        account = self.make_account(own | server, opening=50.0)
        self.env.cr.execute(
            "UPDATE prepaid_meter SET switch_state = 'on' WHERE id = ANY(%s)",
            [[own.id, server.id]],
        )
        account._write_guarded({"supply_state": "cut_off"})
        self.env.invalidate_all()
        # the server-side meter billing cut is still on: a contradiction
        self.assertEqual(account._supply_mismatch_ids(account.ids), account.ids)
        self.env.cr.execute(
            "UPDATE prepaid_meter SET switch_state = 'off' WHERE id = %s",
            [server.id],
        )
        # the meter-side meter runs on its own balance: no contradiction
        self.assertFalse(account._supply_mismatch_ids(account.ids))


@tagged("post_install", "-at_install")
class TestMeterSideAccess(MeterSideCase):
    """Only billing users move money on a meter."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.operator = new_test_user(
            cls.env,
            login="ms_operator",
            groups="base.group_user,prepaid_metering.group_metering_manager",
            company_id=cls.company.id,
            company_ids=[cls.company.id],
        )
        cls.accountant = new_test_user(
            cls.env,
            login="ms_accountant",
            groups="base.group_user,prepaid_billing.group_billing_user",
            company_id=cls.company.id,
            company_ids=[cls.company.id],
        )
        cls.server_meter = cls.make_meter(cls.gateway, 2, room=cls.room2)
        cls.Command = cls.env["prepaid.meter.command"]

    def test_metering_user_cannot_queue_a_meter_recharge(self):
        with self.assertRaisesRegex(AccessError, "Only billing users"):
            self.Command.with_user(self.operator).create(
                {
                    "meter_id": self.meter.id,
                    "command_type": "record_write",
                    "params": {"amount": 100.0},
                }
            )
        self.assertFalse(self.commands())

    def test_metering_user_cannot_write_money_registers_of_meter_side_meters(self):
        for register in ("unit_price", "overdraft_limit"):
            with self.subTest(register=register):
                with self.assertRaisesRegex(AccessError, "only billing users"):
                    self.Command.with_user(self.operator).create(
                        {
                            "meter_id": self.meter.id,
                            "command_type": "write_params",
                            "params": {register: 0.01},
                        }
                    )
        self.assertFalse(self.Command.search([("meter_id", "=", self.meter.id)]))
        # Alarm thresholds, and any register of a server-side meter, are fine.
        for meter, params in (
            (self.meter, {"alarm1_amount": 30}),
            (self.server_meter, {"unit_price": 0.9}),
        ):
            self.Command.with_user(self.operator).create(
                {"meter_id": meter.id, "command_type": "write_params", "params": params}
            )

    def test_billing_user_recharges_the_meter(self):
        self.recharge(25.0, user=self.accountant)
        self.assertEqual(self.sim.purchase_count, 5)
        self.assertEqual(self.account.balance, 25.0)
        command = self.commands()
        self.assertEqual(command.requested_by, self.accountant)
        with self.assertRaises(AccessError):
            command.with_user(self.accountant).write({"params": {"amount": 999.0}})
        self.Command.with_user(self.accountant).create(
            {
                "meter_id": self.meter.id,
                "command_type": "write_params",
                "params": {"unit_price": 0.95},
            }
        )
