from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError


class ResCompany(models.Model):
    _inherit = "res.company"

    prepaid_alarm1_amount = fields.Monetary(string="Alarm 1 at", default=50.0)
    prepaid_alarm2_amount = fields.Monetary(string="Alarm 2 at", default=20.0)
    prepaid_alarm3_amount = fields.Monetary(string="Alarm 3 at", default=5.0)
    prepaid_alarm_times = fields.Integer(
        string="Alarm Repeats",
        default=3,
        help="How many times each alarm level is sent.",
    )
    prepaid_alarm_interval_hours = fields.Float(
        string="Hours Between Repeats", default=24.0
    )
    prepaid_liability_account_id = fields.Many2one(
        "account.account",
        string="Prepayment Liability Account",
        help="Money tenants paid in advance (credited by recharges, debited by "
        "refunds and by recognised consumption).",
    )
    prepaid_revenue_account_id = fields.Many2one(
        "account.account",
        string="Utility Revenue Account",
        help="Used when a tariff's product has no income account.",
    )
    prepaid_journal_id = fields.Many2one(
        "account.journal",
        string="Revenue Recognition Journal",
        domain="[('type', '=', 'general')]",
    )
    prepaid_max_recharge_amount = fields.Monetary(
        string="Largest Recharge",
        default=50000.0,
        help="A single recharge above this amount is refused (a typing error "
        "of a few zeros would otherwise become real money).",
    )

    prepaid_debt_account_id = fields.Many2one(
        "account.account",
        string="Tenant Debt Account",
        help="Money tenants owe outside their wallet (debited when a debt is "
        "added, credited by its recovery).",
    )
    prepaid_debt_percent = fields.Float(
        string="Debt Share of Each Top-up (%)", digits=(5, 2), default=25.0
    )
    prepaid_debt_min = fields.Monetary(string="Debt at Least per Top-up")
    prepaid_debt_max = fields.Monetary(
        string="Debt at Most per Top-up", help="0: no maximum."
    )
    prepaid_debt_daily = fields.Monetary(
        string="Debt per Day", help="Taken from the wallet each local day; 0: none."
    )
    prepaid_emergency_credit_amount = fields.Monetary(
        string="Emergency Credit",
        help="What a tenant may use below zero once, offered at the last alarm "
        "level; 0: none.",
    )
    prepaid_limit_polls = fields.Integer(
        string="Polls Above the Power Limit",
        default=3,
        help="Consecutive polls with demand above an account's power limit "
        "before its supply is cut.",
    )
    prepaid_limit_restore_minutes = fields.Integer(
        string="Restore After (minutes)",
        default=10,
        help="How long a supply cut for the power limit stays off.",
    )

    @api.constrains(
        "prepaid_debt_percent",
        "prepaid_debt_min",
        "prepaid_debt_max",
        "prepaid_debt_daily",
        "prepaid_emergency_credit_amount",
        "prepaid_limit_polls",
        "prepaid_limit_restore_minutes",
    )
    def _check_prepaid_debt_and_limits(self):
        for company in self:
            self.env["prepaid.account"]._check_debt_rule_values(
                company.prepaid_debt_percent,
                company.prepaid_debt_min,
                company.prepaid_debt_max,
                company.prepaid_debt_daily,
                env=self.env,
            )
            if company.prepaid_emergency_credit_amount < 0:
                raise ValidationError(
                    self.env._("The emergency credit cannot be negative.")
                )
            if (
                company.prepaid_limit_polls < 1
                or company.prepaid_limit_restore_minutes < 1
            ):
                raise ValidationError(
                    self.env._(
                        "The polls above the power limit and the minutes before "
                        "a restore must be at least 1."
                    )
                )

    def _prepaid_debt_account(self):
        self.ensure_one()
        if not self.prepaid_debt_account_id:
            raise UserError(
                self.env._(
                    "Set the tenant debt account of %s in Settings > Prepaid Billing.",
                    self.name,
                )
            )
        return self.prepaid_debt_account_id

    @api.constrains("prepaid_max_recharge_amount")
    def _check_prepaid_max_recharge_amount(self):
        for company in self:
            cap = company.prepaid_max_recharge_amount
            if company.currency_id.compare_amounts(cap, 0) <= 0:
                raise ValidationError(
                    self.env._("The largest recharge must be a positive amount.")
                )

    def _prepaid_alarm_amounts(self):
        self.ensure_one()
        return (
            self.prepaid_alarm1_amount,
            self.prepaid_alarm2_amount,
            self.prepaid_alarm3_amount,
        )

    def _prepaid_liability_account(self):
        self.ensure_one()
        if not self.prepaid_liability_account_id:
            raise UserError(
                self.env._(
                    "Set the prepayment liability account of %s in Settings > "
                    "Prepaid Billing.",
                    self.name,
                )
            )
        return self.prepaid_liability_account_id

    def _prepaid_demo_setup(self):
        """Demo data: give the company a liability account and a journal."""
        for company in self.filtered(lambda c: not c.chart_template):
            # Odoo loads the chart of accounts after every module of the run
            # is installed; the demo accounts and their opening balances need
            # it now. The generic chart is made for the US: before any entry
            # exists, the books move to the currency of the company's country
            # (set by the metering demo: China, CNY, as WeChat Pay settles).
            self.env["account.chart.template"].try_loading(
                "generic_coa", company, install_demo=False
            )
            currency = company.country_id.currency_id
            if currency and currency != company.currency_id:
                currency.active = True
                company.currency_id = currency
        for company in self:
            Account = self.env["account.account"].with_company(company)
            liability = Account.search(
                [("code", "=", "219000"), ("company_ids", "in", company.id)], limit=1
            ) or Account.create(
                {
                    "name": "Tenant prepayments (utilities)",
                    "code": "219000",
                    "account_type": "liability_current",
                    "company_ids": [(6, 0, company.ids)],
                }
            )
            revenue = Account.search(
                [("code", "=", "419000"), ("company_ids", "in", company.id)], limit=1
            ) or Account.create(
                {
                    "name": "Utility revenue",
                    "code": "419000",
                    "account_type": "income",
                    "company_ids": [(6, 0, company.ids)],
                }
            )
            debt = Account.search(
                [("code", "=", "112900"), ("company_ids", "in", company.id)], limit=1
            ) or Account.create(
                {
                    "name": "Tenant debt (utilities)",
                    "code": "112900",
                    "account_type": "asset_receivable",
                    "reconcile": True,
                    "company_ids": [(6, 0, company.ids)],
                }
            )
            journal = self.env["account.journal"].search(
                [("type", "=", "general"), ("company_id", "=", company.id)], limit=1
            )
            company.write(
                {
                    "prepaid_liability_account_id": liability.id,
                    "prepaid_revenue_account_id": revenue.id,
                    "prepaid_journal_id": journal.id,
                    "prepaid_debt_account_id": debt.id,
                }
            )
