from odoo import fields, models
from odoo.exceptions import UserError


class PrepaidSupplyOverrideWizard(models.TransientModel):
    """Manual cut-off or restore, with a reason kept in the account's log."""

    _name = "prepaid.supply.override.wizard"
    _description = "Manual Supply Override"

    account_id = fields.Many2one("prepaid.account", required=True)
    action = fields.Selection(
        [
            ("cut", "Cut supply now"),
            ("restore", "Restore supply now"),
            ("keep_on", "Keep supply on until"),
        ],
        required=True,
        default="restore",
    )
    keep_on_until = fields.Datetime()
    reason = fields.Char(required=True)

    def action_apply(self):
        self.ensure_one()
        account = self.account_id
        account._check_group("prepaid_billing.group_billing_manager")
        account.check_access("write")
        engine = self.env["prepaid.billing.engine"]
        reason = self.env._(
            "Manual override by %(user)s: %(reason)s",
            user=self.env.user.name,
            reason=self.reason,
        )
        if self.action == "cut":
            engine._manual_cut(account, reason)
        elif self.action == "restore":
            engine._restore(account, reason=reason, force=True)
        else:
            if not self.keep_on_until or self.keep_on_until <= fields.Datetime.now():
                raise UserError(self.env._("Give a time in the future."))
            vals = {"keep_on_until": self.keep_on_until}
            if account.supply_state == "cut_pending":
                vals["supply_state"] = "on"
            account._write_guarded(vals)
            account.message_post(body=reason)
        return {"type": "ir.actions.act_window_close"}
