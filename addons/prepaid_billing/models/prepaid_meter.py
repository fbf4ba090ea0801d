import json

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL

from odoo.addons.prepaid_metering.tools.tables import set_fillfactor

BANDS = ("sharp", "peak", "flat", "valley")

#: The billing state of each meter (its own narrow table: every billing batch
#: rewrites it, see ``PrepaidMeter.init``), column and PostgreSQL type.
BILLING_TABLE = "prepaid_meter_billing"
BILLING_COLUMNS = {
    "billed_reading_id": "int4",
    "bill_band_kwh": "jsonb",
    "bill_period_start": "date",
    "bill_period_qty": "numeric",
    "bill_carry": "numeric",
    "meter_balance_mirror": "numeric",
}


def billed_watermark_sql(meter_id):
    """SQL of the billing watermark of the meter whose id is the SQL
    ``meter_id`` (NULL when billing never reached it)."""
    return SQL(
        "(SELECT mb.billed_reading_id FROM prepaid_meter_billing mb"
        " WHERE mb.meter_id = %s)",
        meter_id,
    )


class PrepaidMeter(models.Model):
    _inherit = "prepaid.meter"

    billing_account_id = fields.Many2one(
        "prepaid.account",
        string="Prepaid Account",
        index=True,
        tracking=True,
        check_company=True,
        copy=False,
    )
    tenant_id = fields.Many2one(related="billing_account_id.partner_id")
    tariff_id = fields.Many2one(
        "prepaid.tariff",
        tracking=True,
        check_company=True,
        help="Overrides the account's tariff for this meter.",
    )
    billing_mode = fields.Selection(
        [
            ("server", "Server-side (deduct from readings)"),
            ("meter", "Meter-side (the meter keeps the balance)"),
        ],
        default="server",
        required=True,
        tracking=True,
    )
    # Billing state (the watermark and what pricing carries from one reading
    # to the next): kept in the narrow table prepaid_meter_billing, which
    # each billing batch rewrites, not on the wide meter row (see init).
    billed_reading_id = fields.Many2one(
        "prepaid.reading",
        compute="_compute_billing_state",
        inverse="_inverse_billed_reading_id",
        readonly=True,
        help="Last reading priced; later readings are still to bill.",
    )
    daily_reading_id = fields.Many2one(
        "prepaid.reading",
        readonly=True,
        copy=False,
        index="btree_not_null",  # removing old readings checks the reference
        help="Meters billing does not deduct (postpaid, no account): the last "
        "reading added to the daily use.",
    )
    bill_band_kwh = fields.Json(
        compute="_compute_billing_state",
        inverse="_inverse_bill_band_kwh",
        readonly=True,
        help="Time-of-use registers at the last billed reading.",
    )
    bill_period_start = fields.Date(
        compute="_compute_billing_state",
        inverse="_inverse_bill_period_start",
        readonly=True,
    )
    bill_period_qty = fields.Float(
        string="Period Consumption",
        compute="_compute_billing_state",
        inverse="_inverse_bill_period_qty",
        readonly=True,
        digits=(16, 3),
        help="Consumption billed since the start of the tier period.",
    )
    bill_carry = fields.Float(
        compute="_compute_billing_state",
        inverse="_inverse_bill_carry",
        readonly=True,
        digits=(16, 6),
        help="Sub-cent remainder carried to the next reading.",
    )
    meter_balance_mirror = fields.Float(
        compute="_compute_billing_state",
        inverse="_inverse_meter_balance_mirror",
        readonly=True,
        digits=(16, 2),
        help="Meter-side mode: the meter's balance at the last billed reading.",
    )
    balance = fields.Monetary(related="billing_account_id.balance")
    currency_id = fields.Many2one(related="billing_account_id.currency_id")
    balance_state = fields.Selection(related="billing_account_id.balance_state")

    def init(self):
        """The billing state lives in ``prepaid_meter_billing`` (meter_id,
        then the columns of ``BILLING_COLUMNS``): a billing batch rewrites
        it for each meter it bills. On the wide meter row with its dozen
        indexes (the watermark among them, for its foreign key), each such
        update wrote a new entry in every index; on this narrow row, with no
        index but the key and room left on its page, the update is HOT.

        The watermark is a plain integer, not a foreign key: readings up to
        it are never removed by the retention (it keeps the watermark and
        what follows), and a meter deleted takes its row with it.
        """
        result = super().init()
        cr = self.env.cr
        cr.execute("SELECT to_regclass(%s)", [BILLING_TABLE])
        if cr.fetchone()[0] is None:
            ident = SQL.identifier
            cr.execute(
                SQL(
                    """CREATE TABLE %s (
                        meter_id int4 PRIMARY KEY
                            REFERENCES prepaid_meter (id) ON DELETE CASCADE,
                        %s)""",
                    ident(BILLING_TABLE),
                    SQL(", ").join(
                        SQL("%s %s", ident(column), SQL(kind))
                        for column, kind in BILLING_COLUMNS.items()
                    ),
                )
            )
            # A database from before: the state moves off the meter rows.
            cr.execute(
                """SELECT count(*) FROM information_schema.columns
                    WHERE table_name = 'prepaid_meter'
                      AND column_name = ANY(%s)""",
                [list(BILLING_COLUMNS)],
            )
            if cr.fetchone()[0] == len(BILLING_COLUMNS):
                names = SQL(", ").join(ident(column) for column in BILLING_COLUMNS)
                cr.execute(
                    SQL(
                        """INSERT INTO %s (meter_id, %s)
                           SELECT id, %s FROM prepaid_meter
                            WHERE billed_reading_id IS NOT NULL
                               OR meter_balance_mirror IS NOT NULL
                               OR bill_band_kwh IS NOT NULL""",
                        ident(BILLING_TABLE),
                        names,
                        names,
                    )
                )
                cr.execute(
                    SQL(
                        "ALTER TABLE prepaid_meter %s",
                        SQL(", ").join(
                            SQL("DROP COLUMN %s", ident(column))
                            for column in BILLING_COLUMNS
                        ),
                    )
                )
        set_fillfactor(cr, BILLING_TABLE, 70)
        return result

    def _compute_billing_state(self):
        rows = {}
        ids = [meter_id for meter_id in self.ids if isinstance(meter_id, int)]
        if ids:
            self.env.cr.execute(
                f"""SELECT b.meter_id, r.id, b.bill_band_kwh, b.bill_period_start,
                           b.bill_period_qty::float8, b.bill_carry::float8,
                           b.meter_balance_mirror::float8
                      FROM {BILLING_TABLE} b
                      LEFT JOIN prepaid_reading r ON r.id = b.billed_reading_id
                     WHERE b.meter_id = ANY(%s)""",  # noqa: S608 - constant
                [ids],
            )
            rows = {row[0]: row[1:] for row in self.env.cr.fetchall()}
        Reading = self.env["prepaid.reading"]
        for meter in self:
            reading, bands, start, qty, carry, mirror = rows.get(
                meter.id, (None, None, None, None, None, None)
            )
            meter.billed_reading_id = Reading.browse(reading)
            meter.bill_band_kwh = bands
            meter.bill_period_start = start
            meter.bill_period_qty = qty or 0.0
            meter.bill_carry = carry or 0.0
            meter.meter_balance_mirror = mirror or 0.0

    def _write_billing_column(self, column, convert=None):
        """Store ``column`` of these meters' billing state (an upsert of the
        one column, under the meter row's lock as the billing batch has it)."""
        meters = self.filtered("id")
        if not meters:
            return
        ids = meters.ids
        self.env.cr.execute(
            "SELECT id FROM prepaid_meter WHERE id = ANY(%s) ORDER BY id "
            "FOR NO KEY UPDATE",
            [ids],
        )
        values = [meter[column] for meter in meters]
        if convert:
            values = [convert(value) for value in values]
        kind = BILLING_COLUMNS[column]
        self.env.cr.execute(
            f"""INSERT INTO {BILLING_TABLE} (meter_id, {column})
                SELECT * FROM unnest(%s::int4[], %s::{kind}[])
                ON CONFLICT (meter_id) DO UPDATE SET {column} = EXCLUDED.{column}
            """,  # noqa: S608 - column names and types are constants
            [ids, [None if value is False else value for value in values]],
        )

    def _inverse_billed_reading_id(self):
        self._write_billing_column("billed_reading_id", lambda r: r.id or None)

    def _inverse_bill_band_kwh(self):
        self._write_billing_column(
            "bill_band_kwh", lambda bands: json.dumps(bands) if bands else None
        )

    def _inverse_bill_period_start(self):
        self._write_billing_column("bill_period_start")

    def _inverse_bill_period_qty(self):
        self._write_billing_column("bill_period_qty")

    def _inverse_bill_carry(self):
        self._write_billing_column("bill_carry")

    def _inverse_meter_balance_mirror(self):
        self._write_billing_column("meter_balance_mirror")

    def write(self, vals):
        if "billing_account_id" in vals:
            for meter in self:
                if (
                    meter.billing_account_id
                    and meter.billing_account_id.state == "open"
                    and vals["billing_account_id"] != meter.billing_account_id.id
                ):
                    raise UserError(
                        self.env._(
                            "Meter %s belongs to an open account; close the account "
                            "to release it.",
                            meter.name,
                        )
                    )
        return super().write(vals)

    @api.ondelete(at_uninstall=False)
    def _unlink_except_billed(self):
        # Its wallet lines and reading charges name it (without a foreign
        # key: see prepaid.ledger.line's UNCHECKED_REFERENCES).
        if not self.ids:
            return
        self.env.flush_all()
        self.env.cr.execute(
            """SELECT EXISTS (SELECT 1 FROM prepaid_ledger_line
                               WHERE meter_id = ANY(%s))
                   OR EXISTS (SELECT 1 FROM prepaid_reading r
                                JOIN prepaid_reading_charge c ON c.id = r.id
                               WHERE r.meter_id = ANY(%s))""",
            [self.ids, self.ids],
        )
        if self.env.cr.fetchone()[0]:
            raise UserError(
                self.env._(
                    "A meter that was billed cannot be deleted: its wallet "
                    "lines are the tenant's statement. Archive it instead."
                )
            )

    def _reading_locked_until(self):
        """Readings up to the last billed one are settled: none may be added
        before it."""
        locked = super()._reading_locked_until()
        billed = self.sudo().billed_reading_id.read_at
        return max(locked, billed) if locked and billed else locked or billed

    @api.model
    def _claim_with_readings_after(self, domain, limit, watermarks, good_only=False):
        """Lock up to ``limit`` meters of ``domain``, in id order, that have
        a reading after their watermark (other workers skip locked meters:
        ``FOR NO KEY UPDATE SKIP LOCKED``); returns their ids.

        ``watermarks``: the meter fields holding reading ids (columns, or
        ``billed_reading_id`` in prepaid_meter_billing), the later of
        which is the watermark; ``good_only``: only readings that are money
        (``prepaid.reading._get_money_domain``) count.
        """
        self.env.flush_all()
        Meter = self.sudo().with_context(active_test=False)
        query = Meter._search(domain, order="id", limit=limit)
        table = query.table
        watermark = SQL(", ").join(
            SQL(
                "COALESCE(%s, 0)",
                billed_watermark_sql(SQL.identifier(table, "id"))
                if column == "billed_reading_id"
                else SQL.identifier(table, column),
            )
            for column in watermarks
        )
        good = (
            SQL("AND %s", self.env["prepaid.reading"]._money_sql("r"))
            if good_only
            else SQL()
        )
        # OFFSET 0 keeps the EXISTS a probe of the (meter_id, id) index per
        # meter, stopped at the first reading after the watermark: flattened
        # into a semi-join, PostgreSQL may merge the meters with every
        # reading of the table (all the history) to find none (the last
        # claim of a run, with nothing left to bill).
        query.add_where(
            SQL(
                """EXISTS (SELECT 1 FROM prepaid_reading r
                            WHERE r.meter_id = %s AND r.id > GREATEST(%s) %s
                           OFFSET 0)""",
                SQL.identifier(table, "id"),
                watermark,
                good,
            )
        )
        self.env.cr.execute(
            SQL(
                "%s FOR NO KEY UPDATE OF %s SKIP LOCKED",
                query.select(),
                SQL.identifier(table),
            )
        )
        return [meter_id for (meter_id,) in self.env.cr.fetchall()]

    @api.model
    def _get_billable_meter_domain(self):
        """Meters whose readings billing turns into money: the active meters
        of a billable account (``prepaid.account._get_billable_account_domain``)."""
        return [
            ("active", "=", True),
            (
                "billing_account_id",
                "any",
                self.env["prepaid.account"]._get_billable_account_domain(),
            ),
        ]

    def _start_billing(self):
        """Billing of these meters starts from their last good reading: the
        latest one neither pending review nor rejected. A suspect reading
        after it is billed, once, when it is accepted."""
        if not self:
            return
        Reading = self.env["prepaid.reading"].sudo()
        Reading.flush_model(["meter_id", "read_at", "review_state"])
        # the last good reading of every meter in one statement (the order
        # of the model: read_at desc, id desc)
        self.env.cr.execute(
            SQL(
                """SELECT DISTINCT ON (r.meter_id) r.meter_id, r.id
                     FROM prepaid_reading r
                    WHERE r.meter_id = ANY(%s) AND %s
                    ORDER BY r.meter_id, r.read_at DESC, r.id DESC""",
                self.ids,
                Reading._money_sql("r"),
            )
        )
        last_ids = dict(self.env.cr.fetchall())
        Reading.browse(list(last_ids.values())).fetch(
            ["values_json"] + [f"energy_{band}_kwh" for band in BANDS]
        )
        rows = []
        for meter in self:
            last = Reading.browse(last_ids.get(meter.id, []))
            balance = (last.values_json or {}).get("balance")
            if balance is None:
                balance = (meter.meter_values or {}).get("balance", 0.0)
            bands = (
                {band: last[f"energy_{band}_kwh"] for band in BANDS} if last else None
            )
            rows.append((meter.id, last.id or None, bands, None, 0.0, 0.0, balance))
        self._write_billing_state(rows)

    def _write_billing_state(self, rows):
        """Store the whole billing state of many meters in one upsert, under
        the meters' row locks as the billing batch takes them. ``rows``:
        ``(meter id, watermark reading id, bands dict, period start, period
        quantity, carry, meter-side balance)``."""
        if not rows:
            return
        ids = [row[0] for row in rows]
        self.env.cr.execute(
            "SELECT id FROM prepaid_meter WHERE id = ANY(%s) ORDER BY id "
            "FOR NO KEY UPDATE",
            [ids],
        )
        columns = list(BILLING_COLUMNS)
        arrays = [ids] + [
            [
                json.dumps(row[1 + i])
                if value_kind == "jsonb" and row[1 + i]
                else (None if row[1 + i] is False else row[1 + i])
                for row in rows
            ]
            for i, value_kind in enumerate(BILLING_COLUMNS.values())
        ]
        unnest = ", ".join(
            ["%s::int4[]"] + [f"%s::{kind}[]" for kind in BILLING_COLUMNS.values()]
        )
        sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns)
        self.env.cr.execute(
            f"""INSERT INTO {BILLING_TABLE} (meter_id, {", ".join(columns)})
                SELECT * FROM unnest({unnest})
                ON CONFLICT (meter_id) DO UPDATE SET {sets}
            """,  # noqa: S608 - column names and types are constants
            arrays,
        )
        self.browse(ids).invalidate_recordset(columns)

    def _take_final_readings(self, account):
        """Read these meters now (closing ``account``); a meter that cannot
        be read stops the closing with the reason."""
        for meter in self:
            command = self.env["prepaid.meter.command"].create(
                {
                    "meter_id": meter.id,
                    "command_type": "read_now",
                    "max_attempts": 1,
                    "reason": self.env._("Final reading of %s", account.name),
                }
            )
            try:
                command.action_send_now()
            except UserError as error:
                # A bus busy with a poll: the closing (and the command with
                # it) is rolled back, so say so instead of "queued".
                raise UserError(
                    self.env._(
                        "The final reading of %(meter)s cannot be taken now "
                        "(%(error)s). Nothing was closed: try again in a "
                        "moment, or close without final readings.",
                        meter=meter.name,
                        error=error.args[0],
                    )
                ) from error
            if command.state != "done":
                raise UserError(
                    self.env._(
                        "Final reading of %(meter)s failed: %(error)s. Close "
                        "without final readings or fix the meter.",
                        meter=meter.name,
                        error=command.last_error,
                    )
                )

    def _push_prepaid_parameters(self):
        """Write the tariff price and alarm amounts into meter-side meters."""
        commands = self.env["prepaid.meter.command"]
        for meter in self.filtered(lambda m: m.billing_mode == "meter"):
            account = meter.billing_account_id
            params = {}
            if meter.profile_ids._find_register("unit_price"):
                tariff = account._tariff_for(meter)
                version = tariff and tariff._version_at(fields.Date.today())
                if version and version.kind == "flat":
                    params["unit_price"] = version.price
            alarm1, alarm2, _alarm3 = account._alarm_amounts()
            if meter.profile_ids._find_register("alarm1_amount"):
                params.update(alarm1_amount=alarm1, alarm2_amount=alarm2)
            if meter.profile_ids._find_register("overdraft_limit"):
                params["overdraft_limit"] = account.credit_limit
            if params:
                commands |= commands.create(
                    {
                        "meter_id": meter.id,
                        "command_type": "write_params",
                        "params": params,
                        "reason": self.env._("Account %s opened", account.name),
                    }
                )
        commands._trigger_processing()
        return commands
