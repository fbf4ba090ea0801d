from odoo import api, models
from odoo.tools import sql

from odoo.addons.prepaid_metering.tools.transactions import local_settings

from ..tools import month_report as core
from ..tools.tariff import BANDS

#: Settings of the report's statement: the sums of 10,000 shops grouped in
#: memory (the default 4MB spills them to disk: about twice the time), and no
#: JIT compilation (its cost estimate reaches the inlining and optimisation
#: thresholds with 10,000 shops: seconds of compiling for a second of work).
SETTINGS = {"work_mem": "128MB", "jit": "off"}


class PrepaidMonthlyReport(models.AbstractModel):
    """The comprehensive monthly report per shop (room and tenant), read from
    the daily aggregates: a few statements whatever the years of readings.

    Shared by the QWeb PDF (``report.prepaid_billing.report_monthly``), the
    XLSX export and the benchmark.
    """

    _name = "prepaid.monthly.report"
    _description = "Comprehensive Monthly Report"

    def init(self):
        # The report reads three months of one company's aggregates: by
        # company and date (the bare date index would also read the other
        # companies' days).
        sql.create_index(
            self.env.cr,
            "prepaid_daily_usage_company_date_index",
            "prepaid_daily_usage",
            ["company_id", "date"],
        )

    @api.model
    def _rows(self, company, month, room_domain=None):
        """``ShopMonth`` rows of ``month`` (any day of it) for the rooms of
        ``company`` matching ``room_domain``, sorted by building and room."""
        month = core.month_start(month)
        room_ids = None
        if room_domain:
            room_ids = self.env["prepaid.room"].search(room_domain).ids
        rows = core.shop_rows(
            self._usage(company, room_ids, month),
            self._charges(company, room_ids, month),
            self._shares(company, room_ids, month),
            self._billed(company, room_ids, month),
        )
        order = self._room_order([row.room_id for row in rows if row.room_id])
        # The money of no room comes last.
        order[None] = ("\uffff", "", 0)
        return sorted(rows, key=lambda row: order[row.room_id])

    def _room_order(self, room_ids):
        """``{room_id: sort key}``: building name, room name, id."""
        self.env["prepaid.room"].flush_model(["name", "building_id"])
        self.env["prepaid.building"].flush_model(["name"])
        self.env.cr.execute(
            """
            SELECT r.id, COALESCE(b.name, ''), COALESCE(r.name, '')
              FROM prepaid_room r
              LEFT JOIN prepaid_building b ON b.id = r.building_id
             WHERE r.id = ANY(%s)
            """,
            [room_ids],
        )
        return {
            room_id: (building, name, room_id)
            for room_id, building, name in self.env.cr.fetchall()
        }

    def _usage(self, company, room_ids, month):
        """The month's, the previous month's and the same month's a year
        before sums by room, in one pass over the aggregates of the three
        months (``core.shop_rows`` layout)."""
        periods = {
            "current": (month, core.add_months(month, 1)),
            "previous": (core.add_months(month, -1), month),
            "last_year": (core.add_months(month, -12), core.add_months(month, -11)),
        }
        params = {"company": company.id, "rooms": room_ids}
        for name, (first, end) in periods.items():
            params[f"{name}_first"], params[f"{name}_end"] = first, end

        def within(period):
            return f"date >= %({period}_first)s AND date < %({period}_end)s"

        electric, water = "utility != 'water'", "utility = 'water'"
        summed = {
            "kwh": ("energy_kwh", electric),
            "m3": ("volume_m3", water),
            "energy_amount": ("amount", electric),
            "water_amount": ("amount", water),
            **{f"{band}_kwh": (f"{band}_kwh", electric) for band in BANDS},
            **{f"{band}_cost": (f"{band}_cost", electric) for band in BANDS},
        }
        columns = [f"MAX(partner_id) FILTER (WHERE {within('current')})"]
        columns += [
            f"COUNT(*) FILTER (WHERE {within(period)})" for period in core.PERIODS
        ]
        for period in core.PERIODS:
            columns += [
                f"SUM({summed[name][0]}) FILTER (WHERE {within(period)} "
                f"AND {summed[name][1]})::float8"
                for name in (core.SUMS if period == "current" else core.COMPARED)
            ]
        ranges = " OR ".join(f"({within(period)})" for period in core.PERIODS)
        self.env["prepaid.daily.usage"].flush_model()
        cr = self.env.cr
        # for this statement only (see SETTINGS)
        with local_settings(cr, **SETTINGS):
            cr.execute(
                f"""
                SELECT room_id, {", ".join(columns)}
                  FROM prepaid_daily_usage
                 WHERE company_id = %(company)s AND room_id IS NOT NULL
                   AND (%(rooms)s::int4[] IS NULL
                        OR room_id = ANY(%(rooms)s::int4[]))
                   AND ({ranges})
                 GROUP BY room_id
                """,  # noqa: S608 - constants of this method
                params,
            )
            return cr.fetchall()

    def _charges(self, company, room_ids, month):
        """Charge items of the month by room; a charge of an account (no
        room) counts in the account's room: the first room of its meters,
        else of its other charges; None when it has none (the report's
        last row)."""
        self.env["prepaid.charge.line"].flush_model()
        self.env["prepaid.meter"].flush_model(["room_id", "billing_account_id"])
        self.env.cr.execute(
            """
            SELECT room_id, SUM(amount)::float8
              FROM (SELECT COALESCE(
                               c.room_id,
                               (SELECT MIN(m.room_id) FROM prepaid_meter m
                                 WHERE m.billing_account_id = c.account_id),
                               (SELECT MIN(o.room_id) FROM prepaid_charge_line o
                                 WHERE o.account_id = c.account_id)) AS room_id,
                           c.amount
                      FROM prepaid_charge_line c
                     WHERE c.company_id = %(company)s
                       AND c.period_start >= %(first)s AND c.period_start < %(end)s
                   ) AS charge
             WHERE %(rooms)s::int4[] IS NULL OR room_id = ANY(%(rooms)s::int4[])
             GROUP BY room_id
            """,
            {
                "company": company.id,
                "first": month,
                "end": core.add_months(month, 1),
                "rooms": room_ids,
            },
        )
        return dict(self.env.cr.fetchall())

    def _billed(self, company, room_ids, month):
        """Usage priced on the issued postpaid bills of the month (starting
        in it), by the meter's room: ``{room_id: (energy, water)}``. Their
        charges and shares are counted by ``_charges`` and ``_shares``."""
        for model in ("prepaid.bill", "prepaid.bill.line", "prepaid.meter"):
            self.env[model].flush_model()
        self.env.cr.execute(
            """
            SELECT m.room_id,
                   COALESCE(SUM(l.amount) FILTER (
                       WHERE m.meter_type != 'water'), 0)::float8,
                   COALESCE(SUM(l.amount) FILTER (
                       WHERE m.meter_type = 'water'), 0)::float8
              FROM prepaid_bill_line l
              JOIN prepaid_bill b ON b.id = l.bill_id
              JOIN prepaid_meter m ON m.id = l.meter_id
             WHERE l.kind = 'usage' AND b.state = 'confirmed'
               AND b.company_id = %(company)s
               AND b.date_from >= %(first)s AND b.date_from < %(end)s
               AND (%(rooms)s::int4[] IS NULL OR m.room_id = ANY(%(rooms)s::int4[]))
             GROUP BY m.room_id
            """,
            {
                "company": company.id,
                "first": month,
                "end": core.add_months(month, 1),
                "rooms": room_ids,
            },
        )
        return {room: (energy, water) for room, energy, water in self.env.cr.fetchall()}

    def _shares(self, company, room_ids, month):
        """Posted common-area shares of the month by room."""
        domain = [
            ("company_id", "=", company.id),
            ("room_id", "!=", False),
            ("run_id.state", "=", "posted"),
            ("run_id.period_start", ">=", month),
            ("run_id.period_start", "<", core.add_months(month, 1)),
        ]
        if room_ids is not None:
            domain.append(("room_id", "in", room_ids))
        return {
            room.id: amount
            for room, amount in self.env["prepaid.apportionment.share"]
            .sudo()
            ._read_group(domain, ["room_id"], ["amount:sum"])
        }
