from odoo.tests import HttpCase, new_test_user, tagged

from ..tools import xlsx
from .common import BillingCase


@tagged("post_install", "-at_install")
class TestXlsxDownload(HttpCase, BillingCase):
    """Spreadsheets are served as spreadsheets, with nothing in the log."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.accountant = new_test_user(
            cls.env,
            login="xlsx_accountant",
            groups="base.group_user,prepaid_billing.group_billing_user",
            company_id=cls.company.id,
            company_ids=[cls.company.id],
        )

    def download(self, action):
        self.authenticate("xlsx_accountant", "xlsx_accountant")
        with self.assertNoLogs("odoo.tools.mimetypes", "WARNING"):
            response = self.url_open(action["url"])
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.headers["Content-Type"], xlsx.MIMETYPE)
        self.assertTrue(response.content.startswith(b"PK\x03\x04"))
        return response

    def test_monthly_report_downloads_as_a_spreadsheet_without_warnings(self):
        wizard = (
            self.env["prepaid.monthly.report.wizard"]
            .with_user(self.accountant)
            .with_context(allowed_company_ids=self.company.ids)
            .create({"month": "2026-03-15", "company_id": self.company.id})
        )
        response = self.download(wizard.action_export_xlsx())
        self.assertIn(
            "monthly-report-2026-03.xlsx", response.headers["Content-Disposition"]
        )

    def test_bill_export_downloads_as_a_spreadsheet_without_warnings(self):
        bills = (
            self.env["prepaid.bill"]
            .with_user(self.accountant)
            .with_context(allowed_company_ids=self.company.ids)
        )
        response = self.download(bills.action_export_xlsx())
        self.assertIn(".xlsx", response.headers["Content-Disposition"])
