from freezegun import freeze_time

from odoo.tests import new_test_user, tagged

from .common import WeChatCase


@tagged("post_install", "-at_install")
class TestPortalDebtAndEmergency(WeChatCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        debt_account = cls.env["account.account"].create(
            {
                "name": "Test tenant debt",
                "code": "TWD112",
                "account_type": "asset_receivable",
                "reconcile": True,
            }
        )
        cls.company.write(
            {
                "prepaid_debt_account_id": debt_account.id,
                "prepaid_debt_percent": 25.0,
                "prepaid_emergency_credit_amount": 20.0,
            }
        )
        cls.user = new_test_user(
            cls.env,
            login="tenant_debt",
            groups="base.group_portal",
            company_id=cls.company.id,
            company_ids=[cls.company.id],
        )
        cls.other = new_test_user(
            cls.env,
            login="tenant_other",
            groups="base.group_portal",
            company_id=cls.company.id,
            company_ids=[cls.company.id],
        )
        meter = cls.make_meter(cls.gateway, 31, room=cls.room)
        other_meter = cls.make_meter(cls.gateway, 32, room=cls.room2)
        cls.room.tenant_id = cls.user.partner_id
        cls.room2.tenant_id = cls.other.partner_id
        with freeze_time("2026-03-02 04:00:00"):
            cls.own = cls.make_account(
                meter, opening=4.0, partner_id=cls.user.partner_id.id
            )
            cls.others = cls.make_account(
                other_meter, opening=80.0, partner_id=cls.other.partner_id.id
            )
        cls.provider.wechatpay_topup_presets = "50,100"

    def page(self):
        response = self.url_open(f"/my/prepaid/{self.own.id}")
        self.assertEqual(response.status_code, 200)
        return response.text

    def csrf(self, page):
        return page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]

    def test_the_page_shows_the_debt_and_what_the_next_top_up_recovers(self):
        self.own._add_debt(500.0, "manual", "Earlier tenancy")
        self.authenticate("tenant_debt", "tenant_debt")
        page = self.page()
        self.assertIn("o_prepaid_debt", page)
        # 25 % of the first preset, 50: 12.50
        self.assertIn(self.own._debt_note(50.0), page)
        self.assertIn("12.50", self.own._debt_note(50.0))

    def test_the_tenant_takes_the_emergency_credit_once(self):
        # 4.00 is at the last alarm level (5.00): the offer shows
        self.env["prepaid.supply.control"]._after_balance_change(self.own)
        self.assertTrue(self.own.emergency_offered)
        self.authenticate("tenant_other", "tenant_other")
        token = self.csrf(self.url_open(f"/my/prepaid/{self.others.id}").text)
        response = self.url_open(
            f"/my/prepaid/{self.own.id}/emergency", data={"csrf_token": token}
        )
        self.assertEqual(response.status_code, 404, "not the other tenant's")
        self.assertEqual(self.own.emergency_state, "none")
        self.authenticate("tenant_debt", "tenant_debt")
        page = self.page()
        self.assertIn("o_prepaid_emergency", page)
        response = self.url_open(
            f"/my/prepaid/{self.own.id}/emergency", data={"csrf_token": self.csrf(page)}
        )
        self.assertEqual(response.status_code, 200)
        self.own.invalidate_recordset()
        self.assertEqual(self.own.emergency_state, "taken")
        self.assertEqual(self.own.emergency_taken_amount, 20.0)
        self.assertIn("o_prepaid_emergency_taken", response.text)
        # a second time is refused with the reason, nothing changes
        response = self.url_open(
            f"/my/prepaid/{self.own.id}/emergency", data={"csrf_token": self.csrf(page)}
        )
        self.assertIn("alert-danger", response.text)
        self.assertEqual(self.own.emergency_taken_amount, 20.0)
