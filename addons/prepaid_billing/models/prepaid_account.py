import logging
from datetime import timedelta

from psycopg2.errors import LockNotAvailable, SerializationFailure

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.tools import SQL

from odoo.addons.prepaid_metering.tools.tables import set_fillfactor

from ..tools import balance as balance_core
from ..tools import credit

_logger = logging.getLogger(__name__)

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
BILLING_USER = "prepaid_billing.group_billing_user"
BILLING_MANAGER = "prepaid_billing.group_billing_manager"


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

    def init(self):
        # Every billing batch rewrites the balance of each account it bills
        # (see set_fillfactor).
        set_fillfactor(self.env.cr, "prepaid_account", 70)

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
        return balance_core.thresholds(
            self.alarm_override,
            (self.alarm1_amount, self.alarm2_amount, self.alarm3_amount),
            self.company_id._prepaid_alarm_amounts(),
        )

    @api.model
    def _get_billable_account_domain(self):
        """Accounts whose wallet pays for their meters' readings: billing,
        alarms and balance cut-offs apply to them (the meter side of the rule
        is ``prepaid.meter._get_billable_meter_domain``)."""
        return [("state", "=", "open"), ("mode", "=", "prepaid")]

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
            "name": self.env._("Open Accounts"),
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
        self.meter_ids._start_billing()
        for account in self:
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
        body = self.env._("Account opened.")
        self._message_log_batch(bodies=dict.fromkeys(self.ids, body))
        self.env["prepaid.billing.engine"]._after_balance_change(self)
        return True

    def action_close(self):
        self.ensure_one()
        self._check_group(BILLING_USER)
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Close Account"),
            "res_model": "prepaid.account.close.wizard",
            "view_mode": "form",
            "target": "new",
            "context": {"default_account_id": self.id},
        }

    def _close(self, read_meters=True, journal=None):
        """Close the account, in an order that leaves no money behind: final
        readings, last consumption, credits of the charges' unused days, then
        the debt owed paid from the balance, then a refund of what is left
        through ``journal``, then the meters are released. A refusal changes
        nothing (one transaction)."""
        self._close_books(read_meters=read_meters)
        currency = self.currency_id
        self._settle_debt_at_closing()
        if currency.compare_amounts(self.balance, 0) > 0:
            if not journal:
                raise UserError(
                    self.env._(
                        "Choose the journal that pays back %s.",
                        currency.format(self.balance),
                    )
                )
            self._refund(
                self.balance,
                journal,
                f"close:{self.id}",
                "bank" if journal.type == "bank" else "cash",
                label=self.env._("Refund on closing"),
            )
        self._release_meters()
        return True

    def _settle_debt_at_closing(self):
        """The debt owed is paid from the wallet of an account being closed,
        up to its balance (a wallet line, a debt line and an entry, keyed by
        the closing); a debt above the balance stays owed on the account.
        Returns the debt line, or nothing."""
        self.ensure_one()
        currency = self.currency_id
        balance, owed = self._lock_for_debt()
        amount = currency.round(min(balance, owed))
        if currency.compare_amounts(amount, 0) <= 0:
            return self.env["prepaid.debt.line"]
        closed = fields.Datetime.to_string(self.closed_at or fields.Datetime.now())
        line = self._recover_debt(
            amount,
            f"close_debt:{self.id}:{closed}",
            "closing",
            self.env._("Debt paid from the balance at closing"),
        )
        self.invalidate_recordset(["balance", "debt_amount"])
        if currency.compare_amounts(self.debt_amount, 0) > 0:
            self.message_post(
                body=self.env._(
                    "Closed with a debt of %s still owed.",
                    currency.format(self.debt_amount),
                )
            )
        return line

    def _close_books(self, read_meters=True, closed_at=None):
        """The closing up to the refund (hook of the tenancy's move-out), for
        every account of ``self`` at once: final readings, last consumption
        (one billing pass), the accounts closed at ``closed_at`` (default
        now; a datetime, or ``{account id: datetime}``; its local day ends
        the charges) and the credits of the charges' unused days. The
        balances are left for the caller to settle."""
        self._check_group(BILLING_USER)
        self.check_access("write")
        if self.filtered(lambda a: a.state != "open"):
            raise UserError(self.env._("Only open accounts can be closed."))
        if read_meters:
            for account in self:
                account.meter_ids._take_final_readings(account)
        self.env["prepaid.billing.engine"]._bill(self.meter_ids.ids)
        self.invalidate_recordset(["balance"])
        for account in self:
            currency = account.currency_id
            meter_side = account.meter_ids.filtered(lambda m: m.billing_mode == "meter")
            if meter_side and currency.compare_amounts(account.balance, 0) > 0:
                # The wallet never pays out money a meter still holds.
                raise UserError(
                    self.env._(
                        "%(balance)s is still kept on meter-side meter(s) "
                        "%(meters)s. Refund it from the meter first (Refund, "
                        "choose the meter), then close the account.",
                        balance=currency.format(account.balance),
                        meters=", ".join(meter_side.mapped("name")),
                    )
                )
        # Closed (with its meters still linked: they give the site's day)
        # before the credits, which are computed from the closing day.
        if not isinstance(closed_at, dict):
            closed_at = dict.fromkeys(self.ids, closed_at or fields.Datetime.now())
        for stamp, accounts in self.grouped(lambda a: closed_at[a.id]).items():
            accounts._write_guarded({"state": "closed", "closed_at": stamp})
        self.env["prepaid.charge.line"].sudo()._credit_vacated(self)
        self.invalidate_recordset(["balance"])

    def _release_meters(self):
        """The last step of a closing: the meters leave the accounts."""
        self.meter_ids.sudo().write({"billing_account_id": False})
        body = self.env._("Account closed; meters released.")
        self._message_log_batch(bodies=dict.fromkeys(self.ids, body))

    def action_recharge(self):
        self.ensure_one()
        self._check_group(BILLING_USER)
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Recharge %s", self.display_name),
            "res_model": "prepaid.recharge.wizard",
            "view_mode": "form",
            "target": "new",
            "context": {"default_account_id": self.id},
        }

    def action_refund(self):
        action = self.action_recharge()
        action["name"] = self.env._("Refund %s", self.display_name)
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
        # B-101..B-104 open a little above alarm levels 1, 2 and 3 and the
        # cut-off: at the demo fleet's steady 2.5 kW (simulator/demo.py) they
        # cross them within minutes of `make run`.
        staged = {
            ref(f"prepaid_metering.demo_room_b_10{number}", False): amount
            for number, amount in ((1, 50.6), (2, 20.6), (3, 5.6), (4, 0.6))
        }
        accounts = self.browse()
        for index, room in enumerate(rooms):
            opening = staged.get(room, 200.0 if index % 7 else 25.0)
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
                    "opening_balance": opening,
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

    @api.model
    def _demo_pay_after_cut_off(self):
        """Demo only (a scheduled action of the demo data): the tenant of
        B-104 pays 30.00 in cash once the supply is cut off, so the demo shows
        the restore on recharge by itself."""
        room = self.env.ref("prepaid_metering.demo_room_b_104", False)
        account = (
            room
            and room.meter_ids.billing_account_id.filtered(
                lambda a: a.state == "open" and a.supply_state == "cut_off"
            )[:1]
        )
        if not account:
            return
        # Polling and billing update the same meter and account rows every
        # minute: leave the payment to the next run while a poll holds the
        # meters' bus, or when the rows are locked or changed since this
        # transaction began.
        now = fields.Datetime.now()
        if any(
            gateway.bus_claimed_until and gateway.bus_claimed_until > now
            for gateway in account.meter_ids.gateway_id
        ):
            return
        try:
            with self.env.cr.savepoint(flush=False):
                for table, ids in (
                    ("prepaid_account", account.ids),
                    ("prepaid_meter", account.meter_ids.ids),
                ):
                    self.env.cr.execute(
                        SQL(
                            "SELECT 1 FROM %s WHERE id = ANY(%s) "
                            "FOR NO KEY UPDATE NOWAIT",
                            SQL.identifier(table),
                            ids,
                        ),
                        log_exceptions=False,
                    )
        except (LockNotAvailable, SerializationFailure):
            _logger.info("Demo payment of %s: busy, left to the next run", account.name)
            return
        journal = self.env["account.journal"].search(
            [("type", "=", "cash"), ("company_id", "=", account.company_id.id)],
            limit=1,
        )
        paid = self.env["prepaid.ledger.line"].search_count(
            [("account_id", "=", account.id), ("line_type", "=", "recharge")]
        )
        account._recharge(
            30.0,
            journal,
            f"demo_pay_after_cut_off:{account.id}:{paid}",
            "cash",
            self.env._("Demo: the tenant paid after the cut-off"),
        )

    # ------------------------------------------------------------------
    # Forecast
    # ------------------------------------------------------------------
    def _days_of_credit_left(self):
        """Whole days the balance lasts at the last 7 days' average daily
        metered use (consumption lines, not charge items; over the days since
        it opened when that is less), None without recent use.

        Shown on the portal's balance page and in the alarm messages (email,
        SMS, WeChat).
        """
        self.ensure_one()
        now = fields.Datetime.now()
        since = now - timedelta(days=credit.RECENT_DAYS)
        # An account opened within the window has used its money over fewer
        # days: its rate is over the days it has been open (at least an hour).
        if self.opened_at and since < self.opened_at <= now:
            since = self.opened_at
        days = max(now - since, timedelta(hours=1)) / timedelta(days=1)
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
        return credit.days_left(self.balance, -(total or 0.0), days)

    def _topup_to_restore(self):
        """The smallest recharge after which a cut supply comes back (the
        restore rule of the billing engine), 0.0 when the balance is enough."""
        self.ensure_one()
        return float(
            balance_core.topup_to_restore(self.balance, self.currency_id.rounding)
        )
