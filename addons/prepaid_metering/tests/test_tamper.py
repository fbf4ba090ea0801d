from odoo import Command
from odoo.tests import tagged

from .common import MeteringCase, electric, water

EVENT = "prepaid.meter.event"


@tagged("post_install", "-at_install")
class TestTamperSignals(MeteringCase):
    """Each tamper fault of the simulator, read over Modbus TCP, is one meter
    event with its evidence and one alarm until acknowledged."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.profile_tamper = cls.env.ref("prepaid_metering.profile_px_tamper_v1")
        cls.gw = cls.make_gateway(port=1, name="Tamper bus", framer="socket")
        cls.e1 = cls.make_meter(cls.gw, 1)
        cls.e3 = cls.make_meter(cls.gw, 2, kind="electric_3p", room=cls.room2)
        cls.w = cls.make_meter(cls.gw, 3, kind="water")
        (cls.e1 | cls.e3).profile_ids = [Command.link(cls.profile_tamper.id)]
        cls.managers = cls.env.ref("prepaid_metering.group_metering_manager").users
        cls.managers = cls.managers.filtered(
            lambda u: cls.company in u.company_ids and not u.share
        )
        icp = cls.env["ir.config_parameter"].sudo()
        for key in ("tamper_checks", "event_alarm_level"):
            icp.set_param(f"prepaid_metering.{key}", False)
        for key in ("reverse_kwh", "voltage_min_v", "current_min_a", "flow_m3"):
            icp.set_param(f"prepaid_metering.tamper_{key}", False)

    def setUp(self):
        super().setUp()
        self.fleet = self.start_fresh_fleet(
            [
                (
                    "socket",
                    [
                        electric(1, energy_kwh=100.0),
                        electric(2, kind="electric_3p", energy_kwh=200.0, load_kw=6.9),
                        water(3, volume_m3=12.5, valve_open=False),
                    ],
                )
            ],
            [self.gw],
        )
        self.poll()  # the values the signals compare with

    def sim(self, device_id):
        return self.fleet.meter(0, device_id)

    def poll(self):
        self.gw._poll_now()

    def events(self, meter=None):
        return self.env[EVENT].search(
            [("meter_id", "in", (meter or (self.e1 | self.e3 | self.w)).ids)]
        )

    def advance(self, seconds):
        self.fleet.clock.advance(seconds)
        self.age_baselines(self.e1 | self.e3 | self.w, hours=seconds / 3600)

    def assert_one_alarm(self, event):
        activities = event.activity_ids
        self.assertEqual(activities.user_id, self.managers)
        self.assertEqual(len(activities), len(self.managers))
        mails = event.message_ids.filtered(lambda m: m.message_type == "comment")
        self.assertEqual(len(mails), 1)
        self.assertEqual(mails.partner_ids, self.managers.partner_id)

    def test_reverse_energy_is_one_event_with_its_evidence(self):
        self.sim(1).inject("reverse_energy", kw=6.0)
        self.advance(60)  # 6 kW x 60 s = 0.1 kWh
        self.poll()
        event = self.events(self.e1)
        self.assertEqual(len(event), 1)
        self.assertEqual((event.kind, event.source), ("reverse_energy", "analysis"))
        self.assertEqual(event.evidence["before_energy_reverse"], 0.0)
        self.assertEqual(event.evidence["after_energy_reverse"], 0.1)
        self.assertEqual(event.evidence["grown_kwh"], 0.1)
        self.assertEqual(event.evidence["threshold_kwh"], 0.05)
        self.assertTrue(event.evidence["before_at"] and event.evidence["after_at"])
        self.assertIn("0.1", event.description)
        # the readings behind it keep the register words (0x4020: 0, then 10)
        self.assertEqual(event.reading_id, self.e1.reading_ids.sorted("id")[-1])
        self.assertEqual(
            event.previous_reading_id, self.e1.reading_ids.sorted("id")[-2]
        )
        self.assertEqual(event.reading_id.raw_words["16416"][:2], [0, 10])
        self.assertEqual(event.previous_reading_id.raw_words["16416"][:2], [0, 0])
        self.assert_one_alarm(event)
        # still growing: the same event, seen again, no second alarm
        self.advance(60)
        self.poll()
        self.advance(60)
        self.poll()
        self.assertEqual(self.events(), event)
        self.assertEqual(event.seen_count, 3)
        self.assertEqual(event.last_evidence["after_energy_reverse"], 0.3)
        self.assertEqual(event.evidence["after_energy_reverse"], 0.1)
        self.assert_one_alarm(event)
        # acknowledged: the alarm is done; the signal going on is a new event
        event.action_acknowledge()
        self.assertFalse(event.activity_ids)
        self.advance(60)
        self.poll()
        new = self.events() - event
        self.assertEqual(len(new), 1)
        self.assertEqual(new.state, "open")
        self.assert_one_alarm(new)
        # no event on the healthy meters
        self.assertFalse(self.events(self.e3 | self.w))

    def test_current_without_voltage(self):
        self.sim(1).inject("ct_bypass")
        self.poll()
        self.poll()
        event = self.events()
        self.assertEqual(event.kind, "current_without_voltage")
        self.assertEqual(event.meter_id, self.e1)
        self.assertEqual(event.evidence["phases"], "a")
        self.assertEqual(event.evidence["before_voltage"], 230.0)
        self.assertEqual(event.evidence["after_voltage"], 0.0)
        # 1 kW / (230 V x 0.95) = 4.58 A still flowing
        self.assertEqual(event.evidence["after_current"], 4.58)
        self.assertEqual(event.seen_count, 2)

    def test_phase_loss_on_the_three_phase_meter(self):
        self.sim(2).inject("phase_loss", phase="c")
        self.poll()
        event = self.events()
        self.assertEqual((event.kind, event.meter_id), ("phase_loss", self.e3))
        self.assertEqual(event.evidence["phases"], "c")
        self.assertEqual(
            (event.evidence["before_voltage_c"], event.evidence["after_voltage_c"]),
            (230.0, 0.0),
        )
        self.assertEqual(event.evidence["after_current_c"], 0.0)
        self.assertEqual(event.evidence["after_voltage_b"], 230.0)

    def test_cover_terminal_cover_and_clear_counters(self):
        sim = self.sim(1)
        sim.inject("cover_open")
        sim.inject("terminal_cover_open")
        self.poll()
        sim.inject("cover_open")
        sim.inject("meter_clear")
        self.poll()
        events = self.events()
        by_kind = {e.kind: e for e in events}
        self.assertEqual(
            sorted(by_kind), ["cover_opened", "meter_cleared", "terminal_cover_opened"]
        )
        self.assertEqual(len(events), 3)
        cover = by_kind["cover_opened"]
        self.assertEqual(
            (cover.source, cover.count_before, cover.count_after), ("counter", 0, 2)
        )
        self.assertEqual(cover.seen_count, 2)
        self.assertEqual(
            (
                by_kind["meter_cleared"].count_before,
                by_kind["meter_cleared"].count_after,
            ),
            (0, 1),
        )
        for event in events:
            self.assert_one_alarm(event)

    def test_room_board_shows_the_open_events_with_their_reason(self):
        self.sim(1).inject("cover_open")
        self.sim(1).inject("reverse_energy", kw=6.0)
        self.advance(60)
        self.poll()
        self.room.invalidate_recordset(["event_count", "event_reason"])
        self.assertEqual(self.room.event_count, 2)
        self.assertEqual(
            self.room.event_reason, "Meter cover opened, Reverse energy growing"
        )
        self.assertEqual(self.room2.event_count, 0)
        action = self.room.action_view_events()
        self.assertEqual(self.env[EVENT].search(action["domain"]), self.events(self.e1))
        self.events().action_acknowledge()
        self.room.invalidate_recordset(["event_count", "event_reason"])
        self.assertEqual((self.room.event_count, self.room.event_reason), (0, ""))

    def test_water_through_a_closed_valve(self):
        self.advance(3600)
        self.poll()
        self.assertFalse(self.events(), "closed and nothing flows: no signal")
        self.sim(3).inject("valve_leak", flow_m3h=0.02)
        self.advance(1800)  # 0.01 m³
        self.poll()
        event = self.events()
        self.assertEqual((event.kind, event.meter_id), ("flow_while_closed", self.w))
        self.assertEqual(event.evidence["before_volume_total"], 12.5)
        self.assertAlmostEqual(event.evidence["after_volume_total"], 12.51, places=5)
        self.assertEqual(event.evidence["after_valve"], 2)
        self.assertAlmostEqual(event.evidence["flowed_m3"], 0.01, places=5)

    def test_thresholds_are_respected(self):
        icp = self.env["ir.config_parameter"].sudo()
        icp.set_param("prepaid_metering.tamper_reverse_kwh", "0.2")
        self.sim(1).inject("reverse_energy", kw=6.0)
        self.advance(60)  # 0.1 kWh: below 0.2
        self.poll()
        self.assertFalse(self.events())
        self.advance(120)  # 0.2 kWh more
        self.poll()
        self.assertEqual(self.events().kind, "reverse_energy")
        self.assertEqual(self.events().evidence["threshold_kwh"], 0.2)
        # checks off: nothing looked at
        icp.set_param("prepaid_metering.tamper_checks", "off")
        self.sim(1).inject("cover_open")
        self.poll()
        self.assertEqual(len(self.events()), 1)

    def test_alarm_level_activity_only_and_none(self):
        icp = self.env["ir.config_parameter"].sudo()
        icp.set_param("prepaid_metering.event_alarm_level", "activity")
        self.sim(1).inject("cover_open")
        self.poll()
        event = self.events()
        self.assertEqual(len(event.activity_ids), len(self.managers))
        self.assertFalse(
            event.message_ids.filtered(lambda m: m.message_type == "comment")
        )
        icp.set_param("prepaid_metering.event_alarm_level", "none")
        self.sim(1).inject("meter_clear")
        self.poll()
        cleared = self.events() - event
        self.assertEqual(cleared.kind, "meter_cleared")
        self.assertFalse(cleared.activity_ids)

    def test_events_from_elsewhere_are_merged_and_alarmed_once(self):
        """Whoever creates events (a DL/T 645 counter read, the master-meter
        check): a still-open kind on the meter is updated, not duplicated."""
        Event = self.env[EVENT]
        first = Event.create(
            {
                "meter_id": self.e1.id,
                "kind": "clock_set",
                "source": "counter",
                "count_before": 4,
                "count_after": 5,
                "evidence": {"count": 5},
            }
        )
        again = Event.create(
            [
                {
                    "meter_id": self.e1.id,
                    "kind": "clock_set",
                    "source": "counter",
                    "count_before": 5,
                    "count_after": 6,
                    "evidence": {"count": 6},
                },
                {
                    "meter_id": self.e3.id,
                    "kind": "clock_set",
                    "source": "counter",
                    "count_before": 0,
                    "count_after": 1,
                },
                {
                    "meter_id": self.e3.id,
                    "kind": "clock_set",
                    "source": "counter",
                    "count_before": 1,
                    "count_after": 2,
                },
            ]
        )
        self.assertEqual(again[0], first)
        self.assertEqual(again[1], again[2])
        self.assertEqual(len(self.events()), 2)
        self.assertEqual((first.count_before, first.count_after), (4, 6))
        self.assertEqual(first.evidence, {"count": 5})
        self.assertEqual(first.last_evidence, {"count": 6})
        self.assertEqual((again[1].count_before, again[1].count_after), (0, 2))
        self.assert_one_alarm(first)
        self.assert_one_alarm(again[1])

    def test_no_false_alarm_on_a_normal_fleet_over_a_simulated_week(self):
        """Hourly polls for seven simulated days: daily load profile, a relay
        cut and restored, a valve opened then closed between two reads."""
        self.sim(3).valve_open = True
        for hour in range(7 * 24):
            if hour == 30:
                self.sim(1).trip()
            elif hour == 40:
                self.sim(1).close()
            elif hour == 80:
                self.sim(3).valve_open = False
            elif hour == 100:
                self.sim(3).valve_open = True
            self.advance(3600)
            self.poll()
        self.assertEqual(len(self.e1.reading_ids), 7 * 24 + 1)
        self.assertGreater(self.w.volume_m3, 12.5)
        self.assertFalse(self.events())


@tagged("post_install", "-at_install")
class TestDemoSignals(MeteringCase):
    """The demo fleet (simulator/demo_fleet.json) shows its tamper faults as
    open meter events within minutes of start."""

    def test_demo_fleet_raises_its_signals(self):
        gateway = self.env.ref(
            "prepaid_metering.demo_gateway_1", raise_if_not_found=False
        )
        if not gateway:
            self.skipTest("needs the demo data")
        from simulator import Fleet, demo_spec

        spec = demo_spec(start_time="2026-03-02T10:00:00")
        spec["speed"] = 0
        spec["gateways"] = spec["gateways"][:1]
        spec["gateways"][0]["port"] = 0
        fleet = Fleet.from_spec(spec).start()
        self.addCleanup(fleet.stop)
        gateway.port = fleet.gateways[0].port
        before = self.env[EVENT].search([]).ids
        gateway._poll_now()
        # three real minutes at the demo speed (5): 900 simulated seconds,
        # then one more poll a real minute later
        fleet.clock.advance(900)
        self.age_baselines(gateway.meter_ids, hours=0.25)
        gateway._poll_now()
        fleet.clock.advance(300)
        self.age_baselines(gateway.meter_ids, hours=300 / 3600)
        gateway._poll_now()
        events = self.env[EVENT].search([("id", "not in", before)])
        self.assertEqual(
            sorted((e.meter_id.device_id, e.kind) for e in events),
            [(5, "reverse_energy"), (8, "cover_opened"), (17, "phase_loss")],
        )
        self.assertTrue(all("demo fault" in e.meter_id.name for e in events))
