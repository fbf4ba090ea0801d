from datetime import timedelta

from odoo import api, fields, models
from odoo.modules import module as odoo_module

EVENTS = [
    ("alarm1", "Alarm level 1"),
    ("alarm2", "Alarm level 2"),
    ("alarm3", "Alarm level 3"),
    ("cutoff", "Supply cut off"),
    ("restore", "Supply restored"),
]


class PrepaidAlarmNotice(models.Model):
    """One warning to a tenant, repeated a set number of times."""

    _name = "prepaid.alarm.notice"
    _description = "Balance Alarm Notice"
    _order = "id desc"

    account_id = fields.Many2one(
        "prepaid.account", required=True, ondelete="cascade", index=True
    )
    partner_id = fields.Many2one(related="account_id.partner_id")
    company_id = fields.Many2one(related="account_id.company_id", store=True)
    event = fields.Selection(EVENTS, required=True)
    state = fields.Selection(
        [("pending", "Pending"), ("done", "Done"), ("reset", "Reset by recharge")],
        default="pending",
        required=True,
        index=True,
    )
    times = fields.Integer(default=1, help="How many times to send it.")
    sent_count = fields.Integer(readonly=True)
    interval_hours = fields.Float(default=24.0)
    next_at = fields.Datetime(default=fields.Datetime.now, index=True)
    balance = fields.Monetary(help="Balance when the notice was raised.")
    currency_id = fields.Many2one(related="account_id.currency_id")
    log = fields.Text(readonly=True)
    days_left_note = fields.Char(
        string="Days Left",
        compute="_compute_days_left_note",
        help="How long the balance lasts at the tenant's recent use (the last "
        "7 days' average daily charge), as the messages say it.",
    )

    recovery_note = fields.Char(
        string="Debt and Emergency Credit",
        compute="_compute_recovery_note",
        help="The tenant's debt and what the next top-up recovers of it, the "
        "emergency credit on offer, or why a limit cut the supply, as the "
        "messages say it.",
    )

    @api.depends(
        "account_id.debt_note",
        "account_id.emergency_offered",
        "account_id.limit_state",
    )
    def _compute_recovery_note(self):
        for notice in self:
            account = notice.account_id
            parts = []
            if notice.event == "cutoff" and account.limit_state != "none":
                parts.append(
                    self.env._(
                        "The supply was cut off for a limit: %(reason)s It comes "
                        "back at %(until)s.",
                        reason=account.limit_reason,
                        until=fields.Datetime.context_timestamp(
                            account, account.limit_cut_until
                        ).strftime("%Y-%m-%d %H:%M"),
                    )
                )
            if notice.event in ("alarm1", "alarm2", "alarm3", "cutoff"):
                if account.debt_note:
                    parts.append(account.debt_note)
                if account.emergency_offered:
                    parts.append(
                        self.env._(
                            "An emergency credit of %s is available: take it in "
                            "your account page; it is repaid from your next top-up.",
                            account.currency_id.format(account._emergency_amount()),
                        )
                    )
            notice.recovery_note = " ".join(parts)

    @api.depends("account_id.balance")
    def _compute_days_left_note(self):
        for notice in self:
            days = (
                notice.account_id._days_of_credit_left()
                if notice.event in ("alarm1", "alarm2", "alarm3")
                else None
            )
            notice.days_left_note = (
                self.env._("About %(days)s days left at your recent use.", days=days)
                if days is not None
                else ""
            )

    @api.model
    def _raise_for(self, account, event):
        """Open a notice for ``event`` unless the same one is still running."""
        return self._raise_batch([(account, event)])

    @api.model
    def _raise_batch(self, pairs):
        """Open notices for (account, event) pairs, skipping those running."""
        if not pairs:
            return self.browse()
        accounts = self.env["prepaid.account"].browse({a.id for a, _e in pairs})
        running = {
            (notice.account_id.id, notice.event)
            for notice in self.search(
                [
                    ("account_id", "in", accounts.ids),
                    ("event", "in", list({event for _a, event in pairs})),
                    ("state", "=", "pending"),
                ]
            )
        }
        vals_list = []
        for account, event in pairs:
            if (account.id, event) in running:
                continue
            running.add((account.id, event))
            company = account.company_id
            times, interval = 1, 0.0
            if event.startswith("alarm"):
                times = company.prepaid_alarm_times or 1
                interval = company.prepaid_alarm_interval_hours
            vals_list.append(
                {
                    "account_id": account.id,
                    "event": event,
                    "times": times,
                    "interval_hours": interval,
                    "balance": account.balance,
                }
            )
        # Notices are the engine's bookkeeping: a billing user whose recharge
        # or Bill Now raises one may not create notices by hand.
        notices = self.sudo().create(vals_list).with_env(self.env)
        cron = self.env.ref(
            "prepaid_billing.ir_cron_send_notices", raise_if_not_found=False
        )
        if notices and cron:
            cron.sudo()._trigger()
        return notices

    @api.model
    def _reset_batch(self, resets):
        """Stop the alarms above each (account, level) pair's new level."""
        if not resets:
            return
        pending = self.search(
            [
                ("account_id", "in", [account.id for account, _l in resets]),
                ("state", "=", "pending"),
                ("event", "in", ["alarm1", "alarm2", "alarm3"]),
            ]
        )
        level_of = {account.id: level for account, level in resets}
        pending.filtered(
            lambda n: int(n.event[-1]) > level_of[n.account_id.id]
        ).sudo().write({"state": "reset"})

    @api.model
    def _cron_send(self, commit=None, notices=None):
        """Send the notices due; returns how many. ``notices``: only those
        (a test's own); the cron sends every notice due."""
        if commit is None:
            commit = not odoo_module.current_test
        domain = [("state", "=", "pending"), ("next_at", "<=", fields.Datetime.now())]
        if notices is not None:
            domain.append(("id", "in", notices.ids))
        due = self.search(domain, limit=500)
        for notice in due:
            notice._send()
            if commit:
                # A notice already sent (e-mail, SMS, webhook) must stay marked
                # as sent even if a later one fails: commit each one.
                self.env.cr.commit()  # pylint: disable=invalid-commit
        return len(due)

    def _send(self):
        self.ensure_one()
        channels = (
            self.env["prepaid.notification.channel"]
            .search([("company_id", "in", [self.company_id.id, False])])
            .filtered(lambda c: self.event in c._events())
        )
        report = []
        for channel in channels:
            ok, message = channel._dispatch(self)
            report.append(f"{channel.name}: {'ok' if ok else 'failed'} {message or ''}")
        count = self.sent_count + 1
        self.write(
            {
                "sent_count": count,
                "state": "done" if count >= self.times else "pending",
                "next_at": fields.Datetime.now() + timedelta(hours=self.interval_hours),
                "log": "\n".join(filter(None, [self.log, *report])),
            }
        )
        return report
