from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError

from ..tools import debt as debt_core
from ..tools import limits as limits_core
from .prepaid_account import BILLING_MANAGER, BILLING_USER
from .prepaid_debt_line import ADDING_SOURCES, POSTING_CONTEXT

RULE_FIELDS = (
    "debt_recovery_percent",
    "debt_recovery_min",
    "debt_recovery_max",
    "debt_recovery_daily",
)


class PrepaidAccount(models.Model):
    """A tenant's debt: money owed outside the wallet, in a ledger of its own
    (``prepaid.debt.line``), recovered a little at a time from the wallet
    (a share of each top-up and/or a fixed amount per local day). The wallet
    never goes negative because of a debt."""

    _inherit = "prepaid.account"  # pylint: disable=consider-merging-classes-inherited

    debt_amount = fields.Monetary(
        string="Debt",
        readonly=True,
        copy=False,
        default=0.0,
        help="Money the tenant owes outside the wallet: sum of the debt lines; "
        "moved only by posting.",
    )
    debt_line_ids = fields.One2many(
        "prepaid.debt.line", "account_id", string="Debt Lines"
    )
    debt_recovery_override = fields.Boolean(
        string="Own Debt Recovery",
        help="Recover this account's debt by the rule below instead of Settings.",
    )
    debt_recovery_percent = fields.Float(
        string="Share of Each Top-up (%)", digits=(5, 2)
    )
    debt_recovery_min = fields.Monetary(string="At Least per Top-up")
    debt_recovery_max = fields.Monetary(
        string="At Most per Top-up", help="0: no maximum."
    )
    debt_recovery_daily = fields.Monetary(
        string="Per Day", help="Taken from the wallet each local day; 0: none."
    )
    debt_daily_last_day = fields.Date(
        string="Daily Recovery Done Up To",
        readonly=True,
        copy=False,
        help="The last local day whose daily recovery has been taken.",
    )
    debt_note = fields.Char(
        string="Debt Recovery",
        compute="_compute_debt_note",
        help="What the debt is and what a top-up recovers, as the tenant reads it.",
    )

    @api.constrains(*RULE_FIELDS, "debt_recovery_override")
    def _check_debt_rule(self):
        for account in self.filtered("debt_recovery_override"):
            self._check_debt_rule_values(
                *(account[name] for name in RULE_FIELDS), env=self.env
            )

    @staticmethod
    def _check_debt_rule_values(percent, minimum, maximum, daily, env):
        try:
            debt_core.check_rule(
                debt_core.RecoveryRule(percent, minimum, maximum, daily)
            )
        except ValueError as error:
            raise ValidationError(
                env._(
                    "Debt recovery: the share of a top-up is a percentage from 0 "
                    "to 100, the amounts are not negative and the most per top-up "
                    "is not below the least (0 means no maximum)."
                )
            ) from error

    def _debt_rule(self):
        """The account's :class:`~..tools.debt.RecoveryRule` in force."""
        self.ensure_one()
        source = self if self.debt_recovery_override else self.company_id
        prefix = "debt_recovery_" if self.debt_recovery_override else "prepaid_debt_"
        return debt_core.RecoveryRule(
            *(
                source[f"{prefix}{suffix}"] or 0.0
                for suffix in ("percent", "min", "max", "daily")
            )
        )

    @api.depends("debt_amount", "balance", *RULE_FIELDS, "debt_recovery_override")
    def _compute_debt_note(self):
        for account in self:
            account.debt_note = account._debt_note()

    def _debt_note(self, example=100.0):
        """One sentence for the tenant: the debt and what a top-up of
        ``example`` recovers of it now; empty without a debt."""
        self.ensure_one()
        currency = self.currency_id
        if currency.compare_amounts(self.debt_amount, 0) <= 0:
            return ""
        rule = self._debt_rule()
        recovery = debt_core.next_top_up_recovery(
            example, self.balance, self.debt_amount, rule, currency.rounding
        )
        parts = [
            self.env._("Debt owed: %s.", currency.format(self.debt_amount)),
        ]
        if rule.percent or rule.minimum:
            parts.append(
                self.env._(
                    "Your next top-up of %(top_up)s pays %(recovery)s of it.",
                    top_up=currency.format(example),
                    recovery=currency.format(float(recovery)),
                )
            )
        if rule.daily:
            parts.append(
                self.env._(
                    "%s is taken from the balance each day.",
                    currency.format(rule.daily),
                )
            )
        return " ".join(parts)

    def _local_today(self, now=None):
        """Today in the site's local calendar (the first meter's site)."""
        self.ensure_one()
        tz = self.meter_ids[:1].site_id.tz or "UTC"
        return limits_core.local_day(now or fields.Datetime.now(), tz)

    # ------------------------------------------------------------------
    # Posting
    # ------------------------------------------------------------------
    def _lock_for_debt(self):
        """Lock the account row (as wallet posting does) and return its
        ``(balance, debt)`` as read under the lock."""
        self.ensure_one()
        self.env.flush_all()
        self.env.cr.execute(
            "SELECT balance, debt_amount FROM prepaid_account "
            "WHERE id = %s FOR NO KEY UPDATE",
            [self.id],
        )
        balance, owed = self.env.cr.fetchone()
        return float(balance or 0.0), float(owed or 0.0)

    def _post_debt_line(self, vals):
        """Insert one debt line and move the account's debt (the account is
        locked by the caller); returns the line."""
        self.ensure_one()
        currency = self.currency_id
        _balance, owed = self._lock_for_debt()
        after = currency.round(owed + vals["amount"])
        line = (
            self.env["prepaid.debt.line"]
            .sudo()
            .with_context(**{POSTING_CONTEXT: True})
            .create(
                {
                    "account_id": self.id,
                    "company_id": self.company_id.id,
                    "currency_id": currency.id,
                    "debt_after": after,
                    **vals,
                }
            )
        )
        self.env.cr.execute(
            "UPDATE prepaid_account SET debt_amount = %s WHERE id = %s",
            [after, self.id],
        )
        self.invalidate_recordset(["debt_amount", "debt_line_ids"])
        return line

    def _existing_debt_line(self, key):
        return (
            self.env["prepaid.debt.line"]
            .sudo()
            .search([("idempotency_key", "=", key)], limit=1)
        )

    def _add_debt(self, amount, source, reason, key=None, counterpart=None):
        """Add ``amount`` to the tenant's debt, for ``reason``.

        ``source``: ``tenancy`` (carried from an earlier tenancy), ``arrears``
        (moved from postpaid arrears) or ``manual``. Posted in accounting as
        Dr tenant debt / Cr ``counterpart`` (an ``account.account``; by
        default the tenant's receivable for arrears, the utility revenue
        account otherwise). Idempotent on ``key``. Returns the debt line.
        """
        self.ensure_one()
        self._check_group(BILLING_MANAGER)
        self.check_access("write")
        if key:
            existing = self._existing_debt_line(key)
            if existing:
                return existing
        currency = self.currency_id
        if source not in ADDING_SOURCES:
            raise UserError(
                self.env._(
                    "A debt comes from an earlier tenancy, postpaid arrears or a "
                    "manager's entry."
                )
            )
        if currency.compare_amounts(amount, 0) <= 0:
            raise UserError(self.env._("A debt must be a positive amount."))
        if not (reason or "").strip():
            raise UserError(self.env._("Say why the tenant owes this debt."))
        if self.state == "closed":
            raise UserError(
                self.env._(
                    "Account %s is closed: add the debt to the tenant's new account.",
                    self.name,
                )
            )
        company = self.company_id
        if counterpart is None:
            counterpart = (
                self.partner_id.with_company(company).property_account_receivable_id
                if source == "arrears"
                else company.prepaid_revenue_account_id
            )
        move = self._create_debt_move(
            amount, company._prepaid_debt_account(), counterpart, reason
        )
        line = self._post_debt_line(
            {
                "source": source,
                "name": reason.strip(),
                "amount": currency.round(amount),
                "move_id": move.id,
                "idempotency_key": key,
            }
        )
        if not self.debt_daily_last_day:
            # daily recovery starts the local day after the first debt
            self._write_guarded({"debt_daily_last_day": self._local_today()})
        self.message_post(
            body=self.env._(
                "Debt of %(amount)s added: %(reason)s",
                amount=currency.format(amount),
                reason=reason.strip(),
            )
        )
        return line

    def _create_debt_move(self, amount, debit, credit, label):
        """A posted entry Dr ``debit`` / Cr ``credit`` of ``amount`` in the
        company's prepaid journal, for the tenant."""
        self.ensure_one()
        company = self.company_id
        journal = company.prepaid_journal_id
        if not journal or not credit or not debit:
            raise UserError(
                self.env._(
                    "Set the tenant debt account, the utility revenue account and "
                    "the revenue recognition journal of %s in Settings > Prepaid "
                    "Billing.",
                    company.name,
                )
            )
        lines = [
            (debit, amount, 0.0),
            (credit, 0.0, amount),
        ]
        move = (
            self.env["account.move"]
            .sudo()
            .create(
                {
                    "move_type": "entry",
                    "journal_id": journal.id,
                    "company_id": company.id,
                    "date": fields.Date.context_today(self),
                    "ref": f"{self.name} - {label}",
                    "line_ids": [
                        fields.Command.create(
                            {
                                "account_id": account.id,
                                "debit": dr,
                                "credit": cr,
                                "partner_id": self.partner_id.id,
                                "name": label,
                            }
                        )
                        for account, dr, cr in lines
                    ],
                }
            )
        )
        move.action_post()
        return move

    def _recover_debt(self, amount, key, source, label, day=None):
        """Move ``amount`` from the wallet to the debt: a wallet line, a debt
        line and an entry (Dr prepayment liability / Cr tenant debt), in this
        one transaction and under ``key`` (a retry posts nothing twice).
        Returns the debt line."""
        self.ensure_one()
        existing = self._existing_debt_line(key)
        if existing:
            return existing
        company = self.company_id
        move = self._create_debt_move(
            amount,
            company._prepaid_liability_account(),
            company._prepaid_debt_account(),
            label,
        )
        wallet = self.env["prepaid.ledger.line"]._post(
            [
                {
                    "account_id": self.id,
                    "line_type": "debt_recovery",
                    "amount": -amount,
                    "name": label,
                    "idempotency_key": key,
                    "move_id": move.id,
                }
            ]
        )
        return self._post_debt_line(
            {
                "source": source,
                "name": label,
                "amount": -amount,
                "ledger_line_id": wallet.id,
                "move_id": move.id,
                "idempotency_key": key,
                "recovery_day": day,
            }
        )

    def _recover_debt_on_top_up(self, recharge_line, retry=False):
        """The share of the top-up ``recharge_line`` that goes to the debt,
        posted once (keyed by the line); returns the amount recovered.

        ``retry``: the top-up was posted before (a repeated request): what
        was recovered then, and nothing new (a debt added since is no part
        of that top-up)."""
        self.ensure_one()
        # The wallet posting holds the account's row lock: its debt (moved
        # only under that lock) reads as it stands, without a flush.
        self.env.cr.execute(
            "SELECT debt_amount FROM prepaid_account WHERE id = %s", [self.id]
        )
        owed = float(self.env.cr.fetchone()[0] or 0.0)
        if owed <= 0 and not retry:
            return 0.0
        key = f"debt_topup:{recharge_line.id}"
        existing = self._existing_debt_line(key)
        if existing or retry:
            return -existing.amount if existing else 0.0
        currency = self.currency_id
        if currency.compare_amounts(owed, 0) <= 0:
            return 0.0
        split = debt_core.top_up_split(
            recharge_line.amount,
            recharge_line.balance_after - recharge_line.amount,
            owed,
            self._debt_rule(),
            currency.rounding,
        )
        if not split.recovery:
            return 0.0
        amount = float(split.recovery)
        self._recover_debt(
            amount,
            key,
            "top_up",
            self.env._(
                "Debt recovery: %(amount)s of the top-up of %(top_up)s",
                amount=currency.format(amount),
                top_up=currency.format(recharge_line.amount),
            ),
        )
        return amount

    @api.model
    def _cron_debt_daily(self, accounts=None):
        """Take each open account's daily debt recovery for every local day
        since the last one (one line per day, keyed by the day: safe to run
        twice); returns the number of lines posted.

        ``accounts``: only those (a test's own); the cron looks at every
        account with a debt.
        """
        domain = [
            ("debt_amount", ">", 0),
            *self._get_billable_account_domain(),
        ]
        if accounts is not None:
            domain.append(("id", "in", accounts.ids))
        posted = 0
        recovered = self.browse()
        for account in self.sudo().search(domain, order="id"):
            rule = account._debt_rule()
            # A meter keeping the balance itself would not follow a wallet
            # line: its debt is recovered from top-ups only.
            if not rule.daily or account._top_up_meter():
                continue
            today = account._local_today()
            balance, owed = account._lock_for_debt()
            currency = account.currency_id
            for day, amount in debt_core.daily_recoveries(
                account.debt_daily_last_day,
                today,
                balance,
                owed,
                rule,
                currency.rounding,
            ):
                account._recover_debt(
                    float(amount),
                    f"debt_daily:{account.id}:{day.isoformat()}",
                    "daily",
                    self.env._("Daily debt recovery of %(day)s", day=day.isoformat()),
                    day=day,
                )
                posted += 1
                recovered |= account
            account._write_guarded({"debt_daily_last_day": today})
        self.env["prepaid.billing.engine"]._after_balance_change(recovered)
        return posted

    def _move_arrears_to_debt(self):
        """Move the account's overdue postpaid invoices into its debt: one
        debt line for what is left to pay of them (source ``arrears``), whose
        entry credits the tenant's receivable and is reconciled with the
        invoices (they read paid; the money is now owed as a debt, recovered
        from top-ups). Returns the debt line, or nothing without arrears."""
        self.ensure_one()
        self._check_group(BILLING_MANAGER)
        invoices = self.env["prepaid.arrears.notice"]._overdue_by_account(self)[self]
        currency = self.currency_id
        total = currency.round(sum(invoices.mapped("amount_residual")))
        if currency.compare_amounts(total, 0) <= 0:
            raise UserError(
                self.env._("Account %s has no overdue invoice to move.", self.name)
            )
        receivable = self.partner_id.with_company(
            self.company_id
        ).property_account_receivable_id
        line = self._add_debt(
            total,
            "arrears",
            self.env._(
                "Arrears of %(invoices)s", invoices=", ".join(invoices.mapped("name"))
            ),
            key=f"arrears:{self.id}:{'-'.join(map(str, sorted(invoices.ids)))}",
            counterpart=receivable,
        )
        (
            line.move_id.line_ids.filtered(lambda ml: ml.account_id == receivable)
            | invoices.line_ids.filtered(
                lambda ml: ml.account_id == receivable and not ml.reconciled
            )
        ).reconcile()
        return line

    def action_move_arrears_to_debt(self):
        self.ensure_one()
        self._move_arrears_to_debt()
        return True

    def action_add_debt(self):
        """The dialog a billing manager adds a debt with."""
        self.ensure_one()
        self._check_group(BILLING_MANAGER)
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Add Debt"),
            "res_model": "prepaid.debt.add.wizard",
            "view_mode": "form",
            "target": "new",
            "context": {"default_account_id": self.id},
        }

    def action_view_debt_lines(self):
        self.ensure_one()
        self._check_group(BILLING_USER)
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Debt of %s", self.name),
            "res_model": "prepaid.debt.line",
            "view_mode": "list,form",
            "domain": [("account_id", "=", self.id)],
        }

    @api.model
    def _demo_debt_and_limits(self):
        """Demo data: the company's emergency credit and recovery bounds, a
        debt carried from an earlier tenancy on B-102 (recovered from its
        top-ups) and a power limit on A-105 below the demo fleet's steady
        2.5 kW (cut for 10 minutes, then restored, again and again)."""
        company = self.env.company
        company.write(
            {
                "prepaid_emergency_credit_amount": 20.0,
                "prepaid_debt_min": 5.0,
                "prepaid_debt_max": 50.0,
            }
        )
        ref = self.env.ref
        for xmlid, vals in (
            ("prepaid_metering.demo_room_b_102", None),
            ("prepaid_metering.demo_room_a_105", {"power_limit_kw": 2.0}),
        ):
            room = ref(xmlid, raise_if_not_found=False)
            account = (
                room
                and room.meter_ids.billing_account_id.filtered(
                    lambda a: a.state == "open"
                )[:1]
            )
            if not account:
                continue
            if vals:
                account.write(vals)
            else:
                account._add_debt(
                    300.0,
                    "tenancy",
                    self.env._("Unpaid electricity of the previous tenancy"),
                    key=f"demo_debt:{account.id}",
                )
