from odoo import fields, models
from odoo.exceptions import UserError

from .prepaid_account import BILLING_USER

# Journals money may come from: cash or bank; an opening balance may also come
# from a transfer account of the previous system.
MONEY_JOURNAL_TYPES = ("cash", "bank")
OPENING_JOURNAL_TYPES = ("cash", "bank", "general")


class PrepaidAccount(models.Model):
    """Money in and out of the wallet: recharges, refunds, opening balances
    and the records a meter applied, each posted in the ledger and, through a
    cash or bank journal, in accounting."""

    _inherit = "prepaid.account"  # pylint: disable=consider-merging-classes-inherited

    def _post_money(
        self, line_type, amount, journal, key, label, payment_method=None, meter=None
    ):
        """Post a money movement in the wallet and, when a journal is given,
        in accounting (Dr cash/bank, Cr prepayment liability, or the reverse
        for a refund). Idempotent on ``key``."""
        self.ensure_one()
        existing = self.env["prepaid.ledger.line"].search(
            [("idempotency_key", "=", key)], limit=1
        )
        if existing:
            return existing
        move = self.env["account.move"]
        if journal:
            opening = line_type == "opening"
            self._check_money_journal(
                journal, OPENING_JOURNAL_TYPES if opening else MONEY_JOURNAL_TYPES
            )
            move = self._create_money_move(amount, journal, label)
        return self.env["prepaid.ledger.line"]._post(
            [
                {
                    "account_id": self.id,
                    "line_type": line_type,
                    "amount": amount,
                    "name": label,
                    "idempotency_key": key,
                    "move_id": move.id or None,
                    "meter_id": meter.id if meter else None,
                    "payment_method": payment_method
                    or ("opening" if line_type == "opening" else None),
                }
            ]
        )

    def _check_money_journal(self, journal, types=MONEY_JOURNAL_TYPES):
        """Refuse a journal money cannot come from or go to for this account."""
        self.ensure_one()
        journal = journal.sudo()
        if journal.company_id != self.company_id:
            raise UserError(
                self.env._(
                    "Journal %(journal)s belongs to %(journal_company)s, account "
                    "%(account)s to %(company)s: use a journal of %(company)s.",
                    journal=journal.name,
                    journal_company=journal.company_id.name,
                    account=self.name,
                    company=self.company_id.name,
                )
            )
        if journal.type not in types:
            raise UserError(
                self.env._(
                    "Journal %(journal)s is a %(type)s journal: money of a prepaid "
                    "account goes through a cash or bank journal.",
                    journal=journal.name,
                    type=dict(journal._fields["type"]._description_selection(self.env))[
                        journal.type
                    ],
                )
            )
        currency = self.currency_id
        if journal.currency_id and journal.currency_id != currency:
            raise UserError(
                self.env._(
                    "Journal %(journal)s is in %(cur)s; prepaid accounts are kept in "
                    "%(company_cur)s.",
                    journal=journal.name,
                    cur=journal.currency_id.name,
                    company_cur=currency.name,
                )
            )

    def _check_recharge_amount(self, amount):
        """Refuse a recharge that is not positive or above the company's cap."""
        self.ensure_one()
        currency = self.currency_id
        if currency.compare_amounts(amount, 0) <= 0:
            raise UserError(self.env._("A recharge must be a positive amount."))
        cap = self.company_id.prepaid_max_recharge_amount
        if currency.compare_amounts(amount, cap) > 0:
            raise UserError(
                self.env._(
                    "A recharge of %(amount)s is above the largest allowed, "
                    "%(cap)s (Settings > Prepaid Billing). Split it, or ask the "
                    "administrator to raise the limit.",
                    amount=currency.format(amount),
                    cap=currency.format(cap),
                )
            )

    def _check_refund_amount(self, amount, balance=None, debt=0.0):
        """Refuse a refund that is not positive or, when ``balance`` is
        given, more than it less the ``debt`` owed (the rule of every refund:
        wallet, meter): the money that pays a debt is not paid out."""
        self.ensure_one()
        currency = self.currency_id
        if currency.compare_amounts(amount, 0) <= 0:
            raise UserError(self.env._("A refund must be a positive amount."))
        if balance is None:
            return
        debt = max(debt or 0.0, 0.0)
        available = currency.round(balance - debt)
        if currency.compare_amounts(amount, available) <= 0:
            return
        if currency.compare_amounts(debt, 0) > 0:
            raise UserError(
                self.env._(
                    "Refund %(amount)s is more than the balance %(balance)s less "
                    "the debt owed %(debt)s: at most %(available)s can be paid "
                    "back.",
                    amount=currency.format(amount),
                    balance=currency.format(balance),
                    debt=currency.format(debt),
                    available=currency.format(max(available, 0.0)),
                )
            )
        raise UserError(
            self.env._(
                "Refund %(amount)s is more than the balance %(balance)s.",
                amount=amount,
                balance=balance,
            )
        )

    def _create_money_move(self, amount, journal, label):
        company = self.company_id
        liability = company._prepaid_liability_account()
        cash = journal.default_account_id
        if not cash:
            raise UserError(
                self.env._("Journal %s has no default account.", journal.name)
            )
        debit, credit = (cash, liability) if amount > 0 else (liability, cash)
        value = abs(amount)
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
                                "account_id": debit.id,
                                "debit": value,
                                "credit": 0.0,
                                "partner_id": self.partner_id.id,
                                "name": label,
                            }
                        ),
                        fields.Command.create(
                            {
                                "account_id": credit.id,
                                "debit": 0.0,
                                "credit": value,
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

    def _recharge(self, amount, journal, key, payment_method, label=None):
        """Credit the wallet: checks, then accounting and ledger, and the
        record of a meter-side meter (see ``_queue_top_up_on_meter``);
        idempotent on ``key``."""
        self.ensure_one()
        self._check_group(BILLING_USER)
        self.check_access("write")
        if self.state != "open":
            raise UserError(
                self.env._("Account %s is not open: it cannot be recharged.", self.name)
            )
        self._check_recharge_amount(amount)
        label = label or self.env._("Recharge")
        retry = bool(
            self.env["prepaid.ledger.line"].search_count(
                [("idempotency_key", "=", key)], limit=1
            )
        )
        lines = self._post_money(
            "recharge", amount, journal, key, label, payment_method=payment_method
        )
        # The debt's share of the top-up, in the same transaction as the
        # credit (a crash loses both or neither; a retry finds both).
        recovered = self._recover_debt_on_top_up(lines, retry=retry)
        # "The fee is sent to the meter in real time": a meter keeping the
        # balance gets the top-up too (less the debt's share), queued with
        # the credit.
        if self.currency_id.compare_amounts(amount - recovered, 0) > 0:
            self._queue_top_up_on_meter(
                amount - recovered, key, journal, payment_method, label
            )
        self.env["prepaid.billing.engine"]._after_balance_change(self)
        return lines

    def _refund(self, amount, journal, key, payment_method, label=None):
        """Pay money back to the tenant (at most the balance less the debt
        owed)."""
        self.ensure_one()
        self._check_group(BILLING_USER)
        self.check_access("write")
        if self.state == "draft":
            raise UserError(self.env._("A draft account has nothing to refund."))
        self._check_refund_amount(amount)
        # The balance and the debt as they stand under the account's lock:
        # what pays the debt is not paid out.
        balance, owed = self._lock_for_debt()
        self._check_refund_amount(amount, balance, owed)
        lines = self._post_money(
            "refund",
            -amount,
            journal,
            key,
            label or self.env._("Refund"),
            payment_method=payment_method,
        )
        self.env["prepaid.billing.engine"]._after_balance_change(self)
        return lines

    def _credit_meter_recharge(self, command):
        """A meter applied a counted record: the wallet follows it, once.

        Called when the command is settled done (also after a crash, by the
        recovery job); a positive amount is a recharge, a negative one a
        refund. The ledger key is the command, so a second call posts nothing.
        """
        self.ensure_one()
        params = command.params or {}
        amount = params["amount"]
        meter = command.meter_id
        engine = self.env["prepaid.billing.engine"]
        # Readings taken before the record are billed against the old
        # balance first, so the jump is never read as negative consumption.
        engine._bill([meter.id])
        journal = self.env["account.journal"].browse(params.get("journal_id"))
        refund = amount < 0
        # A top-up's record brings the meter level with a wallet credited
        # when the money came (``wallet_key``): nothing more to post.
        if not params.get("wallet_key"):
            self._post_money(
                "refund" if refund else "recharge",
                amount,
                journal or None,
                f"meter_recharge:{command.id}",
                self.env._("Refund from meter %s", meter.name)
                if refund
                else self.env._("Recharge on meter %s", meter.name),
                payment_method=params.get("payment_method") or "cash",
                meter=meter,
            )
        balance_after = (command.readback or {}).get("balance")
        billed_at = meter.billed_reading_id.read_at
        # A reading billed after the record already moved the mirror past it.
        if balance_after is not None and not (
            billed_at and command.done_at and billed_at > command.done_at
        ):
            meter.sudo().meter_balance_mirror = balance_after
        engine._after_balance_change(self)
