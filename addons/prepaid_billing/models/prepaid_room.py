from odoo import api, fields, models

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

    @api.depends("meter_ids.billing_account_id.balance_state")
    def _compute_balance_state(self):
        for room in self:
            accounts = room.meter_ids.billing_account_id
            room.account_ids = accounts
            states = accounts.mapped("balance_state")
            room.balance_state = max(states, key=SEVERITY.get) if states else False
