from odoo.tests import tagged

from .common import WeChatCase


@tagged("post_install", "-at_install")
class TestOfficialAccount(WeChatCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.channel = cls.env["prepaid.notification.channel"].create(
            {
                "name": "WeChat",
                "channel_type": "wechat",
                "company_id": cls.company.id,
                "wechat_provider_id": cls.provider.id,
                "wechat_template_alarm": "TPL_ALARM",
                "wechat_template_restore": "TPL_RESTORE",
                "wechat_template_payment": "TPL_PAID",
                "on_payment": True,
            }
        )
        cls.Notice = cls.env["prepaid.alarm.notice"]

    def setUp(self):
        super().setUp()
        self.peer.templates.clear()
        self.peer.fail_templates = False

    def test_alarm_goes_as_a_template_message_with_days_left_and_token_cached(self):
        self.tenant.wechat_openid = "oTENANT1"
        first = self.Notice._raise_for(self.wallet, "alarm1")
        second = self.Notice._raise_for(self.wallet, "alarm2")
        first._send()
        second._send()
        self.assertEqual(len(self.peer.templates), 2)
        message = self.peer.templates[0]
        self.assertEqual(message["touser"], "oTENANT1")
        self.assertEqual(message["template_id"], "TPL_ALARM")
        self.assertEqual(message["data"]["keyword1"]["value"], self.wallet.name)
        self.assertTrue(message["url"].endswith(f"/my/prepaid/{self.wallet.id}"))
        self.assertIn("WeChat: ok msgid", first.log)
        self.assertEqual(len(self.peer.tokens), 1, "one token for both messages")
        self.assertTrue(self.provider.sudo().wechatpay_oa_token)

    def test_an_empty_wallet_is_told_what_restores_supply_not_days_left(self):
        self.tenant.wechat_openid = "oTENANT1"
        self.Notice._raise_for(self.wallet, "alarm1")._send()
        remark = self.peer.templates[-1]["data"]["remark"]["value"]
        self.assertEqual(remark, "Top up at least ¥\xa00.01 to restore supply.")

    def test_failures_are_logged_on_the_notice(self):
        notice = self.Notice._raise_for(self.wallet, "alarm1")
        notice._send()
        self.assertIn("WeChat: failed the tenant has no WeChat openid", notice.log)
        self.tenant.wechat_openid = "oTENANT1"
        self.peer.fail_templates = True
        notice2 = self.Notice._raise_for(self.wallet, "restore")
        notice2._send()
        self.assertIn("WeChat: failed 43004", notice2.log)
        self.assertFalse(self.peer.templates)

    def test_payment_received_raises_a_payment_notice(self):
        self.tenant.wechat_openid = "oTENANT1"
        tx = self.make_tx(25.0)._wechatpay_create_order()
        self.notify(self.peer.notification(self.peer.pay(tx.wechatpay_out_trade_no)))
        notice = self.Notice.search(
            [("account_id", "=", self.wallet.id), ("event", "=", "payment")]
        )
        self.assertEqual(len(notice), 1)
        notice._send()
        self.assertEqual(self.peer.templates[-1]["template_id"], "TPL_PAID")
