import time
from unittest.mock import patch

from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import new_test_user, tagged
from odoo.tools import mute_logger

from ..models.prepaid_meter_command_wire import PrepaidMeterCommandWire
from .common import MeteringCase, electric, water
from .test_polling import free_port

COMMAND_LOGGER = "odoo.addons.prepaid_metering.models.prepaid_meter_command_queue"


@tagged("post_install", "-at_install")
class TestCommands(MeteringCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.gateway = cls.make_gateway(port=1, name="Bus")
        cls.m1 = cls.make_meter(cls.gateway, 1)
        cls.m2 = cls.make_meter(cls.gateway, 2, room=cls.room2)
        cls.w = cls.make_meter(cls.gateway, 3, kind="water")
        cls.Command = cls.env["prepaid.meter.command"]

    def setUp(self):
        super().setUp()
        self.fleet = self.start_fresh_fleet(
            [("socket", [electric(1), electric(2), water(3, valve_delay=0.3)])],
            [self.gateway],
        )

    def sim(self, device_id):
        return self.fleet.meter(0, device_id)

    def send(self, meter, command_type, **vals):
        command = self.Command.create(
            {"meter_id": meter.id, "command_type": command_type, **vals}
        )
        command.action_send_now()
        return command

    def test_relay_off_and_on_really_switch_the_meter(self):
        off = self.send(self.m1, "relay_off", reason="unpaid")
        self.assertEqual(off.state, "done", off.last_error)
        self.assertTrue(self.sim(1).relay_open)
        self.assertEqual(self.m1.switch_state, "off")
        self.assertIn("relay_state", off.result)
        self.assertTrue(off.done_at)
        self.assertEqual(off.attempts, 1)
        self.assertEqual(off.requested_by, self.env.user)
        on = self.send(self.m1, "relay_on")
        self.assertEqual(on.state, "done", on.last_error)
        self.assertFalse(self.sim(1).relay_open)
        self.assertEqual(self.m1.switch_state, "on")
        self.assertFalse(self.sim(2).relay_open, "other meters untouched")

    def test_valve_close_and_open_wait_for_the_read_back(self):
        close = self.send(self.w, "valve_close")
        self.assertEqual(close.state, "done", close.last_error)
        self.assertFalse(self.sim(3).valve_open)
        self.assertEqual(self.w.switch_state, "off")
        opened = self.send(self.w, "valve_open")
        self.assertEqual(opened.state, "done", opened.last_error)
        self.assertTrue(self.sim(3).valve_open)

    def test_stuck_relay_fails_with_the_reason(self):
        self.sim(2).inject("stuck_relay")
        self.env["prepaid.register.profile"].browse(
            self.profile_acrel.id
        ).settle_timeout_s = 0.5
        command = self.send(self.m2, "relay_off")
        self.assertEqual(command.state, "failed")
        self.assertIn("relay_state", command.last_error)
        self.assertFalse(self.sim(2).relay_open)
        self.assertNotEqual(self.m2.switch_state, "off")
        self.assertIn(command.name, self.m2.message_ids[0].body)

    def test_unreachable_gateway_fails_the_command_with_the_reason(self):
        dead = self.make_gateway(port=free_port(), name="Dead")
        meter = self.make_meter(dead, 1)
        command = self.send(meter, "relay_off")
        self.assertEqual(command.state, "failed")
        self.assertIn("cannot connect", command.last_error)

    def test_failed_attempt_is_retried_until_max_attempts(self):
        self.sim(1).inject("device_failure")
        command = self.send(self.m1, "relay_off", max_attempts=2)
        self.assertEqual(command.state, "queued", "one attempt left")
        self.assertEqual(command.attempts, 1)
        self.assertTrue(command.last_error)
        self.assertTrue(command.next_attempt_at)
        self.sim(1).clear_faults()
        command.next_attempt_at = False
        self.assertEqual(self.process_commands(), 1)
        self.assertEqual(command.state, "done")
        self.assertEqual(command.attempts, 2)
        self.assertTrue(self.sim(1).relay_open)

    def test_read_now_stores_a_reading(self):
        self.sim(1).energy_total = 777.77
        command = self.send(self.m1, "read_now")
        self.assertEqual(command.state, "done", command.last_error)
        self.assertAlmostEqual(self.m1.energy_total_kwh, 777.77, places=2)
        self.assertEqual(len(self.m1.reading_ids), 1)

    def test_write_params_writes_and_reads_back(self):
        command = self.send(
            self.m1,
            "write_params",
            params={"unit_price": 0.8512, "alarm1_amount": 30},
        )
        self.assertEqual(command.state, "done", command.last_error)
        self.assertAlmostEqual(self.sim(1).unit_price, 0.8512, places=4)
        self.assertAlmostEqual(self.sim(1).alarm1_amount, 30.0, places=2)

    def test_write_params_refuses_unknown_or_read_only_registers(self):
        for params in ({"balance": 1000}, {"nope": 1}, {}, {"unit_price": "x"}):
            with self.subTest(params=params), self.assertRaises(ValidationError):
                with self.env.cr.savepoint():
                    self.Command.create(
                        {
                            "meter_id": self.m1.id,
                            "command_type": "write_params",
                            "params": params,
                        }
                    )
        self.assertFalse(self.Command.search([("meter_id", "=", self.m1.id)]))

    def test_command_must_fit_the_meter(self):
        with self.assertRaises(ValidationError), self.env.cr.savepoint():
            self.Command.create({"meter_id": self.w.id, "command_type": "relay_off"})
        with self.assertRaises(ValidationError), self.env.cr.savepoint():
            self.Command.create({"meter_id": self.m1.id, "command_type": "valve_open"})

    def test_server_actions_queue_one_command_per_selected_meter(self):
        meters = self.m1 | self.m2 | self.w
        action = self.env.ref("prepaid_metering.prepaid_meter_action_server_switch_off")
        action.with_context(active_model="prepaid.meter", active_ids=meters.ids).run()
        commands = self.Command.search([("meter_id", "in", meters.ids)])
        self.assertEqual(len(commands), 3)
        self.assertEqual(
            sorted(commands.mapped("command_type")),
            ["relay_off", "relay_off", "valve_close"],
        )
        self.assertEqual(set(commands.mapped("state")), {"queued"})
        # numbered from the sequence in one go, consecutive and unique
        year = commands[0].create_date.year
        numbers = sorted(
            int(name.rsplit("/", 1)[1]) for name in commands.mapped("name")
        )
        self.assertTrue(
            all(name.startswith(f"CMD/{year}/") for name in commands.mapped("name"))
        )
        self.assertEqual(numbers, list(range(numbers[0], numbers[0] + 3)))
        self.assertEqual(self.process_commands(), 3)
        self.assertEqual(set(commands.mapped("state")), {"done"})
        self.assertTrue(self.sim(1).relay_open and self.sim(2).relay_open)
        self.assertFalse(self.sim(3).valve_open)

    def test_room_actions_reach_all_meters_of_the_room(self):
        self.room.action_switch_off()
        commands = self.Command.search([("room_id", "=", self.room.id)])
        self.assertEqual(commands.meter_id, self.m1 | self.w)

    def test_cancel_and_retry_follow_the_state(self):
        command = self.Command.create(
            {"meter_id": self.m1.id, "command_type": "relay_off"}
        )
        command.action_cancel()
        self.assertEqual(command.state, "cancelled")
        with self.assertRaises(UserError):
            command.action_send_now()
        with self.assertRaises(UserError):
            command.action_retry()
        self.assertEqual(self.process_commands(), 0)
        self.assertFalse(self.sim(1).relay_open)

    def test_parameters_wizard_queues_one_command_per_meter(self):
        wizard = (
            self.env["prepaid.meter.params.wizard"]
            .with_context(active_ids=(self.m1 | self.m2).ids)
            .create(
                {
                    "line_ids": [(0, 0, {"register": "unit_price", "value": 0.95})],
                    "reason": "new price list",
                }
            )
        )
        self.assertIn("unit_price", wizard.available_registers)
        wizard.action_apply()
        commands = self.Command.search([("meter_id", "in", (self.m1 | self.m2).ids)])
        self.assertEqual(commands.mapped("params_text"), ["unit_price = 0.95"] * 2)
        self.assertEqual(self.process_commands(), 2)
        self.assertEqual(set(commands.mapped("state")), {"done"})
        self.assertAlmostEqual(self.sim(1).unit_price, 0.95, places=4)
        self.assertAlmostEqual(self.sim(2).unit_price, 0.95, places=4)
        bad = (
            self.env["prepaid.meter.params.wizard"]
            .with_context(active_ids=self.m1.ids)
            .create({"line_ids": [(0, 0, {"register": "balance", "value": 9})]})
        )
        with self.assertRaises(ValidationError):
            bad.action_apply()

    def test_one_command_raising_fails_alone_and_the_queue_goes_on(self):
        bad_value = self.Command.create(
            {"meter_id": self.m1.id, "command_type": "relay_off"}
        )
        bad_sql = self.Command.create(
            {"meter_id": self.m2.id, "command_type": "relay_off"}
        )
        good = self.Command.create(
            {"meter_id": self.w.id, "command_type": "valve_close"}
        )
        # One not switching: it goes through the one-at-a-time path.
        bad_read = self.Command.create(
            {"meter_id": self.m1.id, "command_type": "read_now"}
        )
        switch_job = PrepaidMeterCommandWire._switch_job
        send = PrepaidMeterCommandWire._send

        def faulty_job(command):
            if command == bad_value:
                raise ValueError("register words out of range")
            if command == bad_sql:
                command.env.cr.execute("SELECT 1 / 0")
            return switch_job(command)

        def faulty_send(command):
            if command == bad_read:
                raise ValueError("cannot plan the reads")
            return send(command)

        with (
            patch.object(PrepaidMeterCommandWire, "_switch_job", faulty_job),
            patch.object(PrepaidMeterCommandWire, "_send", faulty_send),
            self.assertLogs(COMMAND_LOGGER, "ERROR") as logs,
            mute_logger("odoo.sql_db"),
        ):
            self.assertEqual(self.process_commands(), 4)
        self.assertEqual(len(logs.records), 3)
        self.assertEqual(bad_value.state, "failed")
        self.assertIn("register words out of range", bad_value.last_error)
        self.assertEqual(bad_sql.state, "failed")
        self.assertIn("division by zero", bad_sql.last_error)
        self.assertEqual(bad_read.state, "failed")
        self.assertIn("cannot plan the reads", bad_read.last_error)
        self.assertEqual(good.state, "done", good.last_error)
        self.assertFalse(self.sim(3).valve_open)
        self.assertFalse(self.sim(1).relay_open or self.sim(2).relay_open)

    def record(self, meter, amount, **vals):
        return self.Command.create(
            {
                "meter_id": meter.id,
                "command_type": "record_write",
                "params": {"amount": amount},
                **vals,
            }
        )

    def test_counted_record_is_written_once_and_the_counter_moves_by_one(self):
        self.sim(1).purchase_count = 7
        command = self.record(self.m1, 12.5)
        self.assertEqual(self.process_commands(), 1)
        self.assertEqual(command.state, "done", command.last_error)
        self.assertEqual(command.expected_count, 8)
        self.assertEqual(self.sim(1).purchase_count, 8)
        self.assertAlmostEqual(self.sim(1).balance, 112.5, places=2)
        self.assertEqual(command.readback["purchase_count"], 8)
        self.assertFalse(command.followup_pending)

    def test_counted_record_already_applied_is_settled_without_writing(self):
        # The record went out and was applied; the reply (or the worker) was
        # lost: the command kept its expected count and reads the counter.
        command = self.record(self.m1, 10.0)
        command.sudo().write({"expected_count": 1})
        self.sim(1).recharge(10.0, 1)
        requests = self.fleet.gateways[0].requests
        self.process_commands()
        self.assertEqual(command.state, "done", command.last_error)
        self.assertIn("already applied", command.result)
        self.assertEqual(self.sim(1).purchase_count, 1, "never written twice")
        self.assertAlmostEqual(self.sim(1).balance, 110.0, places=2)
        self.assertEqual(self.fleet.gateways[0].requests - requests, 1, "one read")

    def test_counted_record_refused_by_the_meter_fails_for_good(self):
        command = self.record(self.m1, -500.0, max_attempts=3)
        self.process_commands()
        self.assertEqual(command.state, "failed")
        self.assertIn("did not apply", command.last_error)
        self.assertEqual(self.sim(1).purchase_count, 0)
        self.assertAlmostEqual(self.sim(1).balance, 100.0, places=2)

    def own_transactions(self):
        """send_and_wait commits in transactions of its own: in the registry's
        test mode they are savepoints of the test's transaction."""
        self.registry.enter_test_mode(self.cr)
        self.addCleanup(self.registry.leave_test_mode)

    def test_send_and_wait_writes_one_record_per_request_key(self):
        self.own_transactions()
        self.sim(1).purchase_count = 7
        vals = {
            "meter_id": self.m1.id,
            "command_type": "record_write",
            "params": {"amount": 12.5},
            "request_key": "test:once",
        }
        sent = self.Command.send_and_wait(vals, 5.0)
        self.assertEqual((sent.state, sent.error), ("done", None))
        self.assertFalse(sent.busy)
        again = self.Command.send_and_wait(vals, 5.0)
        self.assertEqual((again.command, again.state), (sent.command, "done"))
        self.assertEqual(self.sim(1).purchase_count, 8, "written once")
        self.assertAlmostEqual(self.sim(1).balance, 112.5, places=2)

    def test_send_and_wait_gives_the_reason_of_a_failure(self):
        self.own_transactions()
        vals = {
            "meter_id": self.m1.id,
            "command_type": "record_write",
            "params": {"amount": -500.0},
            "max_attempts": 1,
        }
        sent = self.Command.send_and_wait(vals, 5.0)
        self.assertEqual(sent.state, "failed")
        self.assertIn("did not apply", sent.error)
        self.assertEqual(sent.error, sent.command.last_error)

    def test_counter_that_moved_elsewhere_needs_an_operator(self):
        command = self.record(self.m1, 10.0)
        command.sudo().write({"expected_count": 1})
        self.sim(1).recharge(5.0, 1)
        self.sim(1).recharge(5.0, 2)
        self.process_commands()
        self.assertEqual(command.state, "failed")
        self.assertIn("another record reached the meter", command.last_error)
        self.assertEqual(self.sim(1).purchase_count, 2)

    def test_records_of_one_meter_are_never_in_flight_together(self):
        first, second = self.record(self.m1, 1.0), self.record(self.m1, 2.0)
        both = first | second
        first.sudo().write({"state": "sending"})
        self.assertFalse(
            self.Command._claim_queued(10, gateways=self.own_gateways()).commands & both
        )
        first.sudo().write({"state": "done"})
        self.assertEqual(
            self.Command._claim_queued(10, gateways=self.own_gateways()).commands
            & both,
            second,
        )


@tagged("post_install", "-at_install")
class TestCommandAccess(MeteringCase):
    """Commands change only through their actions, by the groups that own
    them; counted records need more than a metering user."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.gateway = cls.make_gateway(port=free_port(), name="Access bus")
        cls.meter = cls.make_meter(cls.gateway, 1)
        cls.operator = new_test_user(
            cls.env,
            login="cmd_op",
            groups="base.group_user,prepaid_metering.group_metering_user",
        )
        cls.manager = new_test_user(
            cls.env,
            login="cmd_mgr",
            groups="base.group_user,prepaid_metering.group_metering_manager",
        )
        cls.Command = cls.env["prepaid.meter.command"]

    def test_params_and_state_cannot_be_written_by_users(self):
        command = self.Command.with_user(self.operator).create(
            {
                "meter_id": self.meter.id,
                "command_type": "write_params",
                "params": {"alarm1_amount": 30},
            }
        )
        for vals in (
            {"params": {"alarm1_amount": 1}},
            {"state": "done"},
            {"attempts": 0},
            {"result": "ok"},
            {"command_type": "record_write"},
            {"meter_id": self.meter.id},
        ):
            for user in (self.operator, self.manager):
                with self.subTest(vals=vals, user=user.login):
                    with self.assertRaises(AccessError):
                        command.with_user(user).write(vals)
        self.assertEqual(command.state, "queued")
        self.assertEqual(command.params, {"alarm1_amount": 30})
        command.with_user(self.operator).write({"reason": "tariff change"})
        self.assertEqual(command.reason, "tariff change")

    def test_a_new_command_cannot_start_settled(self):
        for vals in ({"state": "done"}, {"result": "ok"}, {"expected_count": 3}):
            with self.subTest(vals=vals), self.assertRaises(AccessError):
                self.Command.with_user(self.manager).create(
                    {"meter_id": self.meter.id, "command_type": "read_now", **vals}
                )
        self.assertFalse(self.Command.search([("meter_id", "=", self.meter.id)]))

    def test_metering_user_cannot_write_counted_records(self):
        with self.assertRaises(AccessError) as caught:
            self.Command.with_user(self.operator).create(
                {
                    "meter_id": self.meter.id,
                    "command_type": "record_write",
                    "params": {"amount": 50.0},
                }
            )
        self.assertIn("counted record", str(caught.exception))
        self.assertFalse(self.Command.search([("meter_id", "=", self.meter.id)]))

    def test_only_managers_cancel_or_retry(self):
        command = self.Command.create(
            {"meter_id": self.meter.id, "command_type": "relay_off"}
        )
        with self.assertRaises(AccessError):
            command.with_user(self.operator).action_cancel()
        self.assertEqual(command.state, "queued")
        command.with_user(self.manager).action_cancel()
        self.assertEqual(command.state, "cancelled")
        with self.assertRaises(UserError):
            command.with_user(self.manager).action_retry()


@tagged("post_install", "-at_install")
class TestSwitchesOnManyBuses(MeteringCase):
    """Relay and valve commands of one run go out on every bus at once, each
    bus's commands one after another over one connection."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.bus_a = cls.make_gateway(port=1, name="Bus A")
        cls.bus_b = cls.make_gateway(port=1, name="Bus B")
        cls.dead = cls.make_gateway(port=1, name="Dead bus")
        cls.a1 = cls.make_meter(cls.bus_a, 1)
        cls.a2 = cls.make_meter(cls.bus_a, 2, room=cls.room2)
        cls.b1 = cls.make_meter(cls.bus_b, 1)
        cls.b2 = cls.make_meter(cls.bus_b, 2, room=cls.room2)
        cls.d1 = cls.make_meter(cls.dead, 1)
        cls.Command = cls.env["prepaid.meter.command"]

    def queue(self, meter, command_type):
        return self.Command.create(
            {"meter_id": meter.id, "command_type": command_type, "max_attempts": 2}
        )

    def test_every_bus_switched_in_one_run_outcome_per_command(self):
        fleet = self.start_fresh_fleet(
            [
                ("socket", [electric(1), electric(2)]),
                ("rtu", [electric(1), electric(2)]),
            ],
            [self.bus_a, self.bus_b],
        )
        self.bus_b.protocol = "rtu_over_tcp"
        self.dead.port = free_port()
        offs = {
            m: self.queue(m, "relay_off")
            for m in self.a1 + self.a2 + self.b1 + self.b2 + self.d1
        }
        # The same meter twice in one run: off, then on again.
        again = self.queue(self.a1, "relay_on")
        self.assertEqual(self.process_commands(), 6)
        for meter in self.a2 + self.b1 + self.b2:
            command = offs[meter]
            self.assertEqual(command.state, "done", command.last_error)
            self.assertIn("relay_state", command.result)
            self.assertEqual(meter.switch_state, "off")
            self.assertIn(command.name, meter.message_ids[0].body)
        self.assertTrue(fleet.meter(0, 2).relay_open)
        self.assertTrue(fleet.meter(1, 1).relay_open and fleet.meter(1, 2).relay_open)
        # a1: both outcomes noted, the later one holds.
        self.assertEqual((offs[self.a1].state, again.state), ("done", "done"))
        self.assertFalse(fleet.meter(0, 1).relay_open)
        self.assertEqual(self.a1.switch_state, "on")
        notes = self.a1.message_ids.mapped("body")
        self.assertTrue(any(offs[self.a1].name in body for body in notes))
        self.assertTrue(any(again.name in body for body in notes))
        # The dead bus: nothing sent, retried later with the reason.
        dead = offs[self.d1]
        self.assertEqual(dead.state, "queued")
        self.assertIn("cannot connect", dead.last_error)
        self.assertTrue(dead.next_attempt_at)
        self.assertFalse(
            self.a1.message_ids.filtered(lambda m: m.message_type != "notification")
        )
        gateways = self.bus_a + self.bus_b + self.dead
        gateways.invalidate_recordset()
        self.assertEqual(
            gateways.mapped("bus_claimed_by"), [False] * 3, "buses released"
        )
        self.assertFalse(
            (self.Command.search([("gateway_id", "in", gateways.ids)]) - dead).filtered(
                lambda c: c.followup_pending
            )
        )

    def test_buses_are_switched_in_parallel(self):
        slow = 0.6
        gateways = self.bus_a + self.bus_b + self.dead
        self.start_fresh_fleet(
            [("socket", [water(3, valve_delay=slow)]) for _gateway in gateways],
            gateways,
        )
        meters = self.env["prepaid.meter"]
        for gateway in gateways:
            meters |= self.make_meter(
                gateway, 3, kind="water", name=f"W-{gateway.name}"
            )
        commands = [self.queue(meter, "valve_close") for meter in meters]
        started = time.perf_counter()
        self.assertEqual(self.process_commands(), 3)
        elapsed = time.perf_counter() - started
        for command in commands:
            self.assertEqual(command.state, "done", command.last_error)
        # One after another, three valves take at least 3 x 0.6 s.
        self.assertLess(elapsed, 2 * slow, "the three buses were not switched at once")
        self.assertGreater(elapsed, slow)

    def test_a_switch_that_cannot_be_built_fails_alone(self):
        self.start_fresh_fleet([("socket", [electric(1), electric(2)])], [self.bus_a])
        bad = self.queue(self.a1, "relay_off")
        good = self.queue(self.a2, "relay_off")
        switch_job = PrepaidMeterCommandWire._switch_job

        def faulty_job(command):
            if command == bad:
                raise ValidationError(command.env._("no switch words"))
            return switch_job(command)

        with patch.object(PrepaidMeterCommandWire, "_switch_job", faulty_job):
            self.assertEqual(self.process_commands(), 2)
        self.assertEqual(bad.state, "failed")
        self.assertIn("no switch words", bad.last_error)
        self.assertEqual(good.state, "done", good.last_error)
        self.bus_a.invalidate_recordset()
        self.assertFalse(self.bus_a.bus_claimed_by)
