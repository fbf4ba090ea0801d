from freezegun import freeze_time

from odoo.tests import HttpCase, new_test_user, tagged

from .common import MOVE_OUT, TenancyCase


@tagged("post_install", "-at_install")
class TestTenancyPortal(HttpCase, TenancyCase):
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


@tagged("post_install", "-at_install")
class TestTenancyStatement(TenancyCase):
    def test_statement_in_english_and_chinese(self):
        tenancy = self.move_in(deposit_amount=500.0)
        self.recharge(tenancy, 300.0)
        self.sim.energy_total = 1100.0
        self.move_out(tenancy)
        Report = self.env["ir.actions.report"]
        name = "prepaid_tenancy.action_report_tenancy_statement"
        html = Report._render_qweb_html(name, tenancy.ids)[0].decode()
        for figure in (
            "110.00",
            "500.00",
            "610.00",
            "1100.00 kWh",
            "Refunded to the tenant",
        ):
            self.assertIn(figure, html)
        self.env["res.lang"]._activate_lang("zh_CN")
        self.env["ir.module.module"].search(
            [("name", "=", "prepaid_tenancy")]
        )._load_module_terms(["prepaid_tenancy"], ["zh_CN"], overwrite=True)
        self.tenant.lang = "zh_CN"
        html = Report._render_qweb_html(name, tenancy.ids)[0].decode()
        self.assertIn("结算单", html)
        self.assertIn("610.00", html)
        # (the PDF itself is wkhtmltopdf's rendering of this HTML: it fetches
        # the report assets from this server, which a test cursor holds)

    def test_the_statement_before_settlement_says_so(self):
        tenancy = self.move_in(charge_item_ids=[])
        self.move_out(tenancy, settle=False)
        html = (
            self.env["ir.actions.report"]
            ._render_qweb_html(
                "prepaid_tenancy.action_report_tenancy_statement", tenancy.ids
            )[0]
            .decode()
        )
        self.assertIn("Not settled yet", html)
