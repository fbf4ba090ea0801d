from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError

from ..tools import settlement


class PrepaidTenancy(models.Model):
    """The final settlement of a tenancy and its reversal: the wallet, the
    deposit (less the part retained), the unpaid invoices and the debt owed
    become one refund or one amount owed, each step a wallet line (or a debt
    line) with its journal entry."""

    _inherit = "prepaid.tenancy"  # pylint: disable=consider-merging-classes-inherited

    preview_wallet = fields.Monetary(
        compute="_compute_preview", string="Wallet Balance Now"
    )
    preview_deposit = fields.Monetary(
        compute="_compute_preview", string="Deposit to Return"
    )
    preview_unpaid = fields.Monetary(
        compute="_compute_preview", string="Unpaid Invoices Now"
    )
    preview_debt = fields.Monetary(compute="_compute_preview", string="Debt Owed Now")
    preview_retained = fields.Monetary(
        compute="_compute_preview", string="Deposit to Retain"
    )
    preview_net = fields.Monetary(
        compute="_compute_preview",
        string="To Refund (or Owed if Negative)",
    )

    deposit_retained = fields.Monetary(
        tracking=True,
        copy=False,
        help="The part of the deposit kept at the final settlement (damages, "
        "cleaning), posted to the retained deposits income account; the rest "
        "goes back to the tenant.",
    )
    retention_reason = fields.Char(
        string="Reason for Retaining",
        tracking=True,
        copy=False,
        help="Why part of the deposit is kept; on the settlement statement.",
    )
    settle_debt = fields.Monetary(string="Debt Paid", readonly=True, copy=False)
    settle_retained = fields.Monetary(
        string="Deposit Retained at Settlement", readonly=True, copy=False
    )
    retention_move_id = fields.Many2one(
        "account.move",
        string="Entry of the Deposit Retained",
        readonly=True,
        copy=False,
    )

    @api.depends(
        "state", "account_id.balance", "account_id.debt_amount", "deposit_retained"
    )
    def _compute_preview(self):
        for tenancy in self:
            figures = None
            if tenancy.account_id:
                try:
                    figures = tenancy._settlement_figures()
                except UserError:
                    figures = None
            if figures:
                tenancy.preview_wallet = float(figures.wallet)
                tenancy.preview_deposit = float(figures.deposit)
                tenancy.preview_unpaid = float(figures.unpaid)
                tenancy.preview_debt = float(figures.debt)
                tenancy.preview_retained = float(figures.retained)
                tenancy.preview_net = float(figures.net)
            else:
                tenancy.preview_wallet = tenancy.preview_deposit = 0.0
                tenancy.preview_unpaid = tenancy.preview_net = 0.0
                tenancy.preview_debt = tenancy.preview_retained = 0.0

    @api.constrains("deposit_retained", "retention_reason")
    def _check_deposit_retained(self):
        for tenancy in self.filtered(lambda t: t.state != "ended"):
            currency = tenancy.currency_id
            retained = tenancy.deposit_retained
            if currency.compare_amounts(retained, 0) < 0:
                raise ValidationError(
                    self.env._("The deposit retained cannot be negative.")
                )
            if currency.compare_amounts(retained, 0) == 0:
                continue
            if not (tenancy.retention_reason or "").strip():
                raise ValidationError(
                    self.env._(
                        "Say why %s of the deposit is retained (damages, cleaning...).",
                        currency.format(retained),
                    )
                )
            if currency.compare_amounts(retained, tenancy.deposit_held) > 0:
                raise ValidationError(tenancy._retained_above_held_message(retained))

    def _retained_above_held_message(self, retained):
        return self.env._(
            "%(retained)s of the deposit cannot be retained: %(held)s is held "
            "for tenancy %(tenancy)s.",
            retained=self.currency_id.format(retained),
            held=self.currency_id.format(self.deposit_held),
            tenancy=self.name,
        )

    def _unpaid_invoices(self):
        """Posted customer invoices of this tenancy still open: the account's
        bills and the deposit invoice."""
        self.ensure_one()
        bills = (
            self.env["prepaid.bill"]
            .sudo()
            .search([("account_id", "=", self.account_id.id), ("move_id", "!=", False)])
        )
        moves = bills.move_id | self.sudo().move_ids
        return moves.filtered(
            lambda m: (
                m.move_type == "out_invoice"
                and m.state == "posted"
                and m != self.owed_move_id
                and not m.currency_id.is_zero(m.amount_residual)
            )
        )

    def _settlement_figures(self):
        """The :class:`~..tools.settlement.Settlement` of the tenancy as it
        stands: wallet, deposit held, unpaid invoices, the account's debt and
        the deposit retained."""
        self.ensure_one()
        rounding = self.currency_id.rounding
        account = self.account_id.sudo()
        try:
            return settlement.settle(
                account.balance,
                self.deposit_held,
                sum(self._unpaid_invoices().mapped("amount_residual")),
                rounding,
                debt=account.debt_amount,
                retained=self.deposit_retained,
            )
        except ValueError as error:
            if str(error) == "retained_above_deposit":
                raise UserError(
                    self._retained_above_held_message(self.deposit_retained)
                ) from error
            raise UserError(
                self.env._(
                    "Tenancy %s: a deposit, debt, retention or unpaid amount is "
                    "negative; nothing was settled.",
                    self.name,
                )
            ) from error

    def _misc_journal(self):
        journal = self.company_id.prepaid_journal_id
        if not journal:
            raise UserError(
                self.env._(
                    "Set the revenue recognition journal of %s in Settings > "
                    "Prepaid Billing: the settlement's transfers are entered in it.",
                    self.company_id.name,
                )
            )
        return journal

    def _transfer_move(self, journal, debit_account, credit_account, amount, label):
        """A posted entry moving ``amount`` from ``credit_account`` to
        ``debit_account`` (each line with the tenant)."""
        move = (
            self.env["account.move"]
            .sudo()
            .create(
                {
                    "move_type": "entry",
                    "journal_id": journal.id,
                    "company_id": self.company_id.id,
                    "prepaid_tenancy_id": self.id,
                    "date": fields.Date.context_today(self),
                    "ref": f"{self.name} - {label}",
                    "line_ids": [
                        fields.Command.create(
                            {
                                "account_id": debit_account.id,
                                "debit": amount,
                                "partner_id": self.partner_id.id,
                                "name": label,
                            }
                        ),
                        fields.Command.create(
                            {
                                "account_id": credit_account.id,
                                "credit": amount,
                                "partner_id": self.partner_id.id,
                                "name": label,
                            }
                        ),
                    ],
                }
            )
        )
        move.action_post()
        return move

    def _post_wallet(self, amount, key, label, move):
        return (
            self.env["prepaid.ledger.line"]
            .sudo()
            ._post(
                [
                    {
                        "account_id": self.account_id.id,
                        "line_type": "adjustment",
                        "amount": amount,
                        "name": label,
                        "idempotency_key": key,
                        "move_id": move.id,
                    }
                ]
            )
        )

    def _refund_deposit(self, amount):
        """Move ``amount`` of the deposit held into the wallet (the only way
        a deposit leaves its account); refused above what is held."""
        self.ensure_one()
        currency = self.currency_id
        try:
            amount = float(
                settlement.check_deposit_refund(
                    amount, self.deposit_held, currency.rounding
                )
            )
        except ValueError as error:
            raise UserError(
                self.env._(
                    "A deposit refund of %(amount)s is not possible: %(held)s is "
                    "held for tenancy %(tenancy)s.",
                    amount=currency.format(amount),
                    held=currency.format(self.deposit_held),
                    tenancy=self.name,
                )
            ) from error
        label = self.env._("Deposit returned to the wallet")
        move = self._transfer_move(
            self._misc_journal(),
            self.company_id._prepaid_deposit_account(),
            self.company_id._prepaid_liability_account(),
            amount,
            label,
        )
        return self._post_wallet(
            amount, f"tenancy:{self.id}:{self.settle_count}:deposit", label, move
        )

    def _retain_deposit(self, amount):
        """Keep ``amount`` of the deposit: Dr tenant deposits / Cr retained
        deposits income, with the reason; returns the entry."""
        self.ensure_one()
        label = self.env._(
            "Deposit retained: %s", (self.retention_reason or "").strip()
        )
        return self._transfer_move(
            self._misc_journal(),
            self.company_id._prepaid_deposit_account(),
            self.company_id._prepaid_deposit_retained_account(),
            amount,
            label,
        )

    def _pay_debt_from_wallet(self, amount):
        """The debt owed is paid from the wallet (a debt recovery: wallet
        line, debt line, entry Dr prepayment liability / Cr tenant debt);
        a debt larger than the money makes the wallet negative, and the
        amount owed invoiced next brings it back to zero. Returns the wallet
        line."""
        self.ensure_one()
        debt_line = self.account_id.sudo()._recover_debt(
            amount,
            f"tenancy:{self.id}:{self.settle_count}:debt",
            "closing",
            self.env._("Debt paid at the move-out of tenancy %s", self.name),
        )
        return debt_line.ledger_line_id

    def _pay_invoices_from_wallet(self, invoices):
        """The wallet pays the open ``invoices``: one entry from the
        prepayment liability to the receivable, reconciled with them."""
        self.ensure_one()
        total = sum(invoices.mapped("amount_residual"))
        label = self.env._("Open invoices paid from the wallet")
        receivable = self.partner_id.with_company(
            self.company_id
        ).property_account_receivable_id
        move = self._transfer_move(
            self._misc_journal(),
            self.company_id._prepaid_liability_account(),
            receivable,
            total,
            label,
        )
        open_lines = invoices.line_ids.filtered(
            lambda line: (
                line.account_id.account_type == "asset_receivable"
                and not line.reconciled
            )
        )
        paying = move.line_ids.filtered(lambda line: line.account_id == receivable)
        for account in open_lines.account_id:
            lines = open_lines.filtered(lambda line, a=account: line.account_id == a)
            if account == receivable:
                lines |= paying
            lines.reconcile()
        return self._post_wallet(
            -total, f"tenancy:{self.id}:{self.settle_count}:invoices", label, move
        )

    def _invoice_owed(self, amount):
        """What the tenant still owes, on an invoice: the wallet is brought to
        zero against it (the invoice line credits the prepayment liability)."""
        label = self.env._("Amount owed at the move-out of tenancy %s", self.name)
        invoice = self._post_invoice(
            label, self.company_id._prepaid_liability_account(), amount
        )
        line = self._post_wallet(
            amount, f"tenancy:{self.id}:{self.settle_count}:owed", label, invoice
        )
        return invoice, line

    def _check_settlement(self, figures, journal):
        """What the settlement needs, checked before anything is written: the
        journal of a refund, the income account of a deposit retained."""
        if figures.refund > 0:
            if not journal:
                raise UserError(
                    self.env._(
                        "Choose the cash or bank journal that pays back %s.",
                        self.currency_id.format(float(figures.refund)),
                    )
                )
            self.account_id._check_money_journal(journal)
        if figures.retained > 0:
            if not (self.retention_reason or "").strip():
                raise UserError(self.env._("Say why part of the deposit is retained."))
            self.company_id._prepaid_deposit_retained_account()

    def _settle(self, journal=None):
        """The settlement, in this order: the part of the deposit retained
        into income, the rest of the deposit into the wallet, the open
        invoices and the debt owed paid from it, then the rest paid back to
        the tenant through ``journal`` (the refund path of the wallet) or
        invoiced as owed. The wallet, the deposit and the debt all end at
        zero."""
        self.ensure_one()
        self._check_billing_user()
        if self.state != "ending":
            raise UserError(
                self.env._("Only a tenancy that has moved out can be settled.")
            )
        account = self.account_id
        figures = self._settlement_figures()
        invoices = self._unpaid_invoices()
        self._check_settlement(figures, journal)
        lines = self.env["prepaid.ledger.line"]
        retention_move = self.env["account.move"]
        if figures.retained > 0:
            retention_move = self._retain_deposit(float(figures.retained))
        if figures.returned > 0:
            lines |= self._refund_deposit(float(figures.returned))
        if figures.unpaid > 0:
            lines |= self._pay_invoices_from_wallet(invoices)
        if figures.debt > 0:
            lines |= self._pay_debt_from_wallet(float(figures.debt))
        owed_move = self.env["account.move"]
        if figures.refund > 0:
            lines |= account._refund(
                float(figures.refund),
                journal,
                f"tenancy:{self.id}:{self.settle_count}:refund",
                "bank" if journal.type == "bank" else "cash",
                label=self.env._("Refund at the move-out of tenancy %s", self.name),
            )
        elif figures.owed > 0:
            owed_move, line = self._invoice_owed(float(figures.owed))
            lines |= line
        account.invalidate_recordset(["balance", "debt_amount"])
        if not self.currency_id.is_zero(account.balance):
            raise UserError(
                self.env._(
                    "The settlement would leave %s in the wallet: nothing was settled.",
                    self.currency_id.format(account.balance),
                )
            )
        if not self.currency_id.is_zero(account.sudo().debt_amount):
            raise UserError(
                self.env._(
                    "The settlement would leave a debt of %s: nothing was settled.",
                    self.currency_id.format(account.sudo().debt_amount),
                )
            )
        self.write(
            {
                "state": "ended",
                "settled_at": fields.Datetime.now(),
                "settle_wallet": float(figures.wallet),
                "settle_deposit": float(figures.deposit),
                "settle_unpaid": float(figures.unpaid),
                "settle_refund": float(figures.refund),
                "settle_owed": float(figures.owed),
                "settle_debt": float(figures.debt),
                "settle_retained": float(figures.retained),
                "retention_move_id": retention_move.id or False,
                "settle_line_ids": [fields.Command.set(lines.ids)],
                "settle_invoice_ids": [fields.Command.set(invoices.ids)],
                "owed_move_id": owed_move.id or False,
            }
        )
        self.message_post(
            body=self.env._(
                "Settled: %(refund)s refunded, %(owed)s owed.",
                refund=self.currency_id.format(self.settle_refund),
                owed=self.currency_id.format(self.settle_owed),
            )
        )
        return True

    def _settle_batch(self, journal=None):
        """Settle every tenancy of ``self`` (moved out) with the figures of
        ``_settle``. Those whose settlement is a deposit returned to the
        wallet and the wallet paid back (no open invoice, nothing owed, no
        debt, nothing retained) are settled together: one entry for the
        deposits returned and one for the refunds, each with a pair of lines
        per tenancy (linked to it, so a reversal undoes one tenancy's part),
        the wallet lines posted in one batch. The others are settled one by one."""
        self._check_billing_user()
        if self.filtered(lambda t: t.state != "ending"):
            raise UserError(
                self.env._("Only a tenancy that has moved out can be settled.")
            )
        figures, simple = {}, self.browse()
        for tenancy in self:
            invoices = tenancy._unpaid_invoices()
            result = tenancy._settlement_figures()
            if (
                invoices
                or result.unpaid > 0
                or result.owed > 0
                or result.debt > 0
                or result.retained > 0
            ):
                # an invoice, a debt paid or a part kept: the single path
                tenancy._settle(journal)
            else:
                figures[tenancy.id] = result
                simple |= tenancy
        simple._settle_together(figures, journal)
        return True

    def _settle_together(self, figures, journal):
        """``_settle_batch`` of the tenancies of ``self`` with their
        ``figures``: a deposit returned and a refund each, no invoice."""
        simple = self
        if not simple:
            return
        refunding = simple.filtered(lambda t: figures[t.id].refund > 0)
        if refunding:
            if not journal:
                raise UserError(
                    self.env._("Choose the cash or bank journal that pays back.")
                )
            refunding.account_id[:1]._check_money_journal(journal)
            self._lock_and_check_refunds(refunding, figures)
        lines = {tenancy.id: self.env["prepaid.ledger.line"] for tenancy in simple}
        returning = simple.filtered(lambda t: figures[t.id].deposit > 0)
        for company, tenancies in returning.grouped("company_id").items():
            label = self.env._("Deposit returned to the wallet")
            move = tenancies._shared_transfer_move(
                self._misc_journal_of(company),
                company._prepaid_deposit_account(),
                company._prepaid_liability_account(),
                {t.id: float(figures[t.id].deposit) for t in tenancies},
                label,
            )
            posted = tenancies._post_wallet_batch(
                {t.id: float(figures[t.id].deposit) for t in tenancies},
                "deposit",
                dict.fromkeys(tenancies.ids, label),
                move,
            )
            for tenancy_id, line in posted.items():
                lines[tenancy_id] |= line
        for company, tenancies in refunding.grouped("company_id").items():
            label = self.env._("Refund at the move-out")
            labels = {
                t.id: self.env._("Refund at the move-out of tenancy %s", t.name)
                for t in tenancies
            }
            move = tenancies._shared_transfer_move(
                journal,
                company._prepaid_liability_account(),
                journal.default_account_id,
                {t.id: float(figures[t.id].refund) for t in tenancies},
                label,
            )
            posted = tenancies._post_wallet_batch(
                {t.id: -float(figures[t.id].refund) for t in tenancies},
                "refund",
                labels,
                move,
                line_type="refund",
                payment_method="bank" if journal.type == "bank" else "cash",
            )
            for tenancy_id, line in posted.items():
                lines[tenancy_id] |= line
        accounts = simple.account_id
        self.env["prepaid.billing.engine"]._after_balance_change(accounts)
        accounts.invalidate_recordset(["balance"])
        left = accounts.filtered(lambda a: not a.currency_id.is_zero(a.balance))
        if left:
            raise UserError(
                self.env._(
                    "The settlement would leave %s in the wallet: nothing was settled.",
                    left[:1].currency_id.format(left[:1].balance),
                )
            )
        now = fields.Datetime.now()
        for tenancy in simple:
            result = figures[tenancy.id]
            tenancy.write(
                {
                    "state": "ended",
                    "settled_at": now,
                    "settle_wallet": float(result.wallet),
                    "settle_deposit": float(result.deposit),
                    "settle_unpaid": 0.0,
                    "settle_refund": float(result.refund),
                    "settle_owed": 0.0,
                    "settle_line_ids": [fields.Command.set(lines[tenancy.id].ids)],
                    "settle_invoice_ids": [fields.Command.clear()],
                    "owed_move_id": False,
                }
            )
        simple._message_log_batch(
            bodies={
                tenancy.id: self.env._(
                    "Settled: %(refund)s refunded, %(owed)s owed.",
                    refund=tenancy.currency_id.format(tenancy.settle_refund),
                    owed=tenancy.currency_id.format(tenancy.settle_owed),
                )
                for tenancy in simple
            }
        )

    def _lock_and_check_refunds(self, tenancies, figures):
        """The refund path's checks for many wallets: each refund positive and
        at most the balance of its locked wallet (deposit included)."""
        self.env["prepaid.ledger.line"].flush_model()
        self.env.cr.execute(
            "SELECT id, balance FROM prepaid_account WHERE id = ANY(%s) "
            "ORDER BY id FOR NO KEY UPDATE",
            [tenancies.account_id.ids],
        )
        balances = dict(self.env.cr.fetchall())
        for tenancy in tenancies:
            account = tenancy.account_id
            result = figures[tenancy.id]
            if account.state == "draft":
                raise UserError(self.env._("A draft account has nothing to refund."))
            available = float(balances[account.id]) + float(result.deposit)
            account._check_refund_amount(float(result.refund))
            account._check_refund_amount(float(result.refund), available)

    def _misc_journal_of(self, company):
        return self.filtered(lambda t: t.company_id == company)[:1]._misc_journal()

    def _shared_transfer_move(
        self, journal, debit_account, credit_account, amounts, label
    ):
        """One posted entry moving ``amounts`` (``{tenancy id: amount}``) from
        ``credit_account`` to ``debit_account``: a pair of lines per tenancy,
        with its tenant, linked to it."""
        line_vals = []
        for tenancy in self:
            amount = amounts[tenancy.id]
            common = {
                "partner_id": tenancy.partner_id.id,
                "name": f"{tenancy.name} - {label}",
                "prepaid_tenancy_id": tenancy.id,
            }
            line_vals += [
                fields.Command.create(
                    {"account_id": debit_account.id, "debit": amount, **common}
                ),
                fields.Command.create(
                    {"account_id": credit_account.id, "credit": amount, **common}
                ),
            ]
        move = (
            self.env["account.move"]
            .sudo()
            .create(
                {
                    "move_type": "entry",
                    "journal_id": journal.id,
                    "company_id": self.company_id.id,
                    "prepaid_tenancy_id": self.id if len(self) == 1 else False,
                    "date": fields.Date.context_today(self),
                    "ref": self.env._(
                        "%(label)s: %(count)s tenancies", label=label, count=len(self)
                    ),
                    "line_ids": line_vals,
                }
            )
        )
        move.action_post()
        return move

    def _post_wallet_batch(
        self, amounts, step, labels, move, line_type="adjustment", payment_method=None
    ):
        """The wallet lines of one settlement step for every tenancy of
        ``self``, in one batch (keys as ``_settle``'s); returns ``{tenancy
        id: line}``."""
        by_key = {
            f"tenancy:{tenancy.id}:{tenancy.settle_count}:{step}": tenancy
            for tenancy in self
        }
        vals_list = []
        for key, tenancy in by_key.items():
            vals = {
                "account_id": tenancy.account_id.id,
                "line_type": line_type,
                "amount": amounts[tenancy.id],
                "name": labels[tenancy.id],
                "idempotency_key": key,
                "move_id": move.id,
            }
            if payment_method:
                vals["payment_method"] = payment_method
            vals_list.append(vals)
        posted = self.env["prepaid.ledger.line"].sudo()._post(vals_list)
        return {by_key[line.idempotency_key].id: line for line in posted}

    def _reverse_settlement(self):
        """Undo a settlement with entries of its own: each wallet line of it
        is reversed by a reversal line and its journal entry by a reversing
        entry (the invoices it paid are open again); the tenancy waits for a
        new settlement (or the cancellation of its move-out)."""
        self.ensure_one()
        self._check_billing_user()
        if self.state != "ended":
            raise UserError(self.env._("Only a settled tenancy can be reversed."))
        if self.owed_move_id and self.owed_move_id.payment_state not in (
            "not_paid",
            False,
        ):
            raise UserError(
                self.env._(
                    "The amount owed (%s) has been paid: refund that payment first.",
                    self.owed_move_id.name,
                )
            )
        vals_list = []
        debt_vals = []
        DebtLine = self.env["prepaid.debt.line"].sudo()
        for line in self.settle_line_ids.sudo().sorted("id"):
            reversal = self.env["account.move"]
            if line.move_id and line.move_id.line_ids.filtered(
                lambda aml: aml.prepaid_tenancy_id not in (self, self.browse())
            ):
                # an entry of a batch: only this tenancy's lines are reversed
                reversal = self._reverse_own_lines(line.move_id)
            elif line.move_id:
                line.move_id.line_ids.filtered("reconciled").remove_move_reconcile()
                # Created with its tenancy: the deposit held counts it at once.
                reversal = line.move_id._reverse_moves(
                    [
                        {
                            "ref": self.env._("Reversal of %s", line.move_id.name),
                            "date": fields.Date.context_today(self),
                            "prepaid_tenancy_id": self.id,
                        }
                    ],
                    cancel=True,
                )
            paid = DebtLine.search([("ledger_line_id", "=", line.id)], limit=1)
            if paid:
                # The debt it paid is owed again (its entry reversed above).
                debt_vals.append(
                    {
                        "source": "reversal",
                        "name": self.env._("Settlement reversed: %s", paid.name),
                        "amount": -paid.amount,
                        "move_id": reversal.id or False,
                        "idempotency_key": f"tenancy_reverse_debt:{paid.id}",
                    }
                )
            vals_list.append(
                {
                    "account_id": line.account_id.id,
                    "line_type": "reversal",
                    "amount": -line.amount,
                    "name": self.env._("Settlement reversed: %s", line.name),
                    "reversed_line_id": line.id,
                    "idempotency_key": f"tenancy_reverse:{line.id}",
                    "move_id": reversal.id or None,
                }
            )
        self.env["prepaid.ledger.line"].sudo()._post(vals_list)
        for vals in debt_vals:
            self.account_id.sudo()._post_debt_line(vals)
        if self.retention_move_id:
            # Created with its tenancy: the deposit held counts it at once.
            self.retention_move_id._reverse_moves(
                [
                    {
                        "ref": self.env._(
                            "Reversal of %s", self.retention_move_id.name
                        ),
                        "date": fields.Date.context_today(self),
                        "prepaid_tenancy_id": self.id,
                    }
                ],
                cancel=True,
            )
        self.write(
            {
                "state": "ending",
                "settled_at": False,
                "settle_count": self.settle_count + 1,
                "settle_wallet": 0.0,
                "settle_deposit": 0.0,
                "settle_unpaid": 0.0,
                "settle_refund": 0.0,
                "settle_owed": 0.0,
                "settle_debt": 0.0,
                "settle_retained": 0.0,
                "retention_move_id": False,
                "settle_line_ids": [fields.Command.clear()],
                "settle_invoice_ids": [fields.Command.clear()],
                "owed_move_id": False,
            }
        )
        self.message_post(body=self.env._("Settlement reversed."))
        return True

    def _reverse_own_lines(self, move):
        """A posted entry reversing this tenancy's lines of ``move`` (an entry
        shared by a batch of settlements)."""
        own = move.line_ids.filtered(lambda aml: aml.prepaid_tenancy_id == self)
        reversal = (
            self.env["account.move"]
            .sudo()
            .create(
                {
                    "move_type": "entry",
                    "journal_id": move.journal_id.id,
                    "company_id": move.company_id.id,
                    "prepaid_tenancy_id": self.id,
                    "date": fields.Date.context_today(self),
                    "ref": self.env._("Reversal of %s", move.name),
                    "line_ids": [
                        fields.Command.create(
                            {
                                "account_id": aml.account_id.id,
                                "partner_id": aml.partner_id.id,
                                "name": aml.name,
                                "debit": aml.credit,
                                "credit": aml.debit,
                                "prepaid_tenancy_id": self.id,
                            }
                        )
                        for aml in own
                    ],
                }
            )
        )
        reversal.action_post()
        return reversal

    def action_reverse_settlement(self):
        self._reverse_settlement()
        return True

    def action_cancel_move_out(self):
        self._cancel_move_out()
        return True

    def action_settle(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Settle"),
            "res_model": "prepaid.tenancy.move.out.wizard",
            "view_mode": "form",
            "target": "new",
            "context": {"default_tenancy_id": self.id, "default_step": "settle"},
        }

    def _get_report_base_filename(self):
        """The file name of the statement (the portal's download too)."""
        self.ensure_one()
        return self.env._("Settlement statement - %s", self.name)

    def action_print_statement(self):
        self.ensure_one()
        return self.env.ref(
            "prepaid_tenancy.action_report_tenancy_statement"
        ).report_action(self)

    def _statement_figures(self):
        """Every figure of the settlement statement, with where it comes from
        (the tenancy's readings, the wallet lines by kind, the invoices)."""
        self.ensure_one()
        self = self.sudo()
        tz = self.room_ids.site_id[:1].tz or "UTC"
        local = self.with_context(tz=tz)

        def when(stamp):
            if not stamp:
                return ""
            return fields.Datetime.context_timestamp(local, stamp).strftime(
                "%Y-%m-%d %H:%M"
            )

        meters = []
        opening = {r.meter_id: r for r in self.opening_reading_ids}
        final = {r.meter_id: r for r in self.final_reading_ids}
        for meter, first in opening.items():
            last = final.get(meter)
            meters.append(
                {
                    "meter": meter.name,
                    "unit": first.unit,
                    "opening": first.value_text,
                    "opening_at": when(first.read_at),
                    "opening_manual": first.manual,
                    "final": last.value_text if last else "",
                    "final_at": when(last.read_at) if last else "",
                    "final_manual": last.manual if last else False,
                    "used": (
                        (
                            f"{last.value - first.value:.3f}"
                            if first.unit == "m³"
                            else f"{last.value - first.value:.2f}"
                        )
                        if last
                        else ""
                    ),
                }
            )
        types = dict(
            self.env["prepaid.ledger.line"]
            ._fields["line_type"]
            ._description_selection(self.env)
        )
        grouped = self.env["prepaid.ledger.line"]._read_group(
            [("account_id", "=", self.account_id.id)],
            ["line_type"],
            ["__count", "amount:sum"],
        )
        wallet_lines = [
            {"label": types.get(kind, kind), "count": count, "amount": amount}
            for kind, count, amount in grouped
        ]
        if self.state == "ended":
            invoices = self.settle_invoice_ids
            figures = {
                "wallet": self.settle_wallet,
                "deposit": self.settle_deposit,
                "retained": self.settle_retained,
                "unpaid": self.settle_unpaid,
                "debt": self.settle_debt,
                "refund": self.settle_refund,
                "owed": self.settle_owed,
            }
            # The wallet lines of the settlement itself bring it to zero: the
            # statement shows the wallet as it stood before them.
            settle_ids = set(self.settle_line_ids.ids)
            wallet_lines = [
                {"label": types.get(kind, kind), "count": count, "amount": amount}
                for kind, count, amount in self.env["prepaid.ledger.line"]._read_group(
                    [
                        ("account_id", "=", self.account_id.id),
                        ("id", "not in", list(settle_ids)),
                    ],
                    ["line_type"],
                    ["__count", "amount:sum"],
                )
            ]
        else:
            invoices = (
                self._unpaid_invoices() if self.account_id else self.env["account.move"]
            )
            result = self._settlement_figures()
            figures = {
                "wallet": float(result.wallet),
                "deposit": float(result.deposit),
                "retained": float(result.retained),
                "unpaid": float(result.unpaid),
                "debt": float(result.debt),
                "refund": float(result.refund),
                "owed": float(result.owed),
            }
        figures["returned"] = self.currency_id.round(
            figures["deposit"] - figures["retained"]
        )
        return {
            **figures,
            "retention_reason": (self.retention_reason or "").strip()
            if figures["retained"]
            else "",
            "debt_lines": self._statement_debt_lines(),
            "start": when(self.date_start),
            "end": when(self.date_end),
            "meters": meters,
            "wallet_lines": wallet_lines,
            "invoices": [
                {
                    "name": invoice.name,
                    "amount": invoice.amount_residual
                    if self.state != "ended"
                    else invoice.amount_total,
                }
                for invoice in invoices
            ],
        }

    def _statement_debt_lines(self):
        """The debt owed at the settlement, by where it came from (the debt
        ledger of the account, without the settlement's own lines)."""
        self.ensure_one()
        if not self.account_id:
            return []
        sources = dict(
            self.env["prepaid.debt.line"]
            ._fields["source"]
            ._description_selection(self.env)
        )
        domain = [("account_id", "=", self.account_id.id)]
        if self.state == "ended":
            domain.append(("ledger_line_id", "not in", self.settle_line_ids.ids or [0]))
        return [
            {"label": sources.get(source, source), "count": count, "amount": amount}
            for source, count, amount in self.env["prepaid.debt.line"]
            .sudo()
            ._read_group(domain, ["source"], ["__count", "amount:sum"])
        ]
