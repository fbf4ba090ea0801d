from collections import defaultdict
from datetime import timedelta

from odoo import api, fields, models


class PrepaidArrearsNotice(models.Model):
    """An arrears notice sent to a tenant: what was overdue when it was sent."""

    _name = "prepaid.arrears.notice"
    _description = "Arrears Notice"
    _inherit = ["mail.thread"]
    _order = "sent_at desc, id desc"
    _check_company_auto = True

    account_id = fields.Many2one(
        "prepaid.account", required=True, ondelete="cascade", index=True
    )
    partner_id = fields.Many2one(related="account_id.partner_id", store=True)
    company_id = fields.Many2one(related="account_id.company_id", store=True)
    currency_id = fields.Many2one(related="company_id.currency_id")
    sent_at = fields.Datetime(readonly=True)
    move_ids = fields.Many2many(
        "account.move", string="Overdue Invoices", readonly=True
    )
    amount_due = fields.Monetary(readonly=True)
    days_overdue = fields.Integer(readonly=True)
    date_print = fields.Date(default=fields.Date.context_today, readonly=True)

    @api.model
    def _overdue_by_account(self, accounts, days=0):
        """``{account: invoices}``: the posted, unpaid invoices of the
        accounts' bills due more than ``days`` days ago."""
        limit = fields.Date.context_today(self) - timedelta(days=days)
        bills = self.env["prepaid.bill"].search(
            [
                ("account_id", "in", accounts.ids),
                ("move_id.state", "=", "posted"),
                ("move_id.payment_state", "in", ("not_paid", "partial")),
                ("move_id.invoice_date_due", "<", limit),
            ]
        )
        result = defaultdict(lambda: self.env["account.move"])
        for bill in bills:
            result[bill.account_id] |= bill.move_id
        return result

    @api.model
    def _create_for(self, accounts):
        """One notice per account with overdue invoices."""
        today = fields.Date.context_today(self)
        vals_list = [
            {
                "account_id": account.id,
                "move_ids": [fields.Command.set(moves.ids)],
                "amount_due": sum(moves.mapped("amount_residual")),
                "days_overdue": max((today - m.invoice_date_due).days for m in moves),
            }
            for account, moves in self._overdue_by_account(accounts).items()
        ]
        return self.create(vals_list)

    @api.model
    def _cron_arrears_cutoff(self, accounts=None):
        """Cut off the supply of postpaid accounts overdue for more than the
        configured days (protection periods respected, like any automatic
        cut-off); restore it once nothing is overdue that long. Returns how
        many were cut.

        ``accounts``: only those (a test's own); the cron looks at every
        account.
        """
        days = int(
            self.env["ir.config_parameter"]
            .sudo()
            .get_param("prepaid_billing.arrears_cutoff_days", 0)
        )
        if days <= 0:
            return 0
        domain = [("mode", "=", "postpaid"), ("state", "=", "open")]
        if accounts is not None:
            domain.append(("id", "in", accounts.ids))
        accounts = self.env["prepaid.account"].search(domain)
        overdue = self.env["prepaid.account"].browse(
            [a.id for a in self._overdue_by_account(accounts, days)]
        )
        engine = self.env["prepaid.billing.engine"]
        to_cut = overdue.filtered(lambda a: a.supply_state == "on")
        cut = engine._cut_or_defer_batch(
            to_cut,
            fields.Datetime.now(),
            reason=self.env._("Invoices overdue for more than %s days.", days),
        )
        for account in (accounts - overdue).filtered(
            lambda a: a.supply_state in ("cut_off", "cut_pending")
        ):
            engine._restore(account, reason=self.env._("Overdue invoices paid."))
        return len(cut)

    def _send(self):
        template = self.env.ref("prepaid_billing.mail_template_arrears_notice")
        for notice in self:
            template.send_mail(
                notice.id, email_layout_xmlid="mail.mail_notification_light"
            )
            notice.sent_at = fields.Datetime.now()
        return True

    def action_print(self):
        return self.env.ref(
            "prepaid_billing.action_report_arrears_notice"
        ).report_action(self)
