import base64
import json
import time
from datetime import timedelta

from odoo import fields
from odoo.tests import tagged

from .common import WeChatCase


@tagged("post_install", "-at_install")
class TestWeChatPayNotifications(WeChatCase):
    def paid(self, amount=100.0):
        """A transaction whose order the tester paid on the peer."""
        tx = self.make_tx(amount)._wechatpay_create_order()
        order = self.peer.pay(tx.wechatpay_out_trade_no, notify=False)
        return tx, self.peer.notification(order)

    def assert_nothing_credited(self, tx, response, status=400):
        self.assertEqual(response.status_code, status, response.text)
        self.assertEqual(response.json()["code"], "FAIL")
        tx.invalidate_recordset()
        self.assertEqual(tx.state, "pending")
        self.assertFalse(self.recharges())
        self.assertEqual(self.wallet.balance, 0.0)
        self.assertEqual(self.wallet.supply_state, "cut_off")

    def test_native_order_is_created_once_on_the_peer(self):
        tx = self.make_tx(12.34)._wechatpay_create_order()
        self.assertEqual(tx.state, "pending")
        self.assertTrue(tx.wechatpay_code_url.startswith("weixin://wxpay/bizpayurl"))
        code_url = tx.wechatpay_code_url
        tx._wechatpay_create_order()
        self.assertEqual(tx.wechatpay_code_url, code_url)
        order = self.peer.order(tx.wechatpay_out_trade_no)
        self.assertEqual(order.total, 1234)
        self.assertEqual(
            order.notify_url.split("/payment/")[1],
            (f"wechatpay/notify/{self.provider.id}"),
        )

    def test_notification_delivered_five_times_credits_once_and_restores(self):
        self.assertEqual(self.wallet.supply_state, "cut_off")
        tx, body = self.paid(100.0)
        for _i in range(5):
            self.assertEqual(self.notify(body).status_code, 204)
        tx.invalidate_recordset()
        self.wallet.invalidate_recordset()
        self.assertEqual(tx.state, "done")
        self.assertTrue(tx.provider_reference.startswith("42000"))
        recharge = self.recharges()
        self.assertEqual(len(recharge), 1)
        self.assertEqual(recharge.amount, 100.0)
        self.assertEqual(recharge.payment_method, "wechat")
        self.assertEqual(recharge.move_id.journal_id, self.bank)
        self.assertEqual(self.wallet.balance, 100.0)
        self.assertEqual(self.wallet.supply_state, "on")
        self.assertEqual(len(self.restores()), 1, "one restore command queued")
        self.assertFalse(tx.payment_id, "the wallet recharge books the money")

    def test_notification_and_query_settle_once(self):
        tx, body = self.paid(30.0)
        self.assertEqual(tx._wechatpay_sync(), "done")  # the query wins the race
        self.assertEqual(self.notify(body).status_code, 204)
        self.env["payment.transaction"]._cron_wechatpay_sync()
        self.assertEqual(tx._wechatpay_sync(), "done")
        self.assertEqual(len(self.recharges()), 1)
        self.assertEqual(self.wallet.balance, 30.0)
        self.assertEqual(len(self.restores()), 1)

    def assert_refused_once(self, tx, body, reason):
        for _i in range(3):
            self.assertEqual(self.notify(body).status_code, 204, "acknowledged")
        self.env["payment.transaction"]._cron_wechatpay_sync()
        tx.invalidate_recordset()
        self.wallet.invalidate_recordset()
        self.assertEqual(tx.state, "done")
        self.assertIn("not credited to the wallet", tx.state_message)
        self.assertIn(reason, tx.state_message)
        self.assertFalse(self.recharges(), "the wallet is left untouched")
        self.assertEqual(self.wallet.balance, 0.0)
        self.assertFalse(self.restores())
        todo = self.wallet.activity_ids
        self.assertEqual(len(todo), 1, "one To-Do however often it is reported")
        self.assertEqual(
            todo.activity_type_id, self.env.ref("mail.mail_activity_data_todo")
        )
        self.assertIn(tx.reference, todo.summary)
        self.assertTrue(todo.user_id.has_group("prepaid_billing.group_billing_manager"))

    def test_paid_top_up_above_the_cap_is_acknowledged_and_left_to_a_person(self):
        self.company.prepaid_max_recharge_amount = 50.0
        tx, body = self.paid(100.0)
        self.assert_refused_once(tx, body, "above the largest allowed")

    def test_paid_top_up_of_a_closed_account_is_acknowledged_and_left_to_a_person(
        self,
    ):
        tx, body = self.paid(30.0)
        self.env.cr.execute(
            "UPDATE prepaid_account SET state = 'closed' WHERE id = %s",
            [self.wallet.id],
        )
        self.wallet.invalidate_recordset()
        self.assert_refused_once(tx, body, "is not open")

    def test_forged_signature_is_rejected(self):
        tx, body = self.paid()
        headers = self.peer.signed_headers(body)
        other = self.peer.signed_headers(body + b" ")
        headers["Wechatpay-Signature"] = other["Wechatpay-Signature"]
        self.assert_nothing_credited(tx, self.notify(body, headers), 401)

    def test_unknown_serial_is_rejected(self):
        tx, body = self.paid()
        headers = {**self.peer.signed_headers(body), "Wechatpay-Serial": "PUB_KEY_X"}
        self.assert_nothing_credited(tx, self.notify(body, headers), 401)

    def test_stale_timestamp_is_rejected(self):
        tx, body = self.paid()
        headers = self.peer.signed_headers(body, timestamp=int(time.time()) - 301)
        self.assert_nothing_credited(tx, self.notify(body, headers), 401)

    def test_tampered_ciphertext_is_rejected(self):
        tx, body = self.paid()
        event = json.loads(body)
        raw = bytearray(base64.b64decode(event["resource"]["ciphertext"]))
        raw[0] ^= 0x01
        event["resource"]["ciphertext"] = base64.b64encode(bytes(raw)).decode()
        self.assert_nothing_credited(tx, self.notify(json.dumps(event).encode()))

    def _notification_with(self, tx, **changes):
        order = self.peer.order(tx.wechatpay_out_trade_no).as_json()
        order.update(changes)
        return self.peer.build_notification("TRANSACTION.SUCCESS", "transaction", order)

    def test_amount_mismatch_is_rejected(self):
        tx, _body = self.paid(100.0)
        body = self._notification_with(tx, amount={"total": 1, "currency": "CNY"})
        self.assert_nothing_credited(tx, self.notify(body))

    def test_mchid_or_appid_mismatch_is_rejected(self):
        tx, _body = self.paid()
        self.assert_nothing_credited(
            tx, self.notify(self._notification_with(tx, mchid="1900000999"))
        )
        self.assert_nothing_credited(
            tx, self.notify(self._notification_with(tx, appid="wxOTHER"))
        )

    def test_unknown_order_is_rejected(self):
        tx, _body = self.paid()
        body = self._notification_with(tx, out_trade_no="NOSUCHORDER1")
        self.assert_nothing_credited(tx, self.notify(body))

    def test_lost_notification_is_settled_by_the_cron_and_unpaid_orders_close(self):
        paid, _body = self.paid(20.0)
        unpaid = self.make_tx(15.0)._wechatpay_create_order()
        unpaid.wechatpay_ordered_at = fields.Datetime.now() - timedelta(hours=1)
        fresh = self.make_tx(16.0)._wechatpay_create_order()
        self.env["payment.transaction"]._cron_wechatpay_sync()
        self.assertEqual(paid.state, "done")
        self.assertEqual(self.wallet.balance, 20.0)
        self.assertEqual(unpaid.state, "cancel")
        self.assertEqual(
            self.peer.order(unpaid.wechatpay_out_trade_no).trade_state, "CLOSED"
        )
        self.assertEqual(fresh.state, "pending")

    def test_refund_through_the_refund_api_and_its_notification(self):
        tx, body = self.paid(100.0)
        self.notify(body)
        tx.invalidate_recordset()
        tx.action_refund(amount_to_refund=40.0)
        refund = tx.child_transaction_ids
        self.assertEqual(refund.operation, "refund")
        self.assertEqual(refund.state, "pending")
        self.assertEqual(self.peer.order(tx.wechatpay_out_trade_no).refunded, 4000)
        self.wallet.invalidate_recordset()
        self.assertEqual(self.wallet.balance, 60.0)
        answer = self.peer.refunds[refund.reference]
        event = {**answer, "refund_status": "SUCCESS", "mchid": self.peer.keys.mchid}
        event.pop("status")
        notice = self.peer.build_notification("REFUND.SUCCESS", "refund", event)
        self.assertEqual(self.notify(notice).status_code, 204)
        refund.invalidate_recordset()
        self.assertEqual(refund.state, "done")
        self.assertEqual(self.wallet.balance, 60.0)

    def test_offered_only_in_cny(self):
        Provider = self.env["payment.provider"]
        cny, usd = self.env.ref("base.CNY"), self.env.ref("base.USD")
        args = (self.company.id, self.tenant.id, 10.0)
        self.assertIn(
            self.provider, Provider._get_compatible_providers(*args, currency_id=cny.id)
        )
        self.assertNotIn(
            self.provider, Provider._get_compatible_providers(*args, currency_id=usd.id)
        )


@tagged("post_install", "-at_install")
class TestWeChatPayCheckout(WeChatCase):
    def checkout_url(self, tx):
        values = tx._get_specific_rendering_values({})
        return (
            f"{values['api_url']}?reference={values['reference']}"
            f"&access_token={values['access_token']}"
        )

    def test_desktop_gets_a_native_qr_code_and_the_test_pay_link(self):
        tx = self.make_tx(50.0)
        page = self.url_open(self.checkout_url(tx))
        self.assertEqual(page.status_code, 200)
        self.assertIn("o_wechatpay_qr", page.text)
        self.assertIn(f'action="{self.peer.base_url}/peer/pay"', page.text)
        self.assertEqual(tx.wechatpay_trade_type, "native")

    def test_wrong_access_token_is_refused(self):
        tx = self.make_tx(50.0)
        url = f"/payment/wechatpay/checkout?reference={tx.reference}&access_token=x"
        self.assertEqual(self.url_open(url).status_code, 403)
        self.assertFalse(tx.wechatpay_out_trade_no)

    def test_inside_wechat_oauth_binds_the_openid_then_jsapi(self):
        tx = self.make_tx(50.0)
        self.assertFalse(self.tenant.wechat_openid)
        agent = "Mozilla/5.0 (iPhone) MicroMessenger/8.0.49 NetType/WIFI"
        page = self.url_open(self.checkout_url(tx), headers={"User-Agent": agent})
        self.assertEqual(page.status_code, 200, page.text[:500])
        self.assertEqual(self.tenant.wechat_openid, self.peer.openid)
        self.assertEqual(tx.wechatpay_trade_type, "jsapi")
        self.assertIn("o_wechatpay_jsapi_pay", page.text)
        order = self.peer.order(tx.wechatpay_out_trade_no)
        self.assertEqual(order.openid, self.peer.openid)
