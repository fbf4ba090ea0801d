import uuid

from odoo import api, fields, models
from odoo.exceptions import UserError


class PrepaidRechargeWizard(models.TransientModel):
    _name = "prepaid.recharge.wizard"
    _description = "Recharge or Refund a Prepaid Account"

    account_id = fields.Many2one("prepaid.account", required=True)
    company_id = fields.Many2one(related="account_id.company_id")
    currency_id = fields.Many2one(related="account_id.currency_id")
    balance = fields.Monetary(related="account_id.balance")
    operation = fields.Selection(
        [("recharge", "Recharge"), ("refund", "Refund")],
        required=True,
        default="recharge",
    )
    amount = fields.Monetary(required=True)
    journal_id = fields.Many2one(
        "account.journal",
        required=True,
        domain="[('type', 'in', ('cash', 'bank')), ('company_id', '=', company_id)]",
        default=lambda self: self.env["account.journal"].search(
            [("type", "=", "cash"), ("company_id", "=", self.env.company.id)], limit=1
        ),
    )
    meter_id = fields.Many2one(
        "prepaid.meter",
        string="Meter (meter-side)",
        domain="[('billing_account_id', '=', account_id), "
        "('billing_mode', '=', 'meter')]",
        help="For meters that keep the balance themselves: the amount is written "
        "to the meter and credited only when the meter accepts it.",
    )
    note = fields.Char()
    operation_key = fields.Char(
        default=lambda self: str(uuid.uuid4()),
        readonly=True,
        help="Makes a double click post once.",
    )

    @api.onchange("account_id")
    def _onchange_account(self):
        meter_side = self.account_id.meter_ids.filtered(
            lambda m: m.billing_mode == "meter"
        )
        if len(meter_side) == 1 and self.operation == "recharge":
            self.meter_id = meter_side

    def _payment_method(self):
        return "bank" if self.journal_id.type == "bank" else "cash"

    def action_confirm(self):
        self.ensure_one()
        account = self.account_id
        account.check_access("write")
        refund = self.operation == "refund"
        if self.meter_id and not refund:
            return self._recharge_on_meter()
        post = account._refund if refund else account._recharge
        post(
            self.amount,
            self.journal_id,
            f"wizard:{self.operation_key}",
            self._payment_method(),
            label=self.note or None,
        )
        return {"type": "ir.actions.act_window_close"}

    def _recharge_on_meter(self):
        account = self.account_id
        if account.state != "open":
            raise UserError(
                self.env._(
                    "Account %s is not open: it cannot be recharged.", account.name
                )
            )
        if account.currency_id.compare_amounts(self.amount, 0) <= 0:
            raise UserError(self.env._("A recharge must be a positive amount."))
        command = self.env["prepaid.meter.command"].create(
            {
                "meter_id": self.meter_id.id,
                "command_type": "meter_recharge",
                "max_attempts": 1,
                "reason": self.note or self.env._("Recharge of %s", account.name),
                "params": {
                    "account_id": account.id,
                    "amount": self.amount,
                    "journal_id": self.journal_id.id,
                    "payment_method": self._payment_method(),
                    "key": self.operation_key,
                },
            }
        )
        command.action_send_now()
        if command.state != "done":
            raise UserError(
                self.env._(
                    "The meter did not accept the recharge: %s. Nothing was credited.",
                    command.last_error,
                )
            )
        return {"type": "ir.actions.act_window_close"}
