from odoo import api, fields, models


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    prepaid_alarm1_amount = fields.Monetary(
        related="company_id.prepaid_alarm1_amount",
        readonly=False,
    )
    prepaid_alarm2_amount = fields.Monetary(
        related="company_id.prepaid_alarm2_amount",
        readonly=False,
    )
    prepaid_alarm3_amount = fields.Monetary(
        related="company_id.prepaid_alarm3_amount",
        readonly=False,
    )
    prepaid_alarm_times = fields.Integer(
        related="company_id.prepaid_alarm_times", readonly=False
    )
    prepaid_alarm_interval_hours = fields.Float(
        related="company_id.prepaid_alarm_interval_hours", readonly=False
    )
    prepaid_liability_account_id = fields.Many2one(
        related="company_id.prepaid_liability_account_id", readonly=False
    )
    prepaid_revenue_account_id = fields.Many2one(
        related="company_id.prepaid_revenue_account_id", readonly=False
    )
    prepaid_journal_id = fields.Many2one(
        related="company_id.prepaid_journal_id", readonly=False
    )
    prepaid_bill_batch_meters = fields.Integer(
        string="Meters per Billing Batch",
        default=1000,
        config_parameter="prepaid_billing.bill_batch_meters",
    )

    @api.constrains(
        "prepaid_alarm1_amount", "prepaid_alarm2_amount", "prepaid_alarm3_amount"
    )
    def _check_prepaid_alarms(self):
        for settings in self:
            self.env["prepaid.account"]._check_alarm_amounts(
                settings.prepaid_alarm1_amount,
                settings.prepaid_alarm2_amount,
                settings.prepaid_alarm3_amount,
            )
