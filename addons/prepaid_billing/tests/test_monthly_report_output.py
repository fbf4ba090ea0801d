import base64
import io

import openpyxl
from freezegun import freeze_time

from odoo.tests import Form, HttpCase, new_test_user, tagged

from ..tools import month_report
from .common import BillingCase


class MonthlyReportCase(BillingCase):
    """Two shops with figures in March 2026 (flat 0.80 per kWh)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.room.tenant_id = cls.tenant
        cls.meter1 = cls.make_meter(cls.gateway, 1, room=cls.room)
        cls.meter2 = cls.make_meter(cls.gateway, 2, room=cls.room2)
        with freeze_time("2026-02-20 02:00:00"):
            cls.make_account(cls.meter1, opening=500.0)
            cls.make_account(cls.meter2, opening=500.0)

    def wizard(self, **vals):
        return self.env["prepaid.monthly.report.wizard"].create(
            {"company_id": self.company.id, **vals}
        )

    def march(self):
        # 12.5 kWh (10.00) and 30 kWh (24.00), local March (UTC+8)
        for meter, used in ((self.meter1, 12.5), (self.meter2, 30.0)):
            self.reading(meter, 100.0, "2026-03-01 02:00:00")
            self.reading(meter, 100.0 + used, "2026-03-10 02:00:00")
        self.bill()


@tagged("post_install", "-at_install")
class TestMonthlyReportOutput(MonthlyReportCase):
    """The wizard's month, the XLSX totals, the shown band costs and the PDF
    rows."""

    def test_the_month_is_chosen_as_month_and_year_last_month_first(self):
        with freeze_time("2026-01-10 04:00:00"):
            form = Form(self.env["prepaid.monthly.report.wizard"])
            self.assertEqual((form.report_month, form.report_year), ("12", "2025"))
            form.report_month = "3"
            form.report_year = "2026"
            wizard = form.save()
        self.assertEqual(str(wizard.month), "2026-03-01")
        # any day of a month still chooses it (callers passing a date)
        wizard = self.wizard(month="2026-03-15")
        self.assertEqual((wizard.report_month, wizard.report_year), ("3", "2026"))

    def test_xlsx_ends_with_a_totals_row(self):
        self.march()
        wizard = self.wizard(report_month="3", report_year="2026")
        wizard.action_export_xlsx()
        book = openpyxl.load_workbook(
            io.BytesIO(base64.b64decode(wizard.xlsx_file)), data_only=True
        )
        sheet = book.active
        header = [cell.value for cell in sheet[1]]
        rows = list(sheet.iter_rows(min_row=2, values_only=True))
        self.assertEqual([row[1] for row in rows[:-1]], ["Shop 1", "Shop 2"])
        total = dict(zip(header, rows[-1], strict=True))
        self.assertEqual(total["Building"], "Total")
        self.assertEqual(total["Total kWh"], 42.5)
        self.assertEqual(total["Amount"], 34.0)
        self.assertIsNone(total["kWh vs previous month %"], "no sum of changes")
        formulas = openpyxl.load_workbook(
            io.BytesIO(base64.b64decode(wizard.xlsx_file))
        ).active
        amount_column = header.index("Amount") + 1
        self.assertEqual(
            formulas.cell(row=4, column=amount_column).value, "=SUM(R2:R3)"
        )

    def test_shown_band_costs_add_up_to_the_cent(self):
        wizard = self.wizard(report_month="3", report_year="2026")
        # 0.055 + 0.035 + 0.035 = 0.125: each rounded would show 0.14
        usage = month_report.Usage(
            band_cost={"sharp": 0.0, "peak": 0.055, "flat": 0.035, "valley": 0.035}
        )
        shown = wizard._shown_band_costs(usage)
        self.assertAlmostEqual(sum(shown.values()), 0.13, places=6)
        for band, cost in usage.band_cost.items():
            self.assertLess(abs(shown[band] - cost), 0.01)

    def test_pdf_rows_are_never_split_across_pages(self):
        self.march()
        wizard = self.wizard(report_month="3", report_year="2026")
        html, _kind = self.env["ir.actions.report"]._render_qweb_html(
            "prepaid_billing.report_monthly", wizard.ids
        )
        html = html.decode()
        self.assertEqual(html.count('class="o_monthly_row"'), 2)
        self.assertEqual(
            html.count('class="o_monthly_row" style="page-break-inside: avoid;"'), 2
        )
        self.assertIn("2026-03", html)


@tagged("post_install", "-at_install")
class TestMonthlyReportTour(HttpCase, MonthlyReportCase):
    """Reporting > Comprehensive Monthly Report in a browser, as an
    accountant (billing user) of the test company only."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.accountant = new_test_user(
            cls.env,
            login="report_accountant",
            groups="base.group_user,prepaid_billing.group_billing_user",
            company_id=cls.company.id,
            company_ids=[cls.company.id],
        )

    def test_accountant_exports_march_from_the_menu(self):
        self.march()
        self.start_tour(
            "/odoo", "prepaid_monthly_report_accountant", login="report_accountant"
        )
        wizard = self.env["prepaid.monthly.report.wizard"].search(
            [("create_uid", "=", self.accountant.id)]
        )
        self.assertEqual(wizard.xlsx_name, "monthly-report-2026-03.xlsx")
        sheet = openpyxl.load_workbook(
            io.BytesIO(base64.b64decode(wizard.xlsx_file)), data_only=True
        ).active
        rooms = [row[1] for row in sheet.iter_rows(min_row=2, values_only=True)]
        self.assertEqual(rooms, ["Shop 1", "Shop 2", None])
        # the printed report of the same wizard, as the accountant
        self.authenticate("report_accountant", "report_accountant")
        response = self.url_open(
            f"/report/html/prepaid_billing.report_monthly/{wizard.id}"
        )
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.text.count('class="o_monthly_row"'), 2)
        self.assertIn("Shop 2", response.text)
