import threading
from contextlib import closing
from datetime import timedelta
from unittest.mock import patch

from odoo import SUPERUSER_ID, Command, api, fields
from odoo.exceptions import UserError
from odoo.tests import tagged

from ..models.prepaid_gateway import PrepaidGateway
from .common import MeteringCase, electric

FAR = timedelta(days=9)


@tagged("post_install", "-at_install")
class TestBusClaim(MeteringCase):
    """Polling and command sending share one claim per gateway: whoever
    holds a gateway's bus has it, the other skips that gateway. Real separate
    transactions (committed data, removed in cleanup) and real buses."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.fleet = cls.start_fleet(
            [("socket", [electric(1)]), ("socket", [electric(1)])]
        )

    def setUp(self):
        super().setUp()
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            # Park what other data holds: only these tests' buses are due and
            # only their commands are sent.
            parked = env["prepaid.gateway"].search([])
            self.parked = {g.id: g.next_poll_at for g in parked}
            parked.write({"next_poll_at": fields.Datetime.now() + FAR})
            queued = env["prepaid.meter.command"].search([("state", "=", "queued")])
            self.parked_commands = {c.id: c.next_attempt_at for c in queued}
            queued.sudo().write({"next_attempt_at": fields.Datetime.now() + FAR})
            site = env["prepaid.site"].create({"name": "Bus claim site"})
            profiles = env.ref("prepaid_metering.profile_acrel_ddsy1352") | env.ref(
                "prepaid_metering.profile_px_prepaid_v1"
            )
            gateways = env["prepaid.gateway"].create(
                [
                    {
                        "name": name,
                        "site_id": site.id,
                        "protocol": "modbus_tcp",
                        "host": "127.0.0.1",
                        "port": sim.port,
                        "timeout_s": 1.0,
                        "next_poll_at": fields.Datetime.now() + FAR,
                    }
                    for name, sim in zip(
                        ("Bus G", "Bus H"), self.fleet.gateways, strict=True
                    )
                ]
            )
            meters = env["prepaid.meter"].create(
                [
                    {
                        "name": f"{gateway.name}-1",
                        "gateway_id": gateway.id,
                        "device_id": 1,
                        "profile_ids": [Command.set(profiles.ids)],
                    }
                    for gateway in gateways
                ]
            )
            self.site_id = site.id
            self.g_id, self.h_id = gateways.ids
            self.meter_g, self.meter_h = meters.ids
            cr.execute("SELECT coalesce(max(id), 0) FROM ir_cron_trigger")
            self.last_trigger = cr.fetchone()[0]
        self.addCleanup(self._remove_committed_data)
        for index in (0, 1):
            sim = self.fleet.meter(index, 1)
            sim.relay_open = False
            sim.purchase_count = 0

    def _remove_committed_data(self):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            gateways = env["prepaid.gateway"].browse([self.g_id, self.h_id])
            gateways.meter_ids.unlink()
            gateways.unlink()
            env["prepaid.site"].browse(self.site_id).unlink()
            for gateway_id, next_poll in self.parked.items():
                env["prepaid.gateway"].browse(gateway_id).next_poll_at = next_poll
            for command_id, next_attempt in self.parked_commands.items():
                env["prepaid.meter.command"].browse(command_id).sudo().write(
                    {"next_attempt_at": next_attempt}
                )
            cr.execute("DELETE FROM ir_cron_trigger WHERE id > %s", [self.last_trigger])

    def worker(self):
        """A transaction of its own, like another Odoo worker."""
        cr = self.registry.cursor()
        return closing(cr), api.Environment(cr, SUPERUSER_ID, {})

    def in_worker(self, job):
        """``job(env)`` in a transaction of its own, committed."""
        with self.registry.cursor() as cr:
            return job(api.Environment(cr, SUPERUSER_ID, {}))

    def commit_command(self, meter_id, command_type="relay_off", **vals):
        return self.in_worker(
            lambda env: (
                env["prepaid.meter.command"]
                .create({"meter_id": meter_id, "command_type": command_type, **vals})
                .id
            )
        )

    def read_command(self, command_id):
        with self.registry.cursor() as cr:
            cr.execute(
                "SELECT state, coalesce(attempts, 0) AS attempts, last_error, "
                "coalesce(expected_count, 0) AS expected_count "
                "FROM prepaid_meter_command WHERE id = %s",
                [command_id],
            )
            return cr.dictfetchone()

    def bus(self, gateway_id):
        with self.registry.cursor() as cr:
            cr.execute(
                "SELECT bus_claimed_by, bus_claimed_until IS NOT NULL AS held "
                "FROM prepaid_gateway WHERE id = %s",
                [gateway_id],
            )
            return cr.dictfetchone()

    def readings(self, meter_id):
        with self.registry.cursor() as cr:
            cr.execute(
                "SELECT count(*) FROM prepaid_reading WHERE meter_id = %s", [meter_id]
            )
            return cr.fetchone()[0]

    def make_due(self, gateway_id):
        self.in_worker(
            lambda env: (
                env["prepaid.gateway"].browse(gateway_id).write({"next_poll_at": False})
            )
        )

    def send_commands(self):
        return self.in_worker(
            lambda env: env["prepaid.meter.command"]._cron_process(commit=True)
        )

    def poll_cron_in_a_thread(self):
        """Run the poll cron in a worker thread, stopped in the middle of its
        sweep (bus claimed and committed) until the returned event is set."""
        sweeping, go_on = threading.Event(), threading.Event()
        sweep = PrepaidGateway._start_sweep
        result = {}

        def held_sweep(gateways):
            sweeping.set()
            go_on.wait(timeout=30)
            return sweep(gateways)

        def poll_worker():
            with self.registry.cursor() as cr:
                # Environment() would look the registry up under the registry
                # lock, which the test runner's thread holds.
                cr.transaction = api.Transaction(self.registry)
                env = api.Environment(cr, SUPERUSER_ID, {})
                result["polled"] = env["prepaid.gateway"]._cron_poll(commit=True)

        patcher = patch.object(PrepaidGateway, "_start_sweep", held_sweep)
        patcher.start()
        thread = threading.Thread(target=poll_worker)

        def finish():
            go_on.set()
            thread.join(timeout=30)
            patcher.stop()
            return result.get("polled")

        # Also when the test fails half-way: the worker ends before cleanup.
        self.addCleanup(finish)
        thread.start()
        self.assertTrue(sweeping.wait(timeout=30), "the poll cron claimed a bus")
        return finish

    def test_command_job_skips_a_bus_being_polled_and_sends_on_the_others(self):
        on_g = self.commit_command(self.meter_g)
        on_h = self.commit_command(self.meter_h)
        bus_g = self.fleet.gateways[0]
        self.make_due(self.g_id)
        finish_poll = self.poll_cron_in_a_thread()
        self.assertEqual(self.bus(self.g_id), {"bus_claimed_by": "poll", "held": True})
        requests = bus_g.requests
        self.assertEqual(self.send_commands(), 1, "only the free bus")
        self.assertEqual(self.read_command(on_h)["state"], "done")
        self.assertTrue(self.fleet.meter(1, 1).relay_open)
        self.assertEqual(
            self.read_command(on_g),
            {"state": "queued", "attempts": 0, "last_error": None, "expected_count": 0},
            "left for later, not counted as an attempt",
        )
        self.assertFalse(self.fleet.meter(0, 1).relay_open)
        self.assertEqual(bus_g.requests, requests, "nobody spoke on bus G meanwhile")
        self.assertEqual(finish_poll(), 1)
        self.assertEqual(self.readings(self.meter_g), 1)
        self.assertEqual(self.bus(self.g_id), {"bus_claimed_by": None, "held": False})
        with self.registry.cursor() as cr:
            cr.execute(
                "SELECT count(*) FROM ir_cron_trigger WHERE id > %s AND cron_id = %s",
                [
                    self.last_trigger,
                    self.env.ref("prepaid_metering.ir_cron_meter_commands").id,
                ],
            )
            self.assertTrue(cr.fetchone()[0], "the freed bus woke the command job")
        self.assertEqual(self.send_commands(), 1)
        self.assertEqual(self.read_command(on_g)["state"], "done")
        self.assertTrue(self.fleet.meter(0, 1).relay_open)

    def test_poll_job_skips_a_bus_the_command_job_holds(self):
        on_g = self.commit_command(self.meter_g)
        self.make_due(self.g_id)
        self.make_due(self.h_id)
        sender, env = self.worker()
        with sender:
            claim = env["prepaid.meter.command"]._claim_queued(10)
            self.assertEqual(claim.commands.ids, [on_g])
            env.cr.commit()
            self.assertEqual(
                self.bus(self.g_id), {"bus_claimed_by": "command", "held": True}
            )
            self.assertEqual(
                self.in_worker(lambda e: e["prepaid.gateway"]._cron_poll(commit=True)),
                1,
                "bus H only",
            )
            self.assertEqual(self.readings(self.meter_g), 0)
            self.assertEqual(self.readings(self.meter_h), 1)
            with self.assertRaisesRegex(UserError, "busy .sending meter commands"):
                self.in_worker(
                    lambda e: e["prepaid.gateway"].browse(self.g_id).action_poll_now()
                )
            claim.commands._execute_claimed(commit=True)
        self.assertEqual(self.read_command(on_g)["state"], "done")
        self.assertEqual(self.bus(self.g_id), {"bus_claimed_by": None, "held": False})
        self.assertEqual(
            self.in_worker(lambda e: e["prepaid.gateway"]._cron_poll(commit=True)), 1
        )
        self.assertEqual(self.readings(self.meter_g), 1)

    def test_a_failed_store_frees_its_buses_at_once(self):
        """The sweep was read but could not be stored: its buses are free for
        commands and the next poll at once, not after the claim runs out."""
        self.make_due(self.g_id)
        self.make_due(self.h_id)

        def failing_store(gateways, planned, on_stored=None, on_wire_done=None):
            planned.sweep.join()  # the buses were read; nothing is stored
            raise RuntimeError("the store failed")

        with (
            patch.object(PrepaidGateway, "_store_sweep", failing_store),
            self.assertRaisesRegex(RuntimeError, "the store failed"),
        ):
            self.in_worker(lambda e: e["prepaid.gateway"]._cron_poll(commit=True))
        for gateway_id, meter_id in (
            (self.g_id, self.meter_g),
            (self.h_id, self.meter_h),
        ):
            self.assertEqual(
                self.bus(gateway_id), {"bus_claimed_by": None, "held": False}
            )
            self.assertEqual(self.readings(meter_id), 0)
        on_g = self.commit_command(self.meter_g)
        self.assertEqual(self.send_commands(), 1, "not five minutes later")
        self.assertEqual(self.read_command(on_g)["state"], "done")
        self.assertTrue(self.fleet.meter(0, 1).relay_open)

    def hold_bus_for_polling(self, gateway_id):
        self.in_worker(
            lambda env: env["prepaid.gateway"].browse(gateway_id)._claim_bus("poll")
        )

    def test_send_now_on_a_bus_being_polled_leaves_the_command_queued(self):
        relay = self.commit_command(self.meter_g)
        record = self.commit_command(
            self.meter_g, "record_write", params={"amount": 10.0}
        )
        self.hold_bus_for_polling(self.g_id)
        with self.assertRaisesRegex(
            UserError,
            r"The bus of gateway Bus G is busy \(being polled\): the command is "
            r"queued and will be sent in a moment",
        ):
            self.in_worker(
                lambda env: (
                    env["prepaid.meter.command"]
                    .browse([relay, record])
                    .action_send_now()
                )
            )
        # The recharge wizard's immediate send takes the same claim.
        claim = self.in_worker(
            lambda env: env["prepaid.meter.command"]._process_in_own_cursor([record])
        )
        self.assertFalse(claim.commands)
        self.assertEqual(claim.busy.ids, [self.g_id])
        for command_id in (relay, record):
            self.assertEqual(self.read_command(command_id)["state"], "queued")
            self.assertEqual(self.read_command(command_id)["attempts"], 0)
        self.assertEqual(
            self.read_command(record)["expected_count"], 0, "counter not read"
        )
        sim = self.fleet.meter(0, 1)
        self.assertFalse(sim.relay_open)
        self.assertEqual(sim.purchase_count, 0)
        self.in_worker(
            lambda env: env["prepaid.gateway"].browse(self.g_id)._release_bus("poll")
        )
        for command_id in (relay, record):
            self.in_worker(
                lambda env, c=command_id: (
                    env["prepaid.meter.command"].browse(c).action_send_now()
                )
            )
        self.assertEqual(self.read_command(relay)["state"], "done")
        self.assertEqual(self.read_command(record)["state"], "done")
        self.assertTrue(sim.relay_open)
        self.assertEqual(sim.purchase_count, 1)

    def test_recovery_waits_for_a_bus_being_polled(self):
        stuck = self.commit_command(self.meter_g)
        with self.registry.cursor() as cr:
            cr.execute(
                """UPDATE prepaid_meter_command
                      SET state = 'sending', attempts = 1, claimed_at = %s
                    WHERE id = %s""",
                (fields.Datetime.now() - timedelta(minutes=10), stuck),
            )
        self.hold_bus_for_polling(self.g_id)

        def recover(env):
            return env["prepaid.meter.command"]._cron_recover(commit=True)

        self.assertEqual(self.in_worker(recover), 0)
        self.assertEqual(self.read_command(stuck)["state"], "sending")
        self.assertFalse(self.fleet.meter(0, 1).relay_open)
        self.in_worker(
            lambda env: env["prepaid.gateway"].browse(self.g_id)._release_bus("poll")
        )
        self.assertEqual(self.in_worker(recover), 1)
        self.assertEqual(self.read_command(stuck)["state"], "done")
        self.assertTrue(self.fleet.meter(0, 1).relay_open)
