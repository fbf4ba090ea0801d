from datetime import timedelta

from freezegun import freeze_time

from odoo import fields
from odoo.tests import tagged

from odoo.addons.prepaid_metering.tests.common import electric

from .common import BillingCase


@tagged("post_install", "-at_install")
class TestLoadLimit(BillingCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company.write(
            {"prepaid_limit_polls": 3, "prepaid_limit_restore_minutes": 10}
        )
        cls.meter = cls.make_meter(cls.gateway, 1)
        cls.account = cls.make_account(cls.meter, opening=100.0, power_limit_kw=3.0)
        cls.Account = cls.env["prepaid.account"]

    def setUp(self):
        super().setUp()
        # a 5 kW load on a 3 kW limit
        self.fleet = self.start_fresh_fleet(
            [("socket", [electric(1, load_kw=5.0)])], [self.gateway]
        )
        self.sim = self.fleet.meter(0, 1)

    def poll_and_bill(self):
        self.gateway._poll_now()
        self.bill()

    # Modbus traffic runs outside freeze_time: asyncio needs a moving clock.
    def test_demand_above_the_limit_for_three_polls_cuts_and_restores(self):
        self.poll_and_bill()
        self.poll_and_bill()
        self.assertEqual(self.account.supply_state, "on", "two polls are not enough")
        self.poll_and_bill()
        self.assertEqual(self.account.supply_state, "cut_off")
        self.assertEqual(self.account.limit_state, "power")
        self.assertIn("power limit of 3.0 kW", self.account.limit_reason)
        self.assertIn(self.account.limit_reason, self.meter.room_id.limit_alert)
        self.assertTrue(self.account.notice_ids.filtered(lambda n: n.event == "cutoff"))
        cut_at = self.account.limit_cut_until - timedelta(minutes=10)
        command = self.meter.command_ids
        self.assertEqual(command.command_type, "relay_off")
        self.process_commands()
        self.assertEqual(command.state, "done", command.last_error)
        self.assertTrue(self.sim.relay_open, "the simulator's relay really opened")
        # the open relay reads 0 kW; a recharge does not end a limit cut
        self.poll_and_bill()
        self.account._recharge(10.0, self.cash, "during-limit", "cash")
        self.assertEqual(self.account.supply_state, "cut_off")
        with freeze_time(cut_at + timedelta(minutes=9)):
            self.assertEqual(self.Account._cron_limit_restores(self.account), 0)
        with freeze_time(cut_at + timedelta(minutes=11)):
            self.assertEqual(self.Account._cron_limit_restores(self.account), 1)
        self.assertEqual(self.account.supply_state, "on")
        self.assertEqual(self.account.limit_state, "none")
        self.assertFalse(self.meter.room_id.limit_alert)
        restore = self.meter.command_ids.filtered(
            lambda c: c.command_type == "relay_on"
        )
        self.process_commands()
        self.assertEqual(restore.state, "done", restore.last_error)
        self.assertFalse(self.sim.relay_open)
        self.assertIn(
            "Limit cut over", " ".join(self.account.message_ids.mapped("body"))
        )

    def test_demand_below_the_limit_never_cuts(self):
        self.account.power_limit_kw = 6.0
        for _poll in range(4):
            self.poll_and_bill()
        self.assertEqual(self.account.supply_state, "on")
        self.assertFalse(self.meter.command_ids)


@tagged("post_install", "-at_install")
class TestLoadLimitOnTheMeter(BillingCase):
    """A meter with a limit register keeps the limit itself: it is written
    through a parameter command (read back) and the server does not cut it."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company.write(
            {"prepaid_limit_polls": 3, "prepaid_limit_restore_minutes": 10}
        )
        cls.meter = cls.make_meter(cls.gateway, 1)
        cls.meter.profile_ids |= cls.env.ref("prepaid_metering.profile_px_limit_v1")
        cls.account = cls.make_account(cls.meter, opening=100.0)

    def setUp(self):
        super().setUp()
        self.fleet = self.start_fresh_fleet(
            [("socket", [electric(1, load_kw=5.0)])], [self.gateway]
        )
        self.sim = self.fleet.meter(0, 1)

    def test_the_limit_is_written_into_the_meter_and_not_enforced_twice(self):
        self.account.power_limit_kw = 3.0
        command = self.meter.command_ids.filtered(
            lambda c: c.command_type == "write_params"
        )
        self.assertEqual(len(command), 1)
        self.assertEqual(command.params, {"power_limit": 3.0})
        self.process_commands()
        self.assertEqual(command.state, "done", command.last_error)
        self.assertEqual(self.sim.power_limit_kw, 3.0, "read back from the meter")
        # 5 kW on a 3 kW limit the meter keeps: the server cuts nothing
        for _poll in range(3):
            self.gateway._poll_now()
            self.bill()
        self.assertEqual(self.account.limit_state, "none")
        self.assertEqual(self.account.supply_state, "on")
        self.assertFalse(
            self.meter.command_ids.filtered(lambda c: c.command_type == "relay_off")
        )


@tagged("post_install", "-at_install")
class TestDailyEnergyLimit(BillingCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.meter = cls.make_meter(cls.gateway, 1)
        cls.account = cls.make_account(
            cls.meter, opening=100.0, daily_energy_limit_kwh=10.0
        )

    def test_energy_above_the_daily_limit_cuts_until_local_midnight(self):
        Account = self.env["prepaid.account"]
        # 2 March local (Shanghai): 10:00 and 11:00 local, 12 kWh
        with freeze_time("2026-03-02 04:00:00"):
            self.reading(self.meter, 1000.0, "2026-03-02 02:00:00")
            self.reading(self.meter, 1008.0, "2026-03-02 02:30:00")
            self.bill()
            self.assertEqual(self.account.supply_state, "on")
            self.reading(self.meter, 1012.0, "2026-03-02 03:00:00")
            self.bill()
        self.assertEqual(self.account.limit_state, "energy")
        self.assertEqual(self.account.supply_state, "cut_off")
        # local midnight of 3 March is 16:00 UTC on 2 March
        self.assertEqual(
            self.account.limit_cut_until,
            fields.Datetime.to_datetime("2026-03-02 16:00:00"),
        )
        self.assertIn("12.0 kWh used on 2026-03-02", self.account.limit_reason)
        with freeze_time("2026-03-02 15:59:00"):
            self.assertEqual(Account._cron_limit_restores(self.account), 0)
        with freeze_time("2026-03-02 16:01:00"):
            self.assertEqual(Account._cron_limit_restores(self.account), 1)
        self.assertEqual(self.account.supply_state, "on")
        self.assertEqual(
            self.meter.command_ids.sorted("id").mapped("command_type"),
            ["relay_off", "relay_on"],
        )

    def test_a_past_day_above_the_limit_cuts_nothing(self):
        with freeze_time("2026-03-03 04:00:00"):
            self.reading(self.meter, 1000.0, "2026-03-01 02:00:00")
            self.reading(self.meter, 1020.0, "2026-03-01 03:00:00")
            self.bill()
        self.assertEqual(self.account.supply_state, "on")

    def test_the_daily_limit_counts_every_electricity_meter_of_the_account(self):
        # two meters of 6 kWh each on 2 March: 12 kWh on a limit of 10
        both = self.make_meter(self.gateway, 3) | self.make_meter(self.gateway, 4)
        shared = self.make_account(both, opening=100.0, daily_energy_limit_kwh=10.0)
        with freeze_time("2026-03-02 04:00:00"):
            for meter in both:
                self.reading(meter, 1000.0, "2026-03-02 02:00:00")
                self.reading(meter, 1006.0, "2026-03-02 03:00:00")
            self.bill()
        self.assertEqual(shared.limit_state, "energy")
        self.assertIn("12.0 kWh", shared.limit_reason)
