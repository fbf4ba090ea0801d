import json
import logging

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.tools import file_open

from .. import const
from ..tools import official_account, wechatpay

_logger = logging.getLogger(__name__)


class PaymentProvider(models.Model):
    _inherit = "payment.provider"

    code = fields.Selection(
        selection_add=[(const.PROVIDER_CODE, "WeChat Pay")],
        ondelete={const.PROVIDER_CODE: "set default"},
    )
    wechatpay_mchid = fields.Char(
        string="Merchant ID (mchid)", required_if_provider=const.PROVIDER_CODE
    )
    wechatpay_appid = fields.Char(
        string="App ID (appid)",
        required_if_provider=const.PROVIDER_CODE,
        help="The official account (or mini program) the payments are made in.",
    )
    wechatpay_merchant_serial = fields.Char(
        string="Merchant Certificate Serial",
        required_if_provider=const.PROVIDER_CODE,
        groups="base.group_system",
    )
    wechatpay_private_key = fields.Text(
        string="Merchant API Private Key (PEM)",
        required_if_provider=const.PROVIDER_CODE,
        groups="base.group_system",
    )
    wechatpay_apiv3_key = fields.Char(
        string="APIv3 Key",
        required_if_provider=const.PROVIDER_CODE,
        groups="base.group_system",
        help="The 32-byte symmetric key that decrypts the notifications.",
    )
    wechatpay_platform_key_id = fields.Char(
        string="Platform Public Key ID",
        required_if_provider=const.PROVIDER_CODE,
        help="The Wechatpay-Serial of the answers and notifications "
        "(PUB_KEY_ID_…, or the platform certificate serial).",
    )
    wechatpay_platform_public_key = fields.Text(
        string="Platform Public Key (PEM)",
        required_if_provider=const.PROVIDER_CODE,
        help="Public key or certificate that verifies WeChat Pay's signatures.",
    )
    wechatpay_app_secret = fields.Char(
        string="Official Account AppSecret",
        groups="base.group_system",
        help="Needed for OAuth (JSAPI payments inside WeChat) and template messages.",
    )
    wechatpay_api_url = fields.Char(
        string="WeChat Pay API URL",
        default=const.DEFAULT_API_URL,
        required_if_provider=const.PROVIDER_CODE,
        help="Point a staging set-up or a test at a local WeChat Pay peer.",
    )
    wechatpay_oa_api_url = fields.Char(
        string="Official Account API URL", default=const.DEFAULT_OA_API_URL
    )
    wechatpay_oauth_url = fields.Char(
        string="OAuth URL", default=const.DEFAULT_OAUTH_URL
    )
    wechatpay_order_ttl_minutes = fields.Integer(
        string="Close Unpaid Orders After (min)", default=30
    )
    wechatpay_topup_min = fields.Monetary(
        string="Smallest Top-up", currency_field="main_currency_id", default=10.0
    )
    wechatpay_topup_max = fields.Monetary(
        string="Largest Top-up", currency_field="main_currency_id", default=5000.0
    )
    wechatpay_topup_presets = fields.Char(
        string="Preset Amounts",
        default="50,100,200,500",
        help="Comma-separated amounts offered as buttons on the top-up page.",
    )
    wechatpay_oa_token = fields.Char(
        string="Official Account Token",
        groups="base.group_system",
        copy=False,
        readonly=True,
    )
    wechatpay_oa_token_renew_at = fields.Float(
        string="Renew the Token After (Unix time)",
        groups="base.group_system",
        copy=False,
        readonly=True,
    )

    # ------------------------------------------------------------------
    # payment framework hooks
    # ------------------------------------------------------------------
    def _get_supported_currencies(self):
        supported = super()._get_supported_currencies()
        if self.code == const.PROVIDER_CODE:
            supported = supported.filtered(
                lambda c: c.name in const.SUPPORTED_CURRENCIES
            )
        return supported

    def _compute_feature_support_fields(self):
        res = super()._compute_feature_support_fields()
        self.filtered(lambda p: p.code == const.PROVIDER_CODE).update(
            {"support_refund": "partial"}
        )
        return res

    def _get_default_payment_method_codes(self):
        default_codes = super()._get_default_payment_method_codes()
        if self.code != const.PROVIDER_CODE:
            return default_codes
        return const.DEFAULT_PAYMENT_METHOD_CODES

    @api.constrains("wechatpay_topup_min", "wechatpay_topup_max", "code")
    def _check_wechatpay_topup_range(self):
        for provider in self.filtered(lambda p: p.code == const.PROVIDER_CODE):
            if not 0 < provider.wechatpay_topup_min <= provider.wechatpay_topup_max:
                raise ValidationError(
                    self.env._(
                        "WeChat Pay: the smallest top-up must be positive and not "
                        "above the largest."
                    )
                )

    @api.constrains("wechatpay_apiv3_key")
    def _check_wechatpay_apiv3_key(self):
        for provider in self.sudo():
            key = provider.wechatpay_apiv3_key
            if key and len(key.encode()) != 32:
                raise ValidationError(
                    self.env._("WeChat Pay: the APIv3 key is exactly 32 characters.")
                )

    @api.model
    def _demo_wire_wechat_peer(self, provider_ids, base_url):
        """Demo data: wire the providers to the local peer's demo keys."""
        keys = json.loads(file_open("prepaid_wechat/demo/wechat_peer_keys.json").read())
        journal = self.env["account.journal"].search(
            [("type", "=", "bank"), ("company_id", "=", self.env.company.id)], limit=1
        )
        providers = self.browse(provider_ids)
        providers.write(
            {
                "state": "test",
                "is_published": True,
                "wechatpay_mchid": keys["mchid"],
                "wechatpay_appid": keys["appid"],
                "wechatpay_merchant_serial": keys["merchant_serial"],
                "wechatpay_private_key": keys["merchant_private_key"],
                "wechatpay_apiv3_key": keys["apiv3_key"],
                "wechatpay_platform_key_id": keys["platform_key_id"],
                "wechatpay_platform_public_key": keys["platform_public_key"],
                "wechatpay_app_secret": keys["app_secret"],
                "wechatpay_api_url": base_url,
                "wechatpay_oa_api_url": base_url,
                "wechatpay_oauth_url": base_url,
            }
        )
        if journal:
            # the provider's account.payment.method is made by the install hook,
            # which runs after the demo data
            self._setup_provider(const.PROVIDER_CODE)
            providers.journal_id = journal
        self._demo_tenant_login()

    @api.model
    def _demo_tenant_login(self):
        """Demo data: portal login ``tenant`` / ``tenant`` for the tenant of
        the first open prepaid account."""
        Account = self.env["prepaid.account"]
        account = Account.search(
            Account._get_billable_account_domain(), order="id", limit=1
        )
        Users = self.env["res.users"].with_context(no_reset_password=True)
        if not account or Users.search_count([("login", "=", "tenant")]):
            return
        Users.create(
            {
                "name": account.partner_id.name,
                "login": "tenant",
                "password": "tenant",
                "partner_id": account.partner_id.id,
                # the tenant reads times in the local time of their shop
                "tz": account.meter_ids.room_id.site_id[:1].tz or "Asia/Shanghai",
                "groups_id": [(6, 0, self.env.ref("base.group_portal").ids)],
            }
        )

    # ------------------------------------------------------------------
    # the doors to WeChat
    # ------------------------------------------------------------------
    def _wechatpay_merchant(self):
        """The merchant's signing and verifying keys (secrets read as sudo)."""
        self.ensure_one()
        provider = self.sudo()
        try:
            return wechatpay.Merchant(
                mchid=provider.wechatpay_mchid,
                serial=provider.wechatpay_merchant_serial,
                private_key=wechatpay.load_private_key(provider.wechatpay_private_key),
                platform_keys={
                    provider.wechatpay_platform_key_id: wechatpay.load_public_key(
                        provider.wechatpay_platform_public_key
                    )
                },
                apiv3_key=(provider.wechatpay_apiv3_key or "").encode(),
            )
        except (ValueError, TypeError) as err:
            raise UserError(
                self.env._(
                    "WeChat Pay %(name)s: a key does not load (%(error)s). Paste the "
                    "PEM keys as given by WeChat Pay.",
                    name=self.name,
                    error=type(err).__name__,
                )
            ) from err

    def _wechatpay_client(self):
        self.ensure_one()
        return wechatpay.Client(self.wechatpay_api_url, self._wechatpay_merchant())

    def _wechatpay_make_request(self, call, *args):
        """Call ``Client.<call>(*args)``; WeChat's refusal → ``UserError``."""
        try:
            return getattr(self._wechatpay_client(), call)(*args)
        except wechatpay.WeChatPayError as err:
            _logger.info("WeChat Pay %s refused: %s %s", call, err.status, err.code)
            raise UserError(
                self.env._("WeChat Pay: %s", err.message or err.code)
            ) from err

    def _wechatpay_verify(self, headers, raw_body):
        """Check a notification; raises ``wechatpay.SignatureError``."""
        self.ensure_one()
        wechatpay.verify(
            self._wechatpay_merchant().platform_keys,
            wechatpay.SignedHeaders.from_mapping(headers),
            raw_body,
        )

    def _wechatpay_decrypt(self, resource):
        return wechatpay.decrypt(self._wechatpay_merchant().apiv3_key, resource)

    def _wechatpay_notify_url(self):
        self.ensure_one()
        return f"{self.get_base_url()}{const.NOTIFY_ROUTE}/{self.id}"

    # official account ---------------------------------------------------
    def _wechat_oa_client(self):
        self.ensure_one()
        provider = self.sudo()
        return official_account.OfficialAccountClient(
            provider.wechatpay_oa_api_url or const.DEFAULT_OA_API_URL,
            provider.wechatpay_appid,
            provider.wechatpay_app_secret or "",
            _TokenStore(provider),
        )


class _TokenStore:
    """Keeps the official-account token on the provider row (shared by all
    workers), so each worker does not fetch one of its own."""

    def __init__(self, provider):
        self.provider = provider

    def get(self):
        provider = self.provider
        if not provider.wechatpay_oa_token:
            return None
        return official_account.CachedToken(
            provider.wechatpay_oa_token, provider.wechatpay_oa_token_renew_at
        )

    def put(self, token):
        self.provider.write(
            {
                "wechatpay_oa_token": token.value,
                "wechatpay_oa_token_renew_at": token.renew_at,
            }
        )
