import math
from datetime import timedelta

from odoo import fields
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import new_test_user, tagged

from .common import MeteringCase, electric, water


@tagged("post_install", "-at_install")
class TestPlausibility(MeteringCase):
    """Implausible readings are stored as suspect: never a baseline, never
    consumption, until a metering manager accepts them."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.gateway = cls.make_gateway(port=1, name="Plausibility bus")
        cls.meter = cls.make_meter(cls.gateway, 1)
        cls.other = cls.make_meter(cls.gateway, 2, room=cls.room2)
        cls.water_meter = cls.make_meter(cls.gateway, 3, kind="water")
        cls.manager = new_test_user(
            cls.env,
            login="plaus_mgr",
            groups="base.group_user,prepaid_metering.group_metering_manager",
        )
        cls.operator = new_test_user(
            cls.env,
            login="plaus_op",
            groups="base.group_user,prepaid_metering.group_metering_user",
        )

    def setUp(self):
        super().setUp()
        self.fleet = self.start_fresh_fleet(
            [
                (
                    "socket",
                    [
                        electric(1, energy_kwh=1000.0),
                        electric(2, energy_kwh=500.0),
                        water(3, volume_m3=12.5),
                    ],
                )
            ],
            [self.gateway],
        )
        self.sim = self.fleet.meter(0, 1)
        self.poll()
        self.age_baselines(self.meter | self.other | self.water_meter)

    def poll(self):
        self.gateway._poll_now()

    def last(self, meter):
        return meter.reading_ids.sorted("id")[-1]

    def review(self, readings, decision, reason="checked on site", user=None):
        wizard = (
            self.env["prepaid.reading.review.wizard"]
            .with_user(user or self.manager)
            .create(
                {
                    "reading_ids": [(6, 0, readings.ids)],
                    "decision": decision,
                    "reason": reason,
                }
            )
        )
        return wizard.action_confirm()

    def spike(self, kwh=5000.0):
        """The meter answers a value far above its last one (e.g. bus noise)."""
        self.sim.energy_total = self.sim.energy_total + kwh
        self.poll()
        return self.last(self.meter)

    # -- the rule ----------------------------------------------------------
    def test_rated_demand_defaults_per_type_and_must_be_positive(self):
        self.assertEqual(self.meter.rated_power_kw, 15.0)
        self.assertEqual(self.water_meter.rated_flow_m3h, 5.0)
        three_phase = self.make_meter(self.gateway, 9, kind="electric_3p")
        self.assertEqual(three_phase.rated_power_kw, 45.0)
        three_phase.rated_power_kw = 120.0
        self.assertEqual(three_phase.rated_power_kw, 120.0)
        with self.assertRaises(ValidationError):
            three_phase.rated_power_kw = 0.0
        with self.assertRaises(ValidationError):
            self.water_meter.rated_flow_m3h = -1.0

    def test_spike_is_suspect_and_moves_no_baseline_nor_today(self):
        self.sim.consume(1.0)
        self.poll()
        self.assertAlmostEqual(self.meter.today_energy_kwh, 1.0, places=2)
        contact = self.meter.last_contact
        reading = self.spike()
        self.assertEqual((reading.anomaly, reading.review_state), ("jump", "suspect"))
        self.assertEqual(reading.delta_kwh, 0.0)
        self.assertAlmostEqual(reading.energy_total_kwh, 6001.0, places=2)
        self.assertIn("Implausible jump", reading.anomaly_note)
        meter = self.meter
        self.assertAlmostEqual(meter.energy_baseline_kwh, 1001.0, places=2)
        self.assertAlmostEqual(meter.energy_total_kwh, 1001.0, places=2)
        self.assertAlmostEqual(meter.today_energy_kwh, 1.0, places=2)
        self.assertEqual(meter.suspect_reading_id, reading)
        # still online, its contact and reading time moved
        self.assertEqual(meter.state, "online")
        self.assertGreaterEqual(meter.last_contact, contact)
        self.assertEqual(meter.last_reading_at, reading.read_at)
        self.assertIn("Suspect reading", meter.message_ids[0].body)
        # shown on the board and in the suspect list
        self.assertEqual(self.room.suspect_count, 1)
        self.assertEqual(self.room2.suspect_count, 0)
        self.assertIn(
            self.room,
            self.env["prepaid.room"].search(
                [("meter_ids.suspect_reading_id", "!=", False)]
            ),
        )
        suspects = self.env["prepaid.reading"].search(
            [("review_state", "=", "suspect")]
        )
        self.assertEqual(suspects, reading)

    def test_spike_then_smooth_reading_clears_the_spike(self):
        spike = self.spike()
        self.sim.energy_total = 1000.2
        self.poll()
        back = self.last(self.meter)
        self.assertEqual((back.anomaly, back.review_state), ("none", False))
        self.assertAlmostEqual(back.delta_kwh, 0.2, places=2)
        self.assertEqual(spike.review_state, "rejected")
        self.assertIn("Cleared automatically", spike.review_note)
        self.assertFalse(self.meter.suspect_reading_id)
        self.assertAlmostEqual(self.meter.energy_baseline_kwh, 1000.2, places=2)
        self.assertEqual(self.room.suspect_count, 0)

    def test_jump_near_the_top_of_the_range_then_back_is_no_rollover(self):
        self.sim.energy_total = 42949670.0
        self.poll()
        spike = self.last(self.meter)
        self.assertEqual(spike.review_state, "suspect")
        self.sim.energy_total = 1000.5
        self.poll()
        back = self.last(self.meter)
        self.assertEqual(back.anomaly, "none", "not a rollover from the spike")
        self.assertAlmostEqual(back.delta_kwh, 0.5, places=2)
        self.assertEqual(spike.review_state, "rejected")

    def test_permanent_jump_stays_suspect_until_accepted(self):
        first = self.spike(100.0)
        self.age_baselines(self.meter, hours=10)  # 100 kWh is credible by now
        self.sim.consume(0.1)
        self.poll()
        second = self.last(self.meter)
        self.assertEqual(
            (second.anomaly, second.review_state), ("continued", "suspect")
        )
        self.assertEqual(self.meter.suspect_reading_id, second)
        self.assertAlmostEqual(self.meter.energy_baseline_kwh, 1000.0, places=2)
        self.review(first, "accept", "new meter display checked: 1100 kWh")
        self.assertEqual(first.review_state, "accepted")
        self.assertAlmostEqual(first.delta_kwh, 100.0, places=2)
        self.assertEqual(first.review_note, "new meter display checked: 1100 kWh")
        # the later one is judged again against the accepted value
        self.assertEqual((second.review_state, second.anomaly), (False, "none"))
        self.assertAlmostEqual(second.delta_kwh, 0.1, places=2)
        self.assertIn("Re-assessed", second.review_note)
        meter = self.meter
        self.assertAlmostEqual(meter.energy_baseline_kwh, 1100.1, places=2)
        self.assertAlmostEqual(meter.energy_total_kwh, 1100.1, places=2)
        self.assertEqual(meter.baseline_at, second.read_at)
        self.assertFalse(meter.suspect_reading_id)
        self.assertIn("new meter display checked", meter.message_ids[0].body)
        # the next poll continues from there
        self.sim.consume(0.2)
        self.poll()
        self.assertAlmostEqual(self.last(self.meter).delta_kwh, 0.2, places=2)

    def test_accepting_a_later_suspect_rejects_the_earlier_ones(self):
        first = self.spike(100.0)
        self.sim.consume(0.1)
        self.poll()
        second = self.last(self.meter)
        self.review(second, "accept")
        self.assertEqual(first.review_state, "rejected")
        self.assertIn("Superseded", first.review_note)
        self.assertEqual(second.review_state, "accepted")
        self.assertAlmostEqual(second.delta_kwh, 100.1, places=2)
        self.assertEqual(first.delta_kwh, 0.0)

    def test_reject_keeps_the_baseline_and_its_reason(self):
        reading = self.spike()
        with self.assertRaises(UserError):
            self.review(reading, "reject", reason="  ")
        self.assertEqual(reading.review_state, "suspect")
        self.review(reading, "reject", "bus noise on floor 1")
        self.assertEqual(reading.review_state, "rejected")
        self.assertEqual(reading.review_note, "bus noise on floor 1")
        self.assertEqual(reading.delta_kwh, 0.0)
        self.assertAlmostEqual(self.meter.energy_baseline_kwh, 1000.0, places=2)
        self.assertFalse(self.meter.suspect_reading_id)
        self.assertIn("bus noise on floor 1", self.meter.message_ids[0].body)
        with self.assertRaises(UserError, msg="already reviewed"):
            self.review(reading, "accept")

    def test_drop_and_invalid_readings_cannot_be_accepted(self):
        self.sim.energy_total = 10.0
        self.poll()
        drop = self.last(self.meter)
        self.assertEqual((drop.anomaly, drop.review_state), ("drop", "suspect"))
        with self.assertRaises(UserError) as caught:
            self.review(drop, "accept")
        self.assertIn("Replace Meter", str(caught.exception))
        self.assertEqual(drop.review_state, "suspect")
        self.assertAlmostEqual(self.meter.energy_baseline_kwh, 1000.0, places=2)

    def test_only_metering_managers_review_and_nobody_writes_the_outcome(self):
        reading = self.spike()
        with self.assertRaises(AccessError):
            self.review(reading, "accept", user=self.operator)
        with self.assertRaises(AccessError):
            reading.with_user(self.operator).action_accept()
        with self.assertRaises(UserError):
            reading.with_user(self.manager).write(
                {"review_state": "accepted", "delta_kwh": 5000.0}
            )
        self.assertEqual((reading.review_state, reading.delta_kwh), ("suspect", 0.0))

    def test_suspects_of_several_meters_are_rejected_in_one_action(self):
        other_sim = self.fleet.meter(0, 2)
        other_sim.energy_total = other_sim.energy_total + 4000.0
        first = self.spike()
        second = self.last(self.other)
        plausible = self.last(self.water_meter)
        self.assertEqual(second.review_state, "suspect")
        selection = (first | second | plausible).with_user(self.manager)
        action = selection.action_reject()
        # the plausible reading of the selection is left out of the decision
        self.assertEqual(action["context"]["default_reading_ids"], (first | second).ids)
        wizard = (
            self.env["prepaid.reading.review.wizard"]
            .with_user(self.manager)
            .with_context(**action["context"])
            .create({"reason": "bus noise during the storm"})
        )
        self.assertEqual((wizard.decision, wizard.reading_count), ("reject", 2))
        wizard.action_confirm()
        self.assertEqual(
            (first | second).mapped("review_state"), ["rejected", "rejected"]
        )
        self.assertEqual(
            set((first | second).mapped("review_note")),
            {"bus noise during the storm"},
        )
        self.assertFalse(self.meter.suspect_reading_id | self.other.suspect_reading_id)

    def test_suspects_of_several_meters_are_accepted_in_one_action(self):
        other_sim = self.fleet.meter(0, 2)
        other_sim.energy_total = other_sim.energy_total + 200.0
        first = self.spike(kwh=100.0)
        second = self.last(self.other)
        self.review(first | second, "accept", "new machines: checked on site")
        self.assertEqual(
            (first | second).mapped("review_state"), ["accepted", "accepted"]
        )
        self.assertAlmostEqual(first.delta_kwh, 100.0, places=2)
        self.assertAlmostEqual(second.delta_kwh, 200.0, places=2)

    def test_a_selection_without_suspects_cannot_be_reviewed(self):
        self.sim.consume(1.0)
        self.poll()
        with self.assertRaises(UserError):
            self.last(self.meter).with_user(self.manager).action_accept()

    def test_only_managers_review_even_through_code(self):
        reading = self.spike()
        with self.assertRaises(AccessError):
            reading.with_user(self.operator)._review("reject", "not mine to say")
        with self.assertRaises(AccessError):
            reading.with_user(self.operator).action_reject()
        self.assertEqual(reading.review_state, "suspect")

    def test_margin_is_a_setting(self):
        # 4 kWh in 10 minutes: 24 kW, above 15 kW x 1.5, below 15 kW x 2
        self.env["ir.config_parameter"].set_param(
            "prepaid_metering.plausibility_margin", "2.0"
        )
        self.age_baselines(self.meter, hours=-50 / 60)  # 10 min since then
        self.sim.consume(4.0)
        self.poll()
        self.assertFalse(self.last(self.meter).review_state)
        with self.assertRaises(ValidationError):
            self.env["res.config.settings"].create({"prepaid_plausibility_margin": 0.5})

    # -- values that cannot be money -----------------------------------------
    def test_nan_float_register_spoils_its_own_reading_only(self):
        water_sim = self.fleet.meter(0, 3)
        for value in ("nan", "inf"):
            with self.subTest(value=value):
                water_sim.inject("bad_float", value=value)
                before = len(self.meter.reading_ids)
                self.poll()
                reading = self.last(self.water_meter)
                self.assertEqual(
                    (reading.anomaly, reading.review_state), ("invalid", "suspect")
                )
                self.assertIsNone(reading.values_json["volume_total"])
                self.assertTrue(reading.raw_words["1"], "raw words kept as evidence")
                self.env.cr.execute(
                    "SELECT volume_m3 FROM prepaid_reading WHERE id = %s",
                    [reading.id],
                )
                self.assertIsNone(self.env.cr.fetchone()[0])
                self.assertEqual(self.water_meter.state, "online")
                self.assertAlmostEqual(self.water_meter.volume_m3, 12.5, places=3)
                self.assertTrue(math.isfinite(self.water_meter.volume_baseline_m3))
                # the rest of the chunk is stored
                self.assertEqual(len(self.meter.reading_ids), before + 1)
                self.assertFalse(self.last(self.other).review_state)
                with self.assertRaises(UserError):
                    self.review(reading, "accept")
        water_sim.clear_faults()
        water_sim.consume(0.01)
        self.poll()
        back = self.last(self.water_meter)
        self.assertEqual((back.anomaly, back.review_state), ("none", False))
        self.assertAlmostEqual(back.delta_m3, 0.01, places=3)
        self.assertFalse(self.water_meter.suspect_reading_id)

    def test_storage_statements_stay_constant_with_suspects_and_clears(self):
        small, large = self.make_gateway(port=1, name="Small bus"), self.gateway
        small_meter = self.make_meter(small, 1)
        fleet = self.start_fresh_fleet(
            [("socket", [electric(1, energy_kwh=1000.0)])], [small]
        )
        small._poll_now()
        buses = (
            (small, [fleet.meter(0, 1)]),
            (large, [self.fleet.meter(0, 1), self.fleet.meter(0, 2)]),
        )

        def count(gateway):
            self.env.invalidate_all()
            before = self.env.cr.sql_log_count
            gateway._poll_now()
            return self.env.cr.sql_log_count - before

        counts = {}
        # the first round warms the caches (first chatter notes)
        for _round in range(2):
            for gateway, sims in buses:
                for sim in sims:
                    sim.energy_total = sim.energy_total + 5000.0
                spiked = count(gateway)
                self.assertTrue(gateway.meter_ids.suspect_reading_id)
                for sim in sims:
                    sim.energy_total = sim.energy_total - 5000.0
                cleared = count(gateway)
                self.assertFalse(gateway.meter_ids.suspect_reading_id)
                counts[len(gateway.meter_ids)] = (spiked, cleared)
        self.assertEqual(len(small_meter.reading_ids), 5)
        self.assertEqual(len(set(counts.values())), 1, counts)

    # -- manual readings -----------------------------------------------------
    def test_manual_reading_goes_through_the_rule(self):
        at = self.meter.last_reading_at + timedelta(minutes=5)
        reading = self.env["prepaid.reading"].create(
            {"meter_id": self.meter.id, "energy_total_kwh": 5000.0, "read_at": at}
        )
        self.assertEqual(reading.review_state, "suspect")
        self.assertEqual(self.meter.suspect_reading_id, reading)
        self.assertAlmostEqual(self.meter.energy_baseline_kwh, 1000.0, places=2)

    def test_manual_reading_before_the_last_one_is_refused(self):
        count = len(self.meter.reading_ids)
        earlier = self.meter.last_reading_at - timedelta(minutes=1)
        with self.assertRaises(UserError) as caught:
            self.env["prepaid.reading"].create(
                {
                    "meter_id": self.meter.id,
                    "energy_total_kwh": 999.0,
                    "read_at": earlier,
                }
            )
        self.assertIn("date order", str(caught.exception))
        self.assertEqual(len(self.meter.reading_ids), count)

    def test_judged_fields_cannot_be_set_on_create(self):
        reading = (
            self.env["prepaid.reading"]
            .with_user(self.manager)
            .create(
                {
                    "meter_id": self.meter.id,
                    "energy_total_kwh": 5000.0,
                    "delta_kwh": 4000.0,
                    "anomaly": "replacement",
                    "review_state": "accepted",
                }
            )
        )
        self.assertEqual((reading.review_state, reading.delta_kwh), ("suspect", 0.0))
        self.assertEqual(reading.anomaly, "jump")

    # -- meter replacement ---------------------------------------------------
    def replace(self, final, initial, user=None, **vals):
        wizard = (
            self.env["prepaid.meter.replace.wizard"]
            .with_user(user or self.manager)
            .create(
                {
                    "meter_id": self.meter.id,
                    "final_value": final,
                    "initial_value": initial,
                    **vals,
                }
            )
        )
        return wizard.action_confirm()

    def test_replacement_records_the_final_reading_and_a_new_baseline(self):
        self.replace(1000.8, 0.2, new_serial_number="NEW-001")
        final, replacement = self.meter.reading_ids.sorted("id")[-2:]
        self.assertEqual((final.anomaly, final.review_state), ("none", False))
        self.assertAlmostEqual(final.delta_kwh, 0.8, places=2)
        self.assertEqual(replacement.anomaly, "replacement")
        self.assertEqual(replacement.delta_kwh, 0.0)
        self.assertEqual(replacement.read_at, final.read_at)
        meter = self.meter
        self.assertAlmostEqual(meter.energy_baseline_kwh, 0.2, places=2)
        self.assertEqual(meter.serial_number, "NEW-001")
        self.assertIn("Meter replaced", meter.message_ids[0].body)
        # the new counter goes on from its initial value
        self.age_baselines(meter)
        self.sim.energy_total = 1.7
        self.poll()
        self.assertAlmostEqual(self.last(meter).delta_kwh, 1.5, places=2)
        self.assertFalse(self.last(meter).review_state)

    def test_replacement_clears_the_suspect_readings_of_an_unannounced_swap(self):
        self.sim.energy_total = 0.5
        self.poll()
        swapped = self.last(self.meter)
        self.assertEqual(swapped.review_state, "suspect")
        self.replace(1000.0, 0.0)
        self.assertEqual(swapped.review_state, "rejected")
        self.assertFalse(self.meter.suspect_reading_id)
        self.age_baselines(self.meter)
        self.poll()
        self.assertAlmostEqual(self.last(self.meter).delta_kwh, 0.5, places=2)

    def test_implausible_final_reading_or_user_refused_and_nothing_recorded(self):
        count = len(self.meter.reading_ids)
        with self.assertRaises(UserError) as caught:
            self.replace(9000.0, 0.0)
        self.assertIn("not plausible", str(caught.exception))
        with self.assertRaises(AccessError):
            self.replace(1000.5, 0.0, user=self.operator)
        with self.assertRaises(UserError):
            self.replace(1000.5, -1.0)
        self.assertEqual(len(self.meter.reading_ids), count)
        self.assertAlmostEqual(self.meter.energy_baseline_kwh, 1000.0, places=2)

    def test_replacement_cannot_be_dated_before_the_last_reading(self):
        with self.assertRaises(UserError) as caught:
            self.replace(
                1000.5,
                0.0,
                replaced_at=fields.Datetime.now() - timedelta(days=1),
            )
        self.assertIn("date order", str(caught.exception))
