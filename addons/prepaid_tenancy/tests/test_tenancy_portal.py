from freezegun import freeze_time

from odoo.tests import HttpCase, new_test_user, tagged
from odoo.tools import mute_logger

from .common import MOVE_OUT
from .test_tenancy_debt_retention import DebtRetentionCase
from .test_tenancy_statement import REPORT


@tagged("post_install", "-at_install")
class TestTenancyPortal(HttpCase, DebtRetentionCase):
    """Over real HTTP: the tenant sees their tenancy, the deposit held and,
    after leaving, the settlement statement; never the room's later use."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.user_a, cls.user_b = (
            new_test_user(
                cls.env,
                login=login,
                groups="base.group_portal",
                company_id=cls.company.id,
                company_ids=[cls.company.id],
            )
            for login in ("tenancy_a", "tenancy_b")
        )
        receivable = cls.tenant.property_account_receivable_id
        (cls.user_a | cls.user_b).partner_id.property_account_receivable_id = receivable

    def test_former_tenant_sees_the_statement_but_not_the_next_tenants_use(self):
        tenancy = self.move_in(
            partner=self.user_a.partner_id, deposit_amount=200.0, charge_item_ids=[]
        )
        self.authenticate("tenancy_a", "tenancy_a")
        page = self.url_open(f"/my/tenancies/{tenancy.id}")
        self.assertEqual(page.status_code, 200)
        self.assertIn(tenancy.name, page.text)
        self.assertIn("200.00", page.text)  # deposit held
        self.assertNotIn("o_tenancy_statement", page.text)
        self.recharge(tenancy, 50.0)
        self.sim.energy_total = 1010.0
        with freeze_time(MOVE_OUT):
            following = tenancy._transfer(
                [{"meter": self.meter}],
                {
                    "partner_id": self.user_b.partner_id.id,
                    "tariff_id": self.flat.id,
                },
            )
            tenancy._settle(self.cash)
        # the next tenant uses 1,234.5 kWh more (a figure that stands out)
        self.sim.energy_total = 2244.5
        self.age_baselines(self.meter, hours=24)
        with freeze_time("2026-01-22 02:00:00"):
            self.meter.action_read_now()
            self.process_commands()
            self.bill()
        self.assertTrue(following.account_id.ledger_line_ids)
        self.authenticate("tenancy_a", "tenancy_a")
        listing = self.url_open("/my/tenancies")
        self.assertIn(tenancy.name, listing.text)
        self.assertNotIn(following.name, listing.text)
        page = self.url_open(f"/my/tenancies/{tenancy.id}")
        self.assertEqual(page.status_code, 200)
        # 50.00 - 8.00 + 200.00 deposit
        self.assertIn("242.00", page.text)
        self.assertIn("1010.00 kWh", page.text)
        self.assertNotIn("2244.5", page.text)
        self.assertNotIn("1234.5", page.text)
        self.assertIn("o_tenancy_statement", page.text)
        statement = self.url_open(f"/my/tenancies/{tenancy.id}/statement")
        self.assertEqual(statement.status_code, 200)
        self.assertIn("242.00", statement.text)
        self.assertNotIn("2244.5", statement.text)
        # the next tenant's tenancy is not theirs to see
        self.assertEqual(
            self.url_open(f"/my/tenancies/{following.id}").status_code, 404
        )
        self.assertEqual(
            self.url_open(f"/my/tenancies/{following.id}/statement").status_code, 404
        )
        # and the next tenant sees their own, without the former's settlement
        self.authenticate("tenancy_b", "tenancy_b")
        page = self.url_open(f"/my/tenancies/{following.id}")
        self.assertEqual(page.status_code, 200)
        self.assertNotIn("242.00", page.text)
        self.assertEqual(self.url_open(f"/my/tenancies/{tenancy.id}").status_code, 404)

    def test_deposit_held_then_retention_debt_and_the_statement_download(self):
        tenancy = self.move_in(
            partner=self.user_a.partner_id, deposit_amount=300.0, charge_item_ids=[]
        )
        self.authenticate("tenancy_a", "tenancy_a")
        listing = self.url_open("/my/tenancies")
        self.assertIn(tenancy.name, listing.text)
        self.assertIn("300.00", listing.text)  # the deposit held
        page = self.url_open(f"/my/tenancies/{tenancy.id}")
        self.assertIn("o_tenancy_deposit", page.text)
        self.assertIn("300.00", page.text)
        self.assertNotIn("o_tenancy_portal_settlement", page.text)
        self.assertEqual(
            self.url_open(f"/my/tenancies/{tenancy.id}/statement").status_code, 404
        )
        self.recharge(tenancy, 50.0)
        tenancy.account_id._add_debt(
            12.34, "tenancy", "Water of an earlier tenancy", key="portal-debt"
        )
        self.sim.energy_total = 1010.0  # 8.00
        self.move_out(tenancy, deposit_retained=45.0, retention_reason="Stained carpet")
        # 42.00 + 300.00 - 45.00 - 12.34
        self.assertEqual(tenancy.settle_refund, 284.66)
        page = self.url_open(f"/my/tenancies/{tenancy.id}")
        self.assertEqual(page.status_code, 200)
        for figure in ("Stained carpet", "45.00", "12.34", "284.66"):
            self.assertIn(figure, page.text)
        self.assertIn("o_tenancy_portal_retained", page.text)
        self.assertIn("o_tenancy_portal_debt", page.text)
        statement = self.url_open(f"/my/tenancies/{tenancy.id}/statement?download=true")
        self.assertEqual(statement.status_code, 200)
        self.assertIn("attachment", statement.headers["Content-Disposition"])
        self.assertIn(
            tenancy.name.replace("/", "_") + ".pdf",
            statement.headers["Content-Disposition"],
        )
        # (under tests the report is its HTML: Odoo renders no PDF in tests)
        for figure in ("Stained carpet", "45.00", "255.00", "12.34", "284.66"):
            self.assertIn(figure, statement.text)
        # another tenant sees none of it
        self.authenticate("tenancy_b", "tenancy_b")
        self.assertEqual(self.url_open(f"/my/tenancies/{tenancy.id}").status_code, 404)
        self.assertEqual(
            self.url_open(f"/my/tenancies/{tenancy.id}/statement").status_code, 404
        )
        self.assertNotIn(tenancy.name, self.url_open("/my/tenancies").text)

    def test_the_statement_is_a_pdf(self):
        tenancy = self.move_in(deposit_amount=100.0, charge_item_ids=[])
        self.move_out(tenancy)
        # wkhtmltopdf fetches the report's assets from this test server; an
        # unpatched wkhtmltopdf (Debian's) says on stderr that it ignores the
        # header and footer switches, which Odoo logs as a warning
        with mute_logger("odoo.addons.base.models.ir_actions_report"):
            pdf, kind = (
                self.env["ir.actions.report"]
                .with_context(force_report_rendering=True)
                ._render_qweb_pdf(REPORT, tenancy.ids)
            )
        self.assertEqual(kind, "pdf")
        self.assertTrue(pdf.startswith(b"%PDF"))
        self.assertGreater(len(pdf), 1000)
