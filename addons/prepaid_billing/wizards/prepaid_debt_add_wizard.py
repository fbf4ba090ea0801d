from odoo import fields, models

from ..models.prepaid_debt_line import ADDING_SOURCES, DEBT_SOURCES


class PrepaidDebtAddWizard(models.TransientModel):
    """A billing manager adds a debt to an account, with a reason."""

    _name = "prepaid.debt.add.wizard"
    _description = "Add a Debt"

    account_id = fields.Many2one("prepaid.account", required=True, readonly=True)
    currency_id = fields.Many2one(related="account_id.currency_id")
    amount = fields.Monetary(required=True)
    source = fields.Selection(
        [item for item in DEBT_SOURCES if item[0] in ADDING_SOURCES],
        required=True,
        default="manual",
    )
    reason = fields.Char(required=True)

    def action_add(self):
        self.ensure_one()
        self.account_id._add_debt(self.amount, self.source, self.reason)
        return {"type": "ir.actions.act_window_close"}
