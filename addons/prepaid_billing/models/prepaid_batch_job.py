from datetime import datetime, time, timedelta

import pytz

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.modules import module as odoo_module
from odoo.tools.safe_eval import safe_eval

OPERATIONS = [
    ("switch_off", "Relay / Valve Off"),
    ("switch_on", "Relay / Valve On"),
    ("read_now", "Read Now"),
    ("write_settings", "Write Meter Settings"),
    ("set_tariff", "Set Tariff"),
    ("recharge", "Recharge a Fixed Amount"),
    ("rebuild_daily", "Rebuild Daily Use"),
]
#: Who may run each operation (checked on the server when the task is
#: created, scheduled, and again as its requester when it runs).
OPERATION_GROUPS = {
    "switch_off": "prepaid_metering.group_metering_user",
    "switch_on": "prepaid_metering.group_metering_user",
    "read_now": "prepaid_metering.group_metering_user",
    "write_settings": "prepaid_metering.group_metering_manager",
    "set_tariff": "prepaid_billing.group_billing_manager",
    "recharge": "prepaid_billing.group_billing_user",
    "rebuild_daily": "prepaid_billing.group_billing_manager",
}
#: Operations that queue one meter command per line.
COMMAND_OPERATIONS = {"switch_off", "switch_on", "read_now", "write_settings"}
TARGET_MODELS = {
    "meter": "prepaid.meter",
    "room": "prepaid.room",
    "account": "prepaid.account",
}
#: Fields describing what a task does; frozen once it leaves draft.
REQUEST_FIELDS = {
    "operation",
    "target_type",
    "meter_ids",
    "room_ids",
    "account_ids",
    "target_domain",
    "tariff_id",
    "tariff_date",
    "amount",
    "journal_id",
    "write_unit_price",
    "unit_price",
    "write_alarms",
    "alarm1_amount",
    "alarm2_amount",
    "write_overdraft",
    "overdraft_limit",
    "rebuild_from",
    "rebuild_to",
}
CHUNK = 500


class PrepaidBatchJob(models.Model):
    """One operation on many meters or accounts, with a line per target.

    The request only records what to do; the batch job cron expands the
    targets into lines and does the work chunk by chunk (one commit each), and
    meter operations go through the command queue, so a task of ten thousand
    meters never runs in a browser request.
    """

    _name = "prepaid.batch.job"
    _description = "Batch Task"
    _inherit = ["mail.thread"]
    _order = "id desc"
    _check_company_auto = True

    name = fields.Char(
        required=True, readonly=True, copy=False, default=lambda self: self.env._("New")
    )
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company
    )
    currency_id = fields.Many2one(related="company_id.currency_id")
    operation = fields.Selection(OPERATIONS, required=True, tracking=True)
    target_type = fields.Selection(
        [("meter", "Meters"), ("room", "Rooms"), ("account", "Accounts")],
        required=True,
        default="meter",
    )
    meter_ids = fields.Many2many("prepaid.meter", string="Meters", check_company=True)
    room_ids = fields.Many2many("prepaid.room", string="Rooms", check_company=True)
    account_ids = fields.Many2many(
        "prepaid.account", string="Accounts", check_company=True
    )
    target_domain = fields.Char(
        string="Target Filter",
        help="Instead of a selection: every meter, room or account matching this "
        "filter when the task runs (e.g. the shops of building B, floor 3).",
    )
    target_model = fields.Char(compute="_compute_target_model")
    state = fields.Selection(
        [
            ("draft", "Draft"),
            ("scheduled", "Scheduled"),
            ("running", "Running"),
            ("done", "Done"),
            ("partial", "Partly Failed"),
            ("cancelled", "Cancelled"),
        ],
        default="draft",
        required=True,
        readonly=True,
        tracking=True,
        index=True,
        copy=False,
    )
    scheduled_at = fields.Datetime(
        string="Run At",
        copy=False,
        tracking=True,
        help="Empty: as soon as possible.",
    )
    started_at = fields.Datetime(readonly=True, copy=False)
    finished_at = fields.Datetime(readonly=True, copy=False)
    requested_by = fields.Many2one(
        "res.users", default=lambda self: self.env.user, readonly=True, copy=False
    )
    lines_ready = fields.Boolean(readonly=True, copy=False)
    line_ids = fields.One2many("prepaid.batch.job.line", "job_id", string="Lines")
    line_count = fields.Integer(compute="_compute_progress")
    done_count = fields.Integer(compute="_compute_progress")
    failed_count = fields.Integer(compute="_compute_progress")
    pending_count = fields.Integer(compute="_compute_progress")
    progress = fields.Float(compute="_compute_progress", help="Lines settled, in %.")
    # -- parameters ------------------------------------------------------
    tariff_id = fields.Many2one("prepaid.tariff", check_company=True)
    tariff_date = fields.Date(
        string="Tariff From",
        help="The meters are billed up to this day with their old tariff, then "
        "switched; the task runs at the start of this day.",
    )
    amount = fields.Monetary(help="Recharged to every target account.")
    journal_id = fields.Many2one(
        "account.journal",
        string="Payment Journal",
        domain="[('type', 'in', ('cash', 'bank'))]",
        check_company=True,
    )
    write_unit_price = fields.Boolean()
    unit_price = fields.Float(digits=(16, 4))
    write_alarms = fields.Boolean(string="Write Alarm Amounts")
    alarm1_amount = fields.Float(string="Alarm 1 Amount", digits=(16, 2))
    alarm2_amount = fields.Float(string="Alarm 2 Amount", digits=(16, 2))
    write_overdraft = fields.Boolean(string="Write Overdraft Limit")
    overdraft_limit = fields.Float(digits=(16, 2))
    rebuild_from = fields.Date(
        string="Rebuild From", help="First local day (site time zone) to rebuild."
    )
    rebuild_to = fields.Date(
        string="Rebuild To",
        help="Last local day to rebuild (included); a day after today counts as today.",
    )

    @api.depends("target_type")
    def _compute_target_model(self):
        for job in self:
            job.target_model = TARGET_MODELS[job.target_type or "meter"]

    @api.depends("line_ids.state")
    def _compute_progress(self):
        counts = {}
        for job, state, count in self.env["prepaid.batch.job.line"]._read_group(
            [("job_id", "in", self.ids)], ["job_id", "state"], ["__count"]
        ):
            counts.setdefault(job.id, {})[state] = count
        for job in self:
            by_state = counts.get(job.id, {})
            total = sum(by_state.values())
            job.line_count = total
            job.done_count = by_state.get("done", 0)
            job.failed_count = by_state.get("failed", 0)
            job.pending_count = by_state.get("pending", 0) + by_state.get("sent", 0)
            settled = total - job.pending_count
            job.progress = 100.0 * settled / total if total else 0.0

    # ------------------------------------------------------------------
    # Checks
    # ------------------------------------------------------------------
    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            self._check_operation_allowed(vals.get("operation"))
            self._check_schedule(vals.get("scheduled_at"))
        with self.env.cr.savepoint():
            jobs = super().create(vals_list)
            # (constraints on relations run only when they are given)
            jobs._check_targets()
        for job in jobs:
            job.name = self.env._("Batch task %s", job.id)
        return jobs

    def write(self, vals):
        if REQUEST_FIELDS & set(vals) and self.filtered(lambda j: j.state != "draft"):
            raise UserError(
                self.env._(
                    "A task that was scheduled cannot be changed; cancel it and "
                    "create another."
                )
            )
        if "operation" in vals:
            self._check_operation_allowed(vals["operation"])
        if vals.get("scheduled_at"):
            self._check_schedule(vals["scheduled_at"])
        return super().write(vals)

    @api.model
    def _check_operation_allowed(self, operation, user=None):
        """AccessError unless ``user`` (default: the current one) may run
        ``operation``."""
        user = user or self.env.user
        group = OPERATION_GROUPS.get(operation)
        if not group or user._is_superuser() or user.has_group(group):
            return
        raise AccessError(
            self.env._(
                "%(user)s may not run the batch operation %(operation)s: it needs "
                "the group %(group)s.",
                user=user.name,
                operation=dict(
                    self._fields["operation"]._description_selection(self.env)
                ).get(operation, operation),
                group=self.env.ref(group).full_name,
            )
        )

    @api.model
    def _check_schedule(self, when):
        if not when:
            return
        when = fields.Datetime.to_datetime(when)
        if when < fields.Datetime.now() - timedelta(minutes=1):
            raise ValidationError(
                self.env._(
                    "The task is scheduled at %s, which is in the past; choose a "
                    "later time, or leave it empty to run it now.",
                    when,
                )
            )

    @api.constrains(
        "operation",
        "tariff_id",
        "amount",
        "journal_id",
        "write_unit_price",
        "write_alarms",
        "write_overdraft",
        "rebuild_from",
        "rebuild_to",
    )
    def _check_parameters(self):
        for job in self:
            operation = job.operation
            if operation == "set_tariff" and not job.tariff_id:
                raise ValidationError(self.env._("Choose the tariff to set."))
            if operation == "recharge" and (
                job.currency_id.compare_amounts(job.amount, 0) <= 0
                or not job.journal_id
            ):
                raise ValidationError(
                    self.env._(
                        "A recharge task needs a positive amount and a payment journal."
                    )
                )
            if operation == "rebuild_daily" and (
                not job.rebuild_from
                or not job.rebuild_to
                or job.rebuild_to < job.rebuild_from
            ):
                raise ValidationError(
                    self.env._(
                        "A rebuild task needs its first and last day, the last "
                        "not before the first."
                    )
                )
            if operation == "write_settings" and not (
                job.write_unit_price or job.write_alarms or job.write_overdraft
            ):
                raise ValidationError(
                    self.env._("Tick at least one meter setting to write.")
                )

    @api.constrains("meter_ids", "room_ids", "account_ids", "target_domain")
    def _check_targets(self):
        for job in self:
            if not (job.target_domain or job[f"{job.target_type}_ids"]):
                raise ValidationError(
                    self.env._(
                        "A batch task needs targets: select meters, rooms or "
                        "accounts, or give a filter."
                    )
                )

    # ------------------------------------------------------------------
    # Targets
    # ------------------------------------------------------------------
    def _targets(self):
        """The selected (or filtered) records of the target model."""
        self.ensure_one()
        Model = self.env[self.target_model]
        if self.target_domain:
            return Model.search(safe_eval(self.target_domain))
        return self[f"{self.target_type}_ids"]

    def _target_meters(self):
        targets = self._targets()
        if self.target_type == "meter":
            return targets
        return targets.meter_ids

    def _target_accounts(self):
        targets = self._targets()
        if self.target_type == "account":
            return targets
        meters = targets if self.target_type == "meter" else targets.meter_ids
        return meters.billing_account_id

    def _target_count(self):
        if self.operation == "recharge":
            return len(self._target_accounts())
        return len(self._target_meters())

    # ------------------------------------------------------------------
    # User actions
    # ------------------------------------------------------------------
    def action_schedule(self):
        """Run now (no time set) or at the time set: the cron does the work."""
        now = fields.Datetime.now()
        for job in self:
            if job.state != "draft":
                raise UserError(self.env._("Only a draft task can be scheduled."))
            job._check_operation_allowed(job.operation)
            job._check_schedule(job.scheduled_at)
            if not job._target_count():
                raise UserError(
                    self.env._(
                        "Task %s has no targets: select meters, rooms or accounts "
                        "(with a prepaid account for a recharge), or a filter that "
                        "matches some.",
                        job.name,
                    )
                )
            if (
                job.operation == "set_tariff"
                and job.tariff_date
                and not (job.scheduled_at)
            ):
                job.scheduled_at = max(now, job._tariff_start())
            job.scheduled_at = job.scheduled_at or now
            job.sudo().state = "scheduled"
            self._trigger(job.scheduled_at)
        return True

    def action_run_now(self):
        self.scheduled_at = False
        return self.action_schedule()

    def action_cancel(self):
        """Cancel the lines not sent yet (queued commands too); lines already
        sent keep their outcome."""
        for job in self:
            if job.state not in ("draft", "scheduled", "running"):
                raise UserError(self.env._("Task %s has ended.", job.name))
            lines = job.line_ids.sudo()
            queued = lines.filtered(
                lambda line: line.state == "sent" and line.command_id.state == "queued"
            )
            queued.command_id.action_cancel()
            (lines.filtered(lambda line: line.state == "pending") | queued).write(
                {"state": "cancelled", "error": self.env._("Cancelled")}
            )
            job.sudo().write(
                {"state": "cancelled", "finished_at": fields.Datetime.now()}
            )
        return True

    def action_retry_failed(self):
        """Run the failed lines again (only those)."""
        for job in self:
            if job.state not in ("partial", "done", "cancelled", "running"):
                raise UserError(self.env._("Only a task that ran can be retried."))
            job._check_operation_allowed(job.operation)
            failed = job.line_ids.filtered(lambda line: line.state == "failed")
            if not failed:
                raise UserError(self.env._("Task %s has no failed lines.", job.name))
            failed.sudo().write(
                {
                    "state": "pending",
                    "error": False,
                    "result": False,
                    "command_id": False,
                }
            )
            job.sudo().write(
                {"state": "scheduled", "scheduled_at": fields.Datetime.now()}
            )
            self._trigger()
        return True

    def action_view_lines(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "prepaid_billing.prepaid_batch_job_line_action"
        )
        action["domain"] = [("job_id", "=", self.id)]
        return action

    def _tariff_start(self):
        """Naive UTC start of ``tariff_date`` in the time zone of the
        company's first site (the meters' day)."""
        site = self.env["prepaid.site"].search(
            [("company_id", "in", [self.company_id.id, False])], limit=1
        )
        zone = pytz.timezone(site.tz or "UTC")
        local = zone.localize(datetime.combine(self.tariff_date, time.min))
        return local.astimezone(pytz.utc).replace(tzinfo=None)

    @api.model
    def _trigger(self, at=None):
        cron = self.env.ref(
            "prepaid_billing.ir_cron_batch_jobs", raise_if_not_found=False
        )
        if cron:
            cron.sudo()._trigger(at)

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
