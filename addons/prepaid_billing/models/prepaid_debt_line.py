from odoo import api, fields, models
from odoo.exceptions import UserError

DEBT_SOURCES = [
    ("tenancy", "Earlier Tenancy"),
    ("arrears", "Postpaid Arrears"),
    ("manual", "Entered by a Manager"),
    ("top_up", "Recovered from a Top-up"),
    ("daily", "Daily Recovery"),
    ("closing", "Paid at Closing"),
    ("reversal", "Reversal"),
]
# Sources that add to the debt; the others recover it.
ADDING_SOURCES = ("tenancy", "arrears", "manual")
# Written after posting by nothing: every field is fixed at creation.
POSTING_CONTEXT = "prepaid_debt_posting"


class PrepaidDebtLine(models.Model):
    """One movement of a tenant's debt: money owed outside the wallet, added
    (an earlier tenancy, postpaid arrears, a manager's entry) or recovered (a
    share of a top-up, a daily amount). Posted lines never change."""

    _name = "prepaid.debt.line"
    _description = "Debt Ledger Line"
    _order = "date desc, id desc"

    account_id = fields.Many2one(
        "prepaid.account", required=True, ondelete="restrict", index=True, readonly=True
    )
    partner_id = fields.Many2one(
        related="account_id.partner_id", store=True, string="Tenant"
    )
    company_id = fields.Many2one("res.company", required=True, readonly=True)
    currency_id = fields.Many2one("res.currency", required=True, readonly=True)
    date = fields.Datetime(required=True, readonly=True, default=fields.Datetime.now)
    source = fields.Selection(DEBT_SOURCES, required=True, readonly=True)
    name = fields.Char(string="Reason", required=True, readonly=True)
    amount = fields.Monetary(
        readonly=True, help="Positive adds to the debt, negative recovers it."
    )
    debt_after = fields.Monetary(readonly=True)
    recovery_day = fields.Date(
        readonly=True, help="Daily recovery: the local day it is for."
    )
    ledger_line_id = fields.Many2one(
        "prepaid.ledger.line",
        string="Wallet Line",
        readonly=True,
        ondelete="restrict",
        help="Recoveries: the wallet line that took the money.",
    )
    move_id = fields.Many2one("account.move", string="Journal Entry", readonly=True)
    idempotency_key = fields.Char(readonly=True, copy=False)
    user_id = fields.Many2one(
        "res.users", readonly=True, default=lambda self: self.env.uid
    )

    _sql_constraints = [
        (
            "idempotency_key_uniq",
            "unique(idempotency_key)",
            "This debt operation was already posted.",
        )
    ]

    @api.model_create_multi
    def create(self, vals_list):
        if not self.env.context.get(POSTING_CONTEXT):
            raise UserError(
                self.env._(
                    "Debt lines are posted by adding a debt to an account or by "
                    "its recovery; they cannot be created by hand."
                )
            )
        return super().create(vals_list)

    def write(self, vals):  # pylint: disable=method-required-super
        raise UserError(self.env._("Posted debt lines cannot be changed."))

    @api.ondelete(at_uninstall=False)
    def _unlink_except_posted(self):
        raise UserError(self.env._("Posted debt lines cannot be deleted."))
