from datetime import datetime
from decimal import Decimal

from odoo import Command
from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged

from .common import BillingCase


@tagged("post_install", "-at_install")
class TestTariffs(BillingCase):
    def test_day_schedule_with_a_gap_is_refused_and_nothing_saved(self):
        Tariff = self.env["prepaid.tariff"]
        before = Tariff.search_count([])
        with self.assertRaises(ValidationError) as err, self.env.cr.savepoint():
            self.make_tariff(
                "Gap",
                kind="tou",
                price_sharp=1,
                price_peak=1,
                price_flat=1,
                price_valley=1,
                season_ids=[
                    Command.create(
                        {
                            "name": "All",
                            "months": "1-12",
                            "period_ids": [
                                Command.create(
                                    {"band": "valley", "hour_from": 0, "hour_to": 7}
                                ),
                                Command.create(
                                    {"band": "peak", "hour_from": 8, "hour_to": 24}
                                ),
                            ],
                        }
                    )
                ],
            )
        self.assertIn("07:00", str(err.exception))
        self.assertEqual(Tariff.search_count([]), before)

    def test_overlap_tiers_and_negative_prices_are_refused(self):
        bad_versions = [
            {
                "kind": "tou",
                "price_sharp": 1,
                "price_peak": 1,
                "price_flat": 1,
                "price_valley": 1,
                "season_ids": [
                    Command.create(
                        {
                            "name": "All",
                            "months": "1-12",
                            "period_ids": [
                                Command.create(
                                    {"band": "valley", "hour_from": 0, "hour_to": 12}
                                ),
                                Command.create(
                                    {"band": "peak", "hour_from": 11, "hour_to": 24}
                                ),
                            ],
                        }
                    )
                ],
            },
            {
                "kind": "tiered",
                "tier_ids": [
                    Command.create({"upto": 100, "price": 0.5}),
                    Command.create({"upto": 100, "price": 0.6}),
                    Command.create({"upto": 0, "price": 0.7}),
                ],
            },
            {"kind": "flat", "price": -0.1},
            {"kind": "flat", "price": 0.5, "minimum_monthly": -3},
        ]
        for version in bad_versions:
            with self.subTest(version=version["kind"]):
                with self.assertRaises(ValidationError), self.env.cr.savepoint():
                    self.make_tariff("Bad", **version)

    def test_seasons_must_cover_every_month_once(self):
        with self.assertRaises(ValidationError), self.env.cr.savepoint():
            self.make_tariff(
                "Summer only",
                kind="tou",
                price_sharp=1,
                price_peak=1,
                price_flat=1,
                price_valley=1,
                season_ids=[
                    Command.create(
                        {
                            "name": "Summer",
                            "months": "6-9",
                            "period_ids": [
                                Command.create(
                                    {"band": "flat", "hour_from": 0, "hour_to": 24}
                                )
                            ],
                        }
                    )
                ],
            )

    def test_band_edge_at_eight_belongs_to_peak(self):
        tariff = self.make_tou("TOU")
        pricer = tariff.version_ids._pricer()
        self.assertEqual(pricer.band_at(datetime(2026, 3, 2, 7, 59, 59)), "flat")
        self.assertEqual(pricer.band_at(datetime(2026, 3, 2, 8, 0, 0)), "peak")
        # 2 kWh at 08:00 on peak = 2 x 1.10
        charge = pricer.price(Decimal("2"), when=datetime(2026, 3, 2, 8, 0))
        self.assertEqual(charge.amount, Decimal("2.20"))

    def test_version_in_force_follows_the_date(self):
        tariff = self.make_tariff(
            "Versioned", kind="flat", price=0.5, date_from="2026-01-01"
        )
        tariff.version_ids = [
            Command.create({"date_from": "2026-07-01", "kind": "flat", "price": 0.6})
        ]
        self.assertEqual(tariff._version_at(datetime(2026, 6, 30, 23)).price, 0.5)
        self.assertEqual(tariff._version_at(datetime(2026, 7, 1, 0)).price, 0.6)
        with self.assertRaises(UserError):
            tariff._version_at(datetime(2025, 12, 31))

    def test_used_version_cannot_change(self):
        meter = self.make_meter(self.gateway, 1)
        account = self.make_account(meter, opening=100)
        self.reading(meter, 100.0, "2026-03-02 02:00:00")
        self.reading(meter, 110.0, "2026-03-02 03:00:00")
        self.bill()
        version = self.flat.version_ids
        self.assertTrue(version.used)
        with self.assertRaises(UserError):
            version.price = 0.9
        self.assertEqual(self.consumption(account).tariff_version_id, version)

    def test_what_priced_a_wallet_line_cannot_be_deleted(self):
        """The wallet line's tariff version and meter have no foreign key
        (prepaid.ledger.line's UNCHECKED_REFERENCES): their guards keep them."""
        meter = self.make_meter(self.gateway, 1)
        idle = self.make_meter(self.gateway, 2, room=self.room2)
        account = self.make_account(meter, opening=100)
        tariff = self.make_tariff("Flat 0.90", kind="flat", price=0.9)
        spare = tariff.version_ids
        self.reading(meter, 100.0, "2026-03-02 02:00:00")
        self.reading(meter, 110.0, "2026-03-02 03:00:00")
        self.bill()
        line = self.consumption(account)
        version = self.flat.version_ids
        self.assertEqual((line.tariff_version_id, line.meter_id), (version, meter))
        for record in (version, self.flat, meter):
            with self.subTest(record=record), self.assertRaises(UserError):
                record.unlink()
        for record in (version, self.flat, meter):
            self.assertEqual(record.exists(), record)
        self.assertEqual(self.consumption(account), line)
        self.assertEqual((line.tariff_version_id, line.meter_id), (version, meter))
        # what priced nothing still goes
        self.assertFalse(spare.used)
        spare.unlink()
        tariff.unlink()
        idle.unlink()
        for record in (spare, tariff, idle):
            self.assertFalse(record.exists())
