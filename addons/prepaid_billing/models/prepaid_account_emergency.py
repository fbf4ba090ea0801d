from odoo import api, fields, models
from odoo.exceptions import UserError

from .prepaid_account import BILLING_USER

EMERGENCY_STATES = [
    ("none", "Not Taken"),
    ("taken", "Taken"),
    ("in_use", "In Use"),
]


class PrepaidAccount(models.Model):
    """Emergency credit: an amount the tenant may use below zero once, on top
    of the allowed credit, after which the normal cut-off applies. Offered
    when the balance reaches the last alarm level; taken by the tenant in the
    portal or by an accountant; repaid first from the next top-up (a top-up
    fills the negative balance before anything else, see
    ``tools/debt.top_up_split``), which makes it available again."""

    _inherit = "prepaid.account"  # pylint: disable=consider-merging-classes-inherited

    emergency_credit_amount = fields.Monetary(
        string="Emergency Credit",
        help="What this tenant may use below zero once; 0: the amount in Settings.",
    )
    emergency_state = fields.Selection(
        EMERGENCY_STATES,
        string="Emergency Credit State",
        default="none",
        required=True,
        readonly=True,
        copy=False,
        tracking=True,
    )
    emergency_taken_amount = fields.Monetary(
        string="Emergency Credit Taken", readonly=True, copy=False
    )
    emergency_offered = fields.Boolean(
        compute="_compute_emergency_offered",
        help="The balance reached the last alarm level and emergency credit may "
        "be taken now.",
    )

    def _emergency_amount(self):
        """The emergency credit this account may take (its own or Settings')."""
        self.ensure_one()
        return (
            self.emergency_credit_amount
            or self.company_id.prepaid_emergency_credit_amount
        )

    @api.depends(
        "alarm_level",
        "emergency_state",
        "emergency_credit_amount",
        "state",
        "balance",
        "credit_limit",
    )
    def _compute_emergency_offered(self):
        for account in self:
            amount = account._emergency_amount()
            currency = account.currency_id
            account.emergency_offered = (
                account.state == "open"
                and account.mode == "prepaid"
                and account.emergency_state == "none"
                and account.alarm_level >= 3
                and currency.compare_amounts(amount, 0) > 0
                # only when it keeps (or brings back) the supply: an account
                # already further below zero than the credit is not offered
                # a credit that changes nothing
                and currency.compare_amounts(
                    account.balance + account.credit_limit + amount, 0
                )
                > 0
            )

    def action_take_emergency_credit(self):
        """An accountant takes the emergency credit for the tenant."""
        self.ensure_one()
        self._check_group(BILLING_USER)
        self.check_access("write")
        self._take_emergency_credit(self.env.user.partner_id)
        return True

    def _take_emergency_credit(self, by):
        """Give the account its emergency credit (``by``: who asked, a
        partner: the tenant in the portal or the accountant). Once: refused
        unless it is on offer."""
        self.ensure_one()
        self._lock_for_debt()
        self.invalidate_recordset()
        if not self.emergency_offered:
            raise UserError(
                self.env._(
                    "Emergency credit is offered once the balance reaches the last "
                    "alarm level, and can be taken again only after it is repaid."
                )
            )
        amount = self._emergency_amount()
        self._write_guarded(
            {"emergency_state": "taken", "emergency_taken_amount": amount}
        )
        self.message_post(
            body=self.env._(
                "Emergency credit of %(amount)s taken by %(who)s; it is repaid "
                "from the next top-up.",
                amount=self.currency_id.format(amount),
                who=by.name,
            )
        )
        self.env["prepaid.billing.engine"]._after_balance_change(self)

    def _emergency_settle(self, in_use_ids, repaid_ids):
        """Follow the balance: in use below zero, repaid (and available
        again) when a top-up brings it back to zero or above."""
        if in_use_ids:
            self.browse(in_use_ids)._write_guarded({"emergency_state": "in_use"})
        if repaid_ids:
            repaid = self.browse(repaid_ids)
            repaid._write_guarded(
                {"emergency_state": "none", "emergency_taken_amount": 0.0}
            )
            for account in repaid:
                account.message_post(body=self.env._("Emergency credit repaid."))

    def _effective_credit_limit(self):
        """The credit below zero before a cut-off: the allowed credit and the
        emergency credit taken."""
        self.ensure_one()
        return self.credit_limit + (
            self.emergency_taken_amount if self.emergency_state != "none" else 0.0
        )
