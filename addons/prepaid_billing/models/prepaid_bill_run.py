import logging
from datetime import datetime, time, timedelta

import pytz

from odoo import api, fields, models
from odoo.exceptions import UserError

from ..tools.sql_arrays import array_literal, insert_rows

_logger = logging.getLogger(__name__)

BILL_COLUMNS = {
    "id": "int4",
    "name": "varchar",
    "run_id": "int4",
    "account_id": "int4",
    "partner_id": "int4",
    "company_id": "int4",
    "currency_id": "int4",
    "date_from": "date",
    "date_to": "date",
    "state": "varchar",
    "amount_total": "numeric",
}
LINE_COLUMNS = {
    "bill_id": "int4",
    "sequence": "int4",
    "kind": "varchar",
    "product_id": "int4",
    "name": "varchar",
    "meter_id": "int4",
    "quantity": "float8",
    "unit": "varchar",
    "unit_price": "float8",
    "amount": "numeric",
    "tariff_version_id": "int4",
    "first_reading_id": "int4",
    "last_reading_id": "int4",
    "reading_count": "int4",
    "charge_line_id": "int4",
    "share_id": "int4",
}


class PrepaidBillRun(models.Model):
    """Bills of one period for the postpaid accounts (and the invoice-collected
    charges of any account): computed as drafts, reviewed, confirmed into
    posted customer invoices."""

    _name = "prepaid.bill.run"
    _description = "Bill Run"
    _inherit = ["mail.thread"]
    _order = "date_to desc, id desc"
    _check_company_auto = True

    name = fields.Char(
        required=True, readonly=True, copy=False, default=lambda self: self.env._("New")
    )
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company
    )
    currency_id = fields.Many2one(related="company_id.currency_id")
    date_from = fields.Date(required=True)
    date_to = fields.Date(required=True)
    state = fields.Selection(
        [("draft", "Draft"), ("computed", "To Review"), ("done", "Invoiced")],
        default="draft",
        required=True,
        readonly=True,
        tracking=True,
    )
    bill_ids = fields.One2many("prepaid.bill", "run_id", string="Bills")
    bill_count = fields.Integer(compute="_compute_totals")
    amount_total = fields.Monetary(compute="_compute_totals")
    batch_size = fields.Integer(
        default=500, help="Meters priced, and invoices posted, per batch."
    )

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if vals.get("name", self.env._("New")) == self.env._("New"):
                vals["name"] = self.env["ir.sequence"].next_by_code(
                    "prepaid.bill.run"
                ) or self.env._("New")
        return super().create(vals_list)

    @api.depends("bill_ids.amount_total")
    def _compute_totals(self):
        for run in self:
            run.bill_count = len(run.bill_ids)
            run.amount_total = sum(run.bill_ids.mapped("amount_total"))

    @api.ondelete(at_uninstall=False)
    def _unlink_except_invoiced(self):
        if self.bill_ids.filtered(
            lambda bill: bill.state == "confirmed" or bill.move_id
        ):
            raise UserError(self.env._("A run with invoiced bills is kept."))
        self.bill_ids._release()

    def action_view_bills(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "prepaid_billing.prepaid_bill_action"
        )
        action["domain"] = [("run_id", "=", self.id)]
        return action

    # ------------------------------------------------------------------
    # Draft bills
    # ------------------------------------------------------------------
    def action_compute(self):
        """Compute the draft bills of the period (refused as a whole when an
        account already has a bill overlapping it)."""
        for run in self:
            if run.state != "draft":
                raise UserError(self.env._("The bills of %s are computed.", run.name))
            run._compute_bills()
        return True

    def _check_period(self):
        if self.date_to < self.date_from:
            raise UserError(
                self.env._(
                    "Bill run %(run)s ends on %(to)s, before it starts on %(from)s.",
                    run=self.name,
                    to=self.date_to,
                    **{"from": self.date_from},
                )
            )
        # The use starts from the last reading before the period.
        self.env["prepaid.reading"]._check_readings_kept(
            self.date_from - timedelta(days=1),
            self.env._("Bill run %s", self.name),
        )

    @api.model
    def _postpaid_account_domain(self, company):
        """Accounts billed for their usage (hook). The context key
        ``prepaid_bill_account_ids`` bills those accounts only, closed or not
        (the final bill of a tenancy's move-out)."""
        scope = self.env.context.get("prepaid_bill_account_ids")
        if scope is not None:
            return [
                ("company_id", "=", company.id),
                ("id", "in", scope),
                ("mode", "=", "postpaid"),
            ]
        return [
            ("company_id", "=", company.id),
            ("state", "=", "open"),
            ("mode", "=", "postpaid"),
        ]

    def _compute_bills(self):
        self.ensure_one()
        self._check_period()
        self.env.flush_all()
        cr = self.env.cr
        Account = self.env["prepaid.account"]
        postpaid = Account.search(self._postpaid_account_domain(self.company_id))
        scope = self.env.context.get("prepaid_bill_account_ids")
        cr.execute(
            """
            SELECT id, account_id, product_id, name, quantity,
                   amount - COALESCE(credit_amount, 0)
              FROM prepaid_charge_line
             WHERE collection = 'invoice' AND bill_id IS NULL AND company_id = %s
               AND period_start <= %s
               AND (%s::int4[] IS NULL OR account_id = ANY(%s::int4[]))
             ORDER BY id
            """,
            [self.company_id.id, self.date_to, scope, scope],
        )
        charges = cr.fetchall()
        cr.execute(
            """
            SELECT s.id, s.account_id FROM prepaid_apportionment_share s
              JOIN prepaid_apportionment_run r ON r.id = s.run_id
             WHERE s.collection = 'invoice' AND s.bill_id IS NULL
               AND r.state = 'posted' AND r.company_id = %s
               AND r.period_start <= %s
               AND (%s::int4[] IS NULL OR s.account_id = ANY(%s::int4[]))
             ORDER BY s.id
            """,
            [self.company_id.id, self.date_to, scope, scope],
        )
        shares = cr.fetchall()
        account_ids = sorted(
            set(postpaid.ids) | {row[1] for row in charges} | {row[1] for row in shares}
        )
        self._check_overlaps(account_ids)
        lines_by_account = {account_id: [] for account_id in account_ids}
        self._usage_lines(postpaid, lines_by_account)
        self._charge_lines(charges, lines_by_account)
        self._share_lines([row[0] for row in shares], lines_by_account)
        self._write_bills(lines_by_account)
        self.state = "computed"

    def _check_overlaps(self, account_ids):
        self.env.cr.execute(
            """
            SELECT DISTINCT b.account_id FROM prepaid_bill b
             WHERE b.account_id = ANY(%s) AND b.state != 'cancel'
               AND b.date_from <= %s AND b.date_to >= %s
            """,
            [account_ids, self.date_to, self.date_from],
        )
        clashes = [row[0] for row in self.env.cr.fetchall()]
        if clashes:
            names = self.env["prepaid.account"].browse(clashes[:5]).mapped("name")
            raise UserError(
                self.env._(
                    "%(count)s account(s) already have a bill overlapping %(from)s "
                    "to %(to)s (%(names)s): choose a period after their last bill.",
                    count=len(clashes),
                    to=self.date_to,
                    names=", ".join(names),
                    **{"from": self.date_from},
                )
            )

    def _usage_lines(self, accounts, lines_by_account):
        """Priced usage of every meter of the postpaid ``accounts``, a batch
        of meters at a time."""
        meters = self.env["prepaid.meter"].search(
            [("billing_account_id", "in", accounts.ids)], order="id"
        )
        meters.fetch(
            ["billing_account_id", "tariff_id", "meter_type", "name", "site_id"]
        )
        accounts.fetch(["tariff_id", "water_tariff_id"])
        tariffs = {
            meter.id: meter.billing_account_id._tariff_for(meter) for meter in meters
        }
        without_product = {t for t in tariffs.values() if t and not t.product_id}
        if without_product:
            raise UserError(
                self.env._(
                    "Tariff(s) %s have no revenue product: set one to invoice "
                    "their usage.",
                    ", ".join(t.name for t in without_product),
                )
            )
        products = {tariff: tariff.product_id.id for tariff in set(tariffs.values())}
        owners = {
            meter.id: (meter.billing_account_id.id, meter.name) for meter in meters
        }
        Usage = self.env["prepaid.bill.usage"]
        size = max(self.batch_size, 1)
        for start in range(0, len(meters), size):
            batch = meters[start : start + size]
            usage = Usage._meter_usage(batch, self.date_from, self.date_to, tariffs)
            for meter_id in batch.ids:
                meter_usage = usage[meter_id]
                product = products[tariffs[meter_id]]
                account_id, meter_name = owners[meter_id]
                for sequence, line in enumerate(meter_usage.lines):
                    lines_by_account[account_id].append(
                        {
                            "sequence": sequence,
                            "kind": "usage",
                            "product_id": product,
                            "name": f"{meter_name} {line.label}",
                            "meter_id": meter_id,
                            "quantity": float(line.quantity),
                            "unit": meter_usage.unit,
                            "unit_price": float(line.unit_price),
                            "amount": float(line.amount),
                            "tariff_version_id": line.version_key,
                            "first_reading_id": meter_usage.first_reading_id,
                            "last_reading_id": meter_usage.last_reading_id,
                            "reading_count": meter_usage.reading_count,
                        }
                    )

    def _charge_lines(self, charges, lines_by_account):
        """Lines of the invoice-collected ``charges`` (rows of id, account,
        product, name, quantity and amount net of credits)."""
        for charge_id, account_id, product_id, name, quantity, amount in charges:
            lines_by_account[account_id].append(
                {
                    "sequence": 100,
                    "kind": "charge",
                    "product_id": product_id,
                    "name": name,
                    "quantity": quantity,
                    "unit_price": 0.0,
                    "amount": amount,
                    "charge_line_id": charge_id,
                }
            )

    def _share_lines(self, share_ids, lines_by_account):
        shares = self.env["prepaid.apportionment.share"].browse(share_ids)
        for share in shares:
            run = share.run_id
            lines_by_account[share.account_id.id].append(
                {
                    "sequence": 200,
                    "kind": "apportionment",
                    "product_id": run.apportionment_id.product_id.id,
                    "name": f"{run.name} ({share.room_id.name})",
                    "meter_id": run.apportionment_id.master_meter_id.id,
                    "quantity": share.weight,
                    "unit_price": 0.0,
                    "amount": share.amount,
                    "share_id": share.id,
                }
            )

    def _write_bills(self, lines_by_account):
        """Insert the bills and their lines (a constant number of statements)."""
        accounts = {
            account_id: lines for account_id, lines in lines_by_account.items() if lines
        }
        if not accounts:
            return
        cr = self.env.cr
        cr.execute(
            "SELECT nextval('prepaid_bill_id_seq') FROM generate_series(1, %s)",
            [len(accounts)],
        )
        bill_ids = [row[0] for row in cr.fetchall()]
        records = self.env["prepaid.account"].browse(list(accounts))
        records.fetch(["name", "partner_id"])
        currency = self.currency_id
        bills, lines = [], []
        for bill_id, account in zip(bill_ids, records, strict=True):
            account_lines = accounts[account.id]
            bills.append(
                {
                    "id": bill_id,
                    "name": f"{self.name}/{account.name}",
                    "run_id": self.id,
                    "account_id": account.id,
                    "partner_id": account.partner_id.id,
                    "company_id": self.company_id.id,
                    "currency_id": currency.id,
                    "date_from": self.date_from,
                    "date_to": self.date_to,
                    "state": "draft",
                    "amount_total": currency.round(
                        sum(line["amount"] for line in account_lines)
                    ),
                }
            )
            for line in account_lines:
                line["bill_id"] = bill_id
                lines.append(line)
        uid = self.env.uid
        insert_rows(cr, "prepaid_bill", BILL_COLUMNS, bills, uid)
        insert_rows(cr, "prepaid_bill_line", LINE_COLUMNS, lines, uid)
        for table, key in (
            ("prepaid_charge_line", "charge_line_id"),
            ("prepaid_apportionment_share", "share_id"),
        ):
            pairs = [(line[key], line["bill_id"]) for line in lines if line.get(key)]
            if pairs:
                cr.execute(
                    f"""UPDATE {table} t SET bill_id = u.bill_id
                          FROM unnest(%s::int4[], %s::int4[]) AS u(id, bill_id)
                         WHERE t.id = u.id""",  # noqa: S608 - constant names
                    [
                        array_literal(p[0] for p in pairs),
                        array_literal(p[1] for p in pairs),
                    ],
                )
        self.env.invalidate_all()

    @api.model
    def _demo_month(self, counters=None, master_counters=None):
        """Demo data: the third-floor offices and apartment B-202 are postpaid
        tenants with metered use this month; the charge items run and this
        month's bills wait for review.

        :param counters: {meter xml id: counter (kWh or m³)} of the postpaid
            meters when the demo meter fleet starts (simulator/demo_fleet.json):
            this month's demo readings end there, so the fleet's first polled
            readings carry on from them.
        :param master_counters: the same for the common-area master meters,
            whose readings start on the first of last month: the accountant's
            apportionment of last month has use to share.
        """
        ref = self.env.ref
        if not ref("prepaid_metering.demo_room_a_301", raise_if_not_found=False):
            return
        if self.search_count([]):
            return
        for tariff, product in (
            ("demo_tariff_flat", "demo_product_electricity"),
            ("demo_tariff_tou", "demo_product_electricity"),
            ("demo_tariff_water", "demo_product_water"),
        ):
            ref(f"prepaid_billing.{tariff}").product_id = ref(
                f"prepaid_billing.{product}"
            )
        postpaid = (
            ref("prepaid_metering.demo_room_a_301")
            | ref("prepaid_metering.demo_room_a_302")
            | ref("prepaid_metering.demo_room_a_303")
            | ref("prepaid_metering.demo_room_b_202")
        )
        postpaid.meter_ids.billing_account_id.filtered(
            lambda a: a.state == "open"
        ).write({"mode": "postpaid"})
        self.env["prepaid.charge.line"]._generate(
            self.env["prepaid.charge.item"].search([])
        )
        site = ref("prepaid_metering.demo_site")
        today = fields.Date.context_today(self.with_context(tz=site.tz))
        first = today.replace(day=1)
        self._demo_month_readings(counters or {}, first, site.tz)
        last_month = (first - timedelta(days=1)).replace(day=1)
        self._demo_month_readings(master_counters or {}, last_month, site.tz)
        run = self.create({"date_from": today.replace(day=1), "date_to": today})
        run.action_compute()

    @api.model
    def _demo_month_readings(self, counters, date_from, tz):
        """Demo data: a manual reading at every local midnight since
        ``date_from`` and one ten minutes ago, ending at ``counters``, at a
        steady 0.4 to 0.8 kW (electricity) or 0.03 m³/h (water)."""
        now = fields.Datetime.now().replace(microsecond=0)
        zone = pytz.timezone(tz or "UTC")
        start = zone.localize(datetime.combine(date_from, time())).astimezone(pytz.utc)
        stamps = []
        moment = start.replace(tzinfo=None) + timedelta(minutes=1)
        while moment < now - timedelta(minutes=10):
            stamps.append(moment)
            moment += timedelta(days=1)
        stamps.append(now - timedelta(minutes=10))
        if len(stamps) < 2:
            return
        vals_list = []
        for xmlid, counter in counters.items():
            meter = self.env.ref(xmlid)
            water = meter.meter_type == "water"
            rate = 0.03 if water else 0.4 + 0.1 * (meter.id % 5)
            field = "volume_m3" if water else "energy_total_kwh"
            for stamp in stamps:
                hours = (stamps[-1] - stamp).total_seconds() / 3600
                vals_list.append(
                    {
                        "meter_id": meter.id,
                        "read_at": stamp,
                        "source": "manual",
                        field: round(counter - rate * hours, 3 if water else 2),
                    }
                )
        self.env["prepaid.reading"].create(vals_list)

    # ------------------------------------------------------------------
    # Invoices
    # ------------------------------------------------------------------
    def action_confirm(self):
        """Confirm every draft bill of the run into a posted invoice."""
        for run in self:
            drafts = run.bill_ids.filtered(lambda bill: bill.state == "draft")
            drafts._confirm_batch(batch_size=max(run.batch_size, 1))
            run.state = "done"
        return True
