from odoo import fields, models


class PrepaidAlarmNotice(models.Model):
    _inherit = "prepaid.alarm.notice"

    event = fields.Selection(
        selection_add=[("payment", "Payment received"), ("bill", "Bill issued")],
        ondelete={"payment": "cascade", "bill": "cascade"},
    )
