from datetime import date, datetime

from odoo.tests import tagged

from ..tools import daily
from .common import BillingCase

FIELDS = [
    "energy_kwh",
    "sharp_kwh",
    "peak_kwh",
    "flat_kwh",
    "valley_kwh",
    "volume_m3",
    "sharp_cost",
    "peak_cost",
    "flat_cost",
    "valley_cost",
    "amount",
    "charge_count",
    "first_energy_kwh",
    "last_energy_kwh",
    "first_volume_m3",
    "last_volume_m3",
    "first_read_at",
    "last_read_at",
]


@tagged("post_install", "-at_install")
class TestDailyUsage(BillingCase):
    """The daily aggregate per meter and local day (Asia/Shanghai, UTC+8)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tou = cls.make_tou("TOU daily")
        cls.meter = cls.make_meter(cls.gateway, 1)
        cls.flat_meter = cls.make_meter(cls.gateway, 2, room=cls.room2)
        cls.water_meter = cls.make_meter(cls.gateway, 3, kind="water", room=cls.room2)
        cls.water = cls.make_tariff(
            "Water 4.00", utility="water", kind="flat", price=4.0
        )
        cls.account = cls.make_account(cls.meter, tariff=cls.tou, opening=500.0)
        cls.flat_account = cls.make_account(
            cls.flat_meter | cls.water_meter, water_tariff=cls.water, opening=500.0
        )
        cls.Daily = cls.env["prepaid.daily.usage"]

    def tou_reading(self, total, at, sharp, peak, flat, valley):
        return self.reading(
            self.meter, total, at, sharp=sharp, peak=peak, flat=flat, valley=valley
        )

    def days(self, meters):
        rows = self.Daily.search(
            [("meter_id", "in", meters.ids)], order="meter_id, date"
        )
        return {
            (row.meter_id.id, row.date): {name: row[name] for name in FIELDS}
            for row in rows
        }

    def assert_equals_rebuild(self, meters):
        maintained = self.days(meters)
        self.assertTrue(maintained)
        written = self.Daily._rebuild(meters.ids, date(2026, 1, 1), date(2026, 12, 31))
        self.assertEqual(written, len(maintained))
        self.assertEqual(self.days(meters), maintained)

    def fill_tou_meter(self):
        # local 22:00 Feb 28 (the baseline), 23:30 Feb 28, then March 1st at
        # 01:00 (valley), 11:00 (peak) and 19:30 (sharp)
        self.tou_reading(100.0, "2026-02-28 14:00:00", 10, 20, 30, 40)
        self.tou_reading(102.0, "2026-02-28 15:30:00", 10, 20, 31, 41)
        self.tou_reading(105.0, "2026-02-28 17:00:00", 10, 20, 31, 44)
        self.tou_reading(109.0, "2026-03-01 03:00:00", 10, 24, 31, 44)
        self.tou_reading(111.0, "2026-03-01 11:30:00", 12, 24, 31, 44)

    def test_billing_fills_each_local_day_with_bands_costs_and_counters(self):
        self.fill_tou_meter()
        self.reading(self.flat_meter, 50.0, "2026-02-28 14:00:00")
        self.reading(self.flat_meter, 51.5, "2026-02-28 15:50:00")
        self.reading(self.flat_meter, 53.5, "2026-03-01 01:00:00")
        self.reading(self.water_meter, 10.0, "2026-02-28 14:00:00")
        self.reading(self.water_meter, 10.5, "2026-02-28 16:10:00")
        self.bill()
        days = self.days(self.meter | self.flat_meter | self.water_meter)
        feb28 = days[(self.meter.id, date(2026, 2, 28))]
        # 1 kWh flat x 0.70 + 1 kWh valley x 0.35
        self.assertEqual(
            (feb28["energy_kwh"], feb28["flat_kwh"], feb28["valley_kwh"]), (2, 1, 1)
        )
        self.assertEqual((feb28["flat_cost"], feb28["valley_cost"]), (0.7, 0.35))
        self.assertEqual((feb28["amount"], feb28["charge_count"]), (1.05, 1))
        self.assertEqual(
            (feb28["first_energy_kwh"], feb28["last_energy_kwh"]), (100, 102)
        )
        mar1 = days[(self.meter.id, date(2026, 3, 1))]
        # 3 valley x 0.35 + 4 peak x 1.10 + 2 sharp x 1.30
        self.assertEqual(
            [mar1[f] for f in ("energy_kwh", "sharp_kwh", "peak_kwh", "valley_kwh")],
            [9, 2, 4, 3],
        )
        self.assertEqual(
            [mar1[f] for f in ("sharp_cost", "peak_cost", "valley_cost", "amount")],
            [2.6, 4.4, 1.05, 8.05],
        )
        self.assertEqual(
            (mar1["first_energy_kwh"], mar1["last_energy_kwh"]), (105, 111)
        )
        flat28 = days[(self.flat_meter.id, date(2026, 2, 28))]
        flat1 = days[(self.flat_meter.id, date(2026, 3, 1))]
        # a flat tariff names no band: 1.5 and 2 kWh x 0.80
        self.assertEqual((flat28["energy_kwh"], flat28["amount"]), (1.5, 1.2))
        self.assertEqual((flat1["energy_kwh"], flat1["amount"]), (2, 1.6))
        self.assertFalse(any(flat28[f"{b}_kwh"] for b in ("sharp", "peak", "flat")))
        water = days[(self.water_meter.id, date(2026, 3, 1))]
        self.assertEqual((water["volume_m3"], water["amount"]), (0.5, 2.0))
        self.assertEqual(
            (water["first_volume_m3"], water["last_volume_m3"]), (10.5, 10.5)
        )
        row = self.Daily.search(
            [("meter_id", "=", self.meter.id), ("date", "=", "2026-03-01")]
        )
        self.assertEqual(
            (row.room_id, row.building_id, row.account_id, row.partner_id),
            (self.room, self.building, self.account, self.tenant),
        )
        self.assertEqual(row.utility, "electricity")

    def test_batches_and_late_readings_equal_a_rebuild_from_readings(self):
        self.tou_reading(100.0, "2026-02-28 14:00:00", 10, 20, 30, 40)
        self.tou_reading(102.0, "2026-02-28 15:30:00", 10, 20, 31, 41)
        self.bill()
        # readings of a day already aggregated arrive in later batches
        self.tou_reading(102.5, "2026-02-28 15:45:00", 10, 20, 31, 41.5)
        self.tou_reading(105.0, "2026-02-28 17:00:00", 10, 20, 31, 44)
        self.bill()
        self.tou_reading(109.0, "2026-03-01 03:00:00", 10, 24, 31, 44)
        self.tou_reading(111.0, "2026-03-01 11:30:00", 12, 24, 31, 44)
        self.bill()
        feb28 = self.days(self.meter)[(self.meter.id, date(2026, 2, 28))]
        self.assertEqual((feb28["energy_kwh"], feb28["valley_kwh"]), (2.5, 1.5))
        self.assertEqual((feb28["amount"], feb28["last_energy_kwh"]), (1.23, 102.5))
        self.assert_equals_rebuild(self.meter)
        charged = sum(self.charges(self.meter).mapped("amount"))
        total = sum(
            self.Daily.search([("meter_id", "=", self.meter.id)]).mapped("amount")
        )
        self.assertAlmostEqual(total, charged, places=2)

    def test_suspect_reading_counts_once_accepted_and_equals_a_rebuild(self):
        self.meter.rated_power_kw = 10.0
        self.tou_reading(100.0, "2026-02-28 14:00:00", 10, 20, 30, 40)
        self.tou_reading(102.0, "2026-02-28 15:30:00", 10, 20, 31, 41)
        # +500 kWh in half an hour on a 10 kW supply: suspect, not billed
        suspect = self.tou_reading(602.0, "2026-02-28 16:00:00", 10, 20, 31, 541)
        self.assertEqual(suspect.review_state, "suspect")
        self.bill()
        feb28 = self.days(self.meter)[(self.meter.id, date(2026, 2, 28))]
        self.assertEqual((feb28["energy_kwh"], feb28["last_energy_kwh"]), (2, 102))
        self.assert_equals_rebuild(self.meter)
        suspect._review("accept", "checked on site")
        self.tou_reading(603.0, "2026-02-28 16:20:00", 10, 20, 31, 542)
        self.bill()
        self.assert_equals_rebuild(self.meter)

    def test_rebuild_restores_a_damaged_range_only(self):
        self.fill_tou_meter()
        self.bill()
        before = self.days(self.meter)
        self.env.cr.execute(
            "UPDATE prepaid_daily_usage SET energy_kwh = 0, amount = 0 "
            "WHERE meter_id = %s",
            [self.meter.id],
        )
        self.Daily.invalidate_model()
        self.Daily._rebuild(self.meter.ids, date(2026, 3, 1), date(2026, 3, 1))
        after = self.days(self.meter)
        self.assertEqual(
            after[(self.meter.id, date(2026, 3, 1))],
            before[(self.meter.id, date(2026, 3, 1))],
        )
        self.assertEqual(after[(self.meter.id, date(2026, 2, 28))]["energy_kwh"], 0)

    def test_postpaid_and_unassigned_meters_get_their_days_without_money(self):
        # readings this test did not make (e.g. the demo postpaid tenants')
        # are counted first, so `added` below is this test's own
        self.Daily._cron_not_deducted()
        postpaid = self.make_meter(self.gateway, 4, room=self.room2)
        account = self.make_account(postpaid, opening=0.0, mode="postpaid")
        loose = self.make_meter(self.gateway, 5, room=self.room2)  # no account
        postpaid.rated_power_kw = 10.0
        for meter in (postpaid, loose):
            self.reading(meter, 100.0, "2026-02-28 14:00:00")  # 22:00 local
            self.reading(meter, 103.0, "2026-02-28 17:00:00")  # 01:00 Mar 1
            self.reading(meter, 107.5, "2026-03-01 03:00:00")  # 11:00 Mar 1
        # +900 kWh in an hour on a 10 kW supply: suspect, it stops the meter
        suspect = self.reading(postpaid, 1007.5, "2026-03-01 04:00:00")
        self.assertEqual(suspect.review_state, "suspect")
        self.bill()
        self.assertFalse(self.days(postpaid | loose), "billing does not deduct them")
        added = self.add_not_deducted()
        self.assertEqual(added, 6)
        for meter in (postpaid, loose):
            days = self.days(meter)
            mar1 = days[(meter.id, date(2026, 3, 1))]
            self.assertEqual(
                (mar1["energy_kwh"], mar1["first_energy_kwh"], mar1["last_energy_kwh"]),
                (7.5, 103.0, 107.5),
            )
            self.assertEqual((mar1["amount"], mar1["charge_count"]), (0, 0))
            self.assertEqual(
                days[(meter.id, date(2026, 2, 28))]["last_energy_kwh"], 100
            )
        self.assertEqual(
            self.Daily.search([("meter_id", "=", postpaid.id)]).account_id, account
        )
        self.assertEqual(self.add_not_deducted(), 0, "nothing twice")
        # the suspect reading rejected: the readings after it count, it never
        suspect._review("reject", "bus noise")
        self.reading(postpaid, 108.0, "2026-03-01 05:00:00")
        self.assertEqual(self.add_not_deducted(), 1)
        mar1 = self.days(postpaid)[(postpaid.id, date(2026, 3, 1))]
        self.assertEqual((mar1["energy_kwh"], mar1["last_energy_kwh"]), (8.0, 108.0))

    def test_deleting_what_a_day_names_unlabels_it_or_takes_it(self):
        """No foreign keys on the daily use (a batch writes thousands of
        rows): statement triggers do what they did. A deleted room, floor,
        site, account or tenant leaves the days without it; a deleted meter
        takes its days."""
        floor = self.env["prepaid.floor"].create(
            {"name": "Kiosks", "level": 9, "building_id": self.building.id}
        )
        room = self.env["prepaid.room"].create({"name": "K1", "floor_id": floor.id})
        meter = self.make_meter(self.gateway, 9, room=room)
        other = self.make_meter(self.gateway, 10, room=room)
        tenant = self.env["res.partner"].create({"name": "Kiosk tenant"})
        account = self.make_account(meter, open_it=False, partner_id=tenant.id)
        days = daily.Days()
        for each in meter | other:
            days.add(each.id, date(2026, 3, 1), (datetime(2026, 3, 1), 5.0, None), 1, 0)
            days.add(each.id, date(2026, 3, 2), (datetime(2026, 3, 2), 6.0, None), 1, 0)
        self.Daily._upsert(days)
        rows = self.Daily.search([("meter_id", "in", (meter | other).ids)])
        self.assertEqual(len(rows), 4)
        self.assertEqual(rows.room_id, room)
        self.assertEqual(rows.floor_id, floor)
        mine = rows.filtered(lambda row: row.meter_id == meter)
        self.assertEqual((mine.account_id, mine.partner_id), (account, tenant))
        # the account (a draft) and its tenant go: the days stay, unlabelled
        account.unlink()
        tenant.unlink()
        self.assertEqual(len(mine.exists()), 2)
        self.assertFalse(mine.account_id)
        self.assertFalse(mine.partner_id)
        # the meter goes: its days go with it (the other meter keeps its own)
        meter.unlink()
        self.assertFalse(mine.exists())
        theirs = self.Daily.search([("meter_id", "=", other.id)])
        self.assertEqual(len(theirs), 2)
        # the room and its floor go (the meter first leaves the room)
        other.room_id = False
        room.unlink()
        floor.unlink()
        self.assertFalse(theirs.room_id)
        self.assertFalse(theirs.floor_id)
        self.assertEqual(theirs.building_id, self.building)
        # the names are gone from the table itself, not only from the cache
        self.env.cr.execute(
            "SELECT count(*) FROM prepaid_daily_usage "
            "WHERE room_id = %s OR floor_id = %s OR account_id = %s",
            [room.id, floor.id, account.id],
        )
        self.assertEqual(self.env.cr.fetchone()[0], 0)

    def test_the_deletion_triggers_are_dropped_and_made_again(self):
        from ..models.prepaid_daily_usage_labels import REFERENCES, drop_forget_triggers

        def triggers():
            self.env.cr.execute(
                "SELECT count(*) FROM pg_trigger "
                "WHERE tgname LIKE 'prepaid_daily_usage_forget%%'"
            )
            return self.env.cr.fetchone()[0]

        self.assertEqual(triggers(), len(REFERENCES))
        drop_forget_triggers(self.env.cr)  # the uninstall hook
        self.assertEqual(triggers(), 0)
        self.Daily.init()  # install / update
        self.assertEqual(triggers(), len(REFERENCES))

    def test_merging_tenants_moves_their_days(self):
        meter = self.make_meter(self.gateway, 11)
        twin = self.env["res.partner"].create({"name": "Tenant (duplicate)"})
        self.make_account(meter, open_it=False, partner_id=twin.id)
        days = daily.Days()
        days.add(meter.id, date(2026, 3, 1), (datetime(2026, 3, 1), 5.0, None), 1, 0)
        self.Daily._upsert(days)
        row = self.Daily.search([("meter_id", "=", meter.id)])
        self.assertEqual(row.partner_id, twin)
        self.env["base.partner.merge.automatic.wizard"]._merge(
            (twin | self.tenant).ids, self.tenant, extra_checks=False
        )
        self.assertFalse(twin.exists())
        self.assertEqual(row.partner_id, self.tenant)
