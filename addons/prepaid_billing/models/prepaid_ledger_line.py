from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL, float_round

from ..tools.sql_arrays import column_literal, insert_columns
from .unchecked_fields import UncheckedMany2one

LINE_TYPES = [
    ("opening", "Opening Balance"),
    ("recharge", "Recharge"),
    ("refund", "Refund"),
    ("consumption", "Consumption"),
    ("charge", "Charge"),
    ("adjustment", "Adjustment"),
    ("reversal", "Reversal"),
    ("debt_recovery", "Debt Recovery"),
]
# Columns written by _post (one INSERT for a whole batch).
POST_COLUMNS = {
    "id": "int4",
    "account_id": "int4",
    "partner_id": "int4",
    "company_id": "int4",
    "currency_id": "int4",
    "date": "timestamp",
    "line_type": "varchar",
    "name": "varchar",
    "amount": "numeric",
    "balance_after": "numeric",
    "meter_id": "int4",
    "reading_id": "int4",
    "reading_count": "int4",
    "quantity": "float8",
    "unit": "varchar",
    "tariff_version_id": "int4",
    "product_id": "int4",
    "pricing_detail": "jsonb",
    "idempotency_key": "varchar",
    "move_id": "int4",
    "reversed_line_id": "int4",
    "payment_method": "varchar",
    "user_id": "int4",
}
# Written after posting by the accounting side; nothing else ever changes.
MUTABLE_FIELDS = {"recognition_move_id"}
#: References without a foreign-key constraint (UncheckedMany2one): each
#: would cost a trigger per line of every billing batch. What keeps them:
#: the partner, company and currency are those of the line's account, whose
#: own (checked) keys forbid deleting them; a meter with wallet lines, a
#: tariff version that priced some and a charged reading cannot be deleted
#: (prepaid.meter, prepaid.tariff.version, prepaid.reading), and the reading
#: removed after the retention period empties the reference first
#: (prepaid.reading._retention_before_delete). Dropped from existing
#: databases by init().
UNCHECKED_REFERENCES = (
    "partner_id",
    "company_id",
    "currency_id",
    "meter_id",
    "reading_id",
    "tariff_version_id",
)


class PrepaidLedgerLine(models.Model):
    """One movement of a prepaid wallet. Posted lines never change: a mistake
    is corrected by a reversal line."""

    _name = "prepaid.ledger.line"
    _description = "Wallet Ledger Line"
    _order = "date desc, id desc"

    account_id = fields.Many2one(
        "prepaid.account",
        required=True,
        ondelete="restrict",
        index=True,
        readonly=True,
    )
    partner_id = UncheckedMany2one(related="account_id.partner_id", store=True)
    company_id = UncheckedMany2one("res.company", required=True, readonly=True)
    currency_id = UncheckedMany2one("res.currency", required=True, readonly=True)
    date = fields.Datetime(required=True, readonly=True, index=True)
    line_type = fields.Selection(LINE_TYPES, required=True, readonly=True)
    name = fields.Char(string="Description", readonly=True)
    amount = fields.Monetary(
        readonly=True, help="Positive adds money to the wallet, negative takes it."
    )
    balance_after = fields.Monetary(readonly=True)
    meter_id = UncheckedMany2one("prepaid.meter", readonly=True, index=True)
    # Consumption: the last reading of the charges the line sums (unique: the
    # partial index of init()). When the raw reading is removed after the
    # retention period the reference empties; the line's charges keep the
    # reading's id, time and registers (prepaid.reading._retention_before_delete).
    # Only consumption lines name a reading: the unique index of init() is
    # the index of the column.
    reading_id = UncheckedMany2one(
        "prepaid.reading", string="Last Reading", readonly=True
    )
    reading_count = fields.Integer(
        string="Readings", readonly=True, help="Readings charged by this line."
    )
    charge_ids = fields.One2many(
        "prepaid.reading.charge",
        "ledger_line_id",
        string="Reading Charges",
        readonly=True,
    )
    quantity = fields.Float(readonly=True, digits=(16, 4))
    unit = fields.Char(readonly=True)
    tariff_version_id = UncheckedMany2one(
        "prepaid.tariff.version", readonly=True, index=True
    )
    product_id = fields.Many2one(
        "product.product",
        readonly=True,
        help="Charges: the service whose income account and taxes recognise it.",
    )
    pricing_detail = fields.Json(readonly=True)
    pricing_text = fields.Text(
        string="Pricing",
        compute="_compute_pricing_text",
        help="How the amount was computed: quantity x unit price per band or tier.",
    )
    # Indexed by its unique constraint.
    idempotency_key = fields.Char(readonly=True, copy=False)
    move_id = fields.Many2one("account.move", string="Journal Entry", readonly=True)
    recognition_move_id = fields.Many2one(
        "account.move", string="Revenue Entry", readonly=True
    )
    reversed_line_id = fields.Many2one(
        "prepaid.ledger.line", string="Reverses", readonly=True
    )
    payment_method = fields.Selection(
        [
            ("cash", "Cash"),
            ("bank", "Bank"),
            ("wechat", "WeChat Pay"),
            ("meter", "On the meter"),
            ("opening", "Opening"),
        ],
        readonly=True,
    )
    user_id = fields.Many2one("res.users", readonly=True)

    _sql_constraints = [
        (
            "idempotency_key_uniq",
            "unique(idempotency_key)",
            "This operation was already posted.",
        )
    ]

    def init(self):
        # The foreign keys of the references kept by the code (see
        # UNCHECKED_REFERENCES), as an earlier version made them.
        names = [f"{self._table}_{column}_fkey" for column in UNCHECKED_REFERENCES]
        self.env.cr.execute(
            SQL(
                "ALTER TABLE %s %s",
                SQL.identifier(self._table),
                SQL(", ").join(
                    SQL("DROP CONSTRAINT IF EXISTS %s", SQL.identifier(name))
                    for name in names
                ),
            )
        )
        self.env.cr.execute(
            "DELETE FROM ir_model_constraint WHERE type = 'f' AND name = ANY(%s)",
            [names],
        )
        # and the index of reading_id that its foreign key needed (Odoo
        # keeps an index a field no longer asks for)
        self.env.cr.execute(
            "DROP INDEX IF EXISTS prepaid_ledger_line__reading_id_index"
        )
        # A reading is billed exactly once, whatever worker gets there first.
        self.env.cr.execute(
            """
            CREATE UNIQUE INDEX IF NOT EXISTS prepaid_ledger_line_reading_uniq
                ON prepaid_ledger_line (reading_id)
             WHERE line_type = 'consumption' AND reading_id IS NOT NULL
            """
        )
        # Only the lines still to recognise are looked up; keep that index
        # small instead of indexing every line's revenue entry.
        self.env.cr.execute(
            """
            CREATE INDEX IF NOT EXISTS prepaid_ledger_line_unrecognised_idx
                ON prepaid_ledger_line (company_id, date)
             WHERE recognition_move_id IS NULL
               AND line_type IN ('consumption', 'charge')
            """
        )

    @api.depends("pricing_detail")
    def _compute_pricing_text(self):
        for line in self:
            rows = (line.pricing_detail or {}).get("lines", [])
            line.pricing_text = "\n".join(
                f"{label}: {qty} x {price} = {amount}"
                for label, qty, price, amount in rows
            )

    # Wallet lines are inserted only by _post (SQL, one INSERT per batch, under
    # the account locks): the ORM create is refused on purpose and never calls
    # super().
    @api.model_create_multi
    def create(self, vals_list):  # pylint: disable=method-required-super
        raise UserError(
            self.env._(
                "Wallet lines are posted by recharges, refunds, billing and "
                "adjustments; they cannot be created by hand."
            )
        )

    def write(self, vals):
        if set(vals) - MUTABLE_FIELDS:
            raise UserError(
                self.env._(
                    "Posted wallet lines cannot be changed; post a reversal instead."
                )
            )
        return super().write(vals)

    @api.ondelete(at_uninstall=False)
    def _unlink_except_posted(self):
        # Posted lines are the audit trail of the wallet: corrected by a
        # reversal line, never deleted.
        raise UserError(
            self.env._("Posted wallet lines cannot be deleted; post a reversal.")
        )

    # ------------------------------------------------------------------
    # Posting
    # ------------------------------------------------------------------
    @api.model
    def _post(self, vals_list):
        """Post wallet lines and move the balances, as one batch.

        Each vals dict needs ``account_id``, ``line_type`` and ``amount``;
        ``id`` may be one reserved by ``_reserve_ids``. The
        accounts are locked (``FOR NO KEY UPDATE``, so that a transaction
        holding a row that points at one, such as a wizard, does not block it;
        in id order so two workers cannot deadlock); lines whose
        ``idempotency_key`` (or consumption reading) is already posted are
        skipped, so posting the same thing twice is harmless. Returns the new lines.
        """
        if not vals_list:
            return self.browse()
        self.env.flush_all()
        cr = self.env.cr
        account_ids = sorted({vals["account_id"] for vals in vals_list})
        cr.execute(
            """SELECT a.id, a.balance::float8, a.company_id, c.currency_id, a.partner_id
                 FROM prepaid_account a JOIN res_company c ON c.id = a.company_id
                WHERE a.id = ANY(%s) ORDER BY a.id FOR NO KEY UPDATE OF a""",
            [account_ids],
        )
        accounts = {row[0]: list(row[1:]) for row in cr.fetchall()}
        keys = [v["idempotency_key"] for v in vals_list if v.get("idempotency_key")]
        readings = [
            v["reading_id"]
            for v in vals_list
            if v["line_type"] == "consumption" and v.get("reading_id")
        ]
        # Two index lookups: the unique keys and the partial unique reading index.
        done_keys, done_readings = set(), set()
        if keys:
            cr.execute(
                "SELECT idempotency_key FROM prepaid_ledger_line "
                "WHERE idempotency_key = ANY(%s)",
                [keys],
            )
            done_keys = {row[0] for row in cr.fetchall()}
        if readings:
            cr.execute(
                "SELECT reading_id FROM prepaid_ledger_line "
                "WHERE line_type = 'consumption' AND reading_id = ANY(%s)",
                [readings],
            )
            done_readings = {row[0] for row in cr.fetchall()}
        roundings = {
            currency.id: currency.rounding
            for currency in self.env["res.currency"].browse(
                {account[2] for account in accounts.values()}
            )
        }
        # what each line is posted with (its vals, its account's row, the
        # rounded amount and balance after), in order
        kept = []
        for vals in vals_list:
            if vals.get("idempotency_key") in done_keys or (
                vals["line_type"] == "consumption"
                and vals.get("reading_id") in done_readings
            ):
                continue
            account = accounts[vals["account_id"]]
            rounding = roundings[account[2]]
            amount = float_round(vals["amount"], precision_rounding=rounding)
            account[0] = float_round(
                float(account[0] or 0.0) + amount, precision_rounding=rounding
            )
            kept.append((vals, account, amount, account[0]))
            if vals.get("idempotency_key"):
                done_keys.add(vals["idempotency_key"])
            if vals["line_type"] == "consumption" and vals.get("reading_id"):
                done_readings.add(vals["reading_id"])
        if not kept:
            return self.browse()
        # Column by column (a billing batch posts thousands of lines): a
        # value of the vals, else the account's company, currency and tenant,
        # now, the current user, or nothing.
        defaults = {"date": fields.Datetime.now(), "user_id": self.env.uid}
        from_account = {"company_id": 1, "currency_id": 2, "partner_id": 3}
        data = {
            "amount": [amount for _vals, _account, amount, _balance in kept],
            "balance_after": [balance for *_rest, balance in kept],
        }
        for name in POST_COLUMNS:
            if name in data:
                continue
            if name in from_account:
                index = from_account[name]
                data[name] = [
                    vals[name] if name in vals else account[index]
                    for vals, account, _amount, _balance in kept
                ]
            else:
                default = defaults.get(name)
                data[name] = [vals.get(name, default) for vals, *_rest in kept]
        insert_columns(
            cr,
            "prepaid_ledger_line",
            POST_COLUMNS,
            data,
            self.env.uid,
            id_sequence="prepaid_ledger_line_id_seq",
            suffix="RETURNING id",
        )
        line_ids = [row[0] for row in cr.fetchall()]
        cr.execute(
            """UPDATE prepaid_account a SET balance = u.balance,
                      write_date = now() at time zone 'UTC'
                 FROM unnest(%s::int4[], %s::numeric[]) AS u(id, balance)
                WHERE a.id = u.id""",
            [
                column_literal(list(accounts)),
                column_literal([account[0] for account in accounts.values()]),
            ],
        )
        self.env["prepaid.account"].invalidate_model(["balance", "ledger_line_ids"])
        return self.browse(line_ids)

    @api.model
    def _reserve_ids(self, count):
        """``count`` ids for lines to post later with ``_post`` (vals ``id``),
        so that rows referring to them can be written first."""
        if count <= 0:
            return []
        self.env.cr.execute(
            "SELECT nextval('prepaid_ledger_line_id_seq') FROM generate_series(1, %s)",
            [count],
        )
        return [row[0] for row in self.env.cr.fetchall()]

    def _prepare_reversal(self, reason):
        """Vals of the line that cancels this one."""
        self.ensure_one()
        return {
            "account_id": self.account_id.id,
            "line_type": "reversal",
            "amount": -self.amount,
            "name": self.env._(
                "Reversal of %(line)s: %(reason)s",
                line=self.name or self.id,
                reason=reason,
            ),
            "meter_id": self.meter_id.id or None,
            "reversed_line_id": self.id,
            "idempotency_key": f"reversal:{self.id}",
        }
