import socket
import threading
from datetime import timedelta
from unittest.mock import patch

from odoo import fields
from odoo.exceptions import UserError
from odoo.tests import tagged

from .common import MeteringCase, electric, water


def free_port():
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@tagged("post_install", "-at_install")
class TestPolling(MeteringCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.gw_tcp = cls.make_gateway(port=1, name="TCP bus", framer="socket")
        cls.gw_rtu = cls.make_gateway(port=1, name="RTU bus", framer="rtu")
        cls.m1 = cls.make_meter(cls.gw_tcp, 1)
        cls.m2 = cls.make_meter(cls.gw_tcp, 2, kind="electric_3p", room=cls.room2)
        cls.m3 = cls.make_meter(cls.gw_tcp, 3, room=cls.room2)
        cls.m_rtu = cls.make_meter(cls.gw_rtu, 1, room=cls.room2)
        cls.w = cls.make_meter(cls.gw_rtu, 2, kind="water")

    def setUp(self):
        super().setUp()
        self.fleet = self.start_fresh_fleet(
            [
                (
                    "socket",
                    [
                        electric(1, energy_kwh=1234.56, load_kw=1.15),
                        electric(2, kind="electric_3p", energy_kwh=88.0, load_kw=6.9),
                        electric(3, energy_kwh=500.0),
                    ],
                ),
                ("rtu", [electric(1, energy_kwh=42.42), water(2, volume_m3=12.5)]),
            ],
            [self.gw_tcp, self.gw_rtu],
        )

    def sim(self, gateway_index, device_id):
        return self.fleet.meter(gateway_index, device_id)

    def poll(self):
        (self.gw_tcp | self.gw_rtu)._poll_now()

    def test_sweep_stores_values_of_all_three_profiles(self):
        self.poll()
        sim1 = self.sim(0, 1)
        self.assertEqual(self.m1.state, "online")
        self.assertAlmostEqual(self.m1.energy_total_kwh, 1234.56, places=2)
        bands = sim1.bands
        self.assertAlmostEqual(self.m1.energy_sharp_kwh, bands["sharp"], places=2)
        self.assertAlmostEqual(self.m1.energy_valley_kwh, bands["valley"], places=2)
        self.assertAlmostEqual(
            self.m1.energy_sharp_kwh
            + self.m1.energy_peak_kwh
            + self.m1.energy_flat_kwh
            + self.m1.energy_valley_kwh,
            1234.56,
            places=2,
        )
        self.assertEqual(self.m1.voltage_v, 230.0)
        self.assertAlmostEqual(self.m1.power_kw, round(sim1.power_kw(), 3), places=3)
        self.assertAlmostEqual(self.m1.current_a, 5.0, delta=0.3)
        self.assertEqual(self.m1.power_factor, 0.95)
        self.assertEqual(self.m1.switch_state, "on")
        self.assertEqual(self.m1.meter_values["balance"], 100.0)
        self.assertEqual(self.m1.meter_values["unit_price"], 0.8)
        # RTU over TCP and the three-phase meter decode the same way.
        self.assertAlmostEqual(self.m_rtu.energy_total_kwh, 42.42, places=2)
        self.assertAlmostEqual(self.m2.energy_total_kwh, 88.0, places=2)
        # Water: FLOAT32 in DCBA order, valve status bit0 = open.
        self.assertAlmostEqual(self.w.volume_m3, 12.5, places=4)
        self.assertEqual(self.w.switch_state, "on")
        self.assertEqual(self.gw_tcp.state, "online")
        self.assertEqual(self.gw_rtu.state, "online")
        self.assertEqual(self.room.monitor_state, "online")
        reading = self.m1.reading_ids
        self.assertEqual(len(reading), 1)
        self.assertEqual(reading.source, "poll")
        self.assertEqual(reading.room_id, self.room)
        # Evidence: the raw words of both blocks, energy as UINT32 ABCD.
        words = reading.raw_words["0"]
        self.assertEqual((words[0] << 16 | words[1]) / 100, 1234.56)
        self.assertIn(str(0x4000), reading.raw_words)

    def test_ct_ratio_multiplies_energy_current_and_power(self):
        self.m3.multiplier = 40
        self.poll()
        self.assertAlmostEqual(self.m3.energy_total_kwh, 500.0 * 40, places=2)
        sim = self.sim(0, 3)
        self.assertAlmostEqual(self.m3.power_kw, round(sim.power_kw(), 3) * 40, 2)
        self.assertEqual(self.m3.voltage_v, 230.0, "voltage is not scaled")

    def test_consumption_is_the_delta_and_feeds_today_and_month(self):
        self.poll()
        self.age_baselines(self.m1 | self.w)
        self.sim(0, 1).consume(2.5)
        self.sim(1, 2).consume(0.125)
        self.poll()
        latest = self.m1.reading_ids.sorted("id")[-1]
        self.assertAlmostEqual(latest.delta_kwh, 2.5, places=2)
        self.assertEqual(latest.anomaly, "none")
        self.assertAlmostEqual(self.m1.today_energy_kwh, 2.5, places=2)
        self.assertAlmostEqual(self.m1.month_energy_kwh, 2.5, places=2)
        self.assertAlmostEqual(self.room.today_kwh, 2.5, places=2)
        self.assertAlmostEqual(self.w.today_volume_m3, 0.125, places=3)
        self.assertAlmostEqual(self.room.today_m3, 0.125, places=3)

    def test_timeouts_turn_meter_offline_after_threshold_then_online(self):
        self.poll()
        self.sim(0, 1).inject("timeout")
        for attempt in (1, 2):
            self.poll()
            self.assertEqual(self.m1.fail_count, attempt)
            self.assertEqual(self.m1.state, "online", "not offline before 3 misses")
            self.assertIn("no reply", self.m1.state_reason or "")
            self.assertEqual(self.m1.fault_kind, "timeout")
        self.poll()
        self.assertEqual(self.m1.state, "offline")
        self.assertEqual(self.room.monitor_state, "offline")
        # The sweep went on: the next meter on the same bus still answered.
        self.assertEqual(self.m2.state, "online")
        self.assertEqual(self.m2.fail_count, 0)
        self.assertEqual(len(self.m2.reading_ids), 4)
        self.assertEqual(len(self.m1.reading_ids), 1, "no reading without reply")
        self.assertIn("Offline", self.m1.message_ids[0].body)
        self.sim(0, 1).clear_faults()
        self.poll()
        self.assertEqual(self.m1.state, "online")
        self.assertEqual(self.m1.fail_count, 0)
        self.assertFalse(self.m1.state_reason)
        self.assertFalse(self.m1.fault_kind)
        self.assertEqual(self.room.monitor_state, "online")

    def test_exception_reply_is_recorded_as_fault_with_its_code(self):
        self.sim(0, 3).inject("exception", code=0x04)
        self.poll()
        self.assertEqual(self.m3.state, "fault")
        self.assertIn("0x04", self.m3.state_reason)
        self.assertIn("device failure", self.m3.state_reason)
        self.assertEqual(self.m3.fault_kind, "exception")
        self.assertEqual(self.room2.monitor_state, "fault")
        self.assertEqual(self.m2.state, "online")
        self.sim(0, 3).inject("exception", code=0x02)
        self.poll()
        self.assertIn("0x02", self.m3.state_reason)

    def test_unreachable_gateway_fails_its_meters_with_the_reason(self):
        dead = self.make_gateway(port=free_port(), name="Dead bus")
        meter = self.make_meter(dead, 5)
        for _attempt in range(3):
            dead._poll_now()
        self.assertEqual(meter.state, "offline")
        self.assertIn("cannot connect", meter.state_reason)
        self.assertEqual(meter.fault_kind, "connection")
        self.assertEqual(dead.state, "offline")
        self.assertIn(str(dead.port), dead.last_error)

    def test_the_problem_is_named_in_the_reader_s_language(self):
        """The driver's words are technical English; the kind of problem
        beside them is a label shown in the language of whoever reads it."""
        self.sim(0, 3).inject("exception", code=0x02)
        self.poll()
        self.assertEqual(self.m3.fault_kind, "exception")
        self.env["res.lang"]._activate_lang("zh_CN")
        self.env["ir.module.module"]._load_module_terms(
            ["prepaid_metering"], ["zh_CN"], overwrite=True
        )
        field = self.env["prepaid.meter"]._fields["fault_kind"]
        for lang, label in (
            ("en_US", "Meter refused the request"),
            ("zh_CN", "表计拒绝了请求"),
        ):
            labels = dict(
                field._description_selection(self.env(context={"lang": lang}))
            )
            self.assertEqual(labels[self.m3.fault_kind], label)

    def test_rollover_is_flagged_and_counted_across_the_wrap(self):
        sim = self.sim(0, 1)
        sim.inject("rollover", before=1.0)
        self.poll()
        self.assertAlmostEqual(self.m1.energy_total_kwh, 42949671.96, places=2)
        self.age_baselines(self.m1)
        sim.consume(3.0)
        self.poll()
        reading = self.m1.reading_ids.sorted("id")[-1]
        self.assertAlmostEqual(reading.energy_total_kwh, 2.0, places=2)
        self.assertEqual(reading.anomaly, "rollover")
        self.assertAlmostEqual(reading.delta_kwh, 3.0, places=2)

    def test_lower_reading_is_suspect_until_a_smooth_one_clears_it(self):
        self.poll()
        sim = self.sim(0, 3)
        sim.inject("step_back", amount=50.0)
        self.poll()
        lower = self.m3.reading_ids.sorted("id")[-1]
        self.assertEqual((lower.anomaly, lower.review_state), ("drop", "suspect"))
        self.assertEqual(lower.delta_kwh, 0.0)
        self.assertAlmostEqual(self.m3.energy_baseline_kwh, 500.0, places=2)
        self.assertAlmostEqual(self.m3.energy_total_kwh, 500.0, places=2)
        self.assertEqual(self.m3.suspect_reading_id, lower)
        self.age_baselines(self.m3)
        sim.consume(51.0)
        self.poll()
        back = self.m3.reading_ids.sorted("id")[-1]
        self.assertEqual((back.anomaly, back.review_state), ("none", False))
        self.assertAlmostEqual(
            back.delta_kwh, 1.0, places=2, msg="counted from the last accepted value"
        )
        self.assertEqual(lower.review_state, "rejected")
        self.assertFalse(self.m3.suspect_reading_id)

    def test_unexplained_drop_to_near_zero_is_suspect_not_a_replacement(self):
        self.poll()
        self.sim(0, 2).inject("replacement", start=0.5)
        self.poll()
        reading = self.m2.reading_ids.sorted("id")[-1]
        self.assertEqual((reading.anomaly, reading.review_state), ("drop", "suspect"))
        self.assertEqual(reading.delta_kwh, 0.0)
        self.assertIn("Unexplained drop", reading.anomaly_note)
        self.assertAlmostEqual(self.m2.energy_baseline_kwh, 88.0, places=2)

    def test_storage_uses_a_constant_number_of_statements(self):
        small = self.gw_rtu
        large = self.gw_tcp
        (small | large)._poll_now()  # first contact: state notes, warm caches
        counts = {}
        for gateway in (small, large, small | large):
            self.env.invalidate_all()
            before = self.env.cr.sql_log_count
            gateway._poll_now()
            counts[len(gateway.meter_ids)] = self.env.cr.sql_log_count - before
        self.assertEqual(len(set(counts.values())), 1, counts)

    def test_cron_polls_due_gateways_once_per_interval(self):
        (self.gw_tcp | self.gw_rtu).write({"next_poll_at": False})
        self.env["prepaid.gateway"].search(
            [("id", "not in", (self.gw_tcp | self.gw_rtu).ids)]
        ).write({"next_poll_at": fields.Datetime.now() + timedelta(days=1)})
        done = self.env["prepaid.gateway"]._cron_poll()
        self.assertEqual(done, 2)
        self.assertEqual(len(self.m1.reading_ids), 1)
        self.assertGreater(
            self.gw_tcp.next_poll_at, fields.Datetime.now() + timedelta(minutes=4)
        )
        self.assertEqual(self.env["prepaid.gateway"]._cron_poll(), 0)
        self.assertEqual(len(self.m1.reading_ids), 1)

    def _pipelined_cron(self, fail_store_of=None):
        """_cron_poll with one gateway per batch and one meter per stored
        chunk; returns (polled, [(event, gateway ids)]) in call order."""
        Gateway = self.registry["prepaid.gateway"]
        Reading = self.registry["prepaid.reading"]
        start_sweep, store = Gateway._start_sweep, Reading._store_poll_results
        events = []

        def traced_start(gateways):
            events.append(("wire", gateways.ids))
            return start_sweep(gateways)

        def traced_store(reading, gateway_results, *args, **kwargs):
            ids = [gateway.id for gateway, _results in gateway_results]
            if fail_store_of in ids:
                raise RuntimeError("store failed")
            events.append(("store", ids))
            return store(reading, gateway_results, *args, **kwargs)

        icp = self.env["ir.config_parameter"].sudo()
        icp.set_param("prepaid_metering.poll_batch_gateways", 1)
        icp.set_param("prepaid_metering.store_chunk_meters", 1)
        both = self.gw_tcp | self.gw_rtu
        both.write({"next_poll_at": False})
        self.env["prepaid.gateway"].search([("id", "not in", both.ids)]).write(
            {"next_poll_at": fields.Datetime.now() + timedelta(days=1)}
        )
        with (
            patch.object(Gateway, "_start_sweep", traced_start),
            patch.object(Reading, "_store_poll_results", traced_store),
        ):
            polled = self.env["prepaid.gateway"]._cron_poll()
        return polled, events

    def test_cron_reads_the_next_batch_while_it_stores_one_each_reading_once(self):
        polled, events = self._pipelined_cron()
        self.assertEqual(polled, 2)
        first, second = events[0][1], events[1][1]
        self.assertEqual(
            events,
            [("wire", first), ("wire", second), ("store", first), ("store", second)],
            "the second batch goes on the wire before the first is stored",
        )
        self.assertEqual(
            sorted(first + second), sorted((self.gw_tcp | self.gw_rtu).ids)
        )
        meters = self.m1 | self.m2 | self.m3 | self.m_rtu | self.w
        self.env.invalidate_all()
        self.assertEqual(
            {m.id: len(m.reading_ids) for m in meters}, dict.fromkeys(meters.ids, 1)
        )
        self.assertAlmostEqual(self.m1.reading_ids.energy_total_kwh, 1234.56, places=2)
        self.assertAlmostEqual(self.w.reading_ids.volume_m3, 12.5, places=3)
        self.assertEqual(set(meters.mapped("state")), {"online"})

    def test_a_failed_store_ends_the_batch_already_on_the_wire(self):
        first = self.env["prepaid.gateway"].search(
            [("id", "in", (self.gw_tcp | self.gw_rtu).ids)],
            order="next_poll_at NULLS FIRST, id",
            limit=1,
        )
        with self.assertRaisesRegex(RuntimeError, "store failed"):
            self._pipelined_cron(fail_store_of=first.id)
        self.assertFalse(
            [t for t in threading.enumerate() if t.name == "modbus-buses"],
            "no driver thread left running",
        )

    def test_manual_reading_goes_through_counter_checks_and_is_immutable(self):
        self.poll()
        manual = self.env["prepaid.reading"].create(
            {
                "meter_id": self.m1.id,
                "energy_total_kwh": 1200.0,
                "source": "manual",
            }
        )
        self.assertEqual((manual.anomaly, manual.review_state), ("drop", "suspect"))
        self.age_baselines(self.m1)
        later = self.env["prepaid.reading"].create(
            {
                "meter_id": self.m1.id,
                "energy_total_kwh": 1240.56,
                "source": "manual",
            }
        )
        self.assertAlmostEqual(later.delta_kwh, 6.0, places=2)
        self.assertEqual(manual.review_state, "rejected")
        self.assertAlmostEqual(self.m1.energy_total_kwh, 1240.56, places=2)
        with self.assertRaises(UserError):
            later.energy_total_kwh = 1.0
        with self.assertRaises(UserError):
            self.env["prepaid.reading"].create(
                {
                    "meter_id": self.m1.id,
                    "energy_total_kwh": 1.0,
                    "source": "poll",
                }
            )


@tagged("post_install", "-at_install")
class TestHotTables(MeteringCase):
    def test_meters_and_gateways_leave_room_for_their_updates_on_each_page(self):
        # each poll rewrites these rows: fillfactor 70 keeps the updates HOT
        self.env.cr.execute(
            """SELECT relname, reloptions FROM pg_class
                WHERE relname IN ('prepaid_meter', 'prepaid_gateway')"""
        )
        self.assertEqual(
            dict(self.env.cr.fetchall()),
            {
                "prepaid_meter": ["fillfactor=70"],
                "prepaid_gateway": ["fillfactor=70"],
            },
        )
