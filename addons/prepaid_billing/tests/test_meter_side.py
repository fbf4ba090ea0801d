from odoo.exceptions import UserError
from odoo.tests import tagged

from odoo.addons.prepaid_metering.tests.common import electric

from .common import BillingCase


@tagged("post_install", "-at_install")
class TestMeterSideRecharge(BillingCase):
    """px_prepaid_v1 meters keep the balance: the system writes recharge
    records and mirrors what the meter reports."""

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

    def recharge(self, amount):
        wizard = self.env["prepaid.recharge.wizard"].create(
            {
                "account_id": self.account.id,
                "amount": amount,
                "journal_id": self.cash.id,
                "meter_id": self.meter.id,
            }
        )
        return wizard.action_confirm()

    def test_recharge_is_credited_when_the_meter_accepts_it(self):
        self.recharge(30.0)
        self.assertAlmostEqual(self.sim.balance, 50.0, places=2)
        self.assertEqual(self.sim.purchase_count, 5)
        line = self.account.ledger_line_ids.filtered(
            lambda line: line.line_type == "recharge"
        )
        self.assertEqual(line.amount, 30.0)
        self.assertEqual(line.meter_id, self.meter)
        self.assertEqual(line.move_id.state, "posted")
        self.assertEqual(self.meter.meter_balance_mirror, 50.0)
        self.assert_reconciled()

    def test_meter_deduction_is_mirrored_in_the_wallet(self):
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

    def send_record(self, count, **params):
        command = self.env["prepaid.meter.command"].create(
            {
                "meter_id": self.meter.id,
                "command_type": "meter_recharge",
                "max_attempts": 1,
                "params": {
                    "account_id": self.account.id,
                    "amount": 10.0,
                    "journal_id": self.cash.id,
                    "count": count,
                    **params,
                },
            }
        )
        command.action_send_now()
        return command

    def test_record_with_a_wrong_count_is_refused_by_the_meter(self):
        # the meter is at 4: a record numbered 7 gets exception 0x03
        command = self.send_record(7)
        self.assertEqual(command.state, "failed")
        self.assertIn("refused", command.last_error)
        self.assertEqual(self.sim.purchase_count, 4)
        self.assertAlmostEqual(self.sim.balance, 20.0, places=2)
        self.assertFalse(self.account.ledger_line_ids)

    def test_replayed_count_is_refused_without_writing(self):
        command = self.send_record(4)
        self.assertEqual(command.state, "failed")
        self.assertIn("already used", command.last_error)
        self.assertEqual(self.sim.purchase_count, 4)
        self.assertFalse(self.account.ledger_line_ids)

    def test_lost_reply_is_resolved_by_reading_the_counter(self):
        # The meter applied record 5 but the reply never came back: the
        # command (retried with the same count) sees 5 and credits once.
        self.sim.recharge(15.0, 5)
        command = self.send_record(5, amount=15.0, attempted=True)
        self.assertEqual(command.state, "done", command.last_error)
        self.assertEqual(self.sim.purchase_count, 5, "not written a second time")
        self.assertAlmostEqual(self.sim.balance, 35.0, places=2)
        self.assertEqual(self.account.balance, 15.0)

    def test_recharge_of_an_unreachable_meter_credits_nothing(self):
        self.fleet.meter(0, 1).inject("timeout")
        with self.assertRaises(UserError):
            self.recharge(10.0)
        self.assertFalse(self.account.ledger_line_ids)
