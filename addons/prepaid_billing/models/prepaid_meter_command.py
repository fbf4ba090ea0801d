from odoo import api, models
from odoo.exceptions import AccessError, ValidationError

from odoo.addons.prepaid_metering.tools.constants import SWITCH_COMMANDS

#: Registers of a meter-side meter that decide how fast its money goes.
MONEY_REGISTERS = frozenset({"unit_price", "overdraft_limit"})


class PrepaidMeterCommand(models.Model):
    """Billing gives counted records their meaning (a wallet recharge or
    refund on a meter-side meter) and follows switch outcomes on the account."""

    _inherit = "prepaid.meter.command"

    def _user_may_write_records(self, vals):
        return self.env.user.has_group("prepaid_billing.group_billing_user")

    @api.model
    def _record_write_denied_message(self):
        return self.env._(
            "Only billing users may recharge or refund a meter: a counted record "
            "moves money."
        )

    def _check_create_rights(self, vals_list):
        super()._check_create_rights(vals_list)
        if self.env.su or self.env.user.has_group("prepaid_billing.group_billing_user"):
            return
        Meter = self.env["prepaid.meter"]
        for vals in vals_list:
            if vals.get("command_type") != "write_params":
                continue
            money = MONEY_REGISTERS.intersection(vals.get("params") or {})
            meter = Meter.browse(vals.get("meter_id"))
            if money and meter.billing_mode == "meter":
                raise AccessError(
                    self.env._(
                        "Meter %(meter)s keeps the balance itself: only billing "
                        "users may write its %(registers)s.",
                        meter=meter.name,
                        registers=", ".join(sorted(money)),
                    )
                )

    @api.constrains("command_type", "params", "meter_id")
    def _check_wallet_record(self):
        for command in self.filtered(lambda c: c.command_type == "record_write"):
            params = command.params or {}
            if not params.get("account_id"):
                continue
            account = self.env["prepaid.account"].browse(params["account_id"])
            meter = command.meter_id
            if meter.billing_account_id != account or meter.billing_mode != "meter":
                raise ValidationError(
                    self.env._(
                        "Meter %(meter)s is not a meter-side meter of account "
                        "%(account)s.",
                        meter=meter.name,
                        account=account.display_name,
                    )
                )

    def _on_commands_settled(self):
        res = super()._on_commands_settled()
        Engine = self.env["prepaid.billing.engine"]
        for command in self:
            if command.command_type == "record_write":
                account_id = (command.params or {}).get("account_id")
                if command.state == "done" and account_id:
                    account = self.env["prepaid.account"].sudo().browse(account_id)
                    # The counter proved the meter applied the record: the
                    # wallet follows, once (the ledger key is the command).
                    account._credit_meter_recharge(command.sudo())
                elif command.state == "failed" and account_id:
                    command._top_up_not_written()
            elif command.command_type in SWITCH_COMMANDS:
                Engine._switch_settled(command)
        return res

    def _top_up_not_written(self):
        """A top-up already in the wallet did not reach its meter-side meter:
        the two disagree until someone retries the command (a retry reads the
        meter's counter and never writes twice)."""
        self.ensure_one()
        if not (self.params or {}).get("wallet_key"):
            return  # a person's record: the wallet never moved
        account = self.env["prepaid.account"].sudo().browse(self.params["account_id"])
        summary = self.env._(
            "Top-up not written to meter %s", self.meter_id.display_name
        )
        note = self.env._(
            "%(amount)s is in the wallet but command %(command)s failed: "
            "%(error)s. Retry it under Commands, or the meter cuts itself off "
            "when its own balance runs out.",
            amount=account.currency_id.format(self.params["amount"]),
            command=self.name,
            error=self.last_error or "",
        )
        account.message_post(body=note)
        account.activity_schedule(
            "mail.mail_activity_data_todo",
            summary=summary,
            note=note,
            user_id=self.env["prepaid.billing.engine"]._supply_operator(self).id,
        )
