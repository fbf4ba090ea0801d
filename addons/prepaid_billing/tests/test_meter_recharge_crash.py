from datetime import timedelta
from unittest.mock import patch

from freezegun import freeze_time

from odoo import fields
from odoo.tests import tagged

from odoo.addons.prepaid_metering.models.prepaid_meter_command_queue import (
    PrepaidMeterCommandQueue,
)
from odoo.addons.prepaid_metering.models.prepaid_meter_command_wire import (
    PrepaidMeterCommandWire,
)

from ..models.prepaid_account_money import PrepaidAccount
from .test_meter_side import MeterSideCase


class WorkerKilled(BaseException):
    """The worker process dies here: nothing after this point runs, and its
    transaction is rolled back to its last commit."""


def killed(*_args, **_kwargs):
    raise WorkerKilled


@tagged("post_install", "-at_install")
class TestMeterRechargeCrash(MeterSideCase):
    """A meter recharge survives a crash at any point: settled by the meter's
    counter, credited exactly once iff the meter applied the record, never a
    second record.

    Every step runs in a transaction of its own (``registry.cursor()``; in
    the registry's test mode a crash rolls it back to its last commit, as
    PostgreSQL does for a killed worker); the meters are the real simulator.
    """

    def queue(self, amount=30.0):
        Command = self.env["prepaid.meter.command"]
        return Command._create_in_own_cursor(
            {
                "meter_id": self.meter.id,
                "command_type": "record_write",
                "params": {
                    "amount": amount,
                    "account_id": self.account.id,
                    "journal_id": self.cash.id,
                    "payment_method": "cash",
                },
            }
        )

    def crash(self, target, method, call):
        """Run ``call`` with the worker killed in ``target.method``.

        (Not ``assertRaises``: Odoo's wraps its block in a savepoint of the
        test's transaction and would undo what the worker committed.)
        """
        died = False
        with patch.object(target, method, killed):
            try:
                call()
            except WorkerKilled:
                died = True
        if not died:
            self.fail(f"the worker did not reach {method}")
        self.env.invalidate_all()

    def send_and_die_at(self, target, method, command_id):
        Command = self.env["prepaid.meter.command"]
        self.crash(target, method, lambda: Command._process_in_own_cursor([command_id]))
        return Command.browse(command_id)

    def recover(self):
        """The recovery job, once the timeout has passed, in its own
        transaction."""
        later = fields.Datetime.now() + timedelta(minutes=10)
        with freeze_time(later), self.registry.cursor() as cr:
            done = self.env(cr=cr)["prepaid.meter.command"]._cron_recover(commit=False)
        self.env.invalidate_all()
        return done

    def credits(self):
        return self.account.ledger_line_ids.filtered(
            lambda line: line.line_type == "recharge"
        )

    def test_crash_after_the_write_before_the_outcome_is_settled_by_the_counter(self):
        command = self.send_and_die_at(
            PrepaidMeterCommandQueue, "_record_outcome", self.queue()
        )
        # The outbox survived the crash; the meter applied the record.
        self.assertEqual(command.state, "sending")
        self.assertEqual(command.expected_count, 5)
        self.assertEqual(self.sim.purchase_count, 5)
        self.assertAlmostEqual(self.sim.balance, 50.0, places=2)
        self.assertFalse(self.credits(), "not credited yet")
        self.assertEqual(self.recover(), 1)
        self.assertEqual(command.state, "done", command.last_error)
        self.assertIn("already applied", command.result)
        self.assertEqual(self.sim.purchase_count, 5, "never a second record")
        self.assertEqual(self.credits().amount, 30.0)
        self.assertEqual(self.account.balance, 30.0)
        self.assert_reconciled()

    def test_crash_before_the_write_writes_the_record_once_on_recovery(self):
        # Killed right after the outbox commit: nothing reached the meter.
        command = self.send_and_die_at(
            PrepaidMeterCommandWire, "_settle_record", self.queue()
        )
        self.assertEqual(command.state, "sending")
        self.assertEqual(command.expected_count, 5)
        self.assertEqual(self.sim.purchase_count, 4)
        self.assertEqual(self.recover(), 1)
        self.assertEqual(command.state, "done", command.last_error)
        self.assertEqual(self.sim.purchase_count, 5)
        self.assertAlmostEqual(self.sim.balance, 50.0, places=2)
        self.assertEqual(self.account.balance, 30.0)

    def test_crash_after_the_outcome_before_the_credit_credits_once(self):
        command = self.send_and_die_at(
            PrepaidAccount, "_credit_meter_recharge", self.queue()
        )
        self.assertEqual(command.state, "done")
        self.assertTrue(command.followup_pending)
        self.assertEqual(self.sim.purchase_count, 5)
        self.assertFalse(self.credits())
        self.assertEqual(self.recover(), 1)
        self.assertFalse(command.followup_pending)
        self.assertEqual(self.credits().amount, 30.0)
        self.assertEqual(self.account.balance, 30.0)
        self.assertEqual(self.meter.meter_balance_mirror, 50.0)
        self.assert_reconciled()

    def test_second_recovery_and_retry_never_write_or_credit_again(self):
        command = self.send_and_die_at(
            PrepaidMeterCommandQueue, "_record_outcome", self.queue()
        )
        requests = self.fleet.gateways[0].requests
        # A manager retries the stuck command once the timeout has passed
        # (the dead worker's bus claim has run out too), and the recovery job
        # runs as well.
        with freeze_time(fields.Datetime.now() + timedelta(minutes=10)):
            command.action_retry()
            self.env["prepaid.meter.command"]._process_in_own_cursor([command.id])
        self.assertEqual(self.recover(), 0)
        self.assertEqual(self.recover(), 0)
        self.assertEqual(command.state, "done", command.last_error)
        self.assertEqual(self.sim.purchase_count, 5)
        self.assertAlmostEqual(self.sim.balance, 50.0, places=2)
        self.assertEqual(self.fleet.gateways[0].requests - requests, 1, "one read")
        self.assertEqual(len(self.credits()), 1)
        self.assertEqual(self.account.balance, 30.0)
        # Settling the follow-up again (a second worker) posts nothing more.
        command.sudo()._on_command_settled()
        self.env.invalidate_all()
        self.assertEqual(len(self.credits()), 1)
        self.assertEqual(self.account.balance, 30.0)

    def test_wizard_error_after_queueing_loses_nothing(self):
        # The wizard's own transaction fails after the command is committed
        # (here: while waiting for the outcome): the command goes on alone.
        wizard = self.wizard(30.0)
        self.crash(
            PrepaidMeterCommandQueue, "_process_in_own_cursor", wizard.action_confirm
        )
        command = self.commands()
        self.assertEqual(command.state, "queued")
        self.assertFalse(self.credits())
        self.env["prepaid.meter.command"]._process_in_own_cursor(command.ids)
        self.assertEqual(command.state, "done", command.last_error)
        self.assertEqual(self.sim.purchase_count, 5)
        self.assertEqual(self.account.balance, 30.0)
