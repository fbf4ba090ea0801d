from datetime import date
from unittest.mock import patch

from odoo import Command
from odoo.tests import tagged

from .common_month import MonthCase

JANUARY = (date(2026, 1, 1), date(2026, 1, 31))


@tagged("post_install", "-at_install")
class TestBillUsage(MonthCase):
    """Flat and tiered usage is summed by local day in SQL; it must match the
    reading-by-reading path (the one time of use takes) to the cent, with the
    same first and last readings."""

    def usage(self, meters, tariff=None, by_reading=False, period=JANUARY):
        Usage = self.env["prepaid.bill.usage"]
        tariffs = {meter.id: tariff or self.flat for meter in meters}
        if not by_reading:
            return Usage._meter_usage(meters, *period, tariffs)

        def per_reading(usage, rows, state):
            return usage._add_readings(rows, state)

        with patch.object(type(Usage), "_add_days", per_reading):
            return Usage._meter_usage(meters, *period, tariffs)

    def assert_same_usage(self, meters, tariff=None):
        by_day = self.usage(meters, tariff)
        by_reading = self.usage(meters, tariff, by_reading=True)
        self.assertEqual(set(by_day), set(meters.ids))
        for meter in meters:
            self.assertEqual(by_day[meter.id], by_reading[meter.id], meter.name)
        return by_day

    def test_prices_change_on_the_local_day_and_the_period_is_local(self):
        tariff = self.make_tariff("Raised", kind="flat", price=0.8)
        self.env["prepaid.tariff.version"].create(
            {
                "tariff_id": tariff.id,
                "date_from": "2026-01-16",
                "kind": "flat",
                "price": 1.0,
            }
        )
        meter = self.meter1
        self.reading(meter, 100.0, "2025-12-31 15:00:00")  # 23:00 Dec 31, before
        first = self.reading(meter, 150.0, "2026-01-10 04:00:00")
        # 01:00 on Jan 16 local (still Jan 15 in UTC): the new price
        self.reading(meter, 170.0, "2026-01-15 17:00:00")
        last = self.reading(meter, 200.0, "2026-01-31 15:30:00")  # 23:30 Jan 31
        self.reading(meter, 210.0, "2026-01-31 16:30:00")  # Feb 1 local: after
        usage = self.assert_same_usage(meter, tariff)[meter.id]
        self.assertEqual(usage.quantity, 100.0)
        self.assertEqual(
            [(float(line.quantity), float(line.amount)) for line in usage.lines],
            [(50.0, 40.0), (50.0, 50.0)],
        )
        self.assertEqual(
            (usage.first_reading_id, usage.last_reading_id, usage.reading_count),
            (first.id, last.id, 3),
        )

    def test_tiered_water_and_idle_meters_match_the_reading_path(self):
        tiered = self.make_tariff(
            "Tiers",
            kind="tiered",
            tier_ids=[
                Command.create({"upto": 60.0, "price": 0.5}),
                Command.create({"upto": 0.0, "price": 0.9}),
            ],
        )
        idle = self.make_meter(self.gateway, 3, room=self.room2)
        for hour, kwh in enumerate((10.0, 10.0, 35.5, 35.5, 61.25, 90.0, 140.25)):
            self.reading(self.meter1, kwh, f"2026-01-{3 + 4 * hour:02d} 15:59:00")
            self.reading(self.meter2, kwh * 2, f"2026-01-{2 + 4 * hour:02d} 16:00:00")
        self.reading(idle, 5.0, "2026-01-05 04:00:00")
        self.reading(idle, 5.0, "2026-01-06 04:00:00")
        meters = self.meter1 | self.meter2 | idle
        usage = self.assert_same_usage(meters, tiered)
        self.assertEqual(usage[self.meter1.id].quantity, 130.25)
        self.assertEqual(usage[self.meter1.id].reading_count, 7)
        self.assertEqual(usage[idle.id].lines, [])
        self.assertEqual(usage[idle.id].reading_count, 2)
        # a meter with no reading at all in the period
        silent = self.make_meter(self.gateway, 4, room=self.room2)
        empty = self.assert_same_usage(silent, tiered)[silent.id]
        self.assertEqual((empty.quantity, empty.reading_count), (0.0, 0))
        self.assertFalse(empty.first_reading_id)

        water_tariff = self.make_tariff(
            "Water", utility="water", kind="flat", price=3.2
        )
        water = self.make_meter(self.gateway, 5, kind="water", room=self.room2)
        for day, m3 in ((1, 1.0), (9, 3.5), (20, 3.5), (30, 7.25)):
            self.reading(water, m3, f"2026-01-{day:02d} 08:00:00")
        result = self.assert_same_usage(water, water_tariff)[water.id]
        self.assertEqual((result.unit, result.quantity), ("m³", 6.25))

    def test_a_daylight_saving_change_in_the_period_keeps_local_days(self):
        """Paris moves to summer time on 2026-03-29: a reading at 00:30 on
        April 1st (22:30 UTC) is priced at April's price, not March's."""
        self.meter1.site_id.tz = "Europe/Paris"
        tariff = self.make_tariff("Spring", kind="flat", price=0.5)
        self.env["prepaid.tariff.version"].create(
            {
                "tariff_id": tariff.id,
                "date_from": "2026-04-01",
                "kind": "flat",
                "price": 2.0,
            }
        )
        self.reading(self.meter1, 10.0, "2026-03-01 00:00:00")  # 01:00 local
        self.reading(self.meter1, 20.0, "2026-03-31 22:30:00")  # Apr 1 00:30
        usage = self.usage(
            self.meter1, tariff, period=(date(2026, 3, 1), date(2026, 4, 30))
        )[self.meter1.id]
        self.assertEqual(
            [(float(line.unit_price), float(line.amount)) for line in usage.lines],
            [(2.0, 20.0)],
        )
        self.assertEqual(usage.reading_count, 2)

    def test_tiers_carried_into_the_period_match_whatever_the_daily_use_holds(self):
        """Yearly tiers, a February period: January's use is carried in, the
        same by day and reading by reading, whether the daily use holds all
        of January, part of it or nothing."""
        tiered = self.make_tariff(
            "Yearly",
            kind="tiered",
            tier_period="year",
            tier_ids=[
                Command.create({"upto": 60.0, "price": 0.5}),
                Command.create({"upto": 0.0, "price": 0.9}),
            ],
        )
        meters = self.meter1 | self.meter2
        water = self.make_meter(self.gateway, 5, kind="water", room=self.room2)
        Daily = self.env["prepaid.daily.usage"]
        for meter, scale in ((self.meter1, 1.0), (self.meter2, 2.0), (water, 0.1)):
            self.reading(meter, 10.0 * scale, "2025-12-20 04:00:00")
            self.reading(meter, 30.0 * scale, "2026-01-03 04:00:00")
        self.add_not_deducted()
        for meter, scale in ((self.meter1, 1.0), (self.meter2, 2.0), (water, 0.1)):
            # 23:00 on 31 January local: still January
            self.reading(meter, 55.5 * scale, "2026-01-31 15:00:00")
            self.reading(meter, 80.0 * scale, "2026-02-10 04:00:00")
        meters |= water
        february = (date(2026, 2, 1), date(2026, 2, 28))
        part = self.usage(meters, tiered, period=february)
        for meter in meters:
            self.assertEqual(
                part[meter.id],
                self.usage(meters, tiered, by_reading=True, period=february)[meter.id],
            )
        self.add_not_deducted()
        self.assertEqual(self.usage(meters, tiered, period=february), part)
        Daily.search([("meter_id", "in", meters.ids)]).unlink()
        meters.sudo().write({"daily_reading_id": False})
        self.assertEqual(self.usage(meters, tiered, period=february), part)
        lines = {
            meter.id: [
                (line.label, float(line.quantity)) for line in part[meter.id].lines
            ]
            for meter in meters
        }
        # 45.5 kWh in January: 14.5 more in the first tier
        self.assertEqual(
            lines[self.meter1.id], [("tier 1 (2026)", 14.5), ("tier 2 (2026)", 10.0)]
        )
        self.assertEqual(lines[self.meter2.id], [("tier 2 (2026)", 49.0)])
        self.assertEqual(lines[water.id], [("tier 1 (2026)", 2.45)])
