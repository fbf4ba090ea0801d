"""DL/T 645 meters beside Modbus: the gateway, meters, sweep, relay commands,
event counters, clock and scan against the simulator over TCP."""

from datetime import timedelta

from odoo import Command
from odoo.exceptions import AccessError, ValidationError
from odoo.tests import new_test_user, tagged

from .common import Fleet, MeteringCase


def dlt_meter(device_id, kind="electric_1p", energy_kwh=1000.0, **extra):
    return {
        "device_id": device_id,
        "kind": kind,
        "energy_kwh": energy_kwh,
        "load_kw": 1.0,
        "address": f"{301 + device_id - 1:012d}",
        "password_level": 2,
        "password": "123456",
        "operator": "00000001",
        **extra,
    }


def dlt_spec(meters):
    return {
        "host": "127.0.0.1",
        "speed": 0.0,
        "start_time": "2026-03-02T10:00:00",
        "baud": None,
        "gateways": [
            {"name": "gw1", "port": 0, "protocol": "dlt645", "meters": meters}
        ],
    }


class Dlt645Case(MeteringCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.profile_1p = cls.env.ref("prepaid_metering.profile_dlt645_1p")
        cls.profile_3p = cls.env.ref("prepaid_metering.profile_dlt645_3p")
        cls.line = cls.env["prepaid.gateway"].create(
            {
                "name": "DL/T 645 line",
                "site_id": cls.site.id,
                "protocol": "dlt645_tcp",
                "host": "127.0.0.1",
                "port": 1,
                "timeout_s": 0.3,
            }
        )

    @classmethod
    def make_dlt_meter(cls, address, kind="electric_1p", room=None, **vals):
        profile = cls.profile_3p if kind == "electric_3p" else cls.profile_1p
        return cls.env["prepaid.meter"].create(
            {
                "name": f"DLT {address[-3:]}",
                "meter_type": kind,
                "gateway_id": cls.line.id,
                "address": address,
                "room_id": (room or cls.room).id,
                "profile_ids": [Command.set(profile.ids)],
                "dlt_password": "123456",
                "dlt_operator": "00000001",
                **vals,
            }
        )

    def start_line(self, meters):
        fleet = Fleet.from_spec(dlt_spec(meters)).start()
        self.addCleanup(fleet.stop)
        self.line.port = fleet.gateways[0].port
        return fleet.gateways[0]


@tagged("post_install", "-at_install")
class TestDlt645Meters(Dlt645Case):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.m1 = cls.make_dlt_meter("000000000301")
        cls.m2 = cls.make_dlt_meter("000000000302", room=cls.room2)
        cls.m3 = cls.make_dlt_meter("000000000303", kind="electric_3p")

    def setUp(self):
        super().setUp()
        self.sim = self.start_line(
            [
                dlt_meter(1, energy_kwh=1000.0),
                dlt_meter(2, energy_kwh=2000.0),
                dlt_meter(3, kind="electric_3p", energy_kwh=3000.0),
            ]
        )

    def test_a_new_line_defaults_to_2400_baud_8e1(self):
        self.assertEqual(
            (self.line.baudrate, self.line.bytesize, self.line.parity),
            (2400, 8, "E"),
        )
        self.assertEqual(self.line.stopbits, 1)
        self.assertEqual(self.line._driver_endpoint().protocol, "dlt645_tcp")

    def test_meters_get_their_own_device_ids_and_a_valid_unique_address(self):
        self.assertEqual((self.m1 | self.m2 | self.m3).mapped("device_id"), [1, 2, 3])
        # the form sends the default device id 1: the next free one is taken
        fourth = self.make_dlt_meter("000000000304", device_id=1)
        self.assertEqual(fourth.device_id, 4)
        with self.assertRaisesRegex(ValidationError, "12-digit address"):
            self.make_dlt_meter("30100000000")
        with self.assertRaisesRegex(ValidationError, "12-digit address"):
            self.make_dlt_meter("00000000030A")
        with self.assertRaisesRegex(ValidationError, "already used by meter DLT 301"):
            self.make_dlt_meter("000000000301")
        with self.assertRaisesRegex(ValidationError, "6 digits"):
            self.m1.dlt_password = "12345"
        with self.assertRaisesRegex(ValidationError, "choose a DL/T 645 profile"):
            self.m1.profile_ids = self.profile_acrel

    def test_many_new_meters_on_a_line_are_checked_in_one_go(self):
        def vals(address, name):
            return {
                "name": name,
                "gateway_id": self.line.id,
                "address": address,
                "profile_ids": [Command.set(self.profile_1p.ids)],
            }

        Meter = self.env["prepaid.meter"]
        with self.assertRaisesRegex(ValidationError, "already used by meter DLT 301"):
            with self.env.cr.savepoint():
                Meter.create([vals("000000000305", "A"), vals("000000000301", "B")])
        with self.assertRaisesRegex(
            ValidationError, "000000000306 is already used by meter (C|D)"
        ):
            with self.env.cr.savepoint():
                Meter.create([vals("000000000306", "C"), vals("000000000306", "D")])
        with self.assertRaisesRegex(ValidationError, "12-digit address"):
            with self.env.cr.savepoint():
                Meter.create([vals("000000000307", "E"), vals("1", "F")])
        meters = Meter.create([vals(f"00000000031{i}", f"N{i}") for i in range(3)])
        self.assertEqual(meters.mapped("device_id"), [4, 5, 6])

    def test_sweep_stores_every_meter_and_a_garbling_one_fails_alone(self):
        self.sim.meter(2).inject("garbage")
        self.line._poll_now()
        self.assertEqual(self.m1.state, "online")
        self.assertAlmostEqual(self.m1.energy_total_kwh, 1000.0, delta=0.02)
        self.assertAlmostEqual(self.m3.energy_total_kwh, 3000.0, delta=0.02)
        self.assertGreater(self.m1.voltage_v, 200)
        self.assertEqual(self.m1.switch_state, "on")
        self.assertEqual(self.m2.state, "fault")
        self.assertIn("without a valid frame", self.m2.state_reason)
        readings = self.env["prepaid.reading"].search(
            [("meter_id", "in", (self.m1 | self.m2 | self.m3).ids)]
        )
        self.assertEqual(readings.meter_id, self.m1 | self.m3)
        self.assertEqual(self.line.state, "online")

    def test_an_error_reply_is_named_on_the_meter(self):
        self.sim.meter(1).inject("dlt_error", di="00010000", bits=0x02)
        self.line._poll_now()
        self.assertEqual(self.m1.state, "fault")
        self.assertIn("00010000", self.m1.state_reason)
        self.assertIn("no data requested", self.m1.state_reason)

    def test_relay_trip_and_close_are_read_back(self):
        Command_ = self.env["prepaid.meter.command"]
        off = Command_.create({"meter_id": self.m1.id, "command_type": "relay_off"})
        off.action_send_now()
        self.assertEqual(off.state, "done", off.last_error)
        self.assertTrue(self.sim.meter(1).relay_open)
        self.assertIn("status_word_3", off.result)
        self.assertEqual(self.m1.switch_state, "off")
        self.m1.action_switch_on()
        self.process_commands()
        on = Command_.search([("meter_id", "=", self.m1.id)], limit=1)
        self.assertEqual((on.command_type, on.state), ("relay_on", "done"))
        self.assertFalse(self.sim.meter(1).relay_open)
        self.assertEqual(self.m1.switch_state, "on")
        self.assertFalse(self.sim.meter(2).relay_open, "other meters untouched")

    def test_a_wrong_password_fails_the_command_with_its_name(self):
        self.m2.dlt_password = "654321"
        command = self.env["prepaid.meter.command"].create(
            {"meter_id": self.m2.id, "command_type": "relay_off"}
        )
        command.action_send_now()
        self.assertEqual(command.state, "failed")
        self.assertIn("password wrong or unauthorised", command.last_error)
        self.assertNotIn("654321", command.last_error)
        self.assertFalse(self.sim.meter(2).relay_open)
        # the room board names it too
        self.assertIn("password wrong or unauthorised", self.room2.command_alert)
        self.assertIn(self.m2.name, self.room2.command_alert)
        self.assertFalse(self.room.command_alert)

    def test_event_counter_rise_is_a_meter_event_with_before_and_after(self):
        self.env["ir.config_parameter"].sudo().set_param(
            "prepaid_metering.event_every_sweeps", 1
        )
        Event = self.env["prepaid.meter.event"]
        self.line._poll_now()
        self.assertEqual(self.m1.event_counters["events_cover"], 0)
        self.assertFalse(Event.search([("meter_id", "=", self.m1.id)]))
        self.sim.meter(1).raise_event("cover_open", 2)
        self.sim.meter(3).raise_event("phase_loss")
        self.line._poll_now()
        cover = Event.search([("meter_id", "=", self.m1.id)])
        self.assertEqual(
            (cover.kind, cover.source, cover.count_before, cover.count_after),
            ("cover_opened", "counter", 0, 2),
        )
        self.assertEqual(cover.evidence["data_identifier"], "03300D00")
        phase = Event.search([("meter_id", "=", self.m3.id)])
        self.assertEqual(phase.kind, "phase_loss")
        self.line._poll_now()
        self.assertEqual(Event.search_count([("meter_id", "=", self.m1.id)]), 1)

    def test_event_counters_are_read_every_n_sweeps_only(self):
        self.env["ir.config_parameter"].sudo().set_param(
            "prepaid_metering.event_every_sweeps", 3
        )
        self.line.sweep_count = 1
        self.line._poll_now()
        self.assertFalse(self.m1.event_counters)
        self.assertNotIn("events_cover", self.m1.meter_values)
        self.line.sweep_count = 3
        self.line._poll_now()
        self.assertEqual(self.m1.event_counters["events_cover"], 0)

    def test_clock_sync_and_the_offset_beyond_the_setting(self):
        self.env["ir.config_parameter"].sudo().set_param(
            "prepaid_metering.event_every_sweeps", 1
        )
        outcome = self.env["prepaid.gateway"]._cron_sync_clocks(self.line.ids)
        self.assertTrue(outcome[self.line][0], outcome)
        self.assertTrue(self.line.last_clock_sync_at)
        self.line._poll_now()
        self.assertLessEqual(abs(self.m1.clock_offset_s), 5)
        self.assertFalse(self.m1.clock_off)
        ahead = self.line._site_now() + timedelta(minutes=10)
        self.sim.meter(1).set_meter_time(ahead)
        self.line._poll_now()
        self.assertAlmostEqual(self.m1.clock_offset_s, 600, delta=5)
        self.assertTrue(self.m1.clock_off)
        clock_off = self.env["prepaid.meter"].search([("clock_off", "=", True)])
        self.assertIn(self.m1, clock_off)
        self.assertNotIn(self.m2, clock_off)

    def test_relay_password_is_for_administrators_and_never_logged(self):
        manager = new_test_user(
            self.env, "dlt_manager", groups="prepaid_metering.group_metering_manager"
        )
        with self.assertRaises(AccessError):
            self.m1.with_user(manager).read(["dlt_password"])
        self.m1.with_context(tracking_disable=False).write(
            {"dlt_password": "112233", "dlt_operator": "12345678"}
        )
        self.m1.flush_recordset()
        logged = self.env["mail.tracking.value"].search(
            [("mail_message_id.res_id", "=", self.m1.id)]
        )
        self.assertFalse(
            [
                v
                for v in logged
                if "112233" in str(v.old_value_char or "")
                or "112233" in str(v.new_value_char or "")
            ]
        )
        bodies = " ".join(str(m.body) for m in self.m1.message_ids)
        self.assertNotIn("112233", bodies)

    def test_parameter_writes_are_refused_on_dlt645_meters(self):
        with self.assertRaisesRegex(ValidationError, "Modbus meters only"):
            self.env["prepaid.meter.command"].create(
                {
                    "meter_id": self.m1.id,
                    "command_type": "write_params",
                    "params": {"energy_total": 1},
                }
            )

    def test_a_block_identifier_profile_reads_the_rates_in_one_request(self):
        lines = [
            Command.create(
                {
                    "name": name,
                    "address": 0,
                    "di": "0001FF00",
                    "dlt_format": "bcd",
                    "byte_count": 4,
                    "byte_offset": 4 * index,
                    "scale": 0.01,
                }
            )
            for index, name in enumerate(
                ("energy_total", "energy_sharp", "energy_peak", "energy_flat")
            )
        ]
        block = self.env["prepaid.register.profile"].create(
            {
                "name": "Block",
                "code": "test_dlt645_block",
                "protocol": "dlt645",
                "line_ids": lines,
            }
        )
        self.m1.profile_ids = block
        before = self.sim.requests
        self.m1.action_read_now()
        self.process_commands()
        self.assertEqual(self.sim.requests - before, 1, "one request for four values")
        sim = self.sim.meter(1)
        self.assertAlmostEqual(self.m1.energy_total_kwh, sim.energy_total, delta=0.02)
        rates = self.m1.energy_sharp_kwh + self.m1.energy_peak_kwh
        self.assertLessEqual(rates, self.m1.energy_total_kwh)
        with self.assertRaisesRegex(ValidationError, "reads data identifier"):
            block.line_ids[1].byte_offset = 0

    def test_read_now_reads_every_identifier(self):
        self.m3.action_read_now()
        self.process_commands()
        self.assertEqual(self.m3.state, "online")
        self.assertIn("voltage_c", self.m3.meter_values)
        self.assertIn("events_phase_loss", self.m3.meter_values)


@tagged("post_install", "-at_install")
class TestDlt645Scan(Dlt645Case):
    def test_scan_names_the_address_of_the_one_meter_on_the_line(self):
        self.start_line([dlt_meter(1)])
        action = self.line.action_scan_address()
        self.assertEqual(action["params"]["type"], "success")
        self.assertIn("000000000301", action["params"]["message"])
        self.assertIn("no meter of this gateway", action["params"]["message"])
        meter = self.make_dlt_meter("000000000301")
        action = self.line.action_scan_address()
        self.assertIn(meter.name, action["params"]["message"])

    def test_scan_with_several_meters_says_so(self):
        self.start_line([dlt_meter(1), dlt_meter(2)])
        action = self.line.action_scan_address()
        self.assertEqual(action["params"]["type"], "danger")
        self.assertIn("more than one meter", action["params"]["message"])

    def test_a_modbus_gateway_cannot_be_scanned(self):
        modbus_gw = self.make_gateway(port=1, name="Modbus bus")
        with self.assertRaisesRegex(Exception, "Only a DL/T 645 line"):
            modbus_gw.action_scan_address()
