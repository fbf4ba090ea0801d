from odoo import fields, models


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    prepaid_deposit_account_id = fields.Many2one(
        related="company_id.prepaid_deposit_account_id", readonly=False
    )
    prepaid_deposit_retained_account_id = fields.Many2one(
        related="company_id.prepaid_deposit_retained_account_id", readonly=False
    )
