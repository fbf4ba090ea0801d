from odoo import api, models

from ..tools import month_report as core
from ..tools.tariff import BANDS


class PrepaidMonthlyReport(models.AbstractModel):
    """The comprehensive monthly report per shop (room and tenant), read from
    the daily aggregates: a few statements whatever the years of readings.

    Shared by the QWeb PDF (``report.prepaid_billing.report_monthly``), the
    XLSX export and the benchmark.
    """

    _name = "prepaid.monthly.report"
    _description = "Comprehensive Monthly Report"

    @api.model
    def _rows(self, company, month, room_domain=None):
        """``ShopMonth`` rows of ``month`` (any day of it) for the rooms of
        ``company`` matching ``room_domain``, sorted by building and room."""
        month = core.month_start(month)
        previous = core.add_months(month, -1)
        last_year = core.add_months(month, -12)
        room_ids = None
        if room_domain:
            room_ids = self.env["prepaid.room"].search(room_domain).ids
        usage = self._usage(company, room_ids, (month, previous, last_year))
        current = usage.get(month, {})
        charges = self._charges(company, room_ids, month)
        shares = self._shares(company, room_ids, month)
        rows = []
        for room_id in current.keys() | charges.keys() | shares.keys():
            use, partner_id = current.get(room_id, (core.Usage(), None))
            rows.append(
                core.ShopMonth(
                    room_id,
                    partner_id,
                    use,
                    charges=charges.get(room_id, 0.0),
                    share=shares.get(room_id, 0.0),
                    previous=usage.get(previous, {}).get(room_id, (None,))[0],
                    last_year=usage.get(last_year, {}).get(room_id, (None,))[0],
                )
            )
        rooms = self.env["prepaid.room"].browse([row.room_id for row in rows])
        order = {
            room.id: (room.building_id.name or "", room.name or "", room.id)
            for room in rooms
        }
        return sorted(rows, key=lambda row: order[row.room_id])

    def _usage(self, company, room_ids, months):
        """``{month: {room_id: (Usage, partner_id)}}`` from the aggregates of
        ``months`` (one statement, on the date index)."""
        bands = ", ".join(
            f"SUM({band}_kwh)::float8, SUM({band}_cost)::float8" for band in BANDS
        )
        ranges = " OR ".join("(date >= %s AND date < %s)" for _month in months)
        params = [company.id, room_ids, room_ids]
        for month in months:
            params += [month, core.add_months(month, 1)]
        self.env.flush_all()
        self.env.cr.execute(
            f"""
            SELECT date_trunc('month', date)::date, room_id, utility,
                   MAX(partner_id), SUM(energy_kwh)::float8, SUM(volume_m3)::float8,
                   SUM(amount)::float8, {bands}
              FROM prepaid_daily_usage
             WHERE company_id = %s AND room_id IS NOT NULL
               AND (%s::int4[] IS NULL OR room_id = ANY(%s::int4[]))
               AND ({ranges})
             GROUP BY 1, 2, 3
            """,  # noqa: S608 - constants of this method
            params,
        )
        result = {}
        for (
            month,
            room_id,
            utility,
            partner_id,
            kwh,
            m3,
            amount,
            *band,
        ) in self.env.cr.fetchall():
            by_room = result.setdefault(month, {})
            use, known = by_room.get(room_id, (core.Usage(), None))
            if utility == "water":
                use.m3 += m3
                use.water_amount += amount
            else:
                use.kwh += kwh
                use.energy_amount += amount
                for index, name in enumerate(BANDS):
                    use.band_kwh[name] += band[2 * index]
                    use.band_cost[name] += band[2 * index + 1]
            by_room[room_id] = (use, known or partner_id)
        return result

    def _charges(self, company, room_ids, month):
        """Charge items of the month by room."""
        domain = [
            ("company_id", "=", company.id),
            ("room_id", "!=", False),
            ("period_start", ">=", month),
            ("period_start", "<", core.add_months(month, 1)),
        ]
        if room_ids is not None:
            domain.append(("room_id", "in", room_ids))
        return {
            room.id: amount
            for room, amount in self.env["prepaid.charge.line"]
            .sudo()
            ._read_group(domain, ["room_id"], ["amount:sum"])
        }

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
