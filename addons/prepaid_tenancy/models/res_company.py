from odoo import fields, models
from odoo.exceptions import UserError

DEPOSIT_CODE = "2242"


class ResCompany(models.Model):
    _inherit = "res.company"

    prepaid_deposit_account_id = fields.Many2one(
        "account.account",
        string="Tenant Deposits Account",
        help="Deposits tenants paid at move-in: a liability, never revenue and "
        "never the wallet, until the final settlement.",
    )

    prepaid_deposit_retained_account_id = fields.Many2one(
        "account.account",
        string="Retained Deposits Account",
        domain="[('account_type', 'in', ('income', 'income_other'))]",
        help="Income the part of a deposit kept at the final settlement "
        "(damages, cleaning) is posted to.",
    )

    def _prepaid_deposit_retained_account(self):
        """The income account of retained deposits; a clear error without one."""
        self.ensure_one()
        if not self.prepaid_deposit_retained_account_id:
            raise UserError(
                self.env._(
                    "Set the retained deposits account of %s in Settings > "
                    "Prepaid Billing before keeping part of a deposit.",
                    self.name,
                )
            )
        return self.prepaid_deposit_retained_account_id

    def _prepaid_deposit_account(self):
        """The tenant deposits account, made (a current liability) when the
        company has none yet."""
        self.ensure_one()
        if self.prepaid_deposit_account_id:
            return self.prepaid_deposit_account_id
        Account = self.env["account.account"].sudo().with_company(self)
        if not self.chart_template and not Account.search_count(
            [("company_ids", "in", self.id)], limit=1
        ):
            raise UserError(
                self.env._(
                    "Company %s has no chart of accounts: install one (Invoicing "
                    "settings) before taking deposits.",
                    self.name,
                )
            )
        code = DEPOSIT_CODE
        while Account.search_count(
            [("code", "=", code), ("company_ids", "in", self.id)], limit=1
        ):
            code = str(int(code) + 1)
        account = Account.create(
            {
                "name": self.env._("Tenant Deposits"),
                "code": code,
                "account_type": "liability_current",
                "company_ids": [fields.Command.set(self.ids)],
            }
        )
        self.sudo().prepaid_deposit_account_id = account
        return account
