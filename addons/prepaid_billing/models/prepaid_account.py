from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError

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
]


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
            if vals.get("name", self.env._("New")) == self.env._("New"):
                vals["name"] = self.env["ir.sequence"].next_by_code(
                    "prepaid.account"
                ) or self.env._("New")
        return super().create(vals_list)

    def write(self, vals):
        if "balance" in vals:
            raise UserError(self.env._("The balance moves only through wallet lines."))
        return super().write(vals)

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

    def _level_for(self, balance):
        """Alarm level (0-3) reached by ``balance``."""
        level = 0
        for number, threshold in enumerate(self._alarm_amounts(), start=1):
            if self.currency_id.compare_amounts(balance, threshold) <= 0:
                level = number
        return level

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
        return {
            "type": "ir.actions.act_window",
            "res_model": "prepaid.account.open.wizard",
            "view_mode": "form",
            "target": "new",
            "context": {"active_ids": self.ids, "active_model": self._name},
        }

    def _open(self, push_parameters=False):
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
        self.write({"state": "open", "opened_at": now})
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
        currency = self.currency_id
        if self.state != "open":
            raise UserError(
                self.env._("Account %s is not open: it cannot be recharged.", self.name)
            )
        if currency.compare_amounts(amount, 0) <= 0:
            raise UserError(self.env._("A recharge must be a positive amount."))
        if journal and journal.currency_id and journal.currency_id != currency:
            raise UserError(
                self.env._(
                    "Journal %(journal)s is in %(cur)s; prepaid accounts are kept in "
                    "%(company_cur)s.",
                    journal=journal.name,
                    cur=journal.currency_id.name,
                    company_cur=currency.name,
                )
            )
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
        currency = self.currency_id
        if self.state == "draft":
            raise UserError(self.env._("A draft account has nothing to refund."))
        if currency.compare_amounts(amount, 0) <= 0:
            raise UserError(self.env._("A refund must be a positive amount."))
        self.env["prepaid.ledger.line"].flush_model()
        self.env.cr.execute(
            "SELECT balance FROM prepaid_account WHERE id = %s FOR UPDATE", [self.id]
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

    def _credit_meter_recharge(self, command, params):
        """A meter accepted a recharge record: the money is now on the meter."""
        self.ensure_one()
        meter = command.meter_id
        engine = self.env["prepaid.billing.engine"]
        # Readings taken before the recharge are billed against the old
        # balance first, so the jump is never read as negative consumption.
        engine._bill([meter.id])
        journal = self.env["account.journal"].browse(params.get("journal_id"))
        self._post_money(
            "recharge",
            params["amount"],
            journal or None,
            f"meter_recharge:{command.id}",
            self.env._("Recharge on meter %s", meter.name),
            payment_method=params.get("payment_method") or "cash",
            meter=meter,
        )
        if params.get("balance_after") is not None:
            meter.sudo().meter_balance_mirror = params["balance_after"]
        engine._after_balance_change(self)

    def action_close(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": "prepaid.account.close.wizard",
            "view_mode": "form",
            "target": "new",
            "context": {"default_account_id": self.id},
        }

    def action_recharge(self):
        self.ensure_one()
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
