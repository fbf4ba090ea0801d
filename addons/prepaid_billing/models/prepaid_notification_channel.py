import json
import logging
import time
import uuid

from odoo import api, fields, models
from odoo.exceptions import ValidationError

from ..tools import webhook

_logger = logging.getLogger(__name__)


class PrepaidNotificationChannel(models.Model):
    """Where balance alarms go. Each type is one ``_send_<type>`` method: the
    WeChat module adds its own type the same way.

    Channels send tenants' names and numbers out of the house, so only the
    administrator edits them (see the access rights); billing users read them.
    """

    _name = "prepaid.notification.channel"
    _description = "Notification Channel"
    _order = "sequence, id"

    name = fields.Char(required=True, translate=True)
    sequence = fields.Integer(default=10)
    active = fields.Boolean(default=True)
    company_id = fields.Many2one("res.company", default=lambda self: self.env.company)
    channel_type = fields.Selection(
        [
            ("email", "Email"),
            ("sms", "SMS"),
            ("webhook", "Webhook (app push, voice call)"),
        ],
        required=True,
        default="email",
    )
    on_alarm1 = fields.Boolean(string="Alarm 1", default=True)
    on_alarm2 = fields.Boolean(string="Alarm 2", default=True)
    on_alarm3 = fields.Boolean(string="Alarm 3", default=True)
    on_cutoff = fields.Boolean(string="Cut-off", default=True)
    on_restore = fields.Boolean(string="Restore", default=True)
    mail_template_id = fields.Many2one(
        "mail.template", domain=[("model", "=", "prepaid.alarm.notice")]
    )
    sms_template_id = fields.Many2one(
        "sms.template", domain=[("model", "=", "prepaid.alarm.notice")]
    )
    webhook_url = fields.Char()
    webhook_secret = fields.Char(
        groups="base.group_system",
        help="Shared secret for the HMAC-SHA256 signature header.",
    )
    webhook_timeout_s = fields.Float(
        string="Webhook Timeout (s)",
        default=5.0,
        help="Seconds to wait for the receiver, from 1 to 30.",
    )

    @api.constrains(
        "channel_type", "webhook_url", "webhook_secret", "webhook_timeout_s"
    )
    def _check_config(self):
        allow_private = self._webhook_allow_private()
        for channel in self.filtered(lambda c: c.channel_type == "webhook"):
            try:
                webhook.check_url(channel.webhook_url, allow_private=allow_private)
            except webhook.UnsafeUrl as err:
                raise ValidationError(channel._unsafe_url_message(err)) from err
            if not channel.sudo().webhook_secret:
                raise ValidationError(
                    self.env._(
                        "Channel %s: give the shared secret that signs the "
                        "webhooks, so the receiver can tell them from forgeries.",
                        channel.name,
                    )
                )
            try:
                webhook.check_timeout(channel.webhook_timeout_s)
            except ValueError as err:
                raise ValidationError(
                    self.env._(
                        "Channel %(name)s: the webhook timeout must be between "
                        "%(low)s and %(high)s seconds.",
                        name=channel.name,
                        low=webhook.MIN_TIMEOUT_S,
                        high=webhook.MAX_TIMEOUT_S,
                    )
                ) from err

    @api.model
    def _webhook_allow_private(self):
        """True if the administrator lets webhooks reach private addresses."""
        return bool(
            self.env["ir.config_parameter"]
            .sudo()
            .get_param("prepaid_billing.webhook_allow_private")
        )

    def _unsafe_url_message(self, err):
        """The user's message for a refused webhook URL (``webhook.UnsafeUrl``)."""
        name = self.name
        if err.reason == webhook.BAD_SCHEME:
            return self.env._("Channel %s: give an http(s) webhook URL.", name)
        if err.reason == webhook.CREDENTIALS:
            return self.env._(
                "Channel %s: put no user name or password in the webhook URL; "
                "the receiver checks the signature instead.",
                name,
            )
        if err.reason == webhook.UNRESOLVED:
            return self.env._(
                "Channel %(name)s: the host %(host)s of the webhook URL cannot "
                "be resolved.",
                name=name,
                host=err.detail,
            )
        if err.reason == webhook.PRIVATE:
            return self.env._(
                "Channel %(name)s: the webhook URL leads to %(address)s, a "
                "loopback, private, link-local or reserved address. Use a public "
                "address, or let the administrator allow private addresses in "
                "Settings > Prepaid Billing.",
                name=name,
                address=err.detail,
            )
        return self.env._("Channel %s: the webhook URL has no valid host.", name)

    def _events(self):
        self.ensure_one()
        return {
            e
            for e in ("alarm1", "alarm2", "alarm3", "cutoff", "restore")
            if self[f"on_{e}"]
        }

    def _dispatch(self, notice):
        """Send ``notice``; returns (ok, message). Never raises."""
        self.ensure_one()
        try:
            return getattr(self, f"_send_{self.channel_type}")(notice)
        except Exception as err:  # noqa: BLE001 - a channel must not stop others
            _logger.info(
                "channel %s failed for notice %s: %s", self.name, notice.id, err
            )
            return False, str(err)

    def _send_email(self, notice):
        template = self.mail_template_id or self.env.ref(
            "prepaid_billing.mail_template_alarm_notice"
        )
        if not notice.partner_id.email:
            return False, self.env._("the tenant has no email address")
        mail_id = template.send_mail(notice.id)
        return True, f"mail.mail {mail_id}"

    def _send_sms(self, notice):
        partner = notice.partner_id
        number = partner.mobile or partner.phone
        if not number:
            return False, self.env._("the tenant has no mobile number")
        template = self.sms_template_id or self.env.ref(
            "prepaid_billing.sms_template_alarm_notice"
        )
        body = template._render_field("body", notice.ids)[notice.id]
        sms = (
            self.env["sms.sms"]
            .sudo()
            .create(
                {
                    "number": number,
                    "body": body,
                    "partner_id": partner.id,
                }
            )
        )
        return True, f"sms.sms {sms.id}"

    def _webhook_payload(self, notice):
        account = notice.account_id
        return {
            "event": notice.event,
            "account": account.name,
            "tenant": {
                "id": account.partner_id.id,
                "name": account.partner_id.name,
                "mobile": account.partner_id.mobile or None,
            },
            "balance": account.balance,
            "currency": account.currency_id.name,
            "rooms": account.meter_ids.room_id.mapped("name"),
            "sent": notice.sent_count + 1,
        }

    def _send_webhook(self, notice):
        body = json.dumps(self._webhook_payload(notice), sort_keys=True).encode()
        event_id = str(uuid.uuid4())
        headers = webhook.headers(
            (self.sudo().webhook_secret or "").encode(),
            body,
            int(time.time()),
            event_id,
        )
        headers["Content-Type"] = "application/json"
        try:
            reply = webhook.post(
                self.webhook_url,
                body,
                headers,
                self.webhook_timeout_s,
                allow_private=self._webhook_allow_private(),
            )
        except webhook.UnsafeUrl as err:
            return False, self._unsafe_url_message(err)
        if not reply.ok:
            return False, f"HTTP {reply.status}"
        return True, f"HTTP {reply.status} {event_id}"
