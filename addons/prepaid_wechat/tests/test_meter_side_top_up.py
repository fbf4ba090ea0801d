from odoo.tests import tagged

from odoo.addons.prepaid_metering.tests.common import electric

from .common import WeChatCase


@tagged("post_install", "-at_install")
class TestMeterSideTopUp(WeChatCase):
    """A WeChat top-up of an account whose meter keeps the balance reaches
    the meter: one counted record queued with the wallet credit, sent by the
    command queue, however often the payment is reported."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ms_meter = cls.make_meter(cls.gateway, 8, billing_mode="meter")
        cls.ms_account = cls.make_account(cls.ms_meter)
        cls.server_meter = cls.make_meter(cls.gateway, 9, room=cls.room2)
        cls.side_meter = cls.make_meter(
            cls.gateway, 10, room=cls.room2, billing_mode="meter"
        )
        cls.mixed = cls.make_account(cls.server_meter | cls.side_meter)

    def setUp(self):
        super().setUp()
        self.fleet = self.start_fresh_fleet(
            [
                (
                    "socket",
                    [
                        electric(device, balance=20.0, unit_price=1.0, purchase_count=4)
                        for device in (8, 9, 10)
                    ],
                )
            ],
            [self.gateway],
        )
        self.sim = self.fleet.meter(0, 8)

    def paid(self, account, amount=100.0):
        tx = self.make_tx(amount, account=account)._wechatpay_create_order()
        order = self.peer.pay(tx.wechatpay_out_trade_no, notify=False)
        return tx, self.peer.notification(order)

    def records(self, meters):
        return self.env["prepaid.meter.command"].search(
            [("meter_id", "in", meters.ids), ("command_type", "=", "record_write")]
        )

    def test_top_up_is_written_to_the_meter_once_however_often_reported(self):
        tx, body = self.paid(self.ms_account, 100.0)
        self.assertEqual(self.notify(body).status_code, 204)
        self.assertEqual(self.notify(body).status_code, 204)
        self.assertEqual(tx._wechatpay_sync(), "done")  # the return page's query
        self.env["payment.transaction"]._cron_wechatpay_sync()
        self.env.invalidate_all()
        command = self.records(self.ms_meter)
        self.assertEqual(len(command), 1)
        self.assertEqual(command.params["amount"], 100.0)
        # Queued with the credit; nothing spoken to the meter in the request.
        self.assertEqual(command.state, "queued")
        self.assertEqual(self.sim.purchase_count, 4)
        self.assertEqual(self.recharges(self.ms_account).amount, 100.0)
        Command = self.env["prepaid.meter.command"]
        Command._process_in_own_cursor(command.ids)
        self.env.invalidate_all()
        self.assertEqual(command.state, "done", command.last_error)
        self.assertEqual(self.sim.purchase_count, 5)
        self.assertAlmostEqual(self.sim.balance, 120.0, places=2)
        self.assertAlmostEqual(self.ms_meter.meter_balance_mirror, 120.0, places=2)
        # The meter applied it: the wallet is not credited a second time.
        self.assertEqual(len(self.recharges(self.ms_account)), 1)
        self.assertEqual(self.ms_account.balance, 100.0)
        self.assertEqual(self.notify(body).status_code, 204)
        self.assertEqual(len(self.records(self.ms_meter)), 1)

    def test_an_account_with_both_kinds_of_meter_tops_up_its_meter_side_one(self):
        _tx, body = self.paid(self.mixed, 50.0)
        self.assertEqual(self.notify(body).status_code, 204)
        self.assertEqual(self.notify(body).status_code, 204)
        self.env.invalidate_all()
        self.assertFalse(self.records(self.server_meter))
        command = self.records(self.side_meter)
        self.assertEqual(len(command), 1)
        self.assertEqual(command.params["amount"], 50.0)
        self.assertEqual(self.mixed.balance, 50.0)
        self.env["prepaid.meter.command"]._process_in_own_cursor(command.ids)
        self.env.invalidate_all()
        self.assertEqual(command.state, "done", command.last_error)
        self.assertAlmostEqual(self.fleet.meter(0, 10).balance, 70.0, places=2)
        self.assertEqual(self.fleet.meter(0, 9).purchase_count, 4)
        self.assertEqual(self.mixed.balance, 50.0)

    def test_a_top_up_the_meter_refuses_stays_in_the_wallet_with_a_todo(self):
        _tx, body = self.paid(self.ms_account, 30.0)
        self.assertEqual(self.notify(body).status_code, 204)
        self.sim.inject("timeout")
        command = self.records(self.ms_meter)
        self.env["prepaid.meter.command"]._process_in_own_cursor(command.ids)
        self.env.invalidate_all()
        self.assertEqual(command.state, "failed")
        self.assertEqual(self.ms_account.balance, 30.0)
        todo = self.ms_account.activity_ids
        self.assertEqual(len(todo), 1)
        self.assertIn(self.ms_meter.display_name, todo.summary)
