from datetime import date, datetime, timedelta

import pytz
from freezegun import freeze_time

from odoo import fields
from odoo.exceptions import AccessError, UserError
from odoo.tests import HttpCase, new_test_user, tagged

from ..tools import daily
from ..tools import dashboard as shaping
from .common import BillingCase

TODAY = date(2026, 3, 15)


@tagged("post_install", "-at_install")
class TestDashboardShaping(BillingCase):
    """The plain-Python months and comparisons (no database needed)."""

    def test_months_wrap_around_the_year(self):
        self.assertEqual(
            shaping.months_of(date(2026, 1, 31)),
            (date(2025, 12, 1), date(2026, 1, 1), date(2026, 2, 1)),
        )
        self.assertEqual(
            shaping.months_of(date(2026, 12, 1)),
            (date(2026, 11, 1), date(2026, 12, 1), date(2027, 1, 1)),
        )

    def test_local_midnight_in_utc(self):
        self.assertEqual(
            shaping.utc_start(date(2026, 3, 1), "Asia/Shanghai"),
            datetime(2026, 2, 28, 16, 0),
        )
        # summer time in Paris: midnight is 22:00 UTC the day before
        self.assertEqual(
            shaping.utc_start(date(2026, 7, 1), "Europe/Paris"),
            datetime(2026, 6, 30, 22, 0),
        )

    def test_last_month_is_cut_to_the_same_days(self):
        # 6 December: 1 to 6 November
        self.assertEqual(shaping.same_days_end(date(2026, 12, 6)), date(2026, 11, 7))
        # 31 March: February has no 29th to 31st, all of it
        self.assertEqual(shaping.same_days_end(date(2026, 3, 31)), date(2026, 3, 1))
        self.assertEqual(shaping.same_days_end(date(2026, 1, 15)), date(2025, 12, 16))

    def test_change_is_none_without_last_month(self):
        self.assertIsNone(shaping.change_pct(5.0, 0.0))
        self.assertEqual(shaping.change_pct(15.0, 10.0), 50.0)
        self.assertEqual(shaping.change_pct(5.0, 10.0), -50.0)


@tagged("post_install", "-at_install")
class TestDashboardData(BillingCase):
    """Figures of a small fleet on 15 March 2026 (site in Asia/Shanghai),
    computed by hand: flat 0.80 per kWh, water 4.00 per m³."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.building2 = cls.env["prepaid.building"].create(
            {"name": "Tower 2", "site_id": cls.site.id}
        )
        cls.floor2 = cls.env["prepaid.floor"].create(
            {"name": "F2", "level": 2, "building_id": cls.building2.id}
        )
        cls.room3 = cls.env["prepaid.room"].create(
            {"name": "Shop 3", "floor_id": cls.floor2.id, "area_m2": 20}
        )
        cls.water_tariff = cls.make_tariff(
            "Water 4.00", utility="water", kind="flat", price=4.0
        )
        cls.meter1 = cls.make_meter(cls.gateway, 1, room=cls.room)
        cls.meter2 = cls.make_meter(cls.gateway, 2, room=cls.room2)
        cls.water_meter = cls.make_meter(cls.gateway, 3, kind="water", room=cls.room2)
        cls.meter3 = cls.make_meter(cls.gateway, 4, room=cls.room3)
        cls.idle_meter = cls.make_meter(cls.gateway, 5, room=cls.room3)
        with freeze_time("2026-01-20 02:00:00"):
            cls.account1 = cls.make_account(cls.meter1, opening=500.0)
            cls.account2 = cls.make_account(
                cls.meter2 | cls.water_meter,
                water_tariff=cls.water_tariff,
                opening=500.0,
            )
            cls.account3 = cls.make_account(cls.meter3, opening=500.0)
            cls.account4 = cls.make_account(cls.idle_meter, opening=10.0)
        cls.manager = cls.user_in(
            cls.company, "dash_manager", "prepaid_billing.group_billing_manager"
        )

    @classmethod
    def user_in(cls, company, login, group):
        """A user of ``company`` only, in ``group``."""
        return new_test_user(
            cls.env,
            login=login,
            groups=f"base.group_user,{group}",
            company_id=company.id,
            company_ids=[company.id],
        )

    def dashboard(self, user=None, **kwargs):
        """The dashboard as ``user`` (the billing manager) working in their
        company, on 15 March 2026."""
        user = user or self.manager
        Dashboard = self.env["prepaid.dashboard"].with_user(user)
        Dashboard = Dashboard.with_context(allowed_company_ids=user.company_ids.ids)
        return Dashboard.get_dashboard_data(today=TODAY, **kwargs)

    def fill(self):
        """Bill February, then March (UTC times; local is UTC+8)."""
        # February 10 local: 10 kWh (8.00)
        self.reading(self.meter1, 100.0, "2026-02-10 02:00:00")
        self.reading(self.meter1, 110.0, "2026-02-10 04:00:00")
        # baselines on 28 February, local evening
        self.reading(self.meter2, 50.0, "2026-02-28 10:00:00")
        self.reading(self.water_meter, 10.0, "2026-02-28 10:00:00")
        self.reading(self.meter3, 0.0, "2026-02-28 10:00:00")
        self.bill()
        # 17:00 UTC on 28 February is 01:00 on 1 March local: March's
        self.reading(self.meter2, 55.0, "2026-02-28 17:00:00")
        self.reading(self.meter1, 130.0, "2026-03-02 02:00:00")
        self.reading(self.water_meter, 12.0, "2026-03-03 00:00:00")
        self.reading(self.meter3, 40.0, "2026-03-05 00:00:00")
        self.bill()

    def test_figures_equal_the_hand_computed_ones(self):
        self.fill()
        # a charge item posted in March (local), 15.00
        self.env["prepaid.ledger.line"]._post(
            [
                {
                    "account_id": self.account3.id,
                    "line_type": "charge",
                    "amount": -15.0,
                    "name": "Property fee",
                    "date": datetime(2026, 3, 10, 1, 0),
                    "idempotency_key": "test-dashboard-fee",
                }
            ]
        )
        data = self.dashboard()
        self.assertEqual(
            data["months"],
            {
                "last": "2026-02-01",
                "this": "2026-03-01",
                "next": "2026-04-01",
                "last_to": "2026-02-16",
            },
        )
        self.assertIn({"id": self.site.id, "name": "Test Plaza"}, data["sites"])
        usage = data["usage"]
        # March: 20 + 5 + 40 kWh, 2 m³; 16 + 4 + 32 + 2 x 4.00
        self.assertEqual(usage["this"], {"kwh": 65.0, "m3": 2.0, "amount": 60.0})
        self.assertEqual(usage["last"], {"kwh": 10.0, "m3": 0.0, "amount": 8.0})
        self.assertEqual(usage["change"], {"kwh": 550.0, "m3": None, "amount": 650.0})
        buildings = [
            (b["name"], b["kwh"], b["m3"], b["amount"])
            for b in data["location"]["buildings"]
        ]
        self.assertEqual(
            buildings, [("Tower 2", 40.0, 0.0, 32.0), ("Tower 1", 25.0, 2.0, 28.0)]
        )
        floors = [(f["name"], f["kwh"]) for f in data["location"]["floors"]]
        self.assertEqual(floors, [("Tower 2 / F2", 40.0), ("Tower 1 / F1", 25.0)])
        top = [(r["name"], r["kwh"], r["m3"]) for r in data["top_consumers"]]
        self.assertEqual(
            top, [("Shop 3", 40.0, 0.0), ("Shop 1", 20.0, 0.0), ("Shop 2", 5.0, 2.0)]
        )
        balance = {s["state"]: s["count"] for s in data["balance_states"]}
        # 10.00 opening is below alarm 1 (50.00) and 2 (20.00), above 3 (5.00)
        self.assertEqual(balance["normal"], 3)
        self.assertEqual(balance["alarm2"], 1)
        self.assertEqual(sum(balance.values()), 4)
        revenue = data["revenue"]
        self.assertEqual(
            revenue["this"], {"consumption": 60.0, "charge": 15.0, "total": 75.0}
        )
        self.assertEqual(
            revenue["last"], {"consumption": 8.0, "charge": 0.0, "total": 8.0}
        )
        self.assertEqual(revenue["change"], 837.5)
        self.assertEqual(revenue["utc"]["this"], "2026-02-28 16:00:00")

    def test_this_month_so_far_is_compared_with_the_same_days_of_last_month(self):
        days = daily.Days()
        for day, kwh in ((date(2026, 2, 10), 10.0), (date(2026, 2, 20), 30.0)):
            at = datetime.combine(day, datetime.min.time())
            days.add(self.meter1.id, day, (at, kwh, 0.0), kwh, 0.0)
        self.env["prepaid.daily.usage"]._upsert(days)
        self.env["prepaid.ledger.line"]._post(
            [
                {
                    "account_id": self.account3.id,
                    "line_type": "charge",
                    "amount": -amount,
                    "name": "Property fee",
                    "date": when,
                    "idempotency_key": f"test-dashboard-same-days-{amount}",
                }
                # 15 February 23:00 local is in, 16 February 00:30 is not
                for amount, when in (
                    (7.0, datetime(2026, 2, 15, 15, 0)),
                    (9.0, datetime(2026, 2, 15, 16, 30)),
                )
            ]
        )
        data = self.dashboard()
        self.assertEqual(data["usage"]["last"]["kwh"], 10.0)
        self.assertEqual(data["revenue"]["last"]["charge"], 7.0)
        self.assertEqual(data["revenue"]["utc"]["last_to"], "2026-02-15 16:00:00")

    def test_suspect_readings_are_counted_not_their_meters(self):
        first = self.reading(self.meter1, 100.0, "2026-03-10 02:00:00")
        second = self.reading(self.meter1, 110.0, "2026-03-10 03:00:00")
        # two readings of one meter waiting for review
        self.env.cr.execute(
            "UPDATE prepaid_reading SET review_state = 'suspect' WHERE id IN %s",
            [(first.id, second.id)],
        )
        self.assertEqual(self.dashboard()["meters"]["suspect"], 2)

    def test_amounts_in_another_currency_are_named_not_added(self):
        self.fill()
        fee = self.env["prepaid.ledger.line"]._post(
            [
                {
                    "account_id": self.account3.id,
                    "line_type": "charge",
                    "amount": -15.0,
                    "name": "Property fee",
                    "date": datetime(2026, 3, 10, 1, 0),
                    "idempotency_key": "test-dashboard-foreign-fee",
                }
            ]
        )
        own = self.company.currency_id
        other = self.env.ref("base.EUR" if own.name != "EUR" else "base.USD")
        # A line of a company keeping its books in another currency.
        self.env.cr.execute(
            "UPDATE prepaid_ledger_line SET currency_id = %s WHERE id = %s",
            [other.id, fee.id],
        )
        fee.invalidate_recordset()
        data = self.dashboard()
        self.assertEqual(data["currency_id"], own.id)
        self.assertEqual(
            data["revenue"]["this"], {"consumption": 60.0, "charge": 0.0, "total": 60.0}
        )
        self.assertEqual(data["revenue"]["left_out"], other.name)
        self.assertEqual(
            self.dashboard(site_id=self.site.id)["revenue"]["left_out"], other.name
        )

    def test_problem_meters_and_cut_off_accounts_are_counted(self):
        self.meter1.write(
            {
                "state": "offline",
                "fault_kind": "timeout",
                "state_reason": "no reply from device 1 within 0.5 s",
            }
        )
        self.meter2.write({"state": "fault"})
        self.account2._write_guarded({"supply_state": "cut_off"})
        self.account3._write_guarded({"supply_state": "cut_failed"})
        self.account4._write_guarded({"supply_state": "cut_pending"})
        data = self.dashboard()
        meters = data["meters"]
        self.assertEqual((meters["offline"], meters["fault"]), (1, 1))
        self.assertEqual(
            {m["id"]: m["state"] for m in meters["list"]},
            {self.meter1.id: "offline", self.meter2.id: "fault"},
        )
        # the problem in the reader's words first, the driver's after
        self.assertEqual(
            {m["id"]: m["reason"] for m in meters["list"]},
            {
                self.meter1.id: "No answer in time: no reply from device 1 "
                "within 0.5 s",
                self.meter2.id: "",
            },
        )
        cut = data["cut_off"]
        self.assertEqual(cut["count"], 2)
        self.assertEqual(
            {a["id"]: a["rooms"] for a in cut["accounts"]},
            {self.account2.id: "Shop 2", self.account3.id: "Shop 3"},
        )
        self.assertEqual(
            {s["state"]: s["count"] for s in cut["by_state"]},
            {"cut_off": 1, "cut_failed": 1},
        )

    def test_site_filter_keeps_other_sites_out(self):
        self.fill()
        other = self.env["prepaid.site"].create(
            {"name": "Other Plaza", "tz": "Asia/Shanghai"}
        )
        data = self.dashboard(site_id=other.id)
        self.assertEqual(data["site_id"], other.id)
        self.assertEqual(data["usage"]["this"], {"kwh": 0.0, "m3": 0.0, "amount": 0.0})
        self.assertFalse(data["top_consumers"])
        self.assertEqual(sum(s["count"] for s in data["balance_states"]), 0)
        self.assertEqual(data["revenue"]["this"]["total"], 0.0)
        mine = self.dashboard(site_id=self.site.id)
        self.assertEqual(mine["usage"]["this"]["kwh"], 65.0)
        self.assertEqual(mine["revenue"]["this"]["total"], 60.0)

    def test_user_of_another_company_sees_nothing_of_it(self):
        self.fill()
        self.meter1.write({"state": "offline"})
        self.account2._write_guarded({"supply_state": "cut_off"})
        other_company = self.env["res.company"].create({"name": "Other Utility Co"})
        user = self.user_in(
            other_company, "dash_other", "prepaid_billing.group_billing_manager"
        )
        data = self.dashboard(user)
        self.assertFalse(data["sites"])
        self.assertEqual(data["usage"]["this"], {"kwh": 0.0, "m3": 0.0, "amount": 0.0})
        self.assertEqual(data["usage"]["last"]["kwh"], 0.0)
        self.assertFalse(data["location"]["buildings"])
        self.assertFalse(data["top_consumers"])
        self.assertEqual(sum(s["count"] for s in data["balance_states"]), 0)
        self.assertEqual((data["meters"]["offline"], data["meters"]["list"]), (0, []))
        self.assertEqual(data["cut_off"]["count"], 0)
        self.assertEqual(data["revenue"]["this"]["total"], 0.0)
        self.assertEqual(data["revenue"]["last"]["total"], 0.0)
        with self.assertRaises(UserError):
            self.dashboard(user, site_id=self.site.id)

    def test_metering_user_gets_no_revenue(self):
        self.fill()
        user = self.user_in(
            self.company, "dash_metering", "prepaid_metering.group_metering_user"
        )
        data = self.dashboard(user)
        self.assertIsNone(data["revenue"])
        self.assertEqual(data["usage"]["this"]["kwh"], 65.0)
        biller = self.user_in(
            self.company, "dash_billing", "prepaid_billing.group_billing_user"
        )
        self.assertEqual(self.dashboard(biller)["revenue"]["this"]["total"], 60.0)

    def test_user_without_metering_rights_is_refused(self):
        user = self.user_in(self.company, "dash_nobody", "base.group_user")
        with self.assertRaises(AccessError):
            self.dashboard(user)

    def test_open_meter_events_are_counted(self):
        Event = self.env["prepaid.meter.event"]
        Event.create({"meter_id": self.meter1.id, "kind": "reverse_energy"})
        Event.create({"meter_id": self.meter2.id, "kind": "cover_opened"})
        Event.create(
            {"meter_id": self.meter2.id, "kind": "phase_loss"}
        ).action_acknowledge()
        data = self.dashboard(site_id=self.site.id)
        self.assertEqual(data["meters"]["signals"], 2)


@tagged("post_install", "-at_install")
class TestDashboardTour(HttpCase, BillingCase):
    """The client action in a browser: KPI cards and both charts render."""

    def test_dashboard_renders_cards_and_charts(self):
        meter = self.make_meter(self.gateway, 1, room=self.room)
        water = self.make_meter(self.gateway, 2, kind="water", room=self.room2)
        water_tariff = self.make_tariff(
            "Water 4.00", utility="water", kind="flat", price=4.0
        )
        self.make_account(meter | water, water_tariff=water_tariff, opening=500.0)
        problem = self.make_meter(self.gateway, 3, room=self.room2)
        problem.write({"state": "offline", "state_reason": "No answer"})
        # today's local day of the site, written the way billing writes it
        tz = pytz.timezone(self.site.tz)
        now = fields.Datetime.now()
        today = pytz.utc.localize(now).astimezone(tz).date()
        days = daily.Days()
        days.add(meter.id, today, (now - timedelta(minutes=1), 112.5, 0.0), 12.5, 0.0)
        days.add(water.id, today, (now - timedelta(minutes=1), 0.0, 3.25), 0.0, 3.25)
        self.env["prepaid.daily.usage"]._upsert(days)
        new_test_user(
            self.env,
            login="dash_tour",
            groups="base.group_user,prepaid_billing.group_billing_user",
            company_id=self.company.id,
            company_ids=[self.company.id],
        )
        self.start_tour(
            "/odoo/energy-dashboard", "prepaid_energy_dashboard", login="dash_tour"
        )
