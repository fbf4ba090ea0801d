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
        "to the meter (a negative record for a refund) and the wallet moves only "
        "when the meter has applied it.",
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
        if len(meter_side) == 1:
            self.meter_id = meter_side

    def _payment_method(self):
        return "bank" if self.journal_id.type == "bank" else "cash"

    def action_confirm(self):
        self.ensure_one()
        account = self.account_id
        account.check_access("write")
        refund = self.operation == "refund"
        if self.meter_id:
            return self._record_on_meter()
        if refund and account.meter_ids.filtered(lambda m: m.billing_mode == "meter"):
            raise UserError(
                self.env._(
                    "Account %s has meter-side meters: the money is kept on the "
                    "meter. Choose the meter, so that the refund is taken off it "
                    "before the wallet pays out.",
                    account.name,
                )
            )
        post = account._refund if refund else account._recharge
        post(
            self.amount,
            self.journal_id,
            f"wizard:{self.operation_key}",
            self._payment_method(),
            label=self.note or None,
        )
        return {"type": "ir.actions.act_window_close"}

    def _record_on_meter(self):
        """Recharge or refund through the meter (``prepaid.account.
        _record_on_meter``), then say how it went."""
        account, meter = self.account_id, self.meter_id
        amount = -self.amount if self.operation == "refund" else self.amount
        command, state, error, busy = account._record_on_meter(
            meter,
            amount,
            self.journal_id,
            f"wizard:{self.operation_key}",
            self._payment_method(),
            reason=self.note or None,
        )
        if state == "failed":
            raise UserError(
                self.env._(
                    "The meter did not apply the %(operation)s: %(error)s. The "
                    "wallet was not changed (command %(command)s).",
                    operation=self._operation_label(),
                    error=error,
                    command=command.name,
                )
            )
        done = state == "done"
        if done:
            message = self.env._(
                "Meter %(meter)s applied %(amount)s; the wallet follows.",
                meter=meter.name,
                amount=account.currency_id.format(self.amount),
            )
        else:
            # Left queued on a busy bus: say so; the command job sends it.
            queued_on_busy_bus = busy and state == "queued"
            lines = [command._not_sent_message(busy)] if queued_on_busy_bus else []
            lines.append(
                self.env._(
                    "Command %(command)s is still being sent to meter %(meter)s; "
                    "the wallet moves when the meter has applied it. Follow it "
                    "under Commands.",
                    command=command.name,
                    meter=meter.name,
                )
            )
            message = "\n".join(lines)
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": self._operation_label(),
                "message": message,
                "type": "success" if done else "warning",
                "sticky": not done,
                "next": {"type": "ir.actions.act_window_close"}
                if done
                else {
                    "type": "ir.actions.act_window",
                    "res_model": "prepaid.meter.command",
                    "res_id": command.id,
                    "views": [[False, "form"]],
                    "target": "current",
                },
            },
        }

    def _operation_label(self):
        return (
            self.env._("Refund")
            if self.operation == "refund"
            else self.env._("Recharge")
        )
