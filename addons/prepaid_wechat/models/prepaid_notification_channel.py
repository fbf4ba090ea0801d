from odoo import api, fields, models
from odoo.exceptions import ValidationError

from .. import const

TEMPLATE_EVENTS = {
    "alarm1": "wechat_template_alarm",
    "alarm2": "wechat_template_alarm",
    "alarm3": "wechat_template_alarm",
    "cutoff": "wechat_template_cutoff",
    "restore": "wechat_template_restore",
    "payment": "wechat_template_payment",
    "bill": "wechat_template_bill",
}


class PrepaidNotificationChannel(models.Model):
    _inherit = "prepaid.notification.channel"

    channel_type = fields.Selection(
        selection_add=[("wechat", "WeChat template message")],
        ondelete={"wechat": "cascade"},
    )
    on_payment = fields.Boolean(string="Payment received")
    on_bill = fields.Boolean(string="Bill issued")
    wechat_provider_id = fields.Many2one(
        "payment.provider",
        string="Official Account",
        domain=[("code", "=", const.PROVIDER_CODE)],
        help="The WeChat Pay provider whose App ID and AppSecret send the messages.",
    )
    wechat_template_alarm = fields.Char(string="Alarm Template ID")
    wechat_template_cutoff = fields.Char(string="Cut-off Template ID")
    wechat_template_restore = fields.Char(string="Restore Template ID")
    wechat_template_payment = fields.Char(string="Payment Template ID")
    wechat_template_bill = fields.Char(string="Bill Template ID")

    @api.constrains("channel_type", "wechat_provider_id")
    def _check_wechat_config(self):
        for channel in self.filtered(lambda c: c.channel_type == "wechat"):
            if not channel.wechat_provider_id:
                raise ValidationError(
                    self.env._(
                        "Channel %s: choose the WeChat Pay provider of the official "
                        "account.",
                        channel.name,
                    )
                )

    def _events(self):
        events = super()._events()
        return events | {e for e in ("payment", "bill") if self[f"on_{e}"]}

    def _wechat_message(self, notice):
        """The template data of ``notice`` (classic first/keyword/remark)."""
        account = notice.account_id
        # at or below the restore line, what to pay rather than "0 days left"
        remark = account._portal_topup_advice()
        if not remark:
            days = account._days_of_credit_left()
            remark = (
                self.env._("About %s days left at your recent use.", days)
                if days is not None
                else ""
            )
        balance = account.currency_id.format(account.balance)
        return {
            "first": dict(notice._fields["event"]._description_selection(self.env))[
                notice.event
            ],
            "keyword1": account.name,
            "keyword2": balance,
            "keyword3": ", ".join(account.meter_ids.room_id.mapped("name")),
            "remark": remark,
        }

    def _send_wechat(self, notice):
        openid = notice.partner_id.sudo().wechat_openid
        if not openid:
            return False, self.env._("the tenant has no WeChat openid")
        template = self[TEMPLATE_EVENTS.get(notice.event, "wechat_template_alarm")]
        if not template:
            return False, self.env._("no template for %s", notice.event)
        provider = self.wechat_provider_id
        client = provider._wechat_oa_client()
        url = f"{provider.get_base_url()}/my/prepaid/{notice.account_id.id}"
        msgid = client.send_template(
            openid, template, self._wechat_message(notice), url
        )
        return True, f"msgid {msgid}"
