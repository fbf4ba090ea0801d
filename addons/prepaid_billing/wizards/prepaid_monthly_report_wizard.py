import base64
import io
from datetime import date

import xlsxwriter
from dateutil.relativedelta import relativedelta
from werkzeug.urls import url_encode
from xlsxwriter.utility import xl_rowcol_to_cell

from odoo import api, fields, models

from ..tools import money, xlsx
from ..tools.tariff import BANDS

MONTHS = [
    ("1", "January"),
    ("2", "February"),
    ("3", "March"),
    ("4", "April"),
    ("5", "May"),
    ("6", "June"),
    ("7", "July"),
    ("8", "August"),
    ("9", "September"),
    ("10", "October"),
    ("11", "November"),
    ("12", "December"),
]
FIRST_YEAR = 2000
#: Columns of the XLSX summed in its totals row: the figures from "Total kWh"
#: to "Amount", and the kWh of the previous month and of a year before (no
#: sum of percentages).
TOTALLED_COLUMNS = (*range(3, 18), 18, 20)


class PrepaidMonthlyReportWizard(models.TransientModel):
    """Choose the month (and site or building) of the comprehensive monthly
    report, then print it (PDF) or export it (XLSX)."""

    _name = "prepaid.monthly.report.wizard"
    _description = "Comprehensive Monthly Report"

    report_month = fields.Selection(
        MONTHS,
        string="Month",
        required=True,
        default=lambda self: str(self._default_month().month),
    )
    report_year = fields.Selection(
        selection="_year_selection",
        string="Year",
        required=True,
        default=lambda self: str(self._default_month().year),
    )
    month = fields.Date(
        string="Month Start",
        compute="_compute_month",
        inverse="_inverse_month",
        store=True,
        help="First day of the month to report (any day of a month chooses it).",
    )
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company
    )
    currency_id = fields.Many2one(related="company_id.currency_id")
    site_id = fields.Many2one("prepaid.site")
    building_id = fields.Many2one(
        "prepaid.building", domain="[('site_id', '=?', site_id)]"
    )
    xlsx_file = fields.Binary(string="Spreadsheet", readonly=True, attachment=False)
    xlsx_name = fields.Char(readonly=True)

    def _default_month(self):
        """Last month: the one reported at the start of this one."""
        today = fields.Date.context_today(self)
        return today.replace(day=1) - relativedelta(months=1)

    def _year_selection(self):
        last = fields.Date.context_today(self).year + 1
        return [(str(year), str(year)) for year in range(last, FIRST_YEAR - 1, -1)]

    @api.depends("report_month", "report_year")
    def _compute_month(self):
        for wizard in self:
            if wizard.report_month and wizard.report_year:
                year, month = int(wizard.report_year), int(wizard.report_month)
                wizard.month = date(year, month, 1)
            else:
                wizard.month = False

    def _inverse_month(self):
        for wizard in self.filtered("month"):
            wizard.report_month = str(wizard.month.month)
            wizard.report_year = str(wizard.month.year)

    def _shown_band_costs(self, usage):
        """The band costs of a row as shown (to the currency's rounding): the
        shown cents add up to the bands' total (see ``money.round_parts``)."""
        rounding = money.to_decimal(self.currency_id.rounding)
        costs = money.round_parts([usage.band_cost[band] for band in BANDS], rounding)
        return {band: float(cost) for band, cost in zip(BANDS, costs, strict=True)}

    def _room_domain(self):
        domain = []
        if self.site_id:
            domain.append(("site_id", "=", self.site_id.id))
        if self.building_id:
            domain.append(("building_id", "=", self.building_id.id))
        return domain

    def _rows(self):
        self.ensure_one()
        return self.env["prepaid.monthly.report"]._rows(
            self.company_id, self.month, self._room_domain() or None
        )

    def action_print_pdf(self):
        return self.env.ref("prepaid_billing.action_report_monthly").report_action(self)

    def action_export_xlsx(self):
        self.ensure_one()
        self.write(
            {
                "xlsx_file": base64.b64encode(self._xlsx_content()),
                "xlsx_name": self.env._(
                    "monthly-report-%s.xlsx", self.month.strftime("%Y-%m")
                ),
            }
        )
        query = url_encode(
            {
                "model": self._name,
                "id": self.id,
                "field": "xlsx_file",
                "filename_field": "xlsx_name",
                # the field is no attachment: without it the type is guessed
                "mimetype": xlsx.MIMETYPE,
                "download": "true",
            }
        )
        return {
            "type": "ir.actions.act_url",
            "url": f"/web/content?{query}",
            "target": "self",
        }

    def _xlsx_headers(self):
        return [
            self.env._("Building"),
            self.env._("Room"),
            self.env._("Tenant"),
            self.env._("Total kWh"),
            *[self.env._("%s kWh", band.title()) for band in BANDS],
            *[self.env._("%s cost", band.title()) for band in BANDS],
            self.env._("Electricity"),
            self.env._("Water m³"),
            self.env._("Water"),
            self.env._("Charge items"),
            self.env._("Apportioned share"),
            self.env._("Amount"),
            self.env._("kWh previous month"),
            self.env._("kWh vs previous month %"),
            self.env._("kWh same month last year"),
            self.env._("kWh vs last year %"),
        ]

    def _xlsx_content(self):
        """The report as an XLSX workbook (bytes)."""
        self.ensure_one()
        rows = self._rows()
        output = io.BytesIO()
        workbook = xlsxwriter.Workbook(output, {"in_memory": True})
        sheet = workbook.add_worksheet(self.month.strftime("%Y-%m"))
        bold = workbook.add_format({"bold": True})
        money_format = workbook.add_format({"num_format": "#,##0.00"})
        sheet.write_row(0, 0, self._xlsx_headers(), bold)
        rooms = self.env["prepaid.room"].browse(
            [row.room_id for row in rows if row.room_id]
        )
        partners = self.env["res.partner"].browse(
            [row.partner_id for row in rows if row.partner_id]
        )
        names = {room.id: room for room in rooms}
        tenants = {partner.id: partner.display_name for partner in partners}
        totals = dict.fromkeys(TOTALLED_COLUMNS, 0.0)
        for number, row in enumerate(rows, start=1):
            room = names.get(row.room_id, self.env["prepaid.room"])
            use = row.usage
            band_costs = self._shown_band_costs(use)
            values = [
                room.building_id.name or "",
                room.name or self.env._("No room"),
                tenants.get(row.partner_id, ""),
                use.kwh,
                *[use.band_kwh[band] for band in BANDS],
                *[band_costs[band] for band in BANDS],
                use.energy_amount,
                use.m3,
                use.water_amount,
                row.charges,
                row.share,
                row.total,
                row.previous.kwh if row.previous else "",
                "" if row.kwh_vs_previous is None else row.kwh_vs_previous,
                row.last_year.kwh if row.last_year else "",
                "" if row.kwh_vs_last_year is None else row.kwh_vs_last_year,
            ]
            sheet.write_row(number, 0, values)
            for column in TOTALLED_COLUMNS:
                if isinstance(values[column], int | float):
                    totals[column] += values[column]
        self._xlsx_totals_row(sheet, len(rows) + 1, totals, bold)
        sheet.set_column(8, 12, 12, money_format)
        sheet.set_column(14, 17, 12, money_format)
        workbook.close()
        return output.getvalue()

    def _xlsx_totals_row(self, sheet, number, totals, bold):
        """A bold row under the rooms: the SUM of each figure's column, its
        value stored too (for readers that do not recalculate)."""
        sheet.write(number, 0, self.env._("Total"), bold)
        for column, total in totals.items():
            if number > 1:
                first, last = (xl_rowcol_to_cell(r, column) for r in (1, number - 1))
                formula = f"=SUM({first}:{last})"
            else:
                formula = "=0"
            sheet.write_formula(number, column, formula, bold, round(total, 6))
