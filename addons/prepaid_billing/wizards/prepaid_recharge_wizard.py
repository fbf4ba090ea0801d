import uuid

from odoo import api, fields, models
from odoo.exceptions import UserError

#: Seconds the wizard waits for the meter before reporting "sending".
METER_WAIT_S = 5.0


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
        """Recharge or refund through the meter: a counted record command.

        The command is committed in a transaction of its own before anything
        is written to the meter (outbox), then sent through the command
        queue's claim; the wallet moves in the command's own transaction when
        the meter's counter proves the record applied. This request's
        transaction holds nothing of it: its rollback loses no command and
        credits nothing.
        """
        account, meter = self.account_id, self.meter_id
        account._check_group("prepaid_billing.group_billing_user")
        refund = self.operation == "refund"
        if account.state != "open":
            raise UserError(
                self.env._(
                    "Account %s is not open: its meter cannot be recharged.",
                    account.name,
                )
            )
        if meter.billing_account_id != account or meter.billing_mode != "meter":
            raise UserError(
                self.env._(
                    "Meter %(meter)s is not a meter-side meter of %(account)s.",
                    meter=meter.name,
                    account=account.name,
                )
            )
        account._check_money_journal(self.journal_id)
        if refund:
            currency = account.currency_id
            if currency.compare_amounts(self.amount, 0) <= 0:
                raise UserError(self.env._("A refund must be a positive amount."))
            if currency.compare_amounts(self.amount, account.balance) > 0:
                raise UserError(
                    self.env._(
                        "Refund %(amount)s is more than the balance %(balance)s.",
                        amount=self.amount,
                        balance=account.balance,
                    )
                )
        else:
            account._check_recharge_amount(self.amount)
        command, state, error, busy = self.env["prepaid.meter.command"].send_and_wait(
            self._meter_record_vals(refund), METER_WAIT_S
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

    def _meter_record_vals(self, refund):
        """The counted record's command: one per wizard (the operation key),
        whatever the number of clicks."""
        account = self.account_id
        amount = -self.amount if refund else self.amount
        return {
            "meter_id": self.meter_id.id,
            "command_type": "record_write",
            "request_key": f"wizard:{self.operation_key}",
            "reason": self.note
            or (
                self.env._("Refund of %s", account.name)
                if refund
                else self.env._("Recharge of %s", account.name)
            ),
            "params": {
                "amount": amount,
                "account_id": account.id,
                "journal_id": self.journal_id.id,
                "payment_method": self._payment_method(),
            },
        }
