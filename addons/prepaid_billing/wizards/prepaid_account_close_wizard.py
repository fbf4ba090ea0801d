from odoo import fields, models
from odoo.exceptions import UserError


class PrepaidAccountCloseWizard(models.TransientModel):
    """Final reading, final deduction, refund of what is left, meters released."""

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
        account = self.account_id
        account._check_group("prepaid_billing.group_billing_user")
        account.check_access("write")
        if account.state != "open":
            raise UserError(self.env._("Only open accounts can be closed."))
        meters = account.meter_ids
        if self.read_meters:
            for meter in meters:
                command = self.env["prepaid.meter.command"].create(
                    {
                        "meter_id": meter.id,
                        "command_type": "read_now",
                        "max_attempts": 1,
                        "reason": self.env._("Final reading of %s", account.name),
                    }
                )
                try:
                    command.action_send_now()
                except UserError as error:
                    # A bus busy with a poll: the closing (and the command
                    # with it) is rolled back, so say so instead of "queued".
                    raise UserError(
                        self.env._(
                            "The final reading of %(meter)s cannot be taken now "
                            "(%(error)s). Nothing was closed: try again in a "
                            "moment, or close without final readings.",
                            meter=meter.name,
                            error=error.args[0],
                        )
                    ) from error
                if command.state != "done":
                    raise UserError(
                        self.env._(
                            "Final reading of %(meter)s failed: %(error)s. Close "
                            "without final readings or fix the meter.",
                            meter=meter.name,
                            error=command.last_error,
                        )
                    )
        self.env["prepaid.billing.engine"]._bill(meters.ids)
        account.invalidate_recordset(["balance"])
        if account.currency_id.compare_amounts(account.balance, 0) > 0:
            meter_side = meters.filtered(lambda m: m.billing_mode == "meter")
            if meter_side:
                # The wallet never pays out money a meter still holds.
                raise UserError(
                    self.env._(
                        "%(balance)s is still kept on meter-side meter(s) "
                        "%(meters)s. Refund it from the meter first (Refund, "
                        "choose the meter), then close the account.",
                        balance=account.currency_id.format(account.balance),
                        meters=", ".join(meter_side.mapped("name")),
                    )
                )
            if not self.journal_id:
                raise UserError(
                    self.env._("Choose the journal that pays back %s.", account.balance)
                )
            account._refund(
                account.balance,
                self.journal_id,
                f"close:{account.id}",
                "bank" if self.journal_id.type == "bank" else "cash",
                label=self.env._("Refund on closing"),
            )
        # Closed first: a meter of an open account cannot be released.
        account._write_guarded({"state": "closed", "closed_at": fields.Datetime.now()})
        meters.sudo().write({"billing_account_id": False})
        account.message_post(body=self.env._("Account closed; meters released."))
        return {"type": "ir.actions.act_window_close"}
