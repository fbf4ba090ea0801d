from odoo import api, fields, models
from odoo.exceptions import UserError

from .prepaid_account import BALANCE_STATES

SEVERITY = {state: rank for rank, (state, _label) in enumerate(BALANCE_STATES)}


class PrepaidRoom(models.Model):
    _inherit = "prepaid.room"

    balance_state = fields.Selection(
        BALANCE_STATES,
        compute="_compute_balance_state",
        help="Worst balance state of the accounts billing this room's meters.",
    )
    account_ids = fields.Many2many(
        "prepaid.account", compute="_compute_balance_state", string="Accounts"
    )
    currency_id = fields.Many2one(related="company_id.currency_id")
    balance = fields.Monetary(
        compute="_compute_balance_state",
        help="Balance of the prepaid accounts billing this room's meters.",
    )
    has_wallet = fields.Boolean(compute="_compute_balance_state")

    supply_alert = fields.Char(
        compute="_compute_supply_alert",
        help="A cut-off or restore that failed, or a relay read in the state the "
        "supply should not be in.",
    )
    has_supply_alert = fields.Boolean(
        compute="_compute_supply_alert", search="_search_has_supply_alert"
    )

    @api.depends("meter_ids.billing_account_id.supply_state")
    def _compute_supply_alert(self):
        accounts = self.meter_ids.billing_account_id
        mismatched = set(accounts._supply_mismatch_ids(accounts.ids))
        labels = dict(accounts._fields["supply_state"]._description_selection(self.env))
        for room in self:
            alerts = []
            for account in room.meter_ids.billing_account_id:
                if account.supply_state in ("cut_failed", "restore_failed"):
                    alerts.append(labels[account.supply_state])
                if account.id in mismatched:
                    alerts.append(self.env._("Relay contradicts supply"))
            room.supply_alert = ", ".join(alerts) or False
            room.has_supply_alert = bool(alerts)

    def _search_has_supply_alert(self, operator, value):
        if operator not in ("=", "!=") or not isinstance(value, bool):
            raise UserError(self.env._("Unsupported search on the supply alert."))
        Account = self.env["prepaid.account"]
        accounts = Account.search(
            [
                "|",
                ("supply_state", "in", ("cut_failed", "restore_failed")),
                ("id", "in", Account._supply_mismatch_ids()),
            ]
        )
        operator = "in" if (operator == "=") == value else "not in"
        return [("meter_ids.billing_account_id", operator, accounts.ids)]

    @api.depends(
        "meter_ids.billing_account_id.balance_state",
        "meter_ids.billing_account_id.balance",
    )
    def _compute_balance_state(self):
        for room in self:
            accounts = room.meter_ids.billing_account_id
            room.account_ids = accounts
            wallets = accounts.filtered(lambda account: account.mode == "prepaid")
            room.has_wallet = bool(wallets)
            room.balance = sum(wallets.mapped("balance"))
            states = accounts.mapped("balance_state")
            room.balance_state = max(states, key=SEVERITY.get) if states else False
