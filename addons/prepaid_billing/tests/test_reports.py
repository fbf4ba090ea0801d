import base64
import io
from datetime import date

import openpyxl
from freezegun import freeze_time

from odoo import Command
from odoo.tests import tagged

from .common import BillingCase


@tagged("post_install", "-at_install")
class TestReports(BillingCase):
    """A small fleet, hand-computed figures (Asia/Shanghai, UTC+8)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tou = cls.make_tou("TOU report")
        cls.tiered = cls.make_tariff(
            "Tiered report",
            kind="tiered",
            tier_period="month",
            tier_ids=[
                Command.create({"upto": 100, "price": 0.5}),
                Command.create({"upto": 0, "price": 1.0}),
            ],
        )
        cls.water = cls.make_tariff(
            "Water report", utility="water", kind="flat", price=4.0
        )
        cls.tenant2 = cls.env["res.partner"].create({"name": "Tenant Two"})
        cls.room.tenant_id = cls.tenant
        cls.room2.tenant_id = cls.tenant2
        cls.m_tou = cls.make_meter(cls.gateway, 1)
        cls.m_tier = cls.make_meter(cls.gateway, 2, kind="electric_3p", room=cls.room2)
        cls.m_water = cls.make_meter(cls.gateway, 3, kind="water", room=cls.room2)
        cls.make_account(cls.m_tou, tariff=cls.tou, opening=500.0)
        cls.make_account(
            cls.m_tier | cls.m_water,
            tariff=cls.tiered,
            water_tariff=cls.water,
            opening=500.0,
            partner_id=cls.tenant2.id,
        )

    def tou_reading(self, total, at, sharp, peak, flat, valley):
        self.reading(
            self.m_tou, total, at, sharp=sharp, peak=peak, flat=flat, valley=valley
        )

    def fill(self):
        # Room 1, time of use: March 2025 (the year before), then February
        # 28th 23:00 local (valley) and March 1st 01:00 local (valley)
        self.tou_reading(1000.0, "2025-03-01 02:00:00", 100, 300, 300, 300)
        self.tou_reading(1050.0, "2025-03-20 02:00:00", 100, 350, 300, 300)
        self.tou_reading(1150.0, "2026-02-28 15:00:00", 100, 350, 300, 400)
        self.tou_reading(1160.0, "2026-02-28 17:00:00", 100, 350, 300, 410)
        self.tou_reading(1200.0, "2026-03-10 03:00:00", 100, 370, 320, 410)
        # Room 2, tiered per month (100 at 0.50, then 1.00): 80 kWh in
        # February; in March 20 + 100 kWh, crossing the tier
        self.reading(self.m_tier, 0.0, "2026-02-20 02:00:00")
        self.reading(self.m_tier, 80.0, "2026-02-28 15:30:00")
        self.reading(self.m_tier, 100.0, "2026-02-28 16:30:00")
        self.reading(self.m_tier, 200.0, "2026-03-15 02:00:00")
        self.reading(self.m_water, 10.0, "2026-03-01 02:00:00")
        self.reading(self.m_water, 12.5, "2026-03-05 02:00:00")
        self.bill()

    def rows(self, month="2026-03-01"):
        rows = self.env["prepaid.monthly.report"]._rows(
            self.company, date.fromisoformat(month)
        )
        return {row.room_id: row for row in rows}

    def test_monthly_figures_equal_hand_computed_ones(self):
        self.fill()
        rows = self.rows()
        shop1, shop2 = rows[self.room.id], rows[self.room2.id]
        use = shop1.usage
        # March: 10 valley x 0.35 + 20 peak x 1.10 + 20 flat x 0.70
        self.assertEqual(round(use.kwh, 2), 50.0)
        self.assertEqual(
            [round(use.band_kwh[b], 2) for b in ("sharp", "peak", "flat", "valley")],
            [0, 20, 20, 10],
        )
        self.assertEqual(
            [round(use.band_cost[b], 2) for b in ("sharp", "peak", "flat", "valley")],
            [0, 22.0, 14.0, 3.5],
        )
        self.assertEqual(round(shop1.total, 2), 39.5)
        self.assertEqual(shop1.partner_id, self.tenant.id)
        # February had 100 kWh (valley), March 2025 had 50 kWh (peak)
        self.assertEqual(shop1.kwh_vs_previous, -50.0)
        self.assertEqual(shop1.kwh_vs_last_year, 0.0)
        self.assertEqual(round(shop1.last_year.amount, 2), 55.0)
        # Room 2: 20 x 0.50 + (80 x 0.50 + 20 x 1.00); water 2.5 m³ x 4.00
        self.assertEqual(round(shop2.usage.kwh, 2), 120.0)
        self.assertEqual(round(shop2.usage.energy_amount, 2), 70.0)
        self.assertEqual(
            (round(shop2.usage.m3, 3), round(shop2.usage.water_amount, 2)), (2.5, 10.0)
        )
        self.assertEqual(round(shop2.total, 2), 80.0)
        self.assertEqual(shop2.kwh_vs_previous, 50.0)
        self.assertIsNone(shop2.last_year, "no figures a year before")
        self.assertIsNone(shop2.kwh_vs_last_year)
        february = self.rows("2026-02-01")
        self.assertEqual(round(february[self.room2.id].usage.energy_amount, 2), 40.0)

    def test_rows_are_the_month_s_shops_in_building_and_room_order(self):
        self.fill()
        Report = self.env["prepaid.monthly.report"]
        rows = Report._rows(self.company, date(2026, 3, 31))
        self.assertEqual([row.room_id for row in rows], [self.room.id, self.room2.id])
        # April: nothing used or charged (March is only its previous month)
        self.assertEqual(self.rows("2026-04-01"), {})
        only = Report._rows(
            self.company, date(2026, 3, 1), [("id", "=", self.room2.id)]
        )
        self.assertEqual([row.room_id for row in only], [self.room2.id])
        self.assertEqual(round(only[0].previous.kwh, 2), 80.0)
        self.assertEqual(only[0].partner_id, self.tenant2.id)

    def test_pdf_and_xlsx_show_the_figures(self):
        self.fill()
        wizard = self.env["prepaid.monthly.report.wizard"].create(
            {"month": "2026-03-15", "company_id": self.company.id}
        )
        html, _kind = self.env["ir.actions.report"]._render_qweb_html(
            "prepaid_billing.report_monthly", wizard.ids
        )
        html = html.decode()
        self.assertIn("2026-03", html)
        self.assertIn("Shop 1", html)
        self.assertIn("Tenant Two", html)
        self.assertIn("50.00", html)
        self.assertIn("-50.0%", html)
        self.assertIn("n/a", html, "no last year for shop 2")
        self.assertIn("39.50", html)
        action = wizard.action_export_xlsx()
        self.assertIn("xlsx_file", action["url"])
        book = openpyxl.load_workbook(io.BytesIO(base64.b64decode(wizard.xlsx_file)))
        sheet = book.active
        header = [cell.value for cell in sheet[1]]
        by_room = {
            row[1]: dict(zip(header, row, strict=True))
            for row in sheet.iter_rows(min_row=2, values_only=True)
        }
        self.assertEqual(by_room["Shop 2"]["Amount"], 80.0)
        self.assertEqual(by_room["Shop 2"]["kWh vs last year %"], None)
        self.assertEqual(by_room["Shop 1"]["Peak cost"], 22.0)

    def test_room_form_charts_daily_and_monthly_use(self):
        self.fill()
        with freeze_time("2026-03-20 04:00:00"):
            self.room.invalidate_recordset(["usage_chart_html"])
            chart = str(self.room.usage_chart_html)
        self.assertIn("kWh per day, last 30 days", chart)
        self.assertIn('title="10: 40.00"', chart, "March 10th: 40 kWh")
        self.assertIn('title="2026-02: 100.00"', chart)
        self.assertIn('title="2025-04: 0.00"', chart, "12 months back")
