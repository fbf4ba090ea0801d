import base64
from datetime import date

from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged

from .test_postpaid import PostpaidCase


@tagged("post_install", "-at_install")
class TestArrears(PostpaidCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env.company.email = "billing@example.com"

    def overdue_bill(self):
        self.january(self.meter1, used=100.0)
        run = self.new_run()
        run.action_compute()
        # invoiced (and due) on 1 February 2026: overdue ever since
        self.confirm(run)
        return run.bill_ids

    def test_overdue_account_is_listed_and_noticed_by_mail_with_the_pdf(self):
        bill = self.overdue_bill()
        arrears = self.env["prepaid.arrears"].search(
            [("account_id", "=", self.account1.id)]
        )
        self.assertEqual(arrears.amount_due, 80.0)
        self.assertEqual(arrears.invoice_count, 1)
        # The arrears view counts the days on the database's calendar
        # (CURRENT_DATE); the test reads the same clock, never Python's.
        self.env.cr.execute("SELECT CURRENT_DATE")
        today = self.env.cr.fetchone()[0]
        self.assertEqual(arrears.days_overdue, (today - date(2026, 2, 1)).days)
        self.assertFalse(arrears.last_notice)
        arrears.action_send_notice()
        notice = self.env["prepaid.arrears.notice"].search(
            [("account_id", "=", self.account1.id)]
        )
        self.assertEqual(notice.move_ids, bill.move_id)
        self.assertEqual(notice.amount_due, 80.0)
        mail = self.env["mail.mail"].search(
            [("model", "=", "prepaid.arrears.notice"), ("res_id", "=", notice.id)]
        )
        self.assertEqual(mail.recipient_ids, self.tenant)
        self.assertEqual(len(mail.attachment_ids), 1)
        arrears.invalidate_recordset()
        self.assertEqual(arrears.last_notice, notice.sent_at)
        html = (
            self.env["ir.actions.report"]
            ._render_qweb_html("prepaid_billing.report_arrears_notice", notice.ids)[0]
            .decode()
        )
        self.assertIn(bill.move_id.name, html)
        self.assertIn("Arrears Notice", html)
        self.assertIn("80.00", html)

    def test_paid_invoice_leaves_the_arrears_list(self):
        bill = self.overdue_bill()
        self.env["account.payment.register"].with_context(
            active_model="account.move", active_ids=bill.move_id.ids
        ).create({"journal_id": self.cash.id})._create_payments()
        self.assertFalse(
            self.env["prepaid.arrears"].search([("account_id", "=", self.account1.id)])
        )

    def test_automatic_cutoff_after_n_days_and_restore_when_paid(self):
        bill = self.overdue_bill()
        icp = self.env["ir.config_parameter"].sudo()
        Notice = self.env["prepaid.arrears.notice"]
        icp.set_param("prepaid_billing.arrears_cutoff_days", 0)
        Notice._cron_arrears_cutoff(self.account1 | self.account2)
        self.assertEqual(self.account1.supply_state, "on", "off by default")
        # set by an administrator in Settings
        self.env["res.config.settings"].create(
            {"prepaid_arrears_cutoff_days": 5}
        ).execute()
        self.assertEqual(icp.get_param("prepaid_billing.arrears_cutoff_days"), "5")
        with self.assertRaises(ValidationError):
            self.env["res.config.settings"].create({"prepaid_arrears_cutoff_days": -1})
        self.assertEqual(icp.get_param("prepaid_billing.arrears_cutoff_days"), "5")
        self.account1.protected = True
        Notice._cron_arrears_cutoff(self.account1 | self.account2)
        self.assertEqual(self.account1.supply_state, "cut_pending", "protected")
        self.account1.protected = False
        self.env["prepaid.billing.engine"]._cron_deferred_cutoffs(
            self.account1 | self.account2
        )
        self.assertEqual(self.account1.supply_state, "cut_off")
        self.assertEqual(self.account2.supply_state, "on")
        self.env["account.payment.register"].with_context(
            active_model="account.move", active_ids=bill.move_id.ids
        ).create({"journal_id": self.cash.id})._create_payments()
        Notice._cron_arrears_cutoff(self.account1 | self.account2)
        self.assertEqual(self.account1.supply_state, "on")

    def test_bills_and_arrears_export_to_xlsx(self):
        bill = self.overdue_bill()
        for records in (bill, self.env["prepaid.arrears"].search([])):
            action = records.action_export_xlsx()
            attachment = self.env["ir.attachment"].browse(
                int(action["url"].split("/")[3].split("?")[0])
            )
            self.assertTrue(base64.b64decode(attachment.datas).startswith(b"PK"))


@tagged("post_install", "-at_install")
class TestArrearsToDebt(PostpaidCase):
    def test_overdue_invoices_become_a_debt_recovered_from_top_ups(self):
        debt_account = self.env["account.account"].create(
            {
                "name": "Test tenant debt",
                "code": "TAD112",
                "account_type": "asset_receivable",
                "reconcile": True,
            }
        )
        self.company.write(
            {"prepaid_debt_account_id": debt_account.id, "prepaid_debt_percent": 25.0}
        )
        self.january(self.meter1, used=100.0)
        run = self.new_run()
        run.action_compute()
        self.confirm(run)  # invoiced and due on 1 February 2026: 80.00
        invoice = run.bill_ids.move_id
        account = self.account1
        line = account._move_arrears_to_debt()
        self.assertEqual((line.source, line.amount), ("arrears", 80.0))
        self.assertIn(invoice.name, line.name)
        self.assertEqual(account.debt_amount, 80.0)
        self.assertEqual(invoice.amount_residual, 0.0)
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        with self.assertRaises(UserError):
            account._move_arrears_to_debt()
        # the tenant turns prepaid; a top-up of 100 pays 25.00 of the debt
        account.mode = "prepaid"
        account._recharge(100.0, self.cash, "after-arrears", "cash")
        self.assertEqual(account.debt_amount, 55.0)
        self.assertEqual(account.balance, 75.0)
