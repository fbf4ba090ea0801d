from freezegun import freeze_time

from odoo.tests import new_test_user, tagged

from .common import WeChatCase


@tagged("post_install", "-at_install")
class TestPortal(WeChatCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        users = []
        for login in ("tenant_a", "tenant_b"):
            users.append(
                new_test_user(
                    cls.env,
                    login=login,
                    groups="base.group_portal",
                    company_id=cls.company.id,
                    company_ids=[cls.company.id],
                )
            )
        cls.user_a, cls.user_b = users
        cls.meter_a = cls.make_meter(cls.gateway, 21, room=cls.room)
        cls.meter_b = cls.make_meter(cls.gateway, 22, room=cls.room2)
        cls.room.tenant_id = cls.user_a.partner_id
        cls.room2.tenant_id = cls.user_b.partner_id
        with freeze_time("2026-03-02 04:00:00"):
            cls.account_a = cls.make_account(
                cls.meter_a, opening=120.0, partner_id=cls.user_a.partner_id.id
            )
            cls.account_b = cls.make_account(
                cls.meter_b, opening=80.0, partner_id=cls.user_b.partner_id.id
            )

    def charge(self, account, amount, kwh, at):
        with freeze_time(at):
            self.env["prepaid.ledger.line"]._post(
                [
                    {
                        "account_id": account.id,
                        "line_type": "charge",
                        "amount": -amount,
                        "quantity": kwh,
                        "unit": "kWh",
                        "name": "test use",
                    }
                ]
            )

    def test_tenant_sees_own_balance_meters_and_days_left(self):
        self.charge(self.account_a, 14.0, 17.5, "2026-03-05 04:00:00")
        with freeze_time("2026-03-06 04:00:00"):
            self.authenticate("tenant_a", "tenant_a")
            page = self.url_open(f"/my/prepaid/{self.account_a.id}")
        self.assertEqual(page.status_code, 200)
        self.assertIn("106.00", page.text)
        self.assertIn(self.meter_a.name, page.text)
        # 14 charged over the last 7 days: 2 a day, 106 lasts 53 days
        self.assertIn("<b>53</b> days left", page.text)
        listing = self.url_open("/my/prepaid")
        self.assertIn(self.account_a.name, listing.text)
        self.assertNotIn(self.account_b.name, listing.text)

    def test_tenant_a_gets_404_on_every_url_of_tenant_b(self):
        self.authenticate("tenant_a", "tenant_a")
        b = self.account_b.id
        for url in (
            f"/my/prepaid/{b}",
            f"/my/prepaid/{b}/usage",
            f"/my/prepaid/{b}/ledger",
            f"/my/prepaid/{b}/ledger/page/2",
            f"/my/prepaid/meter/{self.meter_b.id}",
        ):
            response = self.url_open(url)
            self.assertIn(response.status_code, (403, 404), url)
            self.assertNotIn(self.account_b.name, response.text, url)
        response = self.url_open(
            f"/my/prepaid/{b}/topup",
            data={"amount": "100", "csrf_token": self._csrf()},
            allow_redirects=False,
        )
        self.assertIn(response.status_code, (403, 404))
        self.assertFalse(
            self.env["payment.transaction"].search(
                [("prepaid_account_id", "=", self.account_b.id)]
            )
        )

    def test_record_rules_keep_tenants_apart_in_the_orm(self):
        env_a = self.env(user=self.user_a)
        self.assertEqual(env_a["prepaid.account"].search([]), self.account_a)
        self.assertEqual(env_a["prepaid.meter"].search([]), self.meter_a)
        self.assertEqual(env_a["prepaid.room"].search([]), self.room)
        lines = env_a["prepaid.ledger.line"].search([])
        self.assertEqual(lines.account_id, self.account_a)
        self.reading(self.meter_b, 5.0, "2026-03-02 05:00:00")
        self.assertFalse(
            env_a["prepaid.reading"].search([("meter_id", "=", self.meter_b.id)])
        )

    def _csrf(self):
        page = self.url_open(f"/my/prepaid/{self.account_a.id}")
        marker = 'name="csrf_token" value="'
        return page.text.split(marker, 1)[1].split('"', 1)[0]

    def test_topup_outside_min_max_is_refused_and_creates_nothing(self):
        self.authenticate("tenant_a", "tenant_a")
        token = self._csrf()
        url = f"/my/prepaid/{self.account_a.id}/topup"
        for amount in ("1", "99999", "abc"):
            response = self.url_open(url, data={"amount": amount, "csrf_token": token})
            self.assertEqual(response.status_code, 200)
            self.assertIn("alert-danger", response.text)
        Tx = self.env["payment.transaction"]
        self.assertFalse(Tx.search([("prepaid_account_id", "=", self.account_a.id)]))
        response = self.url_open(url, data={"amount": "88", "csrf_token": token})
        self.assertIn("o_wechatpay_qr", response.text)
        tx = Tx.search([("prepaid_account_id", "=", self.account_a.id)])
        self.assertEqual(tx.amount, 88.0)
        self.assertEqual(tx.landing_route, f"/my/prepaid/{self.account_a.id}")

    def test_usage_series_by_local_day_and_month(self):
        # 23:30 UTC is 07:30 the next day in Shanghai
        self.charge(self.account_a, 3.0, 4.0, "2026-03-03 23:30:00")
        self.charge(self.account_a, 2.0, 2.5, "2026-03-04 01:00:00")
        self.charge(self.account_a, 5.0, 6.0, "2026-02-10 04:00:00")
        with freeze_time("2026-03-06 04:00:00"):
            daily = self.account_a._portal_usage_series("day")
            monthly = self.account_a._portal_usage_series("month")
        self.assertEqual(len(daily), 30)
        self.assertEqual(daily[-1]["label"], "03-06")
        by_day = {point["label"]: point for point in daily}
        self.assertEqual(by_day["03-04"]["amount"], 5.0)
        self.assertEqual(by_day["03-04"]["energy_kwh"], 6.5)
        self.assertEqual(by_day["03-04"]["percent"], 100.0)
        self.assertEqual(by_day["03-03"]["amount"], 0.0)
        self.assertEqual(len(monthly), 12)
        by_month = {point["label"]: point["amount"] for point in monthly}
        self.assertEqual(by_month["2026-03"], 5.0)
        self.assertEqual(by_month["2026-02"], 5.0)
        with freeze_time("2026-03-06 04:00:00"):
            self.authenticate("tenant_a", "tenant_a")
            page = self.url_open(f"/my/prepaid/{self.account_a.id}/usage")
        self.assertEqual(page.status_code, 200)
        self.assertIn("o_prepaid_chart", page.text)

    def test_grant_portal_access_opens_the_portal_wizard_for_the_tenant(self):
        action = self.account_a.action_grant_portal_access()
        self.assertEqual(action["res_model"], "portal.wizard")
        wizard = self.env["portal.wizard"].with_context(**action["context"]).create({})
        self.assertEqual(wizard.user_ids.partner_id, self.user_a.partner_id)

    def test_topup_is_never_above_the_billing_recharge_cap(self):
        self.company.prepaid_max_recharge_amount = 60.0
        self.authenticate("tenant_a", "tenant_a")
        token = self._csrf()
        page = self.url_open(f"/my/prepaid/{self.account_a.id}")
        self.assertIn('max="60.0"', page.text)
        response = self.url_open(
            f"/my/prepaid/{self.account_a.id}/topup",
            data={"amount": "88", "csrf_token": token},
        )
        self.assertIn("alert-danger", response.text)
        self.assertFalse(
            self.env["payment.transaction"].search(
                [("prepaid_account_id", "=", self.account_a.id)]
            )
        )
