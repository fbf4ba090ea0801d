from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.modules import module as odoo_module

COMMAND_OPERATIONS = {"switch_off", "switch_on", "read_now", "write_settings"}
CHUNK = 500


class PrepaidBatchJobRun(models.AbstractModel):
    """How a batch task runs: the cron claims the due tasks, expands their
    targets into lines and works through them chunk by chunk (mixed into
    ``prepaid.batch.job``, which holds the request and its checks)."""

    _name = "prepaid.batch.job.run"
    _description = "Batch Task: execution"

    # ------------------------------------------------------------------
    # The cron
    # ------------------------------------------------------------------
    @api.model
    def _cron_run(self, commit=None):
        """Start the tasks due, work their pending lines chunk by chunk and
        follow their commands; returns the lines worked."""
        if commit is None:
            commit = not odoo_module.current_test
        now = fields.Datetime.now()
        self.env.flush_all()
        self.env.cr.execute(
            """SELECT id FROM prepaid_batch_job
                WHERE state = 'scheduled' AND scheduled_at <= %s
                   OR state = 'running'
                ORDER BY id FOR NO KEY UPDATE SKIP LOCKED""",
            [now],
        )
        jobs = self.browse([row[0] for row in self.env.cr.fetchall()])
        worked = 0
        for job in jobs:
            if job.state == "scheduled":
                job.write({"state": "running", "started_at": now})
            worked += job._work(commit)
        self._sync_sent_lines()
        jobs._finish_settled()
        running = jobs.filtered(lambda j: j.state == "running")
        if running:
            self._trigger(fields.Datetime.now() + timedelta(seconds=5))
            if running._waiting_commands():
                # The command job sends a claim at a time and then waits for
                # its next call: keep it going while our commands wait.
                self.env["prepaid.meter.command"]._trigger_processing()
        return worked

    def _waiting_commands(self):
        """Whether queued commands of these tasks' lines wait to be sent."""
        self.env.flush_all()
        self.env.cr.execute(
            """
            SELECT 1 FROM prepaid_batch_job_line l
              JOIN prepaid_meter_command c ON c.id = l.command_id
             WHERE l.job_id = ANY(%s) AND l.state = 'sent' AND c.state = 'queued'
             LIMIT 1
            """,
            [self.ids],
        )
        return bool(self.env.cr.fetchone())

    def _work(self, commit):
        self.ensure_one()
        requester = self.with_user(self.requested_by).with_company(self.company_id)
        try:
            self._check_operation_allowed(self.operation, self.requested_by)
            if not self.lines_ready:
                requester._create_lines()
        except (UserError, AccessError) as err:
            self.message_post(body=str(err))
            self.write({"state": "cancelled", "finished_at": fields.Datetime.now()})
            return 0
        Line = self.env["prepaid.batch.job.line"]
        worked = 0
        while True:
            chunk = Line.search(
                [("job_id", "=", self.id), ("state", "=", "pending")],
                limit=CHUNK,
                order="id",
            )
            if not chunk:
                break
            requester._run_lines(chunk.with_env(requester.env))
            worked += len(chunk)
            if commit:
                self.env.cr.commit()  # pylint: disable=invalid-commit
            self.env["ir.cron"]._notify_progress(
                done=worked,
                remaining=Line.search_count(
                    [("job_id", "=", self.id), ("state", "=", "pending")]
                ),
            )
        return worked

    def _create_lines(self):
        """One line per target: per account for a recharge, per meter else."""
        if self.operation == "recharge":
            vals = [
                {"job_id": self.id, "account_id": account.id}
                for account in self._target_accounts()
            ]
        else:
            vals = [
                {
                    "job_id": self.id,
                    "meter_id": meter.id,
                    "account_id": meter.billing_account_id.id,
                }
                for meter in self._target_meters()
            ]
        self.env["prepaid.batch.job.line"].sudo().create(vals)
        self.sudo().lines_ready = True

    def _run_lines(self, lines):
        """Do the operation for ``lines`` (as the requester)."""
        method = (
            "_run_commands"
            if self.operation in COMMAND_OPERATIONS
            else f"_run_{self.operation}"
        )
        getattr(self, method)(lines)

    def _command_type(self, meter):
        operation = self.operation
        if operation in ("switch_off", "switch_on"):
            return meter._switch_command_type(operation == "switch_on")
        return "write_params" if operation == "write_settings" else "read_now"

    def _command_params(self):
        if self.operation != "write_settings":
            return None
        params = {}
        if self.write_unit_price:
            params["unit_price"] = self.unit_price
        if self.write_alarms:
            params["alarm1_amount"] = self.alarm1_amount
            params["alarm2_amount"] = self.alarm2_amount
        if self.write_overdraft:
            params["overdraft_limit"] = self.overdraft_limit
        return params

    def _run_commands(self, lines):
        """Queue one command per line, all at once; the lines whose meter
        cannot take it fail on their own."""
        reason = self.env._("Batch task %s", self.name)
        params = self._command_params()
        sendable, failures = lines.browse(), {}
        for line in lines:
            try:
                self._command_type(line.meter_id)
                sendable |= line
            except UserError as err:
                failures[line] = str(err)
        try:
            with self.env.cr.savepoint():
                commands = sendable.meter_id._queue_commands(
                    self._command_type, reason, params
                )
            by_meter = {command.meter_id.id: command.id for command in commands}
            sendable._mark_sent([by_meter[line.meter_id.id] for line in sendable])
        except (UserError, ValidationError, AccessError):
            # one meter refused the command (parameters it has no register
            # for...): queue them one by one to tell which
            for line in sendable:
                try:
                    with self.env.cr.savepoint():
                        command = line.meter_id._queue_commands(
                            self._command_type, reason, params
                        )
                    line.sudo().write({"state": "sent", "command_id": command.id})
                except (UserError, ValidationError, AccessError) as err:
                    failures[line] = str(err)
        for line, error in failures.items():
            line.sudo().write({"state": "failed", "error": error})

    def _run_set_tariff(self, lines):
        """Bill the meters with their old tariff, then switch them."""
        meters = lines.meter_id
        wrong = meters.filtered(
            lambda m: (m.meter_type == "water") != (self.tariff_id.utility == "water")
        )
        # The group was checked (OPERATION_GROUPS); billing and the meter
        # field are the system's to write.
        self.env["prepaid.billing.engine"].sudo()._bill((meters - wrong).ids)
        (meters - wrong).sudo().write({"tariff_id": self.tariff_id.id})
        for line in lines:
            if line.meter_id in wrong:
                line.sudo().write(
                    {
                        "state": "failed",
                        "error": self.env._(
                            "Tariff %s is not for this meter's utility.",
                            self.tariff_id.name,
                        ),
                    }
                )
        (lines.filtered(lambda line: line.meter_id not in wrong)).sudo().write(
            {"state": "done", "result": self.tariff_id.name}
        )

    def _run_recharge(self, lines):
        payment = "cash" if self.journal_id.type == "cash" else "bank"
        label = self.env._("Recharge (batch task %s)", self.name)
        for line in lines:
            try:
                with self.env.cr.savepoint():
                    line.account_id._recharge(
                        self.amount,
                        self.journal_id,
                        f"batch_job_line:{line.id}",
                        payment,
                        label,
                    )
                line.sudo().write(
                    {
                        "state": "done",
                        "result": self.currency_id.format(line.account_id.balance),
                    }
                )
            except (UserError, ValidationError, AccessError) as err:
                line.sudo().write({"state": "failed", "error": str(err)})

    def _run_rebuild_daily(self, lines):
        """Rebuild the daily use of the lines' meters over the task's days
        (up to the sites' today), in pieces committed as they are done: a
        piece is a complete rebuild, so a task stopped half-way and run
        again ends right."""
        Daily = self.env["prepaid.daily.usage"].sudo()
        meters = lines.meter_id
        date_to = min(self.rebuild_to, Daily._local_today(meters))
        if self.rebuild_from > date_to:
            lines.sudo().write(
                {
                    "state": "failed",
                    "error": self.env._("The first day is in the future."),
                }
            )
            return
        Daily._rebuild_in_pieces(meters.ids, self.rebuild_from, date_to)
        lines.sudo().write(
            {
                "state": "done",
                "result": self.env._(
                    "Rebuilt from %(date_from)s to %(date_to)s",
                    date_from=self.rebuild_from,
                    date_to=date_to,
                ),
            }
        )

    @api.model
    def _sync_sent_lines(self):
        """Lines follow their commands once settled (one statement)."""
        self.env.flush_all()
        self.env.cr.execute(
            """
            UPDATE prepaid_batch_job_line l
               SET state = CASE WHEN c.state = 'done' THEN 'done' ELSE 'failed' END,
                   result = c.result,
                   error = CASE WHEN c.state = 'done' THEN NULL
                                ELSE COALESCE(c.last_error, c.state) END,
                   write_date = now() AT TIME ZONE 'UTC'
              FROM prepaid_meter_command c
             WHERE c.id = l.command_id AND l.state = 'sent'
               AND c.state IN ('done', 'failed', 'cancelled')
            """
        )
        self.env["prepaid.batch.job.line"].invalidate_model()

    def _finish_settled(self):
        """Running tasks whose every line is settled end done or partly
        failed."""
        for job in self.filtered(lambda j: j.state == "running"):
            job.invalidate_recordset()
            if job.pending_count:
                continue
            job.write(
                {
                    "state": "partial" if job.failed_count else "done",
                    "finished_at": fields.Datetime.now(),
                }
            )
