from odoo import fields, models


class AccountMove(models.Model):
    _inherit = "account.move"

    prepaid_tenancy_id = fields.Many2one(
        "prepaid.tenancy",
        string="Tenancy",
        index="btree_not_null",
        readonly=True,
        copy=False,
        help="The tenancy whose deposit or settlement this entry records.",
    )
