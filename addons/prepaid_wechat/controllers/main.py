import json
import logging
from urllib.parse import urlencode

from werkzeug.exceptions import Forbidden, NotFound

from odoo import http
from odoo.exceptions import UserError, ValidationError
from odoo.http import request

from odoo.addons.payment import utils as payment_utils

from .. import const
from ..tools import official_account, wechatpay

_logger = logging.getLogger(__name__)


def _fail(status, message):
    body = json.dumps({"code": "FAIL", "message": message})
    return request.make_response(
        body, headers=[("Content-Type", "application/json")], status=status
    )


class WeChatPayController(http.Controller):
    @http.route(
        f"{const.NOTIFY_ROUTE}/<int:provider_id>",
        type="http",
        auth="public",
        methods=["POST"],
        csrf=False,
        save_session=False,
    )
    def wechatpay_notify(self, provider_id):
        """Payment and refund notifications: the signature over the raw body
        is checked before anything else is read; idempotent."""
        raw = request.httprequest.get_data()
        provider = (
            request.env["payment.provider"]
            .sudo()
            .browse(provider_id)
            .exists()
            .filtered(lambda p: p.code == const.PROVIDER_CODE)
        )
        if not provider:
            return _fail(404, "unknown provider")
        try:
            provider._wechatpay_verify(request.httprequest.headers, raw)
        except (wechatpay.SignatureError, UserError) as err:
            _logger.info("WeChat Pay notification refused: %s", err)
            return _fail(401, "signature verification failed")
        try:
            event = json.loads(raw)
            data = provider._wechatpay_decrypt(event["resource"])
        except (ValueError, KeyError, TypeError, wechatpay.DecryptError) as err:
            _logger.info("WeChat Pay notification undecryptable: %s", err)
            return _fail(400, "resource cannot be decrypted")
        _logger.info(
            "WeChat Pay notification %s %s for %s",
            event.get("id"),
            event.get("event_type"),
            data.get("out_refund_no") or data.get("out_trade_no"),
        )
        Tx = request.env["payment.transaction"].sudo()
        try:
            with request.env.cr.savepoint():
                tx = Tx._get_tx_from_notification_data(const.PROVIDER_CODE, data)
                if tx.provider_id != provider:
                    raise ValidationError(
                        request.env._("WeChat Pay: the order is another merchant's.")
                    )
                tx._process_notification_data(data)
        except ValidationError as err:
            _logger.info("WeChat Pay notification rejected: %s", err)
            return _fail(400, "notification does not match an order")
        return request.make_response("", status=204)

    # ------------------------------------------------------------------
    # paying
    # ------------------------------------------------------------------
    def _tx_from_token(self, reference, access_token):
        tx = (
            request.env["payment.transaction"]
            .sudo()
            .search(
                [
                    ("reference", "=", reference or ""),
                    ("provider_code", "=", const.PROVIDER_CODE),
                ],
                limit=1,
            )
        )
        if not tx:
            raise NotFound()
        if not payment_utils.check_access_token(access_token, tx.reference):
            raise Forbidden()
        return tx

    @staticmethod
    def _in_wechat():
        return "MicroMessenger" in (request.httprequest.user_agent.string or "")

    @http.route(
        const.CHECKOUT_ROUTE,
        type="http",
        auth="public",
        methods=["GET"],
        website=True,
        sitemap=False,
    )
    def wechatpay_checkout(self, reference=None, access_token=None, **kwargs):
        """Native QR on a desktop; JSAPI inside WeChat (OAuth first)."""
        tx = self._tx_from_token(reference, access_token)
        provider = tx.provider_id
        if tx.state not in ("draft", "pending"):
            return request.redirect(tx.landing_route or "/payment/status")
        openid = None
        if self._in_wechat() and provider.sudo().wechatpay_app_secret:
            openid = tx.partner_id.sudo().wechat_openid
            if not openid:
                return self._oauth_redirect(tx, access_token)
        try:
            tx._wechatpay_create_order(openid=openid)
        except UserError as err:
            return request.render(
                "prepaid_wechat.wechatpay_checkout",
                {"tx": tx, "error": str(err), "access_token": access_token},
            )
        values = {"tx": tx, "access_token": access_token, "error": None}
        if tx.wechatpay_trade_type == "jsapi":
            values["jsapi"] = json.dumps(tx._wechatpay_jsapi_params())
        elif provider.state == "test":
            return_url = (
                f"{provider.get_base_url()}{const.CHECKOUT_ROUTE}?"
                + urlencode({"reference": tx.reference, "access_token": access_token})
            )
            values.update(
                peer_pay_url=f"{provider.wechatpay_api_url.rstrip('/')}/peer/pay",
                peer_return_url=return_url,
            )
        return request.render("prepaid_wechat.wechatpay_checkout", values)

    def _oauth_redirect(self, tx, access_token):
        provider = tx.provider_id.sudo()
        redirect_uri = f"{provider.get_base_url()}{const.OAUTH_ROUTE}"
        state = f"{tx.reference}:{access_token}"
        return request.redirect(
            official_account.OfficialAccountClient.authorize_url(
                provider.wechatpay_oauth_url or const.DEFAULT_OAUTH_URL,
                provider.wechatpay_appid,
                redirect_uri,
                state,
            ),
            local=False,
        )

    @http.route(const.OAUTH_ROUTE, type="http", auth="public", methods=["GET"])
    def wechatpay_oauth(self, code=None, state="", **kwargs):
        """OAuth callback: bind the openid to the paying partner, then pay."""
        reference, _sep, access_token = state.rpartition(":")
        tx = self._tx_from_token(reference, access_token)
        try:
            openid = tx.provider_id._wechat_oa_client().openid_from_code(code or "")
        except official_account.OfficialAccountError as err:
            _logger.info("WeChat OAuth failed: %s", err)
            raise Forbidden() from err
        tx.partner_id.sudo().wechat_openid = openid
        return request.redirect(
            f"{const.CHECKOUT_ROUTE}?"
            + urlencode({"reference": reference, "access_token": access_token})
        )

    @http.route(const.STATUS_ROUTE, type="http", auth="public", methods=["GET"])
    def wechatpay_status(self, reference=None, access_token=None, **kwargs):
        """Polled by the checkout page: the transaction's state."""
        tx = self._tx_from_token(reference, access_token)
        body = {"state": tx.state, "landing_route": tx.landing_route or "/my"}
        return request.make_json_response(body)
