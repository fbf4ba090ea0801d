from odoo import fields, models


class PrepaidAccountCloseWizard(models.TransientModel):
    """Collects how to close an account; ``prepaid.account._close`` does it
    (final readings, last deduction, credits, refund, meters released)."""

    _name = "prepaid.account.close.wizard"
    _description = "Close a Prepaid Account"

    account_id = fields.Many2one("prepaid.account", required=True)
    currency_id = fields.Many2one(related="account_id.currency_id")
    balance = fields.Monetary(related="account_id.balance")
    read_meters = fields.Boolean(
        string="Take Final Readings",
        default=True,
        help="Read every meter now so the last consumption is billed.",
    )
    journal_id = fields.Many2one(
        "account.journal",
        string="Refund Journal",
        domain="[('type', 'in', ('cash', 'bank'))]",
    )

    def action_close(self):
        self.ensure_one()
        self.account_id._close(
            read_meters=self.read_meters, journal=self.journal_id or None
        )
        return {"type": "ir.actions.act_window_close"}
