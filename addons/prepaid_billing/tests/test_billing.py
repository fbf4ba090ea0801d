from datetime import date
from unittest.mock import patch

from odoo import SUPERUSER_ID, Command, api
from odoo.exceptions import UserError
from odoo.tests import tagged

from odoo.addons.prepaid_metering.tests.common import run_in_workers

from .common import BillingCase


@tagged("post_install", "-at_install")
class TestDeduction(BillingCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.meter = cls.make_meter(cls.gateway, 1)
        cls.account = cls.make_account(cls.meter, opening=100.0)

    def test_each_reading_is_charged_and_a_batch_is_one_wallet_line(self):
        first = self.reading(self.meter, 1000.0, "2026-03-02 02:00:00")
        second = self.reading(self.meter, 1012.5, "2026-03-02 03:00:00")
        third = self.reading(self.meter, 1013.0, "2026-03-02 04:00:00")
        self.assertEqual(self.bill(), 2, "two readings with consumption")
        charges = self.charges(self.meter)
        # 12.5 kWh x 0.80 = 10.00 ; 0.5 kWh x 0.80 = 0.40
        self.assertEqual(charges.reading_id, second | third)
        self.assertEqual(charges.mapped("amount"), [10.0, 0.4])
        self.assertEqual(charges.mapped("quantity"), [12.5, 0.5])
        self.assertFalse(charges[0].detail, "nothing to store at a single price")
        self.assertEqual(charges[0].pricing_text, "single price: 12.5 x 0.8 = 10.00")
        self.assertNotIn(first.id, charges.ids)
        self.assertFalse(first.charge_id, "no consumption, no charge")
        self.assertEqual((second.charge_amount, second.charge_id), (10.0, charges[0]))
        line = self.consumption(self.account)
        self.assertEqual(len(line), 1, "one wallet line per meter and month of a batch")
        self.assertEqual((line.amount, line.quantity), (-10.4, 13.0))
        self.assertEqual((line.reading_id, line.reading_count), (third, 2))
        self.assertEqual(line.charge_ids, charges)
        self.assertEqual(charges.tariff_version_id, self.flat.version_ids)
        self.assertEqual(line.pricing_text, "single price: 13.0 x 0.8 = 10.40")
        self.assertEqual(self.account.balance, 89.6)
        self.assertEqual(self.meter.billed_reading_id, third)
        # billed as they come, each reading is a wallet line of its own
        fourth = self.reading(self.meter, 1014.0, "2026-03-02 05:00:00")
        self.assertEqual(self.bill(), 1)
        line = self.consumption(self.account)[-1]
        self.assertEqual((line.amount, line.reading_id), (-0.8, fourth))
        self.assertEqual(line.name, "1 kWh")
        self.assertEqual(self.account.balance, 88.8)

    def test_a_backlog_is_one_wallet_line_per_local_month(self):
        # 15:30 UTC on March 31st is 23:30 in Shanghai, 16:30 UTC is 00:30 on
        # April 1st
        self.reading(self.meter, 999.0, "2026-03-29 14:30:00")
        self.reading(self.meter, 1000.0, "2026-03-31 14:30:00")
        self.reading(self.meter, 1001.0, "2026-03-31 15:30:00")
        self.reading(self.meter, 1003.0, "2026-03-31 16:30:00")
        self.reading(self.meter, 1006.0, "2026-04-02 17:30:00")
        self.assertEqual(self.bill(), 4)
        lines = self.consumption(self.account)
        self.assertEqual(lines.mapped("amount"), [-1.6, -4.0])
        self.assertEqual(lines.mapped("reading_count"), [2, 2])
        self.assertEqual(lines[0].name, "2 kWh (2 readings)")
        self.assertEqual(round(sum(lines.charge_ids.mapped("amount")), 2), 5.6)

    def test_billing_twice_charges_once(self):
        self.reading(self.meter, 1000.0, "2026-03-02 02:00:00")
        self.reading(self.meter, 1010.0, "2026-03-02 03:00:00")
        self.bill()
        self.assertEqual(self.bill(), 0)
        # even with the watermark lost, the database refuses a second charge
        # and the batch bills only what was not charged yet
        self.meter.sudo().billed_reading_id = False
        later = self.reading(self.meter, 1012.0, "2026-03-02 04:00:00")
        self.assertEqual(self.env["prepaid.billing.engine"]._bill(self.meter.ids), 1)
        self.assertEqual(self.consumption(self.account).mapped("amount"), [-8.0, -1.6])
        self.assertEqual(len(self.charges(self.meter)), 2)
        self.assertEqual(self.account.balance, 90.4)
        self.assertEqual(self.meter.billed_reading_id, later)
        self.assert_reconciled()

    def test_a_pricing_error_leaves_the_batch_unbilled(self):
        from unittest.mock import patch

        from ..tools import deduction

        other = self.make_meter(self.gateway, 7)
        other_account = self.make_account(other, opening=50.0)
        for meter in (self.meter, other):
            self.reading(meter, 1000.0, "2026-03-02 02:00:00")
            self.reading(meter, 1010.0, "2026-03-02 03:00:00")
        original = deduction.charge_reading

        def charge_reading(meter, *args):
            if meter.id == other.id:
                raise ZeroDivisionError("broken tariff")
            return original(meter, *args)

        with patch.object(deduction, "charge_reading", charge_reading):
            with self.assertRaises(ZeroDivisionError):
                self.bill()
        # the whole batch is rolled back: the charges streamed before the
        # error too
        self.assertFalse(self.charges(self.meter | other))
        self.assertFalse(self.consumption(self.account))
        self.assertEqual((self.account.balance, other_account.balance), (100.0, 50.0))
        self.assertFalse(self.meter.billed_reading_id)
        self.assertEqual(self.bill(), 2)
        self.assertEqual(self.account.balance, 92.0)

    def test_a_backlog_is_billed_in_batches_of_readings(self):
        # a small cap stands for prepaid_billing.bill_batch_readings = 200,000
        self.env["ir.config_parameter"].set_param(
            "prepaid_billing.bill_batch_readings", "3"
        )
        other = self.make_meter(self.gateway, 8)
        other_account = self.make_account(other, opening=50.0)
        for meter in (self.meter, other):
            for hour in range(5):
                self.reading(meter, 1000.0 + hour, f"2026-03-02 0{hour}:00:00")
        self.assertEqual(self.bill(), 8, "every reading, batch after batch")
        self.assertEqual(len(self.charges(self.meter | other)), 8)
        self.assertEqual((self.account.balance, other_account.balance), (96.8, 46.8))
        # one wallet line per meter and batch: 3 readings (one without use),
        # then 2
        self.assertEqual(self.consumption(self.account).mapped("reading_count"), [2, 2])
        # Bill Now on the account takes every reading too
        for meter in (self.meter, other):
            for hour in range(5, 9):
                self.reading(meter, 1000.0 + hour, f"2026-03-02 0{hour}:00:00")
        self.assertEqual(self.env["prepaid.billing.engine"]._bill(other.ids), 4)
        self.assertEqual(other_account.balance, 43.6)
        self.assertEqual(self.account.balance, 96.8, "only the meters asked for")
        self.assert_reconciled()

    def test_charged_readings_cannot_be_deleted(self):
        self.reading(self.meter, 1000.0, "2026-03-02 02:00:00")
        charged = self.reading(self.meter, 1010.0, "2026-03-02 03:00:00")
        self.bill()
        with self.assertRaises(UserError):
            charged.unlink()
        charge = self.charges(self.meter)
        with self.assertRaises(UserError):
            charge.unlink()
        with self.assertRaises(UserError):
            charge.write({"amount": 0.0})
        self.assertTrue(charged.exists())

    def test_lower_reading_is_not_billed(self):
        self.reading(self.meter, 1000.0, "2026-03-02 02:00:00")
        lower = self.reading(self.meter, 990.0, "2026-03-02 03:00:00")
        self.assertEqual((lower.anomaly, lower.review_state), ("drop", "suspect"))
        self.reading(self.meter, 1002.0, "2026-03-02 04:00:00")
        self.assertEqual(lower.review_state, "rejected", "cleared by the next one")
        self.bill()
        charges = self.charges(self.meter)
        self.assertEqual(charges.reading_id.mapped("energy_total_kwh"), [1002.0])
        self.assertNotIn(lower.id, charges.ids)
        lines = self.consumption(self.account)
        self.assertEqual(lines.amount, -1.6, "2 kWh from the last accepted value")

    def test_unexplained_drop_to_near_zero_is_not_billed(self):
        # formerly taken for a replaced meter and billed 3 kWh: now suspect
        # (a replacement is recorded with the wizard, see test_suspect_billing)
        self.reading(self.meter, 1000.0, "2026-03-02 02:00:00")
        dropped = self.reading(self.meter, 3.0, "2026-03-02 03:00:00")
        self.assertEqual((dropped.anomaly, dropped.review_state), ("drop", "suspect"))
        self.bill()
        self.assertFalse(self.consumption(self.account))
        self.assertEqual(self.account.balance, 100.0)

    def test_time_of_use_prices_the_band_registers(self):
        tou = self.make_tou("TOU")
        meter = self.make_meter(self.gateway, 2)
        account = self.make_account(meter, tariff=tou, opening=50.0)
        self.reading(
            meter, 100.0, "2026-03-02 02:00:00", sharp=10, peak=20, flat=30, valley=40
        )
        self.reading(
            meter, 110.0, "2026-03-02 03:00:00", sharp=11, peak=22, flat=33, valley=44
        )
        # 13:00 local time is in the flat band, but the registers say peak
        self.reading(
            meter, 112.0, "2026-03-02 05:00:00", sharp=11, peak=24, flat=33, valley=44
        )
        self.bill()
        first, second = self.charges(meter)
        # 1 x 1.30 + 2 x 1.10 + 3 x 0.70 + 4 x 0.35 = 7.00
        self.assertEqual(first.amount, 7.0)
        self.assertEqual(
            first.pricing_text.splitlines(),
            [
                "sharp: 1.0 x 1.3 = 1.30",
                "peak: 2.0 x 1.1 = 2.20",
                "flat: 3.0 x 0.7 = 2.10",
                "valley: 4.0 x 0.35 = 1.400",
            ],
        )
        # one band moved: 2 x 1.10 (not 2 x 0.70)
        self.assertEqual(second.amount, 2.2)
        self.assertEqual(second.pricing_text, "peak: 2.0 x 1.1 = 2.20")
        self.assertEqual(self.consumption(account).amount, -9.2)

    def test_band_registers_carry_over_to_a_later_time_of_use_tariff(self):
        tou = self.make_tou("TOU3")
        self.reading(
            self.meter,
            100.0,
            "2026-03-02 02:00:00",
            sharp=10,
            peak=20,
            flat=30,
            valley=40,
        )
        self.reading(
            self.meter,
            104.0,
            "2026-03-02 03:00:00",
            sharp=11,
            peak=21,
            flat=31,
            valley=41,
        )
        self.bill()
        self.assertEqual(self.consumption(self.account).amount, -3.2, "flat 4 x 0.8")
        self.assertEqual(
            self.meter.bill_band_kwh,
            {"sharp": 11.0, "peak": 21.0, "flat": 31.0, "valley": 41.0},
        )
        self.account.tariff_id = tou
        self.reading(
            self.meter,
            114.0,
            "2026-03-02 10:00:00",
            sharp=12,
            peak=23,
            flat=34,
            valley=45,
        )
        self.bill()
        # 1 x 1.30 + 2 x 1.10 + 3 x 0.70 + 4 x 0.35 = 7.00 from the registers
        # (not 10 x 1.10 at the band of 18:00 local time)
        self.assertEqual(self.consumption(self.account)[-1].amount, -7.0)

    def test_time_of_use_without_registers_uses_the_local_reading_time(self):
        tou = self.make_tou("TOU2")
        meter = self.make_meter(self.gateway, 3)
        account = self.make_account(meter, tariff=tou, opening=50.0)
        self.reading(meter, 100.0, "2026-03-01 23:30:00")
        # 00:00 UTC = 08:00 in Asia/Shanghai: exactly the start of the peak
        self.reading(meter, 110.0, "2026-03-02 00:00:00")
        self.bill()
        self.assertEqual(self.consumption(account).amount, -11.0)

    def test_tiers_climb_within_the_month_and_reset_at_its_start(self):
        tiered = self.make_tariff(
            "Tiered",
            kind="tiered",
            tier_period="month",
            tier_ids=[
                Command.create({"upto": 100, "price": 0.5}),
                Command.create({"upto": 0, "price": 1.0}),
            ],
        )
        meter = self.make_meter(self.gateway, 4)
        account = self.make_account(meter, tariff=tiered, opening=500.0)
        self.reading(meter, 0.0, "2026-01-10 02:00:00")
        self.reading(meter, 90.0, "2026-01-20 02:00:00")
        self.reading(meter, 120.0, "2026-01-30 02:00:00")
        # Feb 1st 00:30 local = Jan 31st 16:30 UTC: a new month
        self.reading(meter, 130.0, "2026-01-31 16:30:00")
        self.bill()
        charges = self.charges(meter)
        # 90 x 0.5 = 45 ; 10 x 0.5 + 20 x 1.0 = 25 ; new month: 10 x 0.5 = 5
        self.assertEqual(charges.mapped("amount"), [45.0, 25.0, 5.0])
        self.assertEqual(
            charges[1].pricing_text,
            "tier 1: 10.0 x 0.5 = 5.00\ntier 2: 20.0 x 1.0 = 20.00",
        )
        # one wallet line per month
        lines = self.consumption(account)
        self.assertEqual(lines.mapped("amount"), [-70.0, -5.0])
        self.assertEqual(
            lines[0].pricing_text,
            "tier 1: 100.0 x 0.5 = 50.00\ntier 2: 20.0 x 1.0 = 20.00",
        )

    def test_water_meter_uses_the_water_tariff(self):
        water_tariff = self.make_tariff(
            "Water", utility="water", kind="flat", price=3.5
        )
        meter = self.make_meter(self.gateway, 5, kind="water")
        account = self.make_account(meter, water_tariff=water_tariff, opening=50.0)
        self.reading(meter, 10.0, "2026-03-02 02:00:00")
        self.reading(meter, 12.25, "2026-03-02 03:00:00")
        self.bill()
        line = self.consumption(account)
        self.assertEqual((line.amount, line.unit), (-7.88, "m³"))

    def test_sub_cent_readings_do_not_drift(self):
        self.reading(self.meter, 1000.0, "2026-03-02 00:00:00")
        for minute in range(1, 61):
            self.reading(
                self.meter, 1000.0 + minute * 0.01, f"2026-03-02 01:{minute - 1:02d}:00"
            )
        self.bill()
        # 0.6 kWh x 0.80 = 0.48, although each reading is worth 0.008
        self.assertEqual(
            round(sum(self.consumption(self.account).mapped("amount")), 2), -0.48
        )

    def test_postpaid_and_draft_accounts_are_not_deducted(self):
        meter = self.make_meter(self.gateway, 6)
        draft = self.make_account(meter, open_it=False)
        self.reading(meter, 1.0, "2026-03-02 02:00:00")
        self.reading(meter, 5.0, "2026-03-02 03:00:00")
        self.bill()
        self.assertFalse(draft.ledger_line_ids)


@tagged("post_install", "-at_install")
class TestConcurrentBilling(BillingCase):
    """Two billing workers on real transactions charge each reading once."""

    def setUp(self):
        super().setUp()
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            partner = env["res.partner"].create({"name": "Concurrent tenant"})
            tariff = env["prepaid.tariff"].create(
                {
                    "name": "Concurrent flat",
                    "version_ids": [
                        Command.create(
                            {"date_from": "2020-01-01", "kind": "flat", "price": 1.0}
                        )
                    ],
                }
            )
            site = env["prepaid.site"].create({"name": "Concurrent site"})
            gateway = env["prepaid.gateway"].create(
                {
                    "name": "Concurrent bus",
                    "site_id": site.id,
                    "host": "127.0.0.1",
                    "port": 1,
                    "next_poll_at": "2999-01-01 00:00:00",
                }
            )
            meters = env["prepaid.meter"].create(
                [
                    {"name": f"CB{d}", "gateway_id": gateway.id, "device_id": d}
                    for d in range(1, 9)
                ]
            )
            accounts = env["prepaid.account"].create(
                [
                    {
                        "partner_id": partner.id,
                        "tariff_id": tariff.id,
                        "meter_link_ids": [Command.set(m.ids)],
                    }
                    for m in meters
                ]
            )
            accounts._open()
            for meter in meters:
                for hour in range(6):
                    env["prepaid.reading"].create(
                        {
                            "meter_id": meter.id,
                            "source": "import",
                            "energy_total_kwh": 100.0 + hour,
                            "read_at": f"2026-03-02 0{hour}:00:00",
                        }
                    )
            self.ids = {
                "partner": partner.id,
                "tariff": tariff.id,
                "site": site.id,
                "gateway": gateway.id,
                "meters": meters.ids,
                "accounts": accounts.ids,
            }
        self.addCleanup(self._cleanup)

    def _cleanup(self):
        ids = self.ids
        with self.registry.cursor() as cr:
            cr.execute(
                "DELETE FROM prepaid_ledger_line WHERE account_id = ANY(%s)",
                [ids["accounts"]],
            )
            cr.execute(
                "UPDATE prepaid_meter SET billing_account_id = NULL WHERE id = ANY(%s)",
                [ids["meters"]],
            )
            cr.execute(
                "DELETE FROM prepaid_alarm_notice WHERE account_id = ANY(%s)",
                [ids["accounts"]],
            )
            cr.execute(
                "DELETE FROM prepaid_account WHERE id = ANY(%s)", [ids["accounts"]]
            )
            cr.execute(
                "DELETE FROM prepaid_reading WHERE meter_id = ANY(%s)", [ids["meters"]]
            )
            cr.execute("DELETE FROM prepaid_meter WHERE id = ANY(%s)", [ids["meters"]])
            cr.execute("DELETE FROM prepaid_gateway WHERE id = %s", [ids["gateway"]])
            cr.execute("DELETE FROM prepaid_site WHERE id = %s", [ids["site"]])
            cr.execute("DELETE FROM prepaid_tariff WHERE id = %s", [ids["tariff"]])
            cr.execute("DELETE FROM res_partner WHERE id = %s", [ids["partner"]])

    def test_two_workers_bill_every_reading_exactly_once(self):
        with self.registry.cursor() as cr:
            cr.execute(
                "INSERT INTO ir_config_parameter (key, value) VALUES "
                "('prepaid_billing.bill_batch_meters', '1') "
                "ON CONFLICT (key) DO UPDATE SET value = '1'"
            )
        self.addCleanup(self._reset_batch)
        _done, errors = run_in_workers(
            self.registry,
            lambda env: env["prepaid.billing.engine"]._cron_bill(commit=True),
        )
        self.assertFalse(errors)
        with self.registry.cursor() as cr:
            cr.execute(
                """SELECT count(*), count(DISTINCT c.id), COALESCE(SUM(c.amount), 0)
                     FROM prepaid_reading_charge c
                     JOIN prepaid_ledger_line l ON l.id = c.ledger_line_id
                    WHERE l.account_id = ANY(%s)""",
                [self.ids["accounts"]],
            )
            count, distinct, total = cr.fetchone()
            cr.execute(
                """SELECT COALESCE(SUM(amount), 0) FROM prepaid_ledger_line
                    WHERE account_id = ANY(%s) AND line_type = 'consumption'""",
                [self.ids["accounts"]],
            )
            lines_total = float(cr.fetchone()[0])
            cr.execute(
                "SELECT SUM(balance) FROM prepaid_account WHERE id = ANY(%s)",
                [self.ids["accounts"]],
            )
            balances = float(cr.fetchone()[0])
        # 8 meters x 5 deltas of 1 kWh at 1.00
        self.assertEqual((count, distinct), (40, 40))
        self.assertEqual(float(total), 40.0)
        self.assertEqual(lines_total, -40.0)
        self.assertEqual(balances, -40.0)

    def _charges_by_meter(self):
        with self.registry.cursor() as cr:
            cr.execute(
                """SELECT c.meter_id, count(*), count(DISTINCT c.id)
                     FROM prepaid_reading_charge c
                    WHERE c.meter_id = ANY(%s) GROUP BY c.meter_id""",
                [self.ids["meters"]],
            )
            return {
                meter: (count, distinct) for meter, count, distinct in cr.fetchall()
            }

    def _run_cron(self, xmlid):
        """Run the code of the billing cron ``xmlid`` in a transaction of its
        own, committed (as a cron worker does)."""
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            env.ref(xmlid).ir_actions_server_id.run()

    def test_the_second_cron_bills_the_meters_the_first_does_not_hold(self):
        meters = self.ids["meters"]
        held, free = meters[:4], meters[4:]
        # The first billing worker is in the middle of a batch: it holds the
        # locks of its meters until that batch is committed.
        holder = self.registry.cursor()
        try:
            holder.execute(
                "SELECT id FROM prepaid_meter WHERE id = ANY(%s) FOR NO KEY UPDATE",
                [held],
            )
            self._run_cron("prepaid_billing.ir_cron_bill_readings_2")
            by_meter = self._charges_by_meter()
            # the second worker skipped the locked meters and billed the others
            self.assertEqual(sorted(by_meter), sorted(free))
            self.assertEqual(set(by_meter.values()), {(5, 5)})
        finally:
            holder.rollback()
            holder.close()
        # The first worker goes on; the second has nothing left to take.
        self._run_cron("prepaid_billing.ir_cron_bill_readings")
        self._run_cron("prepaid_billing.ir_cron_bill_readings_2")
        by_meter = self._charges_by_meter()
        self.assertEqual(sorted(by_meter), sorted(meters))
        self.assertEqual(set(by_meter.values()), {(5, 5)}, "each reading once")
        with self.registry.cursor() as cr:
            cr.execute(
                """SELECT count(*), COALESCE(SUM(amount), 0) FROM prepaid_ledger_line
                    WHERE account_id = ANY(%s) AND line_type = 'consumption'""",
                [self.ids["accounts"]],
            )
            lines, total = cr.fetchone()
            cr.execute(
                "SELECT SUM(balance) FROM prepaid_account WHERE id = ANY(%s)",
                [self.ids["accounts"]],
            )
            balances = float(cr.fetchone()[0])
        self.assertEqual((lines, float(total), balances), (8, -40.0, -40.0))

    def _reset_batch(self):
        with self.registry.cursor() as cr:
            cr.execute(
                "DELETE FROM ir_config_parameter "
                "WHERE key = 'prepaid_billing.bill_batch_meters'"
            )


@tagged("post_install", "-at_install")
class TestRolloverAndRecognition(BillingCase):
    def test_polled_rollover_is_billed_across_the_wrap(self):
        from odoo.addons.prepaid_metering.tests.common import electric

        meter = self.make_meter(self.gateway, 1)
        account = self.make_account(meter, opening=100.0)
        fleet = self.start_fresh_fleet([("socket", [electric(1)])], [self.gateway])
        sim = fleet.meter(0, 1)
        sim.inject("rollover", before=1.0)
        self.gateway._poll_now()
        sim.consume(3.0)
        self.gateway._poll_now()
        self.bill()
        line = self.consumption(account)
        self.assertEqual(self.charges(meter).reading_id.anomaly, "rollover")
        self.assertEqual((line.quantity, line.amount), (3.0, -2.4))

    def test_yearly_tiers_reset_on_the_first_of_january(self):
        tiered = self.make_tariff(
            "Yearly",
            kind="tiered",
            tier_period="year",
            tier_ids=[
                Command.create({"upto": 1000, "price": 0.5}),
                Command.create({"upto": 0, "price": 0.9}),
            ],
        )
        meter = self.make_meter(self.gateway, 2)
        account = self.make_account(meter, tariff=tiered, opening=2000.0)
        self.reading(meter, 0.0, "2026-06-01 02:00:00")
        self.reading(meter, 990.0, "2026-11-01 02:00:00")
        self.reading(meter, 1010.0, "2026-12-31 02:00:00")
        # 1 Jan 00:30 in Shanghai = 31 Dec 16:30 UTC: the year starts again
        self.reading(meter, 1030.0, "2026-12-31 16:30:00")
        self.bill()
        # 990 x 0.5 ; 10 x 0.5 + 10 x 0.9 ; new year: 20 x 0.5
        self.assertEqual(
            self.consumption(account).mapped("amount"), [-495.0, -14.0, -10.0]
        )

    def test_recognition_moves_consumption_to_revenue_and_taxes(self):
        tax_account = self.env["account.account"].create(
            {
                "name": "Output VAT",
                "code": "TPV221",
                "account_type": "liability_current",
            }
        )
        china = self.env.ref("base.cn")
        self.company.write(
            {"country_id": china.id, "account_fiscal_country_id": china.id}
        )
        group = self.env["account.tax.group"].create({"name": "VAT"})
        tax = self.env["account.tax"].create(
            {
                "name": "VAT 13% incl.",
                "amount": 13.0,
                "type_tax_use": "sale",
                "price_include_override": "tax_included",
                "tax_group_id": group.id,
                "country_id": china.id,
            }
        )
        tax.invoice_repartition_line_ids.filtered(
            lambda r: r.repartition_type == "tax"
        ).account_id = tax_account
        product = self.env["product.product"].create(
            {
                "name": "Electricity",
                "type": "service",
                "taxes_id": [Command.set(tax.ids)],
                "property_account_income_id": self.revenue.id,
            }
        )
        self.flat.product_id = product
        meter = self.make_meter(self.gateway, 3)
        account = self.make_account(meter, opening=200.0)
        self.reading(meter, 0.0, "2026-03-02 02:00:00")
        self.reading(meter, 141.25, "2026-03-02 03:00:00")  # x 0.80 = 113.00
        self.bill()
        before = self.assert_reconciled()
        self.assertEqual(before["unrecognised"], 113.0)
        move = self.env["prepaid.billing.engine"]._recognize(self.company)
        self.assertEqual(move.state, "posted")
        lines = {line.account_id: (line.debit, line.credit) for line in move.line_ids}
        self.assertEqual(lines[self.liability], (113.0, 0.0))
        self.assertEqual(lines[self.revenue], (0.0, 100.0))
        self.assertEqual(lines[tax_account], (0.0, 13.0))
        after = self.assert_reconciled()
        self.assertEqual(after["unrecognised"], 0.0)
        self.assertEqual(after["liability"], after["wallets"])
        self.assertEqual(self.consumption(account).recognition_move_id, move)
        self.assertFalse(
            self.env["prepaid.billing.engine"]._recognize(self.company),
            "nothing left to recognise",
        )

    def test_minimum_monthly_charge_tops_up_a_quiet_month_once(self):
        minimum = self.make_tariff(
            "With minimum", kind="flat", price=0.8, minimum_monthly=30.0
        )
        meter = self.make_meter(self.gateway, 4)
        busy = self.make_meter(self.gateway, 5)
        account = self.make_account(meter, tariff=minimum, opening=100.0)
        busy_account = self.make_account(busy, tariff=minimum, opening=100.0)
        self.reading(meter, 0.0, "2026-02-02 02:00:00")
        self.reading(meter, 12.5, "2026-02-10 02:00:00")  # 10.00 in February
        self.reading(busy, 0.0, "2026-02-02 02:00:00")
        self.reading(busy, 50.0, "2026-02-10 02:00:00")  # 40.00: above the minimum
        self.bill()
        engine = self.env["prepaid.billing.engine"]
        self.assertEqual(
            engine._cron_minimum_charges(date(2026, 2, 1), meters=meter | busy), 1
        )
        self.assertEqual(
            engine._cron_minimum_charges(date(2026, 2, 1), meters=meter | busy), 0
        )
        charge = account.ledger_line_ids.filtered(
            lambda line: line.line_type == "charge"
        )
        self.assertEqual(charge.amount, -20.0)
        self.assertEqual(charge.tariff_version_id, minimum.version_ids)
        self.assertEqual(account.balance, 70.0)
        self.assertFalse(
            busy_account.ledger_line_ids.filtered(
                lambda line: line.line_type == "charge"
            )
        )
        self.assert_reconciled()


@tagged("post_install", "-at_install")
class TestHotTables(BillingCase):
    def test_wallets_and_daily_use_leave_room_for_their_updates_on_each_page(self):
        # each billing batch rewrites these rows: fillfactor 70 keeps them HOT
        self.env.cr.execute(
            """SELECT relname, reloptions FROM pg_class
                WHERE relname IN ('prepaid_account', 'prepaid_daily_usage')"""
        )
        self.assertEqual(
            dict(self.env.cr.fetchall()),
            {
                "prepaid_account": ["fillfactor=70"],
                "prepaid_daily_usage": ["fillfactor=70"],
            },
        )

    def _updates(self, table):
        self.env.cr.execute(
            """SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables
                WHERE relname = %s""",
            [table],
        )
        return self.env.cr.fetchone()

    def test_billing_moves_a_narrow_watermark_row_in_place(self):
        # the billing state has a table of its own: no index but its key,
        # room left on each page
        self.env.cr.execute(
            """SELECT c.reloptions, array_agg(i.indexrelid::regclass::text)
                 FROM pg_class c JOIN pg_index i ON i.indrelid = c.oid
                WHERE c.relname = 'prepaid_meter_billing' GROUP BY c.reloptions"""
        )
        self.assertEqual(
            self.env.cr.fetchone(), (["fillfactor=70"], ["prepaid_meter_billing_pkey"])
        )
        meter = self.make_meter(self.gateway, 7)
        account = self.make_account(meter, opening=50.0)
        self.reading(meter, 10.0, "2026-03-02 02:00:00")
        self.reading(meter, 11.0, "2026-03-02 03:00:00")
        self.bill()
        last = self.reading(meter, 12.0, "2026-03-02 04:00:00")
        self.env.flush_all()
        meters_before = self._updates("prepaid_meter")
        state_before = self._updates("prepaid_meter_billing")
        self.assertEqual(self.bill(), 1)
        meters_after = self._updates("prepaid_meter")
        state_after = self._updates("prepaid_meter_billing")
        self.assertEqual(meters_after, meters_before, "the meter row is not rewritten")
        self.assertEqual(
            (state_after[0] - state_before[0], state_after[1] - state_before[1]),
            (1, 1),
            "one update, heap-only",
        )
        self.assertEqual(meter.billed_reading_id, last)
        self.assertEqual(account.balance, 48.4)


@tagged("post_install", "-at_install")
class TestSteadyBatches(BillingCase):
    """A backlog is billed ``bill_batch_meters`` meters at a time; once a
    batch shows billing keeping up (one or two readings a meter), the run
    goes on with ``bill_batch_meters_steady`` meters a batch."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.meters = cls.env["prepaid.meter"]
        cls.accounts = cls.env["prepaid.account"]
        for device in (1, 2, 3, 4):
            meter = cls.make_meter(cls.gateway, device)
            cls.meters |= meter
            cls.accounts |= cls.make_account(meter, opening=100.0)

    def claims(self):
        """Bill this test's meters; returns (readings charged, the claim
        size of each batch)."""
        Engine = type(self.env["prepaid.billing.engine"])
        claim = Engine._claim_meters
        sizes = []

        def recording(engine, limit, *args, **kwargs):
            sizes.append(limit)
            return claim(engine, limit, *args, **kwargs)

        with patch.object(Engine, "_claim_meters", recording):
            charged = self.bill()
        return charged, sizes

    def test_backlog_then_steady_batches(self):
        params = self.env["ir.config_parameter"].sudo()
        params.set_param("prepaid_billing.bill_batch_meters", "1")
        params.set_param("prepaid_billing.bill_batch_meters_steady", "3")
        for hour, kwh in enumerate((1000.0, 1001.0, 1002.0, 1003.0), start=1):
            for meter in self.meters:
                self.reading(meter, kwh, f"2026-03-02 0{hour}:00:00")
        # three readings a meter: a backlog, one meter at a time
        self.assertEqual(self.claims(), (12, [1, 1, 1, 1, 1]))
        for meter in self.meters:
            self.reading(meter, 1004.5, "2026-03-02 05:00:00")
        # one reading a meter: the first batch shows it, the others take
        # three meters
        self.assertEqual(self.claims(), (4, [1, 3, 3]))
        lines = self.accounts.ledger_line_ids.filtered(
            lambda line: line.line_type == "consumption"
        )
        # 3 kWh then 1.5 kWh at 0.80, a wallet line per meter and batch
        self.assertEqual(len(lines), 8)
        self.assertEqual(self.accounts.mapped("balance"), [96.4] * 4)
        self.assertEqual(len(self.charges(self.meters)), 16)
        # a steady batch that does not take every reading (the reading limit)
        # goes back to the configured batch
        params.set_param("prepaid_billing.bill_batch_readings", "1")
        for meter in self.meters:
            self.reading(meter, 1005.0, "2026-03-02 06:00:00")
            self.reading(meter, 1006.0, "2026-03-02 07:00:00")
        charged, sizes = self.claims()
        self.assertEqual(charged, 8)
        self.assertEqual(set(sizes), {1}, sizes)
        self.assertEqual(self.accounts.mapped("balance"), [95.2] * 4)
        self.assert_reconciled()
