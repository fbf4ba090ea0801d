"""Constants of the WeChat Pay provider."""

PROVIDER_CODE = "wechatpay"
DEFAULT_API_URL = "https://api.mch.weixin.qq.com"
DEFAULT_OA_API_URL = "https://api.weixin.qq.com"
DEFAULT_OAUTH_URL = "https://open.weixin.qq.com"
SUPPORTED_CURRENCIES = ["CNY"]
DEFAULT_PAYMENT_METHOD_CODES = {"wechat_pay"}
NOTIFY_ROUTE = "/payment/wechatpay/notify"
CHECKOUT_ROUTE = "/payment/wechatpay/checkout"
OAUTH_ROUTE = "/payment/wechatpay/oauth"
STATUS_ROUTE = "/payment/wechatpay/status"
# trade_state → Odoo transaction state ("REFUND" means paid, then refunded).
TRADE_STATE_MAPPING = {
    "pending": ("NOTPAY", "USERPAYING"),
    "done": ("SUCCESS", "REFUND"),
    "cancel": ("CLOSED", "REVOKED"),
    "error": ("PAYERROR",),
}
