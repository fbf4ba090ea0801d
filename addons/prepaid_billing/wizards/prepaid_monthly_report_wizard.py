import base64
import io

import xlsxwriter
from dateutil.relativedelta import relativedelta
from werkzeug.urls import url_encode

from odoo import fields, models

from ..tools import xlsx
from ..tools.tariff import BANDS


class PrepaidMonthlyReportWizard(models.TransientModel):
    """Choose the month (and site or building) of the comprehensive monthly
    report, then print it (PDF) or export it (XLSX)."""

    _name = "prepaid.monthly.report.wizard"
    _description = "Comprehensive Monthly Report"

    month = fields.Date(
        required=True,
        default=lambda self: (
            fields.Date.context_today(self).replace(day=1) - relativedelta(months=1)
        ),
        help="Any day of the month to report.",
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
        money = workbook.add_format({"num_format": "#,##0.00"})
        sheet.write_row(0, 0, self._xlsx_headers(), bold)
        rooms = self.env["prepaid.room"].browse([row.room_id for row in rows])
        partners = self.env["res.partner"].browse(
            [row.partner_id for row in rows if row.partner_id]
        )
        names = {room.id: room for room in rooms}
        tenants = {partner.id: partner.display_name for partner in partners}
        for number, row in enumerate(rows, start=1):
            room = names[row.room_id]
            use = row.usage
            values = [
                room.building_id.name or "",
                room.name,
                tenants.get(row.partner_id, ""),
                use.kwh,
                *[use.band_kwh[band] for band in BANDS],
                *[use.band_cost[band] for band in BANDS],
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
        sheet.set_column(8, 12, 12, money)
        sheet.set_column(14, 17, 12, money)
        workbook.close()
        return output.getvalue()
