"""A CNY company, a prepaid account and a WeChat Pay provider wired to a
local WeChat Pay peer started in-process on 127.0.0.1."""

from freezegun import freeze_time

from odoo import Command
from odoo.tests import HttpCase

from odoo.addons.prepaid_billing.tests.common import BillingCase

# billing's common puts the repository root (the simulator) on sys.path
from simulator.wechat_peer import WeChatPeer


def provider_vals(env, peer, company):
    """A test-mode WeChat Pay provider of ``company`` wired to ``peer``."""
    wiring = peer.keys.wiring()
    return {
        "name": "WeChat Pay (test)",
        "code": "wechatpay",
        "state": "test",
        "is_published": True,
        "company_id": company.id,
        "redirect_form_view_id": env.ref("prepaid_wechat.redirect_form").id,
        "payment_method_ids": [
            Command.set([env.ref("payment.payment_method_wechat_pay").id])
        ],
        "wechatpay_mchid": wiring["mchid"],
        "wechatpay_appid": wiring["appid"],
        "wechatpay_merchant_serial": wiring["merchant_serial"],
        "wechatpay_private_key": wiring["merchant_private_key"],
        "wechatpay_apiv3_key": wiring["apiv3_key"],
        "wechatpay_platform_key_id": wiring["platform_key_id"],
        "wechatpay_platform_public_key": wiring["platform_public_key"],
        "wechatpay_app_secret": wiring["app_secret"],
        "wechatpay_api_url": peer.base_url,
        "wechatpay_oa_api_url": peer.base_url,
        "wechatpay_oauth_url": peer.base_url,
    }


class WeChatCase(HttpCase, BillingCase):
    @classmethod
    def _setup_company(cls):
        cny = cls.env.ref("base.CNY")
        cny.active = True
        company = cls.env["res.company"].create(
            {"name": "WeChat Test Co", "currency_id": cny.id}
        )
        cls.env.user.company_ids |= company
        cls.env = cls.env(
            context=dict(cls.env.context, allowed_company_ids=[company.id])
        )
        return company

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.peer = WeChatPeer(auto_notify=False).start()
        cls.addClassCleanup(cls.peer.stop)
        bank_account = cls.env["account.account"].create(
            {"name": "Test WeChat bank", "code": "TWX101", "account_type": "asset_cash"}
        )
        cls.bank = cls.env["account.journal"].create(
            {
                "name": "WeChat Pay settlements",
                "code": "TWXB",
                "type": "bank",
                "default_account_id": bank_account.id,
            }
        )
        cls.provider = cls.env["payment.provider"].create(
            provider_vals(cls.env, cls.peer, cls.company)
        )
        cls.provider.journal_id = cls.bank
        cls.wx_meter = cls.make_meter(cls.gateway, 7)
        # An empty wallet at noon local time: the supply is cut at opening.
        with freeze_time("2026-03-02 04:00:00"):
            cls.wallet = cls.make_account(cls.wx_meter, opening=0.0)

    def setUp(self):
        super().setUp()
        # Each test rolls back, so the next one reuses the same references.
        self.peer.orders.clear()

    def make_tx(self, amount=100.0, account=None, **vals):
        account = account or self.wallet
        return self.env["payment.transaction"].create(
            {
                "provider_id": self.provider.id,
                "payment_method_id": self.env.ref(
                    "payment.payment_method_wechat_pay"
                ).id,
                "reference": self.env["payment.transaction"]._compute_reference(
                    "wechatpay", prefix=f"TOPUP-{account.id}"
                ),
                "amount": amount,
                "currency_id": self.company.currency_id.id,
                "partner_id": account.partner_id.id,
                "prepaid_account_id": account.id,
                "operation": "online_redirect",
                **vals,
            }
        )

    def notify(self, body, headers=None):
        """POST a notification body to Odoo as WeChat Pay would."""
        headers = headers or self.peer.signed_headers(body)
        return self.url_open(
            f"/payment/wechatpay/notify/{self.provider.id}",
            data=body,
            headers={"Content-Type": "application/json", **headers},
        )

    def recharges(self, account=None):
        return (account or self.wallet).ledger_line_ids.filtered(
            lambda line: line.line_type == "recharge"
        )

    def restores(self, account=None):
        return (account or self.wallet).meter_ids.command_ids.filtered(
            lambda c: c.command_type == "relay_on"
        )
