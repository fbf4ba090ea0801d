from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError

from ..tools import balance as balance_core
from ..tools import credit

BALANCE_STATES = [
    ("normal", "Normal"),
    ("alarm1", "Alarm 1"),
    ("alarm2", "Alarm 2"),
    ("alarm3", "Alarm 3"),
    ("overdrawn", "Overdrawn"),
    ("cut_off", "Cut Off"),
]
SUPPLY_STATES = [
    ("on", "On"),
    ("cut_pending", "Cut-off Deferred"),
    ("cut_off", "Cut Off"),
    ("cut_failed", "Cut-off Failed"),
    ("restore_failed", "Restore Failed"),
]
# Changed only by the account's actions (open, close, supply override, the
# billing engine), which check the user's group and then write with
# ``_write_guarded``; a plain write or create by a user is refused.
ACTION_FIELDS = frozenset(
    {
        "state",
        "supply_state",
        "keep_on_until",
        "opened_at",
        "closed_at",
        "alarm_level",
    }
)
# Risk settings of an account: billing managers only.
MANAGER_FIELDS = frozenset({"credit_limit", "protected"})
BILLING_USER = "prepaid_billing.group_billing_user"
BILLING_MANAGER = "prepaid_billing.group_billing_manager"
# Journals money may come from: cash or bank; an opening balance may also come
# from a transfer account of the previous system.
MONEY_JOURNAL_TYPES = ("cash", "bank")
OPENING_JOURNAL_TYPES = ("cash", "bank", "general")


class PrepaidAccount(models.Model):
    """A tenant's prepaid (or postpaid) account: a wallet and its meters."""

    _name = "prepaid.account"
    _description = "Prepaid Account"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _order = "name desc"
    _check_company_auto = True

    name = fields.Char(
        required=True, readonly=True, copy=False, default=lambda self: self.env._("New")
    )
    partner_id = fields.Many2one(
        "res.partner",
        string="Tenant",
        required=True,
        tracking=True,
        index=True,
        check_company=True,
    )
    company_id = fields.Many2one(
        "res.company",
        required=True,
        default=lambda self: self.env.company,
        index=True,
    )
    currency_id = fields.Many2one(related="company_id.currency_id")
    state = fields.Selection(
        [("draft", "Draft"), ("open", "Open"), ("closed", "Closed")],
        default="draft",
        required=True,
        readonly=True,
        tracking=True,
        index=True,
    )
    mode = fields.Selection(
        [("prepaid", "Prepaid"), ("postpaid", "Postpaid")],
        default="prepaid",
        required=True,
        tracking=True,
    )
    tariff_id = fields.Many2one(
        "prepaid.tariff",
        string="Electricity Tariff",
        tracking=True,
        domain="[('utility', '=', 'electricity'), ('company_id', '=', company_id)]",
        check_company=True,
    )
    water_tariff_id = fields.Many2one(
        "prepaid.tariff",
        tracking=True,
        domain="[('utility', '=', 'water'), ('company_id', '=', company_id)]",
        check_company=True,
    )
    meter_ids = fields.One2many("prepaid.meter", "billing_account_id", string="Meters")
    meter_link_ids = fields.Many2many(
        "prepaid.meter",
        string="Meters of the Account",
        compute="_compute_meter_link_ids",
        inverse="_inverse_meter_link_ids",
        domain="[('company_id', '=', company_id), '|', "
        "('billing_account_id', '=', False), ('billing_account_id', '=', id)]",
        help="Pick the meters this account pays for.",
    )
    meter_count = fields.Integer(compute="_compute_meter_count")
    balance = fields.Monetary(
        readonly=True,
        copy=False,
        default=0.0,
        help="Sum of the posted wallet lines; moved only by posting.",
    )
    ledger_line_ids = fields.One2many(
        "prepaid.ledger.line", "account_id", string="Wallet Lines"
    )
    opening_balance = fields.Monetary(
        help="Money the tenant already has (e.g. from the previous system), posted "
        "when the account opens.",
    )
    credit_limit = fields.Monetary(
        string="Allowed Credit",
        help="The supply is cut when the balance goes below minus this amount.",
    )
    alarm_override = fields.Boolean(
        string="Own Alarm Amounts", help="Use the amounts below instead of Settings."
    )
    alarm1_amount = fields.Monetary(string="Alarm 1 at")
    alarm2_amount = fields.Monetary(string="Alarm 2 at")
    alarm3_amount = fields.Monetary(string="Alarm 3 at")
    alarm_level = fields.Integer(readonly=True, copy=False)
    balance_state = fields.Selection(
        BALANCE_STATES, compute="_compute_balance_state", store=True, index=True
    )
    supply_state = fields.Selection(
        SUPPLY_STATES,
        default="on",
        required=True,
        readonly=True,
        copy=False,
        tracking=True,
    )
    supply_mismatch = fields.Boolean(
        string="Relay Contradicts Supply",
        compute="_compute_supply_mismatch",
        search="_search_supply_mismatch",
        help="A relay or valve state read from a meter contradicts the supply "
        "state (no switch command pending for that meter).",
    )
    protected = fields.Boolean(
        help="Never cut this account's supply automatically (hospital, elderly "
        "tenant...).",
        tracking=True,
    )
    keep_on_until = fields.Datetime(
        string="Keep Supply On Until",
        readonly=True,
        copy=False,
        tracking=True,
        help="Set by a manual override: no automatic cut-off before this time.",
    )
    opened_at = fields.Datetime(readonly=True, copy=False)
    closed_at = fields.Datetime(readonly=True, copy=False)
    notice_ids = fields.One2many("prepaid.alarm.notice", "account_id")

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if "balance" in vals:
                raise UserError(
                    self.env._("The balance moves only through wallet lines.")
                )
            if vals.get("name", self.env._("New")) == self.env._("New"):
                vals["name"] = self.env["ir.sequence"].next_by_code(
                    "prepaid.account"
                ) or self.env._("New")
        accounts = super().create(vals_list)
        if not self.env.su:
            # Checked on the result, so that values given through context or
            # user defaults are caught as well as those in ``vals``.
            changed = set()
            for account in accounts:
                changed |= self._guarded_changes(
                    {name: account[name] for name in ACTION_FIELDS | MANAGER_FIELDS},
                    self._static_default,
                )
            self._check_guarded_fields(changed)
        return accounts

    def _static_default(self, name):
        """The default of field ``name`` as declared, whatever the context."""
        default = self._fields[name].default
        return default(self) if default else False

    def write(self, vals):
        if "balance" in vals:
            raise UserError(self.env._("The balance moves only through wallet lines."))
        if "company_id" in vals and self.filtered(
            lambda a: a.state != "draft" and a.company_id.id != vals["company_id"]
        ):
            raise UserError(
                self.env._(
                    "The company of an account cannot change once it is opened: "
                    "its wallet and journal entries belong to that company."
                )
            )
        if (
            "mode" in vals
            and not self.env.su
            and self.filtered(lambda a: a.state != "draft" and a.mode != vals["mode"])
        ):
            # Prepaid to postpaid takes an open account out of deduction and
            # cut-off: a risk decision like the allowed credit.
            self._check_group(BILLING_MANAGER)
        if not self.env.su:
            changed = set()
            for account in self:
                changed |= self._guarded_changes(
                    vals, lambda name, account=account: account[name]
                )
            self._check_guarded_fields(changed)
        return super().write(vals)

    def _guarded_changes(self, vals, current):
        """The guarded fields ``vals`` would change from ``current(name)``."""
        changed = set()
        for name in (ACTION_FIELDS | MANAGER_FIELDS) & vals.keys():
            field = self._fields[name]
            new = field.convert_to_cache(vals[name], self.browse())
            if new != field.convert_to_cache(current(name), self.browse()):
                changed.add(name)
        return changed

    def _check_guarded_fields(self, changed):
        """Refuse a user's write of fields owned by actions or by managers."""
        by_action = changed & ACTION_FIELDS
        if by_action:
            raise AccessError(
                self.env._(
                    "%(fields)s of a prepaid account change only through its "
                    "actions (Open, Close, Supply Override) and the billing job.",
                    fields=", ".join(self._fields[f].string for f in sorted(by_action)),
                )
            )
        if changed & MANAGER_FIELDS:
            self._check_group(BILLING_MANAGER)

    def _check_group(self, group):
        """Raise AccessError unless the user (or the system) is in ``group``."""
        if self.env.su or self.env.user.has_group(group):
            return
        raise AccessError(
            self.env._(
                "Only members of the group %(group)s may do this (you are %(user)s).",
                group=self.env.ref(group).full_name,
                user=self.env.user.name,
            )
        )

    def _write_guarded(self, vals):
        """Write the state, supply state, keep-on-until... of the accounts.

        Only for the account's own actions and the billing engine, after they
        have checked what the user may do: a user's plain ``write`` of these
        fields is refused.
        """
        return self.sudo().write(vals)

    @api.ondelete(at_uninstall=False)
    def _unlink_except_not_draft(self):
        if self.filtered(lambda a: a.state != "draft" or a.ledger_line_ids):
            raise UserError(self.env._("Only draft accounts can be deleted."))

    @api.depends("meter_ids")
    def _compute_meter_link_ids(self):
        for account in self:
            account.meter_link_ids = account.meter_ids

    def _inverse_meter_link_ids(self):
        for account in self:
            removed = account.meter_ids - account.meter_link_ids
            added = account.meter_link_ids - account.meter_ids
            if removed and account.state == "open":
                raise UserError(self.env._("Close the account to release its meters."))
            removed.write({"billing_account_id": False})
            added.write({"billing_account_id": account.id})
            if account.state == "open":
                added._start_billing()

    @api.depends("meter_ids")
    def _compute_meter_count(self):
        for account in self:
            account.meter_count = len(account.meter_ids)

    @api.depends("balance", "alarm_level", "supply_state", "credit_limit")
    def _compute_balance_state(self):
        for account in self:
            if account.supply_state == "cut_off":
                account.balance_state = "cut_off"
            elif account.currency_id.compare_amounts(account.balance, 0) < 0:
                account.balance_state = "overdrawn"
            elif account.alarm_level:
                account.balance_state = f"alarm{account.alarm_level}"
            else:
                account.balance_state = "normal"

    def _compute_supply_mismatch(self):
        flagged = set(self._supply_mismatch_ids(self.ids))
        for account in self:
            account.supply_mismatch = account.id in flagged

    def _search_supply_mismatch(self, operator, value):
        if operator not in ("=", "!=") or not isinstance(value, bool):
            raise UserError(self.env._("Unsupported search on the supply mismatch."))
        ids = self._supply_mismatch_ids()
        positive = (operator == "=") == value
        return [("id", "in" if positive else "not in", ids)]

    @api.model
    def _supply_mismatch_ids(self, ids=None):
        """Open accounts with a server-side meter whose relay/valve, as last
        read, is not what the supply state wants (commands still on their way
        excepted)."""
        self.env.flush_all()
        self.env.cr.execute(
            """
            SELECT DISTINCT a.id
              FROM prepaid_account a
              JOIN prepaid_meter m ON m.billing_account_id = a.id
             WHERE a.state = 'open'
               AND (%(ids)s::int4[] IS NULL OR a.id = ANY(%(ids)s::int4[]))
               AND m.active AND m.billing_mode = 'server'
               AND m.switch_state IN ('on', 'off')
               AND m.switch_state <> CASE
                   WHEN a.supply_state IN ('cut_off', 'cut_failed') THEN 'off'
                   ELSE 'on' END
               AND NOT EXISTS (
                   SELECT 1 FROM prepaid_meter_command c
                    WHERE c.meter_id = m.id AND c.state IN ('queued', 'sending')
                      AND c.command_type IN ('relay_on', 'relay_off',
                                             'valve_open', 'valve_close'))
            """,
            {"ids": ids},
        )
        return [row[0] for row in self.env.cr.fetchall()]

    @api.constrains(
        "alarm_override",
        "alarm1_amount",
        "alarm2_amount",
        "alarm3_amount",
        "credit_limit",
    )
    def _check_alarms(self):
        for account in self:
            if account.credit_limit < 0:
                raise ValidationError(
                    self.env._("The allowed credit cannot be negative.")
                )
            if account.alarm_override:
                self._check_alarm_amounts(
                    account.alarm1_amount,
                    account.alarm2_amount,
                    account.alarm3_amount,
                )

    @api.model
    def _check_alarm_amounts(self, first, second, third):
        if not first > second > third >= 0:
            raise ValidationError(
                self.env._(
                    "Alarm amounts must decrease from level 1 to level 3 and not be "
                    "negative (got %(a)s, %(b)s, %(c)s).",
                    a=first,
                    b=second,
                    c=third,
                )
            )

    def _alarm_amounts(self):
        """(level 1, level 2, level 3) thresholds of this account."""
        self.ensure_one()
        if self.alarm_override:
            return self.alarm1_amount, self.alarm2_amount, self.alarm3_amount
        return self.company_id._prepaid_alarm_amounts()

    @api.model
    def _get_billable_account_domain(self):
        """Accounts whose wallet pays for their meters' readings: billing,
        alarms and balance cut-offs apply to them (the meter side of the rule
        is ``prepaid.meter._get_billable_meter_domain``)."""
        return [("state", "=", "open"), ("mode", "=", "prepaid")]

    def _level_for(self, balance):
        """Alarm level (0-3) reached by ``balance`` (the rule of
        ``tools/balance``, which the billing engine applies in bulk)."""
        return balance_core.alarm_level(
            balance, self._alarm_amounts(), self.currency_id.rounding
        )

    def _tariff_for(self, meter):
        """The tariff pricing ``meter``: the meter's own, else the account's."""
        self.ensure_one()
        if meter.tariff_id:
            return meter.tariff_id
        return self.water_tariff_id if meter.meter_type == "water" else self.tariff_id

    # ------------------------------------------------------------------
    # Life cycle
    # ------------------------------------------------------------------
    def action_open(self):
        """Open the opening wizard for the selected draft accounts."""
        self._check_group(BILLING_USER)
        return {
            "type": "ir.actions.act_window",
            "res_model": "prepaid.account.open.wizard",
            "view_mode": "form",
            "target": "new",
            "context": {"active_ids": self.ids, "active_model": self._name},
        }

    def _open(self, push_parameters=False):
        self._check_group(BILLING_USER)
        self.check_access("write")
        drafts = self.filtered(lambda a: a.state == "draft")
        if drafts != self:
            raise UserError(self.env._("Only draft accounts can be opened."))
        for account in self:
            if not account.meter_ids:
                raise UserError(self.env._("Account %s has no meter.", account.name))
            for meter in account.meter_ids:
                if meter.billing_mode == "server" and not account._tariff_for(meter):
                    raise UserError(
                        self.env._(
                            "Account %(account)s: meter %(meter)s has no tariff.",
                            account=account.name,
                            meter=meter.name,
                        )
                    )
        journal = self.env["account.journal"].browse(
            self.env.context.get("prepaid_opening_journal_id")
        )
        if not journal and any(
            not a.currency_id.is_zero(a.opening_balance) for a in self
        ):
            raise UserError(
                self.env._("Choose the journal the opening balances come from.")
            )
        now = fields.Datetime.now()
        self._write_guarded({"state": "open", "opened_at": now})
        for account in self:
            account.meter_ids._start_billing()
            if not account.currency_id.is_zero(account.opening_balance):
                account._post_money(
                    "opening",
                    account.opening_balance,
                    journal=journal,
                    key=f"opening:{account.id}",
                    label=self.env._("Opening balance"),
                )
            if push_parameters:
                account.meter_ids._push_prepaid_parameters()
            account.message_post(body=self.env._("Account opened."))
        self.env["prepaid.billing.engine"]._after_balance_change(self)
        return True

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
        """Credit the wallet: checks, then accounting and ledger (idempotent)."""
        self.ensure_one()
        self._check_group(BILLING_USER)
        self.check_access("write")
        if self.state != "open":
            raise UserError(
                self.env._("Account %s is not open: it cannot be recharged.", self.name)
            )
        self._check_recharge_amount(amount)
        lines = self._post_money(
            "recharge",
            amount,
            journal,
            key,
            label or self.env._("Recharge"),
            payment_method=payment_method,
        )
        self.env["prepaid.billing.engine"]._after_balance_change(self)
        return lines

    def _refund(self, amount, journal, key, payment_method, label=None):
        """Pay money back to the tenant (at most the balance)."""
        self.ensure_one()
        self._check_group(BILLING_USER)
        self.check_access("write")
        currency = self.currency_id
        if self.state == "draft":
            raise UserError(self.env._("A draft account has nothing to refund."))
        if currency.compare_amounts(amount, 0) <= 0:
            raise UserError(self.env._("A refund must be a positive amount."))
        self.env["prepaid.ledger.line"].flush_model()
        self.env.cr.execute(
            "SELECT balance FROM prepaid_account WHERE id = %s FOR NO KEY UPDATE",
            [self.id],
        )
        balance = self.env.cr.fetchone()[0]
        if currency.compare_amounts(amount, float(balance)) > 0:
            raise UserError(
                self.env._(
                    "Refund %(amount)s is more than the balance %(balance)s.",
                    amount=amount,
                    balance=balance,
                )
            )
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

    def action_close(self):
        self.ensure_one()
        self._check_group(BILLING_USER)
        return {
            "type": "ir.actions.act_window",
            "res_model": "prepaid.account.close.wizard",
            "view_mode": "form",
            "target": "new",
            "context": {"default_account_id": self.id},
        }

    def action_recharge(self):
        self.ensure_one()
        self._check_group(BILLING_USER)
        return {
            "type": "ir.actions.act_window",
            "res_model": "prepaid.recharge.wizard",
            "view_mode": "form",
            "target": "new",
            "context": {"default_account_id": self.id},
        }

    def action_refund(self):
        action = self.action_recharge()
        action["context"]["default_operation"] = "refund"
        return action

    def action_view_ledger(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "prepaid_billing.prepaid_ledger_line_action"
        )
        action["domain"] = [("account_id", "=", self.id)]
        return action

    def action_bill_now(self):
        """Price the unbilled readings of this account's meters now."""
        self._check_group(BILLING_USER)
        self.check_access("write")
        self.env["prepaid.billing.engine"]._bill(meter_ids=self.meter_ids.ids)
        return True

    @api.model
    def _demo_create_accounts(self):
        """Demo data: one account per demo room with a tenant and meters."""
        ref = self.env.ref
        site = ref("prepaid_metering.demo_site", raise_if_not_found=False)
        if not site or self.search_count([]):
            return
        journal = self.env["account.journal"].search(
            [("type", "=", "cash"), ("company_id", "=", self.env.company.id)], limit=1
        )
        rooms = self.env["prepaid.room"].search(
            [
                ("site_id", "=", site.id),
                ("tenant_id", "!=", False),
                ("meter_ids", "!=", False),
            ],
            order="name",
        )
        accounts = self.browse()
        for index, room in enumerate(rooms):
            shop = room.room_type == "shop"
            accounts |= self.create(
                {
                    "partner_id": room.tenant_id.id,
                    "tariff_id": ref(
                        "prepaid_billing.demo_tariff_tou"
                        if shop
                        else "prepaid_billing.demo_tariff_flat"
                    ).id,
                    "water_tariff_id": ref("prepaid_billing.demo_tariff_water").id,
                    "opening_balance": 200.0 if index % 7 else 25.0,
                    "meter_link_ids": [fields.Command.set(room.meter_ids.ids)],
                }
            )
        first = ref("prepaid_metering.demo_meter_1_1", raise_if_not_found=False)
        if first:
            first.billing_mode = "meter"
        prepared = accounts[-1:]
        (accounts - prepared).with_context(
            prepaid_opening_journal_id=journal.id
        )._open()

    # ------------------------------------------------------------------
    # Forecast
    # ------------------------------------------------------------------
    def _days_of_credit_left(self):
        """Whole days the balance lasts at the last 7 days' average daily
        charge (consumption and charge items), None without recent use.

        Shown on the portal's balance page and in the alarm messages (email,
        SMS, WeChat).
        """
        self.ensure_one()
        since = fields.Datetime.now() - timedelta(days=credit.RECENT_DAYS)
        [(total,)] = (
            self.env["prepaid.ledger.line"]
            .sudo()
            ._read_group(
                [
                    ("account_id", "=", self.id),
                    ("line_type", "in", credit.USE_LINE_TYPES),
                    ("date", ">=", since),
                ],
                aggregates=["amount:sum"],
            )
        )
        return credit.days_left(self.balance, -(total or 0.0))
