import logging

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.modules import module as odoo_module

from ..tools import money, proration
from ..tools.sql_arrays import insert_rows
from .prepaid_charge_item import local_day_sql

_logger = logging.getLogger(__name__)

# Columns written by _generate (one INSERT per item, whatever its targets).
INSERT_COLUMNS = {
    "item_id": "int4",
    "account_id": "int4",
    "room_id": "int4",
    "company_id": "int4",
    "currency_id": "int4",
    "product_id": "int4",
    "collection": "varchar",
    "name": "varchar",
    "period_start": "date",
    "period_end": "date",
    "date_due": "date",
    "quantity": "float8",
    "days": "int4",
    "period_days": "int4",
    "amount": "numeric",
}
# Set after the insert by the wallet posting, the bill run and the credit of a
# vacated room; nothing else ever changes.
MUTABLE_FIELDS = {"ledger_line_id", "bill_id", "credit_ledger_line_id", "credit_amount"}


class PrepaidChargeLine(models.Model):
    """One occurrence of a charge item for one account (and room) and period.

    Unique per item, account, room and period start: the generation cron can
    run any number of times and charges each period once.
    """

    _name = "prepaid.charge.line"
    _description = "Charge"
    _order = "period_start desc, id desc"

    item_id = fields.Many2one(
        "prepaid.charge.item", required=True, ondelete="restrict", readonly=True
    )
    account_id = fields.Many2one(
        "prepaid.account", required=True, ondelete="restrict", index=True, readonly=True
    )
    partner_id = fields.Many2one(related="account_id.partner_id")
    room_id = fields.Many2one("prepaid.room", readonly=True, ondelete="restrict")
    company_id = fields.Many2one("res.company", required=True, readonly=True)
    currency_id = fields.Many2one("res.currency", required=True, readonly=True)
    product_id = fields.Many2one("product.product", required=True, readonly=True)
    collection = fields.Selection(
        [("wallet", "Wallet"), ("invoice", "Invoice")], required=True, readonly=True
    )
    name = fields.Char(string="Description", readonly=True)
    period_start = fields.Date(required=True, readonly=True)
    period_end = fields.Date(required=True, readonly=True)
    date_due = fields.Date(string="Due", readonly=True)
    quantity = fields.Float(
        readonly=True, digits=(16, 2), help="1, or the room area (m²)."
    )
    days = fields.Integer(string="Days Charged", readonly=True)
    period_days = fields.Integer(readonly=True)
    amount = fields.Monetary(readonly=True)
    ledger_line_id = fields.Many2one(
        "prepaid.ledger.line", string="Wallet Line", readonly=True
    )
    bill_id = fields.Many2one(
        "prepaid.bill", readonly=True, index=True, ondelete="set null"
    )
    credit_ledger_line_id = fields.Many2one(
        "prepaid.ledger.line",
        string="Credit for Days Not Used",
        readonly=True,
        help="The room was vacated inside the period: the days after it were "
        "credited back.",
    )
    credit_amount = fields.Monetary(readonly=True)
    state = fields.Selection(
        [
            ("posted", "Deducted from Wallet"),
            ("to_invoice", "To Invoice"),
            ("invoiced", "On a Bill"),
        ],
        compute="_compute_state",
    )

    def init(self):
        self.env.cr.execute(
            """
            CREATE UNIQUE INDEX IF NOT EXISTS prepaid_charge_line_period_uniq
                ON prepaid_charge_line (item_id, account_id, COALESCE(room_id, 0),
                                        period_start)
            """
        )
        # The bill run looks up the invoice charges still to bill.
        self.env.cr.execute(
            """
            CREATE INDEX IF NOT EXISTS prepaid_charge_line_to_bill_idx
                ON prepaid_charge_line (account_id, period_start)
             WHERE collection = 'invoice' AND bill_id IS NULL
            """
        )

    @api.depends("collection", "bill_id")
    def _compute_state(self):
        for line in self:
            if line.collection == "wallet":
                line.state = "posted"
            else:
                line.state = "invoiced" if line.bill_id else "to_invoice"

    # Lines are inserted by _generate only (SQL, one INSERT per item).
    @api.model_create_multi
    def create(self, vals_list):  # pylint: disable=method-required-super
        raise UserError(
            self.env._(
                "Charges are generated from charge items; they cannot be created "
                "by hand."
            )
        )

    def write(self, vals):
        if set(vals) - MUTABLE_FIELDS:
            raise UserError(self.env._("Generated charges cannot be changed."))
        return super().write(vals)

    @api.ondelete(at_uninstall=False)
    def _unlink_except_generated(self):
        raise UserError(self.env._("Generated charges cannot be deleted."))

    # ------------------------------------------------------------------
    # Generation
    # ------------------------------------------------------------------
    @api.model
    def _cron_generate(self, commit=None):
        """Charge every active item's due periods (catching up missed ones),
        one item per transaction, then credit vacated rooms."""
        if commit is None:
            commit = not odoo_module.current_test
        items = self.env["prepaid.charge.item"].search([])
        for item in items:
            self._generate(item)
            if commit:
                self.env.cr.commit()  # pylint: disable=invalid-commit
        self._credit_vacated()
        return True

    @api.model
    def _generate(self, items, today=None):
        """Insert the missing charges of ``items`` due on or before ``today``
        and deduct the wallet ones. Constant SQL statements per item, whatever
        the number of targets and periods. Returns the new charges.
        ``today`` defaults to the local day of each item's company sites
        (see ``prepaid.charge.item._local_today``)."""
        created = self.browse()
        for item in items.filtered("active"):
            created |= self._generate_item(item, today or item._local_today())
        return created

    def _generate_item(self, item, today):
        periods = item._periods(today)
        if not periods:
            return self.browse()
        targets = item._targets()
        company = item.company_id
        terms = item._charge_terms()
        constants = {
            "item_id": item.id,
            "company_id": company.id,
            "currency_id": company.currency_id.id,
            "product_id": item.product_id.id,
        }
        wallet_item = item.collection == "wallet"
        rows = []
        for period in periods:
            label = self._period_label(item, period)
            for target in targets:
                if target.opened and period.end < target.opened:
                    continue
                quantity, days, amount = item._charge_amount(period, target, terms)
                if days <= 0 or not amount:
                    continue
                rows.append(
                    {
                        **constants,
                        "account_id": target.account_id,
                        "room_id": target.room_id,
                        "collection": "wallet"
                        if wallet_item and target.mode == "prepaid"
                        else "invoice",
                        "name": label,
                        "period_start": period.start,
                        "period_end": period.end,
                        "date_due": period.due,
                        "quantity": quantity,
                        "days": days,
                        "period_days": period.days,
                        "amount": float(amount),
                    }
                )
        inserted = self._insert(rows)
        self._post_wallet(
            [row for row in inserted if row[1] == "wallet"],
            "m²" if item.amount_type == "per_m2" else None,
        )
        return self.browse([row[0] for row in inserted])

    def _period_label(self, item, period):
        if item.recurrence == "once":
            return item.name
        if item.recurrence == "monthly":
            when = period.start.strftime("%Y-%m")
        else:
            when = f"{period.start:%Y-%m-%d} - {period.end:%Y-%m-%d}"
        return f"{item.name} {when}"

    @api.model
    def _insert(self, rows):
        """Insert ``rows`` (one statement); the rows already there are skipped
        by the unique index. Returns ``(id, collection, account_id, amount,
        name, product_id, quantity)`` of the lines inserted, by id."""
        if not rows:
            return []
        self.env.flush_all()
        insert_rows(
            self.env.cr,
            "prepaid_charge_line",
            INSERT_COLUMNS,
            rows,
            self.env.uid,
            suffix="""ON CONFLICT DO NOTHING
            RETURNING id, collection, account_id, amount::float8, name, product_id,
                      quantity""",
        )
        return sorted(self.env.cr.fetchall())

    @api.model
    def _post_wallet(self, rows, unit):
        """Deduct the wallet charges ``rows`` (from ``_insert``) in one ledger
        batch, then alarms and cut-off like consumption."""
        if not rows:
            return
        Line = self.env["prepaid.ledger.line"]
        ids = Line._reserve_ids(len(rows))
        vals_list = [
            {
                "id": line_id,
                "account_id": account_id,
                "line_type": "charge",
                "amount": -amount,
                "name": name,
                "product_id": product_id,
                "quantity": quantity,
                "unit": unit,
                "idempotency_key": f"charge:{charge_id}",
            }
            for line_id, (
                charge_id,
                _collection,
                account_id,
                amount,
                name,
                product_id,
                quantity,
            ) in zip(ids, rows, strict=True)
        ]
        posted = Line._post(vals_list)
        self.env.cr.execute(
            """UPDATE prepaid_charge_line c SET ledger_line_id = u.line_id
                 FROM unnest(%s::int4[], %s::int4[]) AS u(id, line_id)
                WHERE c.id = u.id AND u.line_id = ANY(%s)""",
            [[row[0] for row in rows], ids, posted.ids],
        )
        self.invalidate_model(["ledger_line_id"])
        self.env["prepaid.billing.engine"]._after_balance_change(posted.account_id)

    @api.model
    def _credit_vacated(self, accounts=None):
        """Credit back the days after a room was vacated (account closed inside
        a prorated charge's period; the day of closing, in the site's time
        zone, was used and is paid): wallet charges get a positive charge
        line, invoice charges not billed yet are credited on the bill.
        ``accounts``: only theirs (the closing of an account), else all."""
        self.env.flush_all()
        closed_day = local_day_sql("a.closed_at", "a.id", "c.room_id")
        self.env.cr.execute(
            f"""
            SELECT c.id, {closed_day}, a.closed_at FROM prepaid_charge_line c
              JOIN prepaid_account a ON a.id = c.account_id
              JOIN prepaid_charge_item i ON i.id = c.item_id
             WHERE a.state = 'closed' AND i.prorate AND i.recurrence != 'once'
               AND c.credit_amount IS NULL
               AND {closed_day} < c.period_end
               AND (c.collection = 'wallet' OR c.bill_id IS NULL)
               AND (%(ids)s::int4[] IS NULL OR a.id = ANY(%(ids)s::int4[]))
             ORDER BY c.id
            """,  # noqa: S608 - constant SQL of this module
            {"ids": accounts.ids if accounts is not None else None},
        )
        rows = self.env.cr.fetchall()
        closed_on = {row[0]: row[1] for row in rows}
        # A closing that was cancelled (the tenancy's move-out) reverses its
        # credits: the next closing credits again under a key of its own.
        closed_at = {row[0]: row[2] for row in rows}
        lines = self.browse(list(closed_on))
        vals_list, credits = [], {}
        for line in lines:
            period = proration.Period(line.period_start, line.period_end, line.date_due)
            closed = closed_on[line.id]
            unused = min((period.end - closed).days, line.days)
            full = line.item_id._unit_amount() * money.to_decimal(line.quantity)
            rounding = money.to_decimal(line.currency_id.rounding)
            credit = min(
                proration.prorate(full, period, unused, rounding),
                money.to_decimal(line.amount),
            )
            credits[line] = float(credit)
            if line.collection == "wallet" and credit > 0:
                vals_list.append(
                    {
                        "account_id": line.account_id.id,
                        "line_type": "charge",
                        "amount": float(credit),
                        "name": self.env._(
                            "%(charge)s: %(days)s days not used",
                            charge=line.name,
                            days=unused,
                        ),
                        "product_id": line.product_id.id,
                        "reversed_line_id": line.ledger_line_id.id or None,
                        "idempotency_key": f"charge_credit:{line.id}:"
                        f"{closed_at[line.id]:%Y%m%d%H%M%S}",
                    }
                )
        posted = self.env["prepaid.ledger.line"]._post(vals_list)
        by_line = {p.idempotency_key.split(":")[1]: p for p in posted}
        for line, credit in credits.items():
            line.write(
                {
                    "credit_amount": credit,
                    "credit_ledger_line_id": by_line.get(str(line.id)),
                }
            )
        return lines
