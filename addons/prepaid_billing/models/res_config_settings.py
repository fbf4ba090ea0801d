from odoo import api, fields, models
from odoo.exceptions import ValidationError


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    prepaid_master_loss_pct = fields.Float(
        string="Master Meter Loss Threshold (%)",
        default=20.0,
        digits=(16, 2),
        config_parameter="prepaid_billing.master_loss_pct",
        help="A master meter measuring more than its sub-meters by this share "
        "of its own use over the window is a theft signal.",
    )
    prepaid_master_loss_window_h = fields.Float(
        string="Master Meter Loss Window (h)",
        default=24.0,
        digits=(16, 1),
        config_parameter="prepaid_billing.master_loss_window_h",
        help="Hours of readings the check compares.",
    )
    prepaid_master_loss_min_kwh = fields.Float(
        string="Master Meter Loss Minimum Use",
        default=5.0,
        digits=(16, 2),
        config_parameter="prepaid_billing.master_loss_min_kwh",
        help="Below this use of the master over the window (kWh, m³ for water) "
        "nothing is compared: small figures make large percentages.",
    )

    @api.constrains(
        "prepaid_master_loss_pct",
        "prepaid_master_loss_window_h",
        "prepaid_master_loss_min_kwh",
    )
    def _check_prepaid_master_loss(self):
        for settings in self:
            if (
                settings.prepaid_master_loss_pct <= 0
                or settings.prepaid_master_loss_pct >= 100
                or settings.prepaid_master_loss_window_h <= 0
                or settings.prepaid_master_loss_min_kwh < 0
            ):
                raise ValidationError(
                    self.env._(
                        "Master meter losses: the threshold must be between 0 and "
                        "100 %, the window above 0 hours and the minimum use 0 "
                        "or more."
                    )
                )

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
    prepaid_max_recharge_amount = fields.Monetary(
        related="company_id.prepaid_max_recharge_amount", readonly=False
    )
    prepaid_webhook_allow_private = fields.Boolean(
        string="Webhooks to Private Addresses",
        config_parameter="prepaid_billing.webhook_allow_private",
        groups="base.group_system",
        help="Let webhook channels reach loopback, private and link-local "
        "addresses (a receiver inside your own network). Off, such URLs are "
        "refused so that a channel cannot probe the server's network.",
    )
    prepaid_bill_batch_meters = fields.Integer(
        string="Meters per Billing Batch",
        default=1000,
        config_parameter="prepaid_billing.bill_batch_meters",
    )

    prepaid_arrears_cutoff_days = fields.Integer(
        string="Cut Off Postpaid Arrears After (Days)",
        config_parameter="prepaid_billing.arrears_cutoff_days",
        help="Cut off the supply of a postpaid account whose invoice is overdue "
        "for more than this many days (protection periods respected); restored "
        "once paid. 0: never.",
    )

    @api.constrains("prepaid_arrears_cutoff_days", "prepaid_bill_batch_meters")
    def _check_prepaid_counts(self):
        for settings in self:
            if settings.prepaid_arrears_cutoff_days < 0:
                raise ValidationError(
                    self.env._("The arrears cut-off days cannot be negative.")
                )
            if settings.prepaid_bill_batch_meters < 1:
                raise ValidationError(
                    self.env._("A billing batch takes at least one meter.")
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

    prepaid_debt_account_id = fields.Many2one(
        related="company_id.prepaid_debt_account_id", readonly=False
    )
    prepaid_debt_percent = fields.Float(
        related="company_id.prepaid_debt_percent", readonly=False
    )
    prepaid_debt_min = fields.Monetary(
        related="company_id.prepaid_debt_min", readonly=False
    )
    prepaid_debt_max = fields.Monetary(
        related="company_id.prepaid_debt_max", readonly=False
    )
    prepaid_debt_daily = fields.Monetary(
        related="company_id.prepaid_debt_daily", readonly=False
    )
    prepaid_emergency_credit_amount = fields.Monetary(
        related="company_id.prepaid_emergency_credit_amount", readonly=False
    )
    prepaid_limit_polls = fields.Integer(
        related="company_id.prepaid_limit_polls", readonly=False
    )
    prepaid_limit_restore_minutes = fields.Integer(
        related="company_id.prepaid_limit_restore_minutes", readonly=False
    )
