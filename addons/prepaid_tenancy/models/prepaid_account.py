from odoo import api, fields, models


class PrepaidAccount(models.Model):
    """The tenancy that opened an account, one click away from it."""

    _inherit = "prepaid.account"

    tenancy_ids = fields.One2many(
        "prepaid.tenancy",
        "account_id",
        string="Tenancies",
        readonly=True,
        groups="prepaid_billing.group_billing_user",
    )
    tenancy_id = fields.Many2one(
        "prepaid.tenancy",
        compute="_compute_tenancy_id",
        groups="prepaid_billing.group_billing_user",
        help="The tenancy that opened this account (move-in).",
    )

    @api.depends("tenancy_ids")
    def _compute_tenancy_id(self):
        for account in self:
            account.tenancy_id = account.tenancy_ids[:1]

    def action_view_tenancy(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Tenancy"),
            "res_model": "prepaid.tenancy",
            "res_id": self.tenancy_id.id,
            "view_mode": "form",
        }
