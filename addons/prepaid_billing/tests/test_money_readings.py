from contextlib import nullcontext
from datetime import date
from unittest.mock import patch

from odoo.tests import tagged
from odoo.tools import SQL

from .common import BillingCase

MARCH = (date(2026, 3, 1), date(2026, 3, 31))
DAY = date(2026, 3, 2)  # 02:00-12:05 UTC is 10:00-20:05 in Shanghai
# the readings below count 2 + 1.96 + 2 + 1 + 1 + 100 + 0.5 + 0.5 + 2 kWh
MONEY_KWH = 110.96


@tagged("post_install", "-at_install")
class TestMoneyReadings(BillingCase):
    """Which readings are money is one rule (``prepaid.reading``'s
    ``_get_money_domain`` / ``_money_sql``): prepaid deduction, postpaid bill
    usage and the daily use count the same kWh from readings in every review
    state and with every anomaly."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # 15 kW x 1.5: 22.5 kWh credible per hour (the default rating)
        cls.prepaid = cls.make_meter(cls.gateway, 1, rated_power_kw=15.0)
        cls.postpaid = cls.make_meter(cls.gateway, 2, rated_power_kw=15.0)
        cls.make_account(cls.prepaid, opening=1000.0)
        cls.make_account(cls.postpaid, mode="postpaid")

    def review(self, readings, decision):
        self.env["prepaid.reading.review.wizard"].create(
            {
                "reading_ids": [(6, 0, readings.ids)],
                "decision": decision,
                "reason": "checked on site",
            }
        ).action_confirm()

    def history(self, meter):
        """Readings of every review state and anomaly; returns them by name."""
        at = "2026-03-02 %s:00"
        r = {}
        r["first"] = self.reading(meter, 42949670.0, at % "02:00")
        r["normal"] = self.reading(meter, 42949672.0, at % "03:00")  # +2
        # UINT32 at 0.01 kWh wraps at 42,949,672.96
        r["rollover"] = self.reading(meter, 1.0, at % "04:00")  # +1.96
        r["spike"] = self.reading(meter, 5000.0, at % "04:05")
        r["back"] = self.reading(meter, 3.0, at % "05:00")  # +2, spike rejected
        r["drop"] = self.reading(meter, 2.0, at % "06:00")
        r["after_drop"] = self.reading(meter, 4.0, at % "07:00")  # +1
        r["invalid"] = self.reading(meter, -1.0, at % "07:30")
        r["after_invalid"] = self.reading(meter, 5.0, at % "08:00")  # +1
        r["jump"] = self.reading(meter, 105.0, at % "08:05")
        r["continued"] = self.reading(meter, 105.5, at % "09:00")
        self.review(r["jump"], "accept")  # +100, then +0.5
        r["jump2"] = self.reading(meter, 205.0, at % "09:05")
        r["continued2"] = self.reading(meter, 205.5, at % "10:00")
        self.review(r["jump2"], "reject")
        r["resumed"] = self.reading(meter, 106.0, at % "10:30")  # +0.5
        r["replaced"] = (
            self.env["prepaid.reading"]
            .sudo()
            .create(
                {
                    "meter_id": meter.id,
                    "source": "import",
                    "read_at": at % "11:00",
                    "energy_total_kwh": 10.0,
                    "anomaly": "replacement",
                    "anomaly_note": "new meter",
                }
            )
        )
        r["new_meter"] = self.reading(meter, 12.0, at % "12:00")  # +2
        r["pending"] = self.reading(meter, 500.0, at % "12:05")
        return r

    def bill_usage(self, meter, by_reading=False):
        Usage = self.env["prepaid.bill.usage"]

        def per_reading(usage, rows, state):
            return usage._add_readings(rows, state)

        days = patch.object(type(Usage), "_add_days", per_reading)
        with days if by_reading else nullcontext():
            return Usage._meter_usage(meter, *MARCH, {meter.id: self.flat})[meter.id]

    def daily_kwh(self, meter):
        days = self.env["prepaid.daily.usage"].search([("meter_id", "=", meter.id)])
        self.assertEqual(set(days.mapped("date")), {DAY})
        return round(sum(days.mapped("energy_kwh")), 4)

    def test_the_history_covers_every_review_state_and_anomaly(self):
        readings = self.history(self.prepaid)
        states = {r.review_state for r in readings.values()}
        anomalies = {r.anomaly for r in readings.values()}
        self.assertEqual(states, {False, "suspect", "accepted", "rejected"})
        self.assertEqual(
            anomalies,
            {
                "none",
                "rollover",
                "jump",
                "drop",
                "invalid",
                "continued",
                "replacement",
            },
        )

    def test_the_domain_and_the_sql_select_the_same_readings(self):
        readings = self.history(self.prepaid)
        Reading = self.env["prepaid.reading"]
        by_domain = Reading.search(
            [("meter_id", "=", self.prepaid.id), *Reading._get_money_domain()]
        )
        self.env.cr.execute(
            SQL(
                "SELECT r.id FROM prepaid_reading r WHERE r.meter_id = %s AND %s",
                self.prepaid.id,
                Reading._money_sql("r"),
            )
        )
        by_sql = {row[0] for row in self.env.cr.fetchall()}
        self.assertEqual(set(by_domain.ids), by_sql)
        not_money = {"spike", "drop", "invalid", "jump2", "continued2", "pending"}
        self.assertEqual(
            by_sql, {r.id for name, r in readings.items() if name not in not_money}
        )

    def assert_all_count(self, kwh):
        """Deduction, postpaid bill usage (by day and by reading) and the
        daily use (as added, and rebuilt) count ``kwh`` on both meters."""
        self.bill()
        self.env["prepaid.daily.usage"]._cron_not_deducted()
        deducted = round(sum(self.charges(self.prepaid).mapped("quantity")), 4)
        self.assertEqual(deducted, kwh, "prepaid deduction")
        self.assertFalse(self.charges(self.postpaid), "postpaid: never deducted")
        meters = self.prepaid | self.postpaid
        for meter in meters:
            for by_reading in (False, True):
                usage = self.bill_usage(meter, by_reading)
                self.assertEqual(round(usage.quantity, 4), kwh, (meter, by_reading))
            self.assertEqual(self.daily_kwh(meter), kwh, meter.name)
        self.env["prepaid.daily.usage"]._rebuild(meters.ids, DAY, DAY)
        for meter in meters:
            self.assertEqual(self.daily_kwh(meter), kwh, f"{meter.name} rebuilt")

    def test_deduction_postpaid_bills_and_daily_use_count_the_same_kwh(self):
        self.history(self.prepaid)
        self.history(self.postpaid)
        self.assert_all_count(MONEY_KWH)

    def test_a_suspect_reading_accepted_later_is_counted_once_by_all(self):
        pending = self.history(self.prepaid)["pending"]
        pending_too = self.history(self.postpaid)["pending"]
        self.assert_all_count(MONEY_KWH)
        self.review(pending, "accept")  # 500 after 12: +488
        self.review(pending_too, "accept")
        self.assert_all_count(MONEY_KWH + 488)
        self.assert_all_count(MONEY_KWH + 488)
