import json
import logging
import time
import uuid

import requests

from odoo import api, fields, models
from odoo.exceptions import ValidationError

from ..tools import webhook

_logger = logging.getLogger(__name__)


class PrepaidNotificationChannel(models.Model):
    """Where balance alarms go. Each type is one ``_send_<type>`` method: the
    WeChat module adds its own type the same way."""

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
    webhook_timeout_s = fields.Float(default=5.0)

    @api.constrains(
        "channel_type", "webhook_url", "mail_template_id", "sms_template_id"
    )
    def _check_config(self):
        for channel in self:
            if channel.channel_type == "webhook" and not (
                channel.webhook_url or ""
            ).startswith(("http://", "https://")):
                raise ValidationError(
                    self.env._("Channel %s: give an http(s) webhook URL.", channel.name)
                )

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
        response = requests.post(
            self.webhook_url,
            data=body,
            headers=headers,
            timeout=self.webhook_timeout_s,
        )
        if response.status_code >= 300:
            return False, f"HTTP {response.status_code}"
        return True, f"HTTP {response.status_code} {event_id}"
