from dateutil.relativedelta import relativedelta

from odoo import api, fields, models
from odoo.exceptions import UserError

from ..tools import money
from ..tools import tariff as core


class PrepaidRevenueRecognition(models.AbstractModel):
    """Prepaid money becomes revenue: minimum monthly charges, the daily
    recognition entry and the reconciliation of the wallets against the
    liability account.

    Part of ``prepaid.billing.engine``, which the rest of the module calls.
    """

    _name = "prepaid.revenue.recognition"
    _inherit = "prepaid.supply.control"
    _description = "Prepaid Revenue Recognition"

    @api.model
    def _cron_minimum_charges(self, month_start=None, meters=None):
        """Top up last month's consumption to the tariff's monthly minimum.

        For every server-side meter of an open prepaid account whose tariff
        version (in force at the month's end) has a minimum: one "charge"
        line for the shortfall, keyed by meter and month so that running the
        job twice charges once. ``month_start`` is the first day of the month
        to charge (default: last month). ``meters``: only those (a test's
        own); the cron takes every meter. Returns the lines posted.
        """
        if month_start is None:
            month_start = fields.Date.context_today(self).replace(
                day=1
            ) - relativedelta(months=1)
        month_end = month_start + relativedelta(months=1)
        Meter = self.env["prepaid.meter"]
        domain = Meter._get_billable_meter_domain() + [("billing_mode", "=", "server")]
        if meters is not None:
            domain.append(("id", "in", meters.ids))
        meters = Meter.search(domain)
        if not meters:
            return 0
        self.env.flush_all()
        self.env.cr.execute(
            """SELECT meter_id, COALESCE(SUM(-amount), 0) FROM prepaid_ledger_line
                WHERE meter_id = ANY(%s) AND line_type = 'consumption'
                  AND date >= %s AND date < %s
                GROUP BY meter_id""",
            [meters.ids, month_start, month_end],
        )
        used = dict(self.env.cr.fetchall())
        label = month_start.strftime("%Y-%m")
        lines = []
        for meter in meters:
            account = meter.billing_account_id
            tariff = account._tariff_for(meter)
            valid = tariff.version_ids.filtered(lambda v: v.date_from < month_end)
            version = valid.sorted("date_from")[-1:]
            if not version or not version.minimum_monthly:
                continue
            due = core.minimum_charge_due(
                version._core(), money.to_decimal(float(used.get(meter.id, 0.0)))
            )
            if not due:
                continue
            lines.append(
                {
                    "account_id": account.id,
                    "line_type": "charge",
                    "amount": -float(due),
                    "date": month_end - relativedelta(seconds=1),
                    "name": self.env._("Minimum monthly charge %s", label),
                    "meter_id": meter.id,
                    "tariff_version_id": version.id,
                    "idempotency_key": f"minimum:{meter.id}:{label}",
                }
            )
        posted = self.env["prepaid.ledger.line"]._post(lines)
        self._after_balance_change(posted.account_id)
        return len(posted)

    # ------------------------------------------------------------------
    # Revenue recognition and reconciliation
    # ------------------------------------------------------------------
    @api.model
    def _cron_recognize(self):
        """Daily: recognise the consumption billed before today as revenue."""
        companies = self.env["res.company"].search(
            [
                ("prepaid_liability_account_id", "!=", False),
                ("prepaid_journal_id", "!=", False),
            ]
        )
        for company in companies:
            self._recognize(company)

    @api.model
    def _recognize(self, company, up_to=None):
        """One journal entry for ``company``: Dr prepayment liability, Cr
        revenue (and taxes, price included) for the consumption and charges
        not yet recognised. Returns the move (or an empty recordset)."""
        up_to = up_to or fields.Datetime.now()
        self.env.flush_all()
        cr = self.env.cr
        cr.execute(
            """
            SELECT l.id, -l.amount, l.account_id, COALESCE(l.product_id, t.product_id)
              FROM prepaid_ledger_line l
              LEFT JOIN prepaid_tariff_version v ON v.id = l.tariff_version_id
              LEFT JOIN prepaid_tariff t ON t.id = v.tariff_id
             WHERE l.company_id = %s AND l.line_type IN ('consumption', 'charge')
               AND l.recognition_move_id IS NULL AND l.date <= %s
               FOR NO KEY UPDATE OF l SKIP LOCKED
            """,
            [company.id, up_to],
        )
        rows = cr.fetchall()
        if not rows:
            return self.env["account.move"]
        line_ids, amounts, account_ids, product_ids = zip(*rows, strict=True)
        accounts = self.env["prepaid.account"].browse(set(account_ids))
        partner_of = {a.id: a.partner_id for a in accounts}
        FiscalPosition = self.env["account.fiscal.position"].with_company(company)
        positions = {}
        groups = {}
        for amount, account_id, product_id in zip(
            amounts, account_ids, product_ids, strict=True
        ):
            partner = partner_of[account_id]
            if partner not in positions:
                positions[partner] = FiscalPosition._get_fiscal_position(partner)
            key = (product_id, positions[partner])
            groups[key] = groups.get(key, 0.0) + float(amount)
        currency = company.currency_id
        liability = company._prepaid_liability_account()
        move_lines, total = [], 0.0
        for (product_id, position), amount in groups.items():
            amount = currency.round(amount)
            if currency.is_zero(amount):
                continue
            total += amount
            move_lines.extend(
                self._revenue_lines(company, product_id, position, amount)
            )
        move_lines.insert(
            0,
            fields.Command.create(
                {
                    "account_id": liability.id,
                    "debit": currency.round(total) if total > 0 else 0.0,
                    "credit": -currency.round(total) if total < 0 else 0.0,
                    "name": self.env._("Prepaid consumption recognised"),
                }
            ),
        )
        move = (
            self.env["account.move"]
            .sudo()
            .create(
                {
                    "move_type": "entry",
                    "journal_id": company.prepaid_journal_id.id,
                    "company_id": company.id,
                    "date": fields.Date.context_today(self, up_to),
                    "ref": self.env._("Prepaid consumption up to %s", up_to),
                    "line_ids": move_lines,
                }
            )
        )
        move.action_post()
        cr.execute(
            "UPDATE prepaid_ledger_line SET recognition_move_id = %s "
            "WHERE id = ANY(%s)",
            [move.id, list(line_ids)],
        )
        self.env["prepaid.ledger.line"].invalidate_model(["recognition_move_id"])
        self.env["prepaid.account"].invalidate_model(["ledger_line_ids"])
        return move

    def _revenue_lines(self, company, product_id, position, amount):
        product = self.env["product.product"].browse(product_id).with_company(company)
        income = (
            product and product._get_product_accounts()["income"]
        ) or company.prepaid_revenue_account_id
        if not income:
            raise UserError(
                self.env._(
                    "Set a utility revenue account in Settings or an income account "
                    "on the tariff's product."
                )
            )
        if position:
            income = position.map_account(income)
        taxes = product.taxes_id.filtered(lambda t: t.company_id == company)
        if position:
            taxes = position.map_tax(taxes)
        currency = company.currency_id
        label = product.display_name if product else self.env._("Utility revenue")
        if not taxes:
            return [
                fields.Command.create(
                    {
                        "account_id": income.id,
                        "credit": amount if amount > 0 else 0.0,
                        "debit": -amount if amount < 0 else 0.0,
                        "name": label,
                    }
                )
            ]
        result = taxes.with_context(force_price_include=True).compute_all(
            amount, currency=currency, product=product
        )
        base = result["total_excluded"]
        lines = [
            fields.Command.create(
                {
                    "account_id": income.id,
                    "credit": base,
                    "debit": 0.0,
                    "name": label,
                    "tax_ids": [fields.Command.set(taxes.ids)],
                }
            )
        ]
        for tax in result["taxes"]:
            lines.append(
                fields.Command.create(
                    {
                        "account_id": tax["account_id"] or income.id,
                        "credit": tax["amount"],
                        "debit": 0.0,
                        "name": tax["name"],
                        "tax_repartition_line_id": tax["tax_repartition_line_id"],
                        "tax_base_amount": base,
                    }
                )
            )
        return lines

    @api.model
    def _reconciliation(self, company):
        """Wallets against the liability account, to the cent.

        The liability holds what tenants paid in minus refunds and minus the
        consumption already recognised; the wallets hold the same minus all
        consumption. So: liability == wallets + consumption not yet
        recognised.
        """
        self.env.flush_all()
        cr = self.env.cr
        cr.execute(
            "SELECT COALESCE(SUM(balance), 0) FROM prepaid_account "
            "WHERE company_id = %s AND state != 'draft'",
            [company.id],
        )
        wallets = float(cr.fetchone()[0])
        cr.execute(
            """SELECT COALESCE(SUM(-amount), 0) FROM prepaid_ledger_line
                WHERE company_id = %s AND line_type IN ('consumption', 'charge')
                  AND recognition_move_id IS NULL""",
            [company.id],
        )
        unrecognised = float(cr.fetchone()[0])
        liability = 0.0
        if company.prepaid_liability_account_id:
            cr.execute(
                """SELECT COALESCE(SUM(credit - debit), 0) FROM account_move_line
                    WHERE company_id = %s AND account_id = %s
                      AND parent_state = 'posted'""",
                [company.id, company.prepaid_liability_account_id.id],
            )
            liability = float(cr.fetchone()[0])
        currency = company.currency_id
        difference = currency.round(liability - wallets - unrecognised)
        return {
            "wallets": currency.round(wallets),
            "unrecognised": currency.round(unrecognised),
            "liability": currency.round(liability),
            "difference": difference,
            "balanced": currency.is_zero(difference),
        }
