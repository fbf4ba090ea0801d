import html
import re
from datetime import timedelta

from freezegun import freeze_time

from odoo import Command
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

    def charge(self, account, amount, kwh, at, line_type="charge"):
        with freeze_time(at):
            self.env["prepaid.ledger.line"]._post(
                [
                    {
                        "account_id": account.id,
                        "line_type": line_type,
                        "amount": -amount,
                        "name": "test use" if kwh else "Property fee",
                        **({"quantity": kwh, "unit": "kWh"} if kwh else {}),
                    }
                ]
            )
            self.env["prepaid.supply.control"]._after_balance_change(account)

    @staticmethod
    def text(page):
        """The page's words, without tags and with plain spaces."""
        words = re.sub(r"<[^>]+>", " ", page.text).replace("\xa0", " ")
        return re.sub(r"\s+", " ", html.unescape(words).replace("\xa0", " "))

    def test_tenant_sees_own_balance_meters_and_days_left(self):
        self.charge(self.account_a, 14.0, 17.5, "2026-03-05 04:00:00", "consumption")
        with freeze_time("2026-03-06 04:00:00"):
            self.authenticate("tenant_a", "tenant_a")
            page = self.url_open(f"/my/prepaid/{self.account_a.id}")
        self.assertEqual(page.status_code, 200)
        self.assertIn("106.00", page.text)
        self.assertIn(self.meter_a.name, page.text)
        # 14 used in the 4 days since the account opened (2 March, 12:00
        # local): 3.50 a day, 106 lasts 30 days
        self.assertIn("<b>30</b> days left", page.text)
        listing = self.url_open("/my/prepaid")
        self.assertIn(self.account_a.name, listing.text)
        self.assertIn(self.account_a._portal_title(), listing.text)
        self.assertNotIn(self.account_b.name, listing.text)

    def test_balance_page_speaks_the_tenants_words(self):
        self.charge(self.account_a, 14.0, 17.5, "2026-03-05 04:00:00", "consumption")
        self.charge(self.account_a, 30.0, 0.0, "2026-03-05 05:00:00")  # monthly fee
        with freeze_time("2026-03-06 04:00:00"):
            self.authenticate("tenant_a", "tenant_a")
            page = self.url_open(f"/my/prepaid/{self.account_a.id}")
        words = self.text(page)
        # titled by room and tenant, the reference aside
        title = f"Shop 1 \N{EM DASH} {self.user_a.partner_id.name}"
        self.assertRegex(
            page.text, rf'breadcrumb-item active">\s*{re.escape(title)}\s*<'
        )
        self.assertIn(f"Account no. {self.account_a.name}", words)
        # one state, the supply in words, days from metered use only (the
        # fee left out: 76 at 3.50 a day, the 14 used in the 4 days open)
        self.assertEqual(page.text.count("o_prepaid_state"), 1, words)
        self.assertIn("Normal", words)
        self.assertIn("Electricity supply: not read yet", words)
        self.assertNotIn("Water supply", words)
        self.assertNotIn("Relay", words)
        self.assertIn("About 21 days left", words)
        # no invoice yet: no button to an empty list
        self.assertNotIn("/my/invoices", page.text)

    def test_cut_off_tenant_is_told_the_top_up_that_restores_supply(self):
        self.charge(self.account_a, 203.87, 250.0, "2026-03-05 04:00:00", "consumption")
        self.assertEqual(self.account_a.balance, -83.87)
        self.assertEqual(self.account_a.supply_state, "cut_off")
        self.meter_a.switch_state = "off"
        with freeze_time("2026-03-06 04:00:00"):
            self.authenticate("tenant_a", "tenant_a")
            page = self.url_open(f"/my/prepaid/{self.account_a.id}")
        words = self.text(page)
        # restored above zero: 83.87 brings it to 0.00, one cent more is needed
        self.assertIn("Top up at least ¥ 83.88 to restore supply.", words)
        self.assertNotIn("days left", words)
        self.assertEqual(page.text.count("o_prepaid_state"), 1, words)
        self.assertIn("Supply cut off", words)
        self.assertNotIn("Cut Off", words)
        self.assertIn("Electricity supply: Off", words)

    def make_bill(self, account, amount, state="confirmed", start="2026-03-01"):
        product = self.env["product.product"].create(
            {"name": "Electricity (postpaid)", "type": "service"}
        )
        return self.env["prepaid.bill"].create(
            {
                "name": f"BILL/{account.name}/{start}",
                "account_id": account.id,
                "partner_id": account.partner_id.id,
                "company_id": account.company_id.id,
                "currency_id": account.currency_id.id,
                "date_from": start,
                "date_to": "2026-03-31",
                "state": state,
                "amount_total": amount,
                "line_ids": [
                    Command.create(
                        {
                            "product_id": product.id,
                            "name": "Electricity 150 kWh",
                            "quantity": 150.0,
                            "unit": "kWh",
                            "unit_price": 0.8,
                            "amount": amount,
                        }
                    )
                ],
            }
        )

    def test_tenant_sees_own_issued_bills_only(self):
        issued = self.make_bill(self.account_a, 120.0)
        draft = self.make_bill(self.account_a, 77.0, state="draft", start="2026-02-01")
        other = self.make_bill(self.account_b, 99.0)
        env_a = self.env(user=self.user_a)
        self.assertEqual(env_a["prepaid.bill"].search([]), issued)
        self.assertEqual(env_a["prepaid.bill.line"].search([]), issued.line_ids)
        self.authenticate("tenant_a", "tenant_a")
        listing = self.url_open("/my/prepaid/bills")
        self.assertEqual(listing.status_code, 200)
        self.assertIn(issued.name, listing.text)
        self.assertNotIn(draft.name, listing.text)
        self.assertNotIn(other.name, listing.text)
        page = self.url_open(f"/my/prepaid/bill/{issued.id}")
        self.assertEqual(page.status_code, 200)
        self.assertIn("Electricity 150 kWh", page.text)
        self.assertIn("120.00", page.text)
        for bill in (draft, other):
            response = self.url_open(f"/my/prepaid/bill/{bill.id}")
            self.assertEqual(response.status_code, 404, bill.name)
            self.assertNotIn(bill.name, response.text)
        home = self.url_open("/my/home")
        self.assertIn("/my/prepaid/bills", home.text)

    def test_tenant_a_gets_404_on_every_url_of_tenant_b(self):
        self.authenticate("tenant_a", "tenant_a")
        b = self.account_b.id
        bill_b = self.make_bill(self.account_b, 99.0)
        for url in (
            f"/my/prepaid/{b}",
            f"/my/prepaid/{b}/usage",
            f"/my/prepaid/{b}/ledger",
            f"/my/prepaid/{b}/ledger/page/2",
            f"/my/prepaid/meter/{self.meter_b.id}",
            f"/my/prepaid/bill/{bill_b.id}",
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

    def test_within_the_allowed_credit_the_tenant_is_told_to_clear_the_debt(self):
        self.account_a.credit_limit = 100.0
        self.charge(self.account_a, 130.0, 160.0, "2026-03-05 04:00:00", "consumption")
        self.assertEqual(self.account_a.supply_state, "on")
        self.assertEqual(
            self.account_a._portal_topup_advice().replace("\xa0", " "),
            "Your balance is used up: top up at least ¥ 10.01 to bring it above zero.",
        )
        self.assertEqual(self.account_a._portal_state()[0], "Overdrawn")

    def test_topup_of_a_non_finite_amount_is_refused_with_the_form_message(self):
        self.authenticate("tenant_a", "tenant_a")
        token = self._csrf()
        url = f"/my/prepaid/{self.account_a.id}/topup"
        for amount in ("inf", "-inf", "Infinity", "1e400", "nan"):
            response = self.url_open(url, data={"amount": amount, "csrf_token": token})
            self.assertEqual(response.status_code, 200, amount)
            self.assertIn("alert-danger", response.text, amount)
            self.assertIn("Enter an amount, e.g. 100.", response.text, amount)
        Tx = self.env["payment.transaction"]
        self.assertFalse(Tx.search([("prepaid_account_id", "=", self.account_a.id)]))

    def test_usage_series_by_local_day_and_month(self):
        # Energy from the daily aggregates billing keeps (local days of the
        # Shanghai site), charge items from the wallet; 23:30 UTC is 07:30
        # the next day in Shanghai.
        with freeze_time("2026-03-06 04:00:00"):
            for kwh, at in (
                (100.0, "2026-03-02 06:00:00"),
                (110.0, "2026-03-03 23:30:00"),
                (112.5, "2026-03-04 01:00:00"),
            ):
                self.reading(self.meter_a, kwh, at)
            self.bill()
        self.charge(self.account_a, 3.0, 0.0, "2026-03-04 02:00:00")
        self.charge(self.account_a, 5.0, 0.0, "2026-02-10 04:00:00")
        by_reading = {c.reading_id.id: c.amount for c in self.charges(self.meter_a)}
        expected = {}  # local day -> [amount, kWh]
        for reading in self.meter_a.reading_ids:
            day = (reading.read_at + timedelta(hours=8)).strftime("%m-%d")
            point = expected.setdefault(day, [0.0, 0.0])
            point[0] += by_reading.get(reading.id, 0.0)
            point[1] += reading.delta_kwh
        self.assertEqual(expected["03-04"][1], 12.5)  # 100 -> 110 -> 112.5
        self.assertGreater(expected["03-04"][0], 0)
        with freeze_time("2026-03-06 04:00:00"):
            daily = self.account_a._portal_usage_series("day")
            monthly = self.account_a._portal_usage_series("month")
        self.assertEqual(len(daily), 30)
        self.assertEqual(daily[-1]["label"], "03-06")
        by_day = {point["label"]: point for point in daily}
        for day, (amount, kwh) in expected.items():
            self.assertAlmostEqual(by_day[day]["amount"], amount, 2, day)
            self.assertAlmostEqual(by_day[day]["energy_kwh"], kwh, 3, day)
        # charge items apart from the cost of use
        self.assertEqual(by_day["03-04"]["charges"], 3.0)
        self.assertEqual(by_day["02-10"]["charges"], 5.0)
        self.assertEqual(sum(point["charges"] for point in daily), 8.0)
        self.assertEqual(by_day["03-03"]["amount"], 0.0)
        self.assertEqual(len(monthly), 12)
        by_month = {point["label"]: point for point in monthly}
        march = sum(amount for amount, _kwh in expected.values())
        self.assertAlmostEqual(by_month["2026-03"]["amount"], march, 2)
        self.assertEqual(by_month["2026-03"]["charges"], 3.0)
        self.assertEqual(by_month["2026-02"]["charges"], 5.0)
        self.assertAlmostEqual(
            by_month["2026-03"]["energy_kwh"],
            sum(kwh for _amount, kwh in expected.values()),
            3,
        )
        self.assertEqual(by_month["2026-02"]["amount"], 0.0)
        self.assertEqual(by_month["2026-02"]["energy_kwh"], 0.0)
        with freeze_time("2026-03-06 04:00:00"):
            self.authenticate("tenant_a", "tenant_a")
            page = self.url_open(f"/my/prepaid/{self.account_a.id}/usage")
        self.assertEqual(page.status_code, 200)
        self.assertIn("o_prepaid_chart", page.text)

    def test_usage_charts_name_their_units_include_today_and_skip_water(self):
        with freeze_time("2026-03-06 04:00:00"):
            self.reading(self.meter_a, 100.0, "2026-03-05 20:00:00")
            # 10:00 on 6 March in Shanghai: today's use
            self.reading(self.meter_a, 104.5, "2026-03-06 02:00:00")
            self.bill()
            daily = self.account_a._portal_usage_series("day")
            self.assertEqual(daily[-1]["label"], "03-06")
            self.assertAlmostEqual(daily[-1]["energy_kwh"], 4.5, 3)
            (chart,) = self.account_a._portal_usage_charts(daily, label_every=7)
            self.authenticate("tenant_a", "tenant_a")
            page = self.url_open(f"/my/prepaid/{self.account_a.id}/usage")
        self.assertEqual((chart["key"], chart["unit"]), ("energy_kwh", "kWh"))
        self.assertEqual(
            chart["ticks"],
            ["0", "1", "2", "3", "4", "5"],
        )
        self.assertTrue(chart["points"][-1]["show_label"])
        self.assertEqual(chart["points"][-1]["percent"], 90.0)
        words = self.text(page)
        self.assertIn("o_prepaid_chart_energy_kwh", page.text)
        self.assertIn("Electricity (kWh)", words)
        self.assertIn("5 kWh", words)  # the top of the value axis
        self.assertIn("03-06", words)  # today on the time axis
        # an electricity-only tenant gets no water chart nor column
        self.assertNotIn("o_prepaid_chart_volume_m3", page.text)
        self.assertNotIn("m³", words)

    def test_times_show_in_the_sites_time_zone(self):
        # the site is in Shanghai, the tenant's browser profile in New York
        self.user_a.tz = "America/New_York"
        self.charge(self.account_a, 2.0, 2.5, "2026-03-02 16:35:00", "consumption")
        self.reading(self.meter_a, 100.0, "2026-03-02 16:35:00")
        self.authenticate("tenant_a", "tenant_a")
        for url in (
            f"/my/prepaid/{self.account_a.id}",
            f"/my/prepaid/{self.account_a.id}/ledger",
            f"/my/prepaid/meter/{self.meter_a.id}",
        ):
            words = self.text(self.url_open(url))
            self.assertIn("03/03/2026 00:35", words, url)
            self.assertNotIn(":35:00", words.replace("00:35:00", ""), url)

    def test_topup_messages_show_money_and_checkout_offers_a_way_back(self):
        self.authenticate("tenant_a", "tenant_a")
        token = self._csrf()
        url = f"/my/prepaid/{self.account_a.id}/topup"
        refused = self.url_open(url, data={"amount": "1", "csrf_token": token})
        self.assertIn("Top up between ¥ 10.00 and ¥ 5,000.00.", self.text(refused))
        checkout = self.url_open(url, data={"amount": "88", "csrf_token": token})
        self.assertIn(
            f'o_wechatpay_cancel" href="/my/prepaid/{self.account_a.id}"',
            checkout.text,
        )

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
