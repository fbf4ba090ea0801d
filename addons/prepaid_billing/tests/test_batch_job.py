from datetime import datetime, timedelta

from freezegun import freeze_time

from odoo import Command
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import new_test_user, tagged

from odoo.addons.prepaid_metering.tests.common import electric

from .common import BillingCase


@tagged("post_install", "-at_install")
class TestBatchJob(BillingCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.bus = cls.make_gateway(port=1, name="Batch bus")
        cls.m1 = cls.make_meter(cls.bus, 1)
        cls.m2 = cls.make_meter(cls.bus, 2, room=cls.room2)
        cls.m3 = cls.make_meter(cls.bus, 3)
        company = {"company_id": cls.company.id, "company_ids": [cls.company.id]}
        cls.operator = new_test_user(
            cls.env,
            "batch_operator",
            groups="prepaid_metering.group_metering_user",
            **company,
        )
        cls.cashier = new_test_user(
            cls.env,
            "batch_cashier",
            groups="prepaid_metering.group_metering_user,"
            "prepaid_billing.group_billing_user",
            **company,
        )
        cls.Job = cls.env["prepaid.batch.job"]
        cls.Command = cls.env["prepaid.meter.command"]

    def job(self, user, **vals):
        return self.Job.with_user(user).create(
            {"operation": "switch_off", "target_type": "meter", **vals}
        )

    def run_cron(self):
        return self.Job._cron_run()

    def test_relay_off_batch_records_a_command_per_meter_and_retries_failures_only(
        self,
    ):
        fleet = self.start_fresh_fleet(
            [("socket", [electric(1), electric(2), electric(3)])], [self.bus]
        )
        fleet.meter(0, 2).inject("stuck_relay")
        fleet.meter(0, 3).inject("timeout")
        job = self.job(
            self.operator, meter_ids=[Command.set((self.m1 | self.m2 | self.m3).ids)]
        )
        job.action_run_now()
        self.assertEqual(job.state, "scheduled")
        self.assertFalse(job.line_ids, "nothing is done in the request")
        self.assertFalse(self.Command.search([("meter_id", "=", self.m1.id)]))
        self.assertEqual(self.run_cron(), 3)
        self.assertEqual(job.state, "running")
        self.assertEqual(job.line_ids.mapped("state"), ["sent"] * 3)
        self.assertEqual(job.line_ids.command_id.requested_by, self.operator)
        self.process_commands()
        self.run_cron()
        self.assertEqual(job.state, "partial")
        lines = {line.meter_id: line for line in job.line_ids}
        self.assertEqual(lines[self.m1].state, "done")
        self.assertEqual(
            (lines[self.m2].state, lines[self.m3].state), ("failed", "failed")
        )
        self.assertTrue(lines[self.m2].error and lines[self.m3].error)
        self.assertEqual(
            (job.done_count, job.failed_count, job.progress), (1, 2, 100.0)
        )
        self.assertTrue(fleet.meter(0, 1).relay_open)
        self.assertFalse(fleet.meter(0, 2).relay_open or fleet.meter(0, 3).relay_open)
        first_command = lines[self.m1].command_id
        fleet.meter(0, 2).clear_faults()
        fleet.meter(0, 3).clear_faults()
        job.with_user(self.operator).action_retry_failed()
        self.assertEqual(lines[self.m1].state, "done", "the done line is kept")
        self.run_cron()
        self.process_commands()
        self.run_cron()
        self.assertEqual(job.state, "done")
        self.assertTrue(fleet.meter(0, 2).relay_open and fleet.meter(0, 3).relay_open)
        self.assertEqual(
            self.Command.search([("meter_id", "=", self.m1.id)]),
            first_command,
            "the meter that succeeded got no second command",
        )

    def test_the_command_job_is_woken_while_the_task_s_commands_wait(self):
        cron = self.env.ref("prepaid_metering.ir_cron_meter_commands")
        Trigger = self.env["ir.cron.trigger"].sudo()

        def wakes():
            return Trigger.search_count([("cron_id", "=", cron.id)])

        job = self.job(self.operator, meter_ids=[Command.set((self.m1 | self.m2).ids)])
        job.action_run_now()
        self.run_cron()
        self.assertEqual(job.line_ids.mapped("state"), ["sent"] * 2)
        self.assertEqual(
            job.line_ids.command_id.mapped("state"), ["queued"] * 2, "not sent yet"
        )
        Trigger.search([("cron_id", "=", cron.id)]).unlink()
        self.run_cron()
        self.assertEqual(wakes(), 1, "its commands still wait: the job is woken")
        job.line_ids.command_id._write_internal(
            {"state": "failed", "last_error": "no reply"}
        )
        Trigger.search([("cron_id", "=", cron.id)]).unlink()
        self.run_cron()
        self.assertEqual(job.state, "partial")
        self.assertEqual(wakes(), 0, "nothing waits any more")

    def test_scheduled_task_starts_at_its_time_from_the_cron(self):
        start = datetime(2026, 3, 2, 8, 0)
        with freeze_time(start):
            job = self.job(
                self.operator,
                operation="read_now",
                target_type="room",
                room_ids=[Command.set(self.room2.ids)],
                scheduled_at=start + timedelta(hours=2),
            )
            job.action_schedule()
            trigger = self.env["ir.cron.trigger"].search(
                [
                    (
                        "cron_id",
                        "=",
                        self.env.ref("prepaid_billing.ir_cron_batch_jobs").id,
                    )
                ],
                order="id desc",
                limit=1,
            )
            self.assertEqual(trigger.call_at, start + timedelta(hours=2))
            self.run_cron()
            self.assertEqual(job.state, "scheduled")
            self.assertFalse(job.line_ids)
        with freeze_time(start + timedelta(hours=2)):
            self.run_cron()
            self.assertEqual(job.state, "running")
            self.assertEqual(job.line_ids.meter_id, self.m2)
            self.assertEqual(job.line_ids.command_id.command_type, "read_now")

    def test_bad_requests_are_refused_and_create_nothing(self):
        before = self.Job.search_count([])
        with self.assertRaisesRegex(ValidationError, "needs targets"):
            self.job(self.operator)
        with (
            freeze_time("2026-03-02 08:00:00"),
            self.assertRaisesRegex(ValidationError, "in the past"),
        ):
            self.job(
                self.operator,
                meter_ids=[Command.set(self.m1.ids)],
                scheduled_at="2026-03-02 07:00:00",
            )
        with self.assertRaisesRegex(AccessError, "Billing User"):
            self.job(
                self.operator,
                operation="recharge",
                amount=10.0,
                journal_id=self.cash.id,
                meter_ids=[Command.set(self.m1.ids)],
            )
        with self.assertRaises(AccessError):
            self.job(
                self.cashier,
                operation="set_tariff",
                tariff_id=self.flat.id,
                meter_ids=[Command.set(self.m1.ids)],
            )
        self.assertEqual(self.Job.search_count([]), before)
        # a filter that matches nothing: the task stays a draft, no lines
        job = self.job(self.operator, target_domain="[('name', '=', 'no such meter')]")
        with self.assertRaisesRegex(UserError, "no targets"):
            job.action_run_now()
        self.assertEqual(
            (job.state, job.line_ids), ("draft", self.env["prepaid.batch.job.line"])
        )

    def test_recharge_task_credits_each_account_once_and_reports_failures(self):
        good = self.make_account(self.m1, opening=10.0)
        draft = self.make_account(self.m2, open_it=False)
        job = self.job(
            self.cashier,
            operation="recharge",
            target_type="account",
            amount=50.0,
            journal_id=self.cash.id,
            account_ids=[Command.set((good | draft).ids)],
        )
        job.action_run_now()
        self.run_cron()
        self.assertEqual(job.state, "partial")
        lines = {line.account_id: line for line in job.line_ids}
        self.assertEqual(lines[good].state, "done")
        self.assertEqual(good.balance, 60.0)
        self.assertEqual(lines[draft].state, "failed")
        self.assertIn("not open", lines[draft].error)
        job.with_user(self.cashier).action_retry_failed()
        self.run_cron()
        self.assertEqual(
            good.balance, 60.0, "the recharged account is not credited twice"
        )
        self.assertEqual(lines[draft].state, "failed")
        self.assert_reconciled()

    def test_set_tariff_bills_the_old_tariff_first(self):
        tou = self.make_tou("TOU batch")
        account = self.make_account(self.m1, opening=100.0)
        self.reading(self.m1, 100.0, "2026-03-02 02:00:00")
        self.reading(self.m1, 110.0, "2026-03-02 03:00:00")
        manager = new_test_user(
            self.env,
            "batch_billing_manager",
            groups="prepaid_metering.group_metering_user,"
            "prepaid_billing.group_billing_manager",
            company_id=self.company.id,
            company_ids=[self.company.id],
        )
        job = self.job(
            manager,
            operation="set_tariff",
            tariff_id=tou.id,
            meter_ids=[Command.set((self.m1 | self.m2).ids)],
        )
        job.action_run_now()
        self.run_cron()
        self.assertEqual(job.state, "done")
        self.assertEqual(self.m1.tariff_id, tou)
        # 10 kWh x 0.80 at the old flat tariff
        self.assertEqual(account.balance, 92.0)

    def test_write_settings_queues_the_parameters_and_cancel_stops_unsent_lines(self):
        manager = new_test_user(
            self.env,
            "batch_metering_manager",
            groups="prepaid_metering.group_metering_manager",
            company_id=self.company.id,
            company_ids=[self.company.id],
        )
        with self.assertRaises(AccessError):
            self.job(
                self.operator,
                operation="write_settings",
                write_alarms=True,
                meter_ids=[Command.set(self.m1.ids)],
            )
        job = self.job(
            manager,
            operation="write_settings",
            write_alarms=True,
            alarm1_amount=30.0,
            alarm2_amount=10.0,
            meter_ids=[Command.set((self.m1 | self.m3).ids)],
        )
        job.action_run_now()
        self.run_cron()
        commands = job.line_ids.command_id
        self.assertEqual(
            commands.mapped("params"),
            [{"alarm1_amount": 30.0, "alarm2_amount": 10.0}] * 2,
        )
        job.with_user(manager).action_cancel()
        self.assertEqual(job.state, "cancelled")
        self.assertEqual(set(job.line_ids.mapped("state")), {"cancelled"})
        self.assertEqual(set(commands.mapped("state")), {"cancelled"})
