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


class AccountMoveLine(models.Model):
    _inherit = "account.move.line"

    prepaid_tenancy_id = fields.Many2one(
        "prepaid.tenancy",
        string="Tenancy",
        index="btree_not_null",
        readonly=True,
        help="The tenancy this line belongs to, in an entry shared by several "
        "tenancies (the deposits of a batch of move-ins); else the entry's.",
    )
