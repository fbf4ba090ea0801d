from contextlib import closing
from datetime import timedelta

from odoo import SUPERUSER_ID, Command, api, fields
from odoo.exceptions import UserError
from odoo.tests import tagged

from .common import MeteringCase, electric


@tagged("post_install", "-at_install")
class TestCommandRecovery(MeteringCase):
    """Dead workers and concurrent workers, on real separate transactions:
    the data is committed (workers see only committed rows) and removed again
    in cleanup."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.fleet = cls.start_fleet([("socket", [electric(1), electric(2)])])

    def setUp(self):
        super().setUp()
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            site = env["prepaid.site"].create({"name": "Recovery site"})
            gateway = env["prepaid.gateway"].create(
                {
                    "name": "Recovery bus",
                    "site_id": site.id,
                    "protocol": "modbus_tcp",
                    "host": "127.0.0.1",
                    "port": self.fleet.gateways[0].port,
                    "timeout_s": 1.0,
                    # not due: only the tests poll it
                    "next_poll_at": fields.Datetime.now() + timedelta(days=9),
                }
            )
            profiles = env.ref("prepaid_metering.profile_acrel_ddsy1352") | env.ref(
                "prepaid_metering.profile_px_prepaid_v1"
            )
            meters = env["prepaid.meter"].create(
                [
                    {
                        "name": f"R-{device}",
                        "gateway_id": gateway.id,
                        "device_id": device,
                        "profile_ids": [Command.set(profiles.ids)],
                    }
                    for device in (1, 2)
                ]
            )
            self.site_id, self.gateway_id = site.id, gateway.id
            self.meter_ids = meters.ids
        self.addCleanup(self._remove_committed_data)
        for device in (1, 2):
            sim = self.fleet.meter(0, device)
            sim.relay_open = False
            sim.purchase_count = 0

    def _remove_committed_data(self):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            gateway = env["prepaid.gateway"].browse(self.gateway_id)
            # The meters' commands and readings go with them (cascade).
            gateway.meter_ids.unlink()
            gateway.unlink()
            env["prepaid.site"].browse(self.site_id).unlink()

    def worker(self):
        """A transaction of its own, like another Odoo worker."""
        cr = self.registry.cursor()
        return closing(cr), api.Environment(cr, SUPERUSER_ID, {})

    def commit_command(self, device, command_type, **vals):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            return (
                env["prepaid.meter.command"]
                .create(
                    {
                        "meter_id": self.meter_ids[device - 1],
                        "command_type": command_type,
                        **vals,
                    }
                )
                .id
            )

    def leave_sending(self, command_id, minutes_ago, expected_count=0):
        """What a worker killed while sending leaves behind."""
        with self.registry.cursor() as cr:
            cr.execute(
                """UPDATE prepaid_meter_command
                      SET state = 'sending', attempts = 1, claimed_at = %s,
                          expected_count = %s
                    WHERE id = %s""",
                (
                    fields.Datetime.now() - timedelta(minutes=minutes_ago),
                    expected_count,
                    command_id,
                ),
            )

    def read_command(self, command_id):
        with self.registry.cursor() as cr:
            cr.execute(
                "SELECT state, attempts, last_error, result, followup_pending "
                "FROM prepaid_meter_command WHERE id = %s",
                [command_id],
            )
            return cr.dictfetchone()

    def recover(self):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            return env["prepaid.meter.command"]._cron_recover(commit=True)

    def test_stuck_switch_command_is_read_back_and_resent(self):
        command_id = self.commit_command(1, "relay_off")
        self.leave_sending(command_id, minutes_ago=10)
        self.assertFalse(self.fleet.meter(0, 1).relay_open, "the worker died first")
        self.assertEqual(self.recover(), 1)
        outcome = self.read_command(command_id)
        self.assertEqual(outcome["state"], "done", outcome["last_error"])
        self.assertFalse(outcome["followup_pending"])
        self.assertTrue(self.fleet.meter(0, 1).relay_open)
        with self.registry.cursor() as cr:
            cr.execute(
                "SELECT switch_state FROM prepaid_meter WHERE id = %s",
                [self.meter_ids[0]],
            )
            self.assertEqual(cr.fetchone()[0], "off")

    def test_switches_sent_together_are_committed_and_the_bus_freed(self):
        first = self.commit_command(1, "relay_off")
        second = self.commit_command(2, "relay_off")
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            claim = env["prepaid.meter.command"]._process_in_own_cursor([first, second])
            self.assertEqual(sorted(claim.commands.ids), [first, second])
        for command_id in (first, second):
            outcome = self.read_command(command_id)
            self.assertEqual(outcome["state"], "done", outcome["last_error"])
            self.assertFalse(outcome["followup_pending"])
        self.assertTrue(self.fleet.meter(0, 1).relay_open)
        self.assertTrue(self.fleet.meter(0, 2).relay_open)
        with self.registry.cursor() as cr:
            cr.execute(
                "SELECT bus_claimed_by FROM prepaid_gateway WHERE id = %s",
                [self.gateway_id],
            )
            self.assertIsNone(cr.fetchone()[0], "the bus is free again")
            cr.execute(
                "SELECT switch_state FROM prepaid_meter WHERE id = ANY(%s)",
                [self.meter_ids],
            )
            self.assertEqual([row[0] for row in cr.fetchall()], ["off", "off"])

    def test_a_command_sending_within_the_timeout_is_left_alone(self):
        command_id = self.commit_command(1, "relay_off")
        self.leave_sending(command_id, minutes_ago=1)
        self.assertEqual(self.recover(), 0)
        self.assertEqual(self.read_command(command_id)["state"], "sending")
        self.assertFalse(self.fleet.meter(0, 1).relay_open)

    def test_a_command_a_live_worker_holds_is_not_recovered(self):
        command_id = self.commit_command(1, "relay_off")
        self.leave_sending(command_id, minutes_ago=10)
        busy, env = self.worker()
        with busy:
            env.cr.execute(
                "SELECT id FROM prepaid_meter_command WHERE id = %s FOR UPDATE",
                [command_id],
            )
            self.assertEqual(self.recover(), 0)
            env.cr.rollback()
        self.assertEqual(self.read_command(command_id)["state"], "sending")
        self.assertEqual(self.recover(), 1)
        self.assertEqual(self.read_command(command_id)["state"], "done")

    def test_a_follow_up_another_worker_runs_is_left_to_it(self):
        # The sender runs the follow-up of an outcome (its row locked) while
        # the recovery job on another host takes it for an orphan.
        command_id = self.commit_command(1, "relay_off")
        with self.registry.cursor() as cr:
            cr.execute(
                """UPDATE prepaid_meter_command SET state = 'done',
                          followup_pending = true WHERE id = %s""",
                [command_id],
            )
        sender, env = self.worker()
        with sender:
            env.cr.execute(
                "SELECT id FROM prepaid_meter_command WHERE id = %s FOR NO KEY UPDATE",
                [command_id],
            )
            with self.registry.cursor() as cr:
                other = api.Environment(cr, SUPERUSER_ID, {})
                other["prepaid.meter.command"].browse(command_id)._run_followups()
            self.assertTrue(self.read_command(command_id)["followup_pending"])
            env.cr.rollback()
        with self.registry.cursor() as cr:
            other = api.Environment(cr, SUPERUSER_ID, {})
            other["prepaid.meter.command"].browse(command_id)._run_followups()
        self.assertFalse(self.read_command(command_id)["followup_pending"])

    def test_stuck_counted_record_is_settled_by_the_counter(self):
        # Written and applied by the meter, then the worker died before it
        # could record the outcome.
        command_id = self.commit_command(2, "record_write", params={"amount": 20.0})
        self.leave_sending(command_id, minutes_ago=10, expected_count=1)
        sim = self.fleet.meter(0, 2)
        sim.recharge(20.0, 1)
        balance = sim.balance
        self.assertEqual(self.recover(), 1)
        outcome = self.read_command(command_id)
        self.assertEqual(outcome["state"], "done", outcome["last_error"])
        self.assertIn("already applied", outcome["result"])
        self.assertEqual(sim.purchase_count, 1, "no second record")
        self.assertAlmostEqual(sim.balance, balance, places=2)
        self.assertEqual(self.recover(), 0, "nothing left to recover")
        self.assertEqual(sim.purchase_count, 1)

    def test_send_now_skips_a_command_another_worker_sends(self):
        command_id = self.commit_command(1, "relay_off")
        busy, env = self.worker()
        with busy:
            claim = env["prepaid.meter.command"]._claim_queued(1, ids=[command_id])
            self.assertEqual(claim.commands.ids, [command_id])
            other, other_env = self.worker()
            with other:
                # The first worker holds the command and its bus.
                with self.assertRaisesRegex(UserError, "busy .in use by another"):
                    other_env["prepaid.meter.command"].browse(
                        command_id
                    ).action_send_now()
                other_env.cr.rollback()
            env.cr.rollback()
        self.assertFalse(self.fleet.meter(0, 1).relay_open, "sent by nobody yet")
        sender, env = self.worker()
        with sender:
            env["prepaid.meter.command"].browse(command_id).action_send_now()
            env.cr.commit()
        self.assertEqual(self.read_command(command_id)["state"], "done")
        self.assertTrue(self.fleet.meter(0, 1).relay_open)
        self.assertFalse(self.bus_claim(), "the bus is free again")

    def test_send_now_leaves_a_command_whose_row_another_worker_holds(self):
        command_id = self.commit_command(1, "relay_off")
        busy, env = self.worker()
        with busy:
            env.cr.execute(
                "SELECT id FROM prepaid_meter_command WHERE id = %s FOR UPDATE",
                [command_id],
            )
            other, other_env = self.worker()
            with other:
                with self.assertRaisesRegex(UserError, "being sent by another"):
                    other_env["prepaid.meter.command"].browse(
                        command_id
                    ).action_send_now()
                other_env.cr.rollback()
            env.cr.rollback()
        self.assertEqual(self.read_command(command_id)["state"], "queued")
        self.assertFalse(self.fleet.meter(0, 1).relay_open)

    def bus_claim(self):
        with self.registry.cursor() as cr:
            cr.execute(
                "SELECT bus_claimed_by, bus_claimed_until FROM prepaid_gateway "
                "WHERE id = %s",
                [self.gateway_id],
            )
            return [value for value in cr.fetchone() if value]

    def test_poll_now_refuses_a_bus_another_worker_sweeps(self):
        requests = self.fleet.gateways[0].requests
        busy, env = self.worker()
        with busy:
            gateway = env["prepaid.gateway"].browse(self.gateway_id)
            self.assertEqual(gateway._claim_bus("poll"), gateway)
            other, other_env = self.worker()
            with other:
                with self.assertRaisesRegex(UserError, "busy .in use by another"):
                    other_env["prepaid.gateway"].browse(
                        self.gateway_id
                    ).action_poll_now()
                other_env.cr.rollback()
            # Committed, the claim keeps the polling job away too.
            env.cr.commit()
        self.assertEqual(self.fleet.gateways[0].requests, requests, "bus untouched")
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            with self.assertRaisesRegex(UserError, "busy .being polled"):
                env["prepaid.gateway"].browse(self.gateway_id).action_poll_now()
            env.cr.execute(
                "UPDATE prepaid_gateway SET next_poll_at = NULL WHERE id = %s",
                [self.gateway_id],
            )
            claimed = env["prepaid.gateway"]._claim_due_gateways(100)
            self.assertNotIn(self.gateway_id, claimed.ids)
            cr.rollback()
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            gateway = env["prepaid.gateway"].browse(self.gateway_id)
            gateway._release_bus("poll")
            gateway.action_poll_now()
            self.assertFalse(gateway.bus_claimed_until)
        self.assertGreater(self.fleet.gateways[0].requests, requests)
        self.assertFalse(self.bus_claim())
