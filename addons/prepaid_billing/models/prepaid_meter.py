from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL


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
    billed_reading_id = fields.Many2one(
        "prepaid.reading",
        readonly=True,
        copy=False,
        index="btree_not_null",  # removing old readings checks the reference
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
        readonly=True,
        copy=False,
        help="Time-of-use registers at the last billed reading.",
    )
    bill_period_start = fields.Date(readonly=True, copy=False)
    bill_period_qty = fields.Float(
        string="Period Consumption",
        readonly=True,
        copy=False,
        digits=(16, 3),
        help="Consumption billed since the start of the tier period.",
    )
    bill_carry = fields.Float(
        readonly=True,
        copy=False,
        digits=(16, 6),
        help="Sub-cent remainder carried to the next reading.",
    )
    meter_balance_mirror = fields.Float(
        readonly=True,
        copy=False,
        digits=(16, 2),
        help="Meter-side mode: the meter's balance at the last billed reading.",
    )
    balance = fields.Monetary(related="billing_account_id.balance")
    currency_id = fields.Many2one(related="billing_account_id.currency_id")
    balance_state = fields.Selection(related="billing_account_id.balance_state")

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

        ``watermarks``: the meter columns holding reading ids, the later of
        which is the watermark; ``good_only``: only readings that are money
        (``prepaid.reading._get_money_domain``) count.
        """
        self.env.flush_all()
        Meter = self.sudo().with_context(active_test=False)
        query = Meter._search(domain, order="id", limit=limit)
        table = query.table
        watermark = SQL(", ").join(
            SQL("COALESCE(%s, 0)", SQL.identifier(table, column))
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
        Reading = self.env["prepaid.reading"].sudo()
        for meter in self:
            last = Reading.search(
                [("meter_id", "=", meter.id), *Reading._get_money_domain()],
                limit=1,
            )
            balance = (last.values_json or {}).get("balance")
            if balance is None:
                balance = (meter.meter_values or {}).get("balance", 0.0)
            meter.sudo().write(
                {
                    "billed_reading_id": last.id or False,
                    "bill_band_kwh": last
                    and {
                        band: last[f"energy_{band}_kwh"]
                        for band in ("sharp", "peak", "flat", "valley")
                    },
                    "bill_period_start": False,
                    "bill_period_qty": 0.0,
                    "bill_carry": 0.0,
                    "meter_balance_mirror": balance,
                }
            )

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
