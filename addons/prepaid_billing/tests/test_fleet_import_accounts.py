import base64

from odoo.tests import tagged

from .common import BillingCase

HEADER = "type,ref,parent,name,host,device_id,profiles,meters,tariff,opening_balance"


@tagged("post_install", "-at_install")
class TestFleetImportAccounts(BillingCase):
    """Tenants and prepaid accounts from the fleet table, opened with their
    opening balance posted through the accounts' own opening."""

    def table(self, tag, opening="50"):
        tariff = self.xmlid(self.flat)
        return "\n".join(
            [
                HEADER,
                f"site,{tag}S,,Site {tag},,,,,,",
                f"gateway,{tag}G,{tag}S,gw,127.0.0.1,,,,,",
                f"meter,{tag}M1,{tag}G,m1,,1,acrel_ddsy1352 px_prepaid_v1,,,",
                f"meter,{tag}M2,{tag}G,m2,,2,acrel_ddsy1352 px_prepaid_v1,,,",
                f"tenant,{tag}T,,Tenant {tag},,,,,,",
                f"account,{tag}A,{tag}T,,,,,{tag}M1 {tag}M2,{tariff},{opening}",
            ]
        )

    def xmlid(self, record):
        self.env["ir.model.data"].create(
            {
                "module": "__import__",
                "name": f"tariff_{record.id}",
                "model": record._name,
                "res_id": record.id,
            }
        )
        return f"tariff_{record.id}"

    def job(self, content, journal=True):
        return self.env["prepaid.fleet.import"].create(
            {
                "file": base64.b64encode(content.encode()),
                "filename": "fleet.csv",
                "company_id": self.company.id,
                "opening_journal_id": self.cash.id if journal else False,
            }
        )

    def test_accounts_are_opened_with_their_opening_balance_posted(self):
        job = self.job(self.table("A1"))
        job.action_import()
        self.assertEqual(job.state, "done", job.issue_text)
        account = self.env.ref("__import__.A1A")
        self.assertEqual(account.state, "open")
        self.assertEqual(account.partner_id, self.env.ref("__import__.A1T"))
        self.assertEqual(account.tariff_id, self.flat)
        self.assertEqual(
            account.meter_ids,
            self.env.ref("__import__.A1M1") | self.env.ref("__import__.A1M2"),
        )
        self.assertEqual(account.balance, 50.0)
        opening = account.ledger_line_ids.filtered(
            lambda line: line.line_type == "opening"
        )
        self.assertEqual(opening.amount, 50.0)
        self.assert_reconciled()

    def test_opening_balance_without_journal_is_an_error_and_nothing_is_made(self):
        job = self.job(self.table("A2"), journal=False)
        job.action_import()
        self.assertEqual(job.state, "invalid")
        self.assertIn("Line 7: An opening balance needs", job.issue_text)
        self.assertFalse(self.env.ref("__import__.A2S", raise_if_not_found=False))

    def test_unknown_meter_of_an_account_is_reported(self):
        content = self.table("A3").replace("A3M1 A3M2", "A3M1 A3M9")
        job = self.job(content)
        job.action_import()
        self.assertEqual(job.state, "invalid")
        self.assertIn("Line 7: meters A3M9", job.issue_text)
