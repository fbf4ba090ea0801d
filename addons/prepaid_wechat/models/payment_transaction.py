import logging
from datetime import timedelta

from psycopg2.errors import LockNotAvailable, SerializationFailure

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.modules import module as odoo_module
from odoo.tools import hmac as hmac_tool

from odoo.addons.payment import utils as payment_utils

from .. import const
from ..tools import wechatpay

_logger = logging.getLogger(__name__)


class PaymentTransaction(models.Model):
    _inherit = "payment.transaction"

    prepaid_account_id = fields.Many2one(
        "prepaid.account",
        index="btree_not_null",
        readonly=True,
        help="The wallet this payment tops up once it is done.",
    )
    wechatpay_out_trade_no = fields.Char(
        string="WeChat out_trade_no", readonly=True, copy=False, index="btree_not_null"
    )
    wechatpay_trade_type = fields.Selection(
        [("native", "Native (QR code)"), ("jsapi", "JSAPI (inside WeChat)")],
        string="WeChat Trade Type",
        readonly=True,
        copy=False,
    )
    wechatpay_code_url = fields.Char(
        string="WeChat Code URL", readonly=True, copy=False
    )
    wechatpay_prepay_id = fields.Char(
        string="WeChat Prepay ID", readonly=True, copy=False
    )
    wechatpay_ordered_at = fields.Datetime(
        string="WeChat Order Created", readonly=True, copy=False
    )

    # ------------------------------------------------------------------
    # payment framework hooks
    # ------------------------------------------------------------------
    def _get_specific_rendering_values(self, processing_values):
        res = super()._get_specific_rendering_values(processing_values)
        if self.provider_code != const.PROVIDER_CODE:
            return res
        return {
            "api_url": const.CHECKOUT_ROUTE,
            "reference": self.reference,
            "access_token": self._wechatpay_access_token(),
        }

    def _wechatpay_access_token(self):
        """The token ``payment.utils.check_access_token`` accepts for the
        reference (computed here too when there is no HTTP request)."""
        return hmac_tool(self.env(su=True), "generate_access_token", self.reference)

    def _get_tx_from_notification_data(self, provider_code, notification_data):
        tx = super()._get_tx_from_notification_data(provider_code, notification_data)
        if provider_code != const.PROVIDER_CODE or len(tx) == 1:
            return tx
        number = notification_data.get("out_refund_no") or notification_data.get(
            "out_trade_no"
        )
        refund = "out_refund_no" in notification_data
        field = "reference" if refund else "wechatpay_out_trade_no"
        tx = number and self.search(
            [(field, "=", number), ("provider_code", "=", const.PROVIDER_CODE)],
            limit=1,
        )
        if not tx:
            raise ValidationError(
                self.env._("WeChat Pay: no transaction matches %s.", number or "?")
            )
        return tx

    def _process_notification_data(self, notification_data):
        super()._process_notification_data(notification_data)
        if self.provider_code != const.PROVIDER_CODE:
            return
        # One settlement at a time per transaction: the notification, its
        # retries and the query cron may all report the same payment.
        self.env.cr.execute(
            "SELECT id FROM payment_transaction WHERE id = %s FOR NO KEY UPDATE",
            [self.id],
        )
        self.invalidate_recordset()
        if "out_refund_no" in notification_data:
            self._wechatpay_apply_refund(notification_data)
        else:
            self._wechatpay_check(notification_data)
            self._wechatpay_apply(notification_data)

    def _wechatpay_check(self, data):
        """The notification is about this order, for this merchant and amount."""
        provider = self.provider_id
        expected = payment_utils.to_minor_currency_units(self.amount, self.currency_id)
        amount = data.get("amount") or {}
        problems = []
        if data.get("mchid") != provider.wechatpay_mchid:
            problems.append("mchid")
        if data.get("appid") != provider.wechatpay_appid:
            problems.append("appid")
        if amount.get("total") != expected or amount.get("currency", "CNY") != (
            self.currency_id.name
        ):
            problems.append("amount")
        if problems:
            raise ValidationError(
                self.env._(
                    "WeChat Pay: the notification for %(ref)s does not match the "
                    "order (%(fields)s).",
                    ref=self.reference,
                    fields=", ".join(problems),
                )
            )

    def _wechatpay_apply(self, data):
        trade_state = data.get("trade_state")
        if data.get("transaction_id"):
            self.provider_reference = data["transaction_id"]
        if trade_state in const.TRADE_STATE_MAPPING["done"]:
            if self.state == "done":
                return  # reported again: credited when it was first reported
            # Paid even if we closed it meanwhile: the money was taken.
            self._set_done(extra_allowed_states=("cancel",))
            self._wechatpay_credit_wallet()
        elif self.state not in ("draft", "pending"):
            return  # a late "not paid" never undoes a settled payment
        elif trade_state in const.TRADE_STATE_MAPPING["pending"]:
            if self.state != "pending":
                self._set_pending()
        elif trade_state in const.TRADE_STATE_MAPPING["cancel"]:
            self._set_canceled(
                state_message=self.env._("WeChat Pay order %s.", trade_state)
            )
        elif trade_state in const.TRADE_STATE_MAPPING["error"]:
            self._set_error(self.env._("WeChat Pay reports the payment failed."))
        else:
            _logger.info("WeChat Pay: unknown trade_state %s", trade_state)

    def _wechatpay_credit_wallet(self):
        """Done top-up → wallet recharge (the key makes it idempotent) and a
        "payment received" notice for the tenant."""
        account = self.prepaid_account_id.sudo()
        if not account or self.operation == "refund":
            return
        try:
            with self.env.cr.savepoint():
                account._recharge(
                    self.amount,
                    self.provider_id.journal_id,
                    f"payment.transaction:{self.id}",
                    "wechat",
                    label=self.env._(
                        "WeChat Pay %s", self.provider_reference or self.reference
                    ),
                )
        except UserError as err:
            # The money was taken: acknowledge WeChat Pay (no endless
            # retries) and leave the refund or manual credit to a person.
            self._wechatpay_recharge_refused(account, err)
            return
        self.env["prepaid.alarm.notice"].sudo()._raise_for(account, "payment")

    def _wechatpay_recharge_refused(self, account, error):
        """A paid top-up the wallet refused: say so on the transaction and
        give the accountants a To-Do on the account (once)."""
        message = self.env._(
            "Paid on WeChat Pay but not credited to the wallet: %(reason)s "
            "Refund the tenant or credit the wallet by hand.",
            reason=error.args[0],
        )
        self.state_message = message
        summary = self.env._("Paid top-up not credited: %s", self.reference)
        account.invalidate_recordset()
        if account.activity_ids.filtered(lambda a: a.summary == summary):
            return
        managers = self.env.ref("prepaid_billing.group_billing_manager").users
        user = managers.filtered(
            lambda u: account.company_id in u.company_ids and not u.share
        )[:1]
        account.activity_schedule(
            "mail.mail_activity_data_todo",
            summary=summary,
            note=message,
            user_id=(user or self.env.ref("base.user_admin")).id,
        )

    def _wechatpay_apply_refund(self, data):
        status = data.get("refund_status") or data.get("status")
        if data.get("refund_id"):
            self.provider_reference = data["refund_id"]
        if status == "SUCCESS" and self.state != "done":
            self._set_done()
        elif status in ("CLOSED", "ABNORMAL") and self.state in ("draft", "pending"):
            self._set_error(
                self.env._(
                    "WeChat Pay refund %s: refund the tenant by another way and "
                    "correct the wallet.",
                    status,
                )
            )
            self.prepaid_account_id.sudo().message_post(body=self.state_message)
        elif status == "PROCESSING" and self.state == "draft":
            self._set_pending()

    def _send_refund_request(self, amount_to_refund=None):
        refund_tx = super()._send_refund_request(amount_to_refund=amount_to_refund)
        if self.provider_code != const.PROVIDER_CODE:
            return refund_tx
        source = self
        refund_tx.prepaid_account_id = source.prepaid_account_id
        amount = -refund_tx.amount
        if source.prepaid_account_id:
            # Take the money out of the wallet first: a balance too low stops
            # the refund before WeChat is asked (the whole call rolls back).
            source.prepaid_account_id.sudo()._refund(
                amount,
                source.provider_id.journal_id,
                f"payment.transaction:{refund_tx.id}",
                "wechat",
                label=self.env._("WeChat Pay refund of %s", source.reference),
            )
        currency = source.currency_id
        answer = source.provider_id._wechatpay_make_request(
            "refund",
            {
                "out_trade_no": source.wechatpay_out_trade_no,
                "out_refund_no": refund_tx.reference,
                "reason": self.env._("Refund"),
                "notify_url": source.provider_id._wechatpay_notify_url(),
                "amount": {
                    "refund": payment_utils.to_minor_currency_units(amount, currency),
                    "total": payment_utils.to_minor_currency_units(
                        source.amount, currency
                    ),
                    "currency": currency.name,
                },
            },
        )
        refund_tx._wechatpay_apply_refund(answer)
        return refund_tx

    def _create_payment(self, **extra_create_values):
        """A wallet top-up is booked by the wallet recharge (bank against the
        prepayment liability): no second ``account.payment`` for it."""
        if self.prepaid_account_id:
            return self.env["account.payment"]
        return super()._create_payment(**extra_create_values)

    # ------------------------------------------------------------------
    # orders
    # ------------------------------------------------------------------
    def _wechatpay_order_number(self):
        if wechatpay.OUT_TRADE_NO.match(self.reference):
            return self.reference
        return f"ODOO-{self.id}"

    def _wechatpay_create_order(self, openid=None):
        """Create the Native (no ``openid``) or JSAPI order once; returns self."""
        self.ensure_one()
        kind = "jsapi" if openid else "native"
        if self.wechatpay_trade_type == kind and (
            self.wechatpay_code_url or self.wechatpay_prepay_id
        ):
            return self
        if self.state not in ("draft", "pending"):
            raise UserError(self.env._("This payment is no longer open."))
        provider = self.provider_id
        number = self.wechatpay_out_trade_no or self._wechatpay_order_number()
        payload = {
            "appid": provider.wechatpay_appid,
            "mchid": provider.wechatpay_mchid,
            "description": self._wechatpay_description(),
            "out_trade_no": number,
            "notify_url": provider._wechatpay_notify_url(),
            "amount": {
                "total": payment_utils.to_minor_currency_units(
                    self.amount, self.currency_id
                ),
                "currency": self.currency_id.name,
            },
        }
        if openid:
            payload["payer"] = {"openid": openid}
        answer = provider._wechatpay_make_request("create_order", kind, payload)
        self.write(
            {
                "wechatpay_out_trade_no": number,
                "wechatpay_trade_type": kind,
                "wechatpay_code_url": answer.get("code_url"),
                "wechatpay_prepay_id": answer.get("prepay_id"),
                "wechatpay_ordered_at": fields.Datetime.now(),
            }
        )
        if self.state == "draft":
            self._set_pending()
        return self

    def _wechatpay_description(self):
        if self.prepaid_account_id:
            return self.env._("Top-up %s", self.prepaid_account_id.name)[:127]
        return self.reference[:127]

    def _wechatpay_jsapi_params(self):
        provider = self.provider_id
        return wechatpay.jsapi_pay_params(
            provider.wechatpay_appid,
            self.wechatpay_prepay_id,
            provider._wechatpay_merchant().private_key,
        )

    def _wechatpay_sync(self):
        """Ask WeChat Pay how the order stands and settle it like a
        notification would (a lost notification costs nothing)."""
        self.ensure_one()
        answer = self.provider_id._wechatpay_make_request(
            "query", self.wechatpay_out_trade_no
        )
        self._process_notification_data(answer)
        return self.state

    @api.model
    def _cron_wechatpay_sync(self, commit=None):
        """Settle pending WeChat orders; close the ones left unpaid too long."""
        if commit is None:
            commit = not odoo_module.current_test
        pending = self.search(
            [
                ("provider_code", "=", const.PROVIDER_CODE),
                ("state", "in", ("draft", "pending")),
                ("wechatpay_out_trade_no", "!=", False),
                ("operation", "!=", "refund"),
            ],
            limit=200,
        )
        now = fields.Datetime.now()
        for tx in pending:
            try:
                # One savepoint per order: an order that fails, or that a
                # notification settles at the same moment, leaves the others
                # to this run.
                with self.env.cr.savepoint():
                    if tx._wechatpay_sync() == "pending" and tx._wechatpay_expired(now):
                        tx.provider_id._wechatpay_make_request(
                            "close", tx.wechatpay_out_trade_no
                        )
                        tx._set_canceled(
                            state_message=self.env._("Closed unpaid after its time.")
                        )
            except (UserError, ValidationError) as err:
                _logger.info("WeChat Pay sync of %s failed: %s", tx.reference, err)
                self.env.invalidate_all()
                continue
            except (SerializationFailure, LockNotAvailable):
                # A notification is settling this order right now: it credits
                # the wallet; the next run sees the outcome.
                _logger.info(
                    "WeChat Pay sync of %s: settled concurrently, skipped",
                    tx.reference,
                )
                self.env.invalidate_all()
                continue
            if commit:
                self.env.cr.commit()  # pylint: disable=invalid-commit
        return pending

    def _wechatpay_expired(self, now):
        ttl = timedelta(minutes=self.provider_id.wechatpay_order_ttl_minutes or 30)
        return self.wechatpay_ordered_at and self.wechatpay_ordered_at + ttl < now
