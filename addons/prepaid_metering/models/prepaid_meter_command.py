import logging
import time
from datetime import timedelta
from typing import NamedTuple

import psycopg2.errors

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.modules import module as odoo_module

from ..drivers import codec, modbus
from ..tools.transactions import start_read_committed

_logger = logging.getLogger(__name__)

COMMAND_TYPES = [
    ("relay_off", "Relay Off (cut supply)"),
    ("relay_on", "Relay On (restore supply)"),
    ("valve_close", "Valve Close"),
    ("valve_open", "Valve Open"),
    ("read_now", "Read Now"),
    ("write_params", "Write Parameters"),
    ("record_write", "Counted Record (recharge / refund)"),
]
SWITCH_COMMANDS = {
    "relay_off": ("relay", False),
    "relay_on": ("relay", True),
    "valve_close": ("valve", False),
    "valve_open": ("valve", True),
}
STATES = [
    ("queued", "Queued"),
    ("sending", "Sending"),
    ("done", "Done"),
    ("failed", "Failed"),
    ("cancelled", "Cancelled"),
]
RETRY_DELAY = timedelta(seconds=30)
#: Registers of a counted record (px_prepaid_v1 names): the record is the
#: signed amount plus its number, the counter says how many records the meter
#: applied; the optional balance is read back with it.
RECORD_AMOUNT, RECORD_COUNT, RECORD_COUNTER = (
    "recharge_amount",
    "recharge_count",
    "purchase_count",
)
RECORD_READBACK_EXTRA = "balance"
#: Fields only the command's own code paths change (never over RPC).
USER_WRITABLE_FIELDS = frozenset({"reason"})
#: Fields a new command cannot be given (beyond their empty default).
CREATE_FORBIDDEN_FIELDS = frozenset(
    {
        "attempts",
        "next_attempt_at",
        "last_error",
        "result",
        "done_at",
        "claimed_at",
        "expected_count",
        "readback",
        "followup_pending",
    }
)


class Outcome(NamedTuple):
    """What one attempt at a command gave. ``final`` failures are not retried
    (the meter refused, or an operator must look)."""

    ok: bool
    message: str
    final: bool = False


class PrepaidMeterCommand(models.Model):
    """An order for one meter, sent through the driver and read back."""

    _name = "prepaid.meter.command"
    _description = "Meter Command"
    _order = "id desc"
    _check_company_auto = True

    name = fields.Char(
        required=True, readonly=True, copy=False, default=lambda self: self.env._("New")
    )
    meter_id = fields.Many2one(
        "prepaid.meter",
        required=True,
        ondelete="cascade",
        index=True,
        check_company=True,
    )
    gateway_id = fields.Many2one(related="meter_id.gateway_id", store=True)
    room_id = fields.Many2one(related="meter_id.room_id", store=True)
    company_id = fields.Many2one(
        related="meter_id.company_id", store=True, index=True, precompute=True
    )
    command_type = fields.Selection(COMMAND_TYPES, required=True)
    params = fields.Json(
        help='For Write Parameters: register name -> value, e.g. {"unit_price": 0.85}.'
        ' For a counted record: {"amount": 30.0} (negative for a refund).'
    )
    params_text = fields.Char(string="Parameters", compute="_compute_params_text")
    reason = fields.Char(help="Why the command was given (shown in the log).")
    state = fields.Selection(
        STATES,
        default="queued",
        required=True,
        readonly=True,
        index=True,
        copy=False,
    )
    attempts = fields.Integer(readonly=True, copy=False)
    max_attempts = fields.Integer(
        default=lambda self: int(
            self.env["ir.config_parameter"]
            .sudo()
            .get_param("prepaid_metering.command_max_attempts", 3)
        )
    )
    next_attempt_at = fields.Datetime(readonly=True, copy=False)
    claimed_at = fields.Datetime(
        string="Sending Since",
        readonly=True,
        copy=False,
        help="When a worker took the command; a command still sending long after "
        "this is recovered by the recovery job.",
    )
    last_error = fields.Char(readonly=True, copy=False)
    result = fields.Char(readonly=True, copy=False)
    expected_count = fields.Integer(
        string="Expected Counter",
        readonly=True,
        copy=False,
        help="Counted record: the meter's counter once this record is applied "
        "(the counter before + 1). Saved before the record is written, so that "
        "after any crash the record is settled by reading the counter.",
    )
    readback = fields.Json(
        readonly=True, copy=False, help="Values read back after the command."
    )
    followup_pending = fields.Boolean(
        readonly=True,
        copy=False,
        index=True,
        help="The outcome is saved but not yet applied to the records that "
        "depend on it (switch state, wallet...).",
    )
    request_key = fields.Char(
        readonly=True,
        copy=False,
        help="Makes a repeated request (a double click) queue one command.",
    )
    requested_by = fields.Many2one(
        "res.users", default=lambda self: self.env.user, readonly=True, copy=False
    )
    requested_at = fields.Datetime(
        default=fields.Datetime.now, readonly=True, copy=False
    )
    done_at = fields.Datetime(readonly=True, copy=False)
    is_stuck = fields.Boolean(
        compute="_compute_is_stuck",
        help="Sending for longer than the timeout: the worker probably died.",
    )

    _sql_constraints = [
        (
            "request_key_unique",
            "UNIQUE (request_key)",
            "This request has already queued a command.",
        )
    ]

    @api.depends("params")
    def _compute_params_text(self):
        for command in self:
            command.params_text = ", ".join(
                f"{key} = {value}" for key, value in (command.params or {}).items()
            )

    @api.depends("state", "claimed_at")
    def _compute_is_stuck(self):
        limit = self._stuck_before()
        for command in self:
            command.is_stuck = bool(
                command.state == "sending"
                and command.claimed_at
                and command.claimed_at <= limit
            )

    @api.model
    def _stuck_before(self):
        """Commands sending since before this moment are stuck."""
        minutes = float(
            self.env["ir.config_parameter"]
            .sudo()
            .get_param("prepaid_metering.command_sending_timeout_min", 5)
        )
        return fields.Datetime.now() - timedelta(minutes=minutes)

    @api.model_create_multi
    def create(self, vals_list):
        if not self.env.su:
            for vals in vals_list:
                forbidden = {name for name in CREATE_FORBIDDEN_FIELDS if vals.get(name)}
                if vals.get("state", "queued") != "queued":
                    forbidden.add("state")
                if vals.get("requested_by", self.env.uid) != self.env.uid:
                    forbidden.add("requested_by")
                if forbidden:
                    raise AccessError(
                        self.env._(
                            "A new command starts queued; %s are set by sending it.",
                            ", ".join(sorted(forbidden)),
                        )
                    )
        self._check_create_rights(vals_list)
        new = self.env._("New")
        unnamed = [vals for vals in vals_list if vals.get("name", new) == new]
        for vals, name in zip(unnamed, self._next_names(len(unnamed)), strict=True):
            vals["name"] = name or new
        return super().create(vals_list)

    def write(self, vals):
        if not self.env.su and set(vals) - USER_WRITABLE_FIELDS:
            raise AccessError(
                self.env._(
                    "Meter commands change only through their buttons (Send Now, "
                    "Retry, Cancel); %s cannot be written.",
                    ", ".join(sorted(set(vals) - USER_WRITABLE_FIELDS)),
                )
            )
        return super().write(vals)

    def _write_internal(self, vals):
        """The command's own code paths: the only writers of its state."""
        return self.sudo().write(vals)

    @api.ondelete(at_uninstall=False)
    def _unlink_except_sending(self):
        if self.filtered(lambda c: c.state == "sending"):
            raise UserError(
                self.env._(
                    "A command being sent cannot be deleted; wait for its outcome "
                    "or for its recovery."
                )
            )

    def _check_create_rights(self, vals_list):
        """Refuse commands the user may not give (raises AccessError)."""
        if self.env.su:
            return
        for vals in vals_list:
            if vals.get(
                "command_type"
            ) == "record_write" and not self._user_may_write_records(vals):
                raise AccessError(self._record_write_denied_message())

    def _user_may_write_records(self, vals):
        """Counted records change what a meter holds: managers only here;
        modules that give the records a meaning decide who may."""
        return self.env.user.has_group("prepaid_metering.group_metering_manager")

    @api.model
    def _record_write_denied_message(self):
        return self.env._(
            "Only metering managers may write counted records (recharges, "
            "refunds) to a meter."
        )

    @api.model
    def _next_names(self, count):
        """``count`` command numbers: one statement for a whole batch (the
        cut-off of a thousand overdrawn tenants) when the sequence is a plain
        PostgreSQL sequence, else one ``next_by_code`` each."""
        if not count:
            return []
        Sequence = self.env["ir.sequence"].sudo()
        sequence = Sequence.search(
            [
                ("code", "=", "prepaid.meter.command"),
                ("company_id", "in", [self.env.company.id, False]),
            ],
            order="company_id",
            limit=1,
        )
        if sequence.implementation != "standard" or sequence.use_date_range:
            return [
                Sequence.next_by_code("prepaid.meter.command") for _i in range(count)
            ]
        self.env.cr.execute(
            "SELECT nextval(%s) FROM generate_series(1, %s)",
            [f"ir_sequence_{sequence.id:03d}", count],
        )
        return [sequence.get_next_char(number) for (number,) in self.env.cr.fetchall()]

    @api.constrains("command_type", "meter_id", "params", "max_attempts")
    def _check_command(self):
        for command in self:
            if command.max_attempts < 1:
                raise ValidationError(
                    self.env._("A command needs at least one attempt.")
                )
            meter = command.meter_id
            if command.command_type in SWITCH_COMMANDS:
                kind = SWITCH_COMMANDS[command.command_type][0]
                profile = meter.profile_ids._switch_profile()
                if profile.switch_kind != kind:
                    raise ValidationError(
                        self.env._(
                            "Meter %(meter)s has no %(kind)s to switch: choose a "
                            "command that fits its register profile.",
                            meter=meter.name,
                            kind=self.env._("relay")
                            if kind == "relay"
                            else self.env._("valve"),
                        )
                    )
            elif command.command_type == "write_params":
                command._writable_registers()
            elif command.command_type == "record_write":
                command._record_words()

    def _writable_registers(self):
        """Driver registers and values of a Write Parameters command."""
        self.ensure_one()
        params = self.params or {}
        if not isinstance(params, dict) or not params:
            raise ValidationError(
                self.env._(
                    "Write Parameters needs at least one register name and value."
                )
            )
        pairs = []
        for name, value in params.items():
            register = self.meter_id.profile_ids._find_register(name)
            if not register or "w" not in register.access:
                raise ValidationError(
                    self.env._(
                        "Meter %(meter)s has no writable register named %(name)s.",
                        meter=self.meter_id.name,
                        name=name,
                    )
                )
            try:
                register.encode_scaled(float(value))
            except (TypeError, ValueError) as err:
                raise ValidationError(
                    self.env._(
                        "Value %(value)s does not fit register %(name)s: %(err)s",
                        value=value,
                        name=name,
                        err=err,
                    )
                ) from err
            pairs.append((register, float(value)))
        return pairs

    def _record_registers(self):
        """{name: driver register} of a counted record on this meter."""
        profiles = self.meter_id.profile_ids
        registers = {
            name: profiles._find_register(name)
            for name in (RECORD_AMOUNT, RECORD_COUNT, RECORD_COUNTER)
        }
        for name, register in registers.items():
            if not register:
                raise ValidationError(
                    self.env._(
                        "Meter %(meter)s has no %(register)s register: it cannot "
                        "take counted records.",
                        meter=self.meter_id.name,
                        register=name,
                    )
                )
        registers[RECORD_READBACK_EXTRA] = profiles._find_register(
            RECORD_READBACK_EXTRA
        )
        return registers

    def _record_words(self, count=None):
        """(start address, words) of the record, numbered ``count``."""
        self.ensure_one()
        registers = self._record_registers()
        amount = (self.params or {}).get("amount")
        number = isinstance(amount, int | float) and not isinstance(amount, bool)
        if not number or not amount:
            raise ValidationError(
                self.env._("A counted record needs a non-zero amount.")
            )
        try:
            return codec.encode_record(
                [
                    (registers[RECORD_AMOUNT], float(amount)),
                    (registers[RECORD_COUNT], count or 1),
                ]
            )
        except ValueError as err:
            raise ValidationError(
                self.env._(
                    "Amount %(amount)s does not fit meter %(meter)s: %(err)s",
                    amount=amount,
                    meter=self.meter_id.name,
                    err=err,
                )
            ) from err

    # ------------------------------------------------------------------
    # User actions
    # ------------------------------------------------------------------
    def _trigger_processing(self):
        cron = self.env.ref(
            "prepaid_metering.ir_cron_meter_commands", raise_if_not_found=False
        )
        if cron:
            cron.sudo()._trigger()

    def action_send_now(self):
        """Send the selected queued commands at once, through the same claim
        as the command job (a command another worker holds is left to it).

        Counted records are sent in a transaction of their own: their expected
        counter is committed before the record is written.
        """
        self.check_access("write")
        todo = self.filtered(lambda c: c.state == "queued")
        if not todo:
            raise UserError(self.env._("Only queued commands can be sent."))
        records = todo.filtered(lambda c: c.command_type == "record_write")
        others = todo - records
        sent = self.browse()
        if others:
            sent = self._claim_queued(len(others), ids=others.ids)
            sent._mark_sending()
            sent._execute_claimed(commit=False)
        if records:
            sent |= self.browse(self._process_in_own_cursor(records.ids))
        if not sent:
            raise UserError(
                self.env._(
                    "These commands are being sent by another worker; their "
                    "outcome shows here in a moment."
                )
            )
        return True

    def _check_manage_rights(self):
        if not self.env.su and not self.env.user.has_group(
            "prepaid_metering.group_metering_manager"
        ):
            raise AccessError(
                self.env._("Only metering managers may cancel or retry commands.")
            )

    def action_cancel(self):
        """Cancel queued or failed commands (managers)."""
        self.check_access("write")
        self._check_manage_rights()
        if self.filtered(lambda c: c.state not in ("queued", "failed")):
            raise UserError(
                self.env._("Only queued or failed commands can be cancelled.")
            )
        self._write_internal({"state": "cancelled", "next_attempt_at": False})
        return True

    def action_retry(self):
        """Queue failed commands again, or recover stuck ones now (managers).

        A counted record keeps its expected counter: the retry settles it by
        reading the meter's counter and never writes a second record.
        """
        self.check_access("write")
        self._check_manage_rights()
        stuck = self.filtered("is_stuck")
        if (self - stuck).filtered(lambda c: c.state != "failed"):
            raise UserError(
                self.env._(
                    "Only failed commands, or commands stuck in sending for longer "
                    "than the timeout, can be retried."
                )
            )
        (self - stuck)._write_internal(
            {"state": "queued", "attempts": 0, "next_attempt_at": False}
        )
        if stuck:
            stuck._write_internal({"state": "queued", "attempts": 0})
        self._trigger_processing()
        return True

    # ------------------------------------------------------------------
    # Processing
    # ------------------------------------------------------------------
    @api.model
    def _claim_queued(self, limit, ids=None):
        """Lock up to ``limit`` sendable queued commands (SKIP LOCKED).

        With ``ids`` (Send Now) only those, whatever their retry time. A
        counted record waits for the older unsettled records of its meter: two
        records are never in flight on one meter.
        """
        self.env.flush_all()
        self.env.cr.execute(
            """
            SELECT c.id FROM prepaid_meter_command c
             WHERE c.state = 'queued'
               AND (%(ids)s::int4[] IS NOT NULL OR c.next_attempt_at IS NULL
                    OR c.next_attempt_at <= %(now)s)
               AND (%(ids)s::int4[] IS NULL OR c.id = ANY(%(ids)s::int4[]))
               AND NOT (c.command_type = 'record_write' AND EXISTS (
                   SELECT 1 FROM prepaid_meter_command o
                    WHERE o.meter_id = c.meter_id
                      AND o.command_type = 'record_write'
                      AND o.state IN ('queued', 'sending')
                      AND o.id < c.id))
             ORDER BY c.id
             LIMIT %(limit)s
               FOR UPDATE OF c SKIP LOCKED
            """,
            {"ids": ids, "now": fields.Datetime.now(), "limit": limit},
        )
        return self.browse([row[0] for row in self.env.cr.fetchall()])

    def _mark_sending(self):
        """Record the claim: state sending, one more attempt, since now."""
        if not self:
            return
        self.env.cr.execute(
            """
            UPDATE prepaid_meter_command
               SET state = 'sending', attempts = COALESCE(attempts, 0) + 1,
                   claimed_at = %s,
                   write_uid = %s, write_date = now() at time zone 'UTC'
             WHERE id = ANY(%s)
            """,
            (fields.Datetime.now(), self.env.uid, self.ids),
        )
        self.invalidate_recordset(["state", "attempts", "claimed_at"])

    @api.model
    def _cron_process(self, commit=None, limit=100):
        """Send queued commands; several workers never send the same one."""
        if commit is None:
            commit = not odoo_module.current_test
        if commit:
            start_read_committed(self.env.cr)
        commands = self._claim_queued(limit)
        commands._mark_sending()
        if commit:
            # Deliberate: make the claim visible and release the row locks
            # before talking to slow meters.
            self.env.cr.commit()  # pylint: disable=invalid-commit
        commands._execute_claimed(commit)
        return len(commands)

    @api.model
    def _process_in_own_cursor(self, ids):
        """Claim and send ``ids`` in a transaction of their own, committing
        as the command job does; returns the ids this worker sent (the others
        are queued for later or held by another worker)."""
        self.env.flush_all()
        registry = self.env.registry
        with registry.cursor() as cr:
            if not registry.in_test_mode():
                cr.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
            Command = self.with_env(self.env(cr=cr))
            claimed = Command._claim_queued(len(ids), ids=ids)
            claimed._mark_sending()
            # Deliberate: the claim is published before the meter is spoken to.
            cr.commit()  # pylint: disable=invalid-commit
            claimed._execute_claimed(commit=True)
            sent = claimed.ids
        self.env.invalidate_all()
        return sent

    @api.model
    def _create_in_own_cursor(self, vals):
        """Create a command and commit it at once, in a transaction of its
        own (outbox): whatever happens to the caller's transaction, the
        command exists. A ``request_key`` already used returns that command.
        Returns the command id."""
        key = vals.get("request_key")
        self.env.flush_all()
        registry = self.env.registry
        with registry.cursor() as cr:
            Command = self.with_env(self.env(cr=cr))
            existing = key and Command.search([("request_key", "=", key)], limit=1)
            if existing:
                return existing.id
            try:
                with cr.savepoint():
                    command = Command.create(vals)
            except psycopg2.errors.UniqueViolation:
                # Another click of the same request won the race.
                return Command.search([("request_key", "=", key)], limit=1).id
            command._trigger_processing()
            return command.id

    @api.model
    def _read_error(self, command_id):
        """The committed reason a command failed (read from a fresh
        transaction)."""
        with self.env.registry.cursor() as cr:
            cr.execute(
                "SELECT last_error FROM prepaid_meter_command WHERE id = %s",
                [command_id],
            )
            return cr.fetchone()[0]

    @api.model
    def _read_states(self, ids):
        """{id: state} as committed now (read from a fresh transaction)."""
        with self.env.registry.cursor() as cr:
            cr.execute(
                "SELECT id, state FROM prepaid_meter_command WHERE id = ANY(%s)",
                [list(ids)],
            )
            return dict(cr.fetchall())

    @api.model
    def _wait_settled(self, ids, timeout):
        """Wait up to ``timeout`` seconds until the commands are settled;
        returns their committed states."""
        deadline = time.monotonic() + timeout
        while True:
            states = self._read_states(ids)
            pending = [s for s in states.values() if s in ("queued", "sending")]
            if not pending or time.monotonic() >= deadline:
                return states
            time.sleep(0.25)

    def _execute_claimed(self, commit):
        """Send claimed commands one by one; each command's outcome is kept
        (committed when ``commit``) whatever happens to the next one."""
        for done, command in enumerate(self, start=1):
            command._execute_one(commit)
            if commit:
                # Deliberate: keep each command's outcome even if a later one
                # fails or the worker is killed.
                self.env.cr.commit()  # pylint: disable=invalid-commit
            self.env["ir.cron"]._notify_progress(done=done, remaining=len(self) - done)

    def _lock(self):
        """Hold this command's row while it is on the wire: the recovery job
        skips locked rows, so it never takes a command a live worker sends."""
        self.env.cr.execute(
            "SELECT id FROM prepaid_meter_command WHERE id = %s FOR UPDATE", [self.id]
        )

    def _execute_one(self, commit):
        """Send one claimed command and record the outcome.

        Any exception of this command (a value the codec refuses, a database
        error) fails this command with the reason; the savepoint keeps the
        transaction usable for the next one.
        """
        self.ensure_one()
        self._lock()
        try:
            if self.command_type == "record_write" and not self.expected_count:
                with self.env.cr.savepoint():
                    outcome = self._prepare_record()
                if outcome is None and commit:
                    # Deliberate (outbox): the expected counter is committed
                    # before the first byte of the record is written.
                    self.env.cr.commit()  # pylint: disable=invalid-commit
                    self._lock()
            else:
                outcome = None
            if outcome is None:
                with self.env.cr.savepoint():
                    outcome = self._send()
        except (UserError, ValidationError) as err:
            outcome = Outcome(False, str(err), final=True)
        except Exception as err:  # noqa: BLE001 - one command, not the queue
            _logger.exception("meter command %s failed unexpectedly", self.name)
            outcome = Outcome(
                False, self.env._("Unexpected error: %s", repr(err)), final=True
            )
        self._record_outcome(outcome)
        if commit:
            # Deliberate: the outcome is kept even if its follow-up fails.
            self.env.cr.commit()  # pylint: disable=invalid-commit
        self._run_followups()

    def _record_outcome(self, outcome):
        self.ensure_one()
        ok, message = outcome.ok, outcome.message
        if ok:
            self._write_internal(
                {
                    "state": "done",
                    "done_at": fields.Datetime.now(),
                    "result": message,
                    "last_error": False,
                    "followup_pending": True,
                }
            )
            return
        if not outcome.final and self.attempts < self.max_attempts:
            self._write_internal(
                {
                    "state": "queued",
                    "last_error": message,
                    "next_attempt_at": fields.Datetime.now() + RETRY_DELAY,
                }
            )
        else:
            self._write_internal(
                {"state": "failed", "last_error": message, "followup_pending": True}
            )

    def _run_followups(self):
        """Apply settled outcomes to what depends on them, each in a
        savepoint; a follow-up that fails stays pending for the recovery job."""
        for command in self.filtered("followup_pending"):
            try:
                with self.env.cr.savepoint():
                    command._on_command_settled()
                    command._write_internal({"followup_pending": False})
            except Exception as err:  # noqa: BLE001 - retried by the recovery job
                _logger.warning(
                    "follow-up of meter command %s failed: %s",
                    command.name,
                    err,
                    exc_info=True,
                )
                command._write_internal(
                    {"result": self.env._("Follow-up pending: %s", err)}
                )

    def _on_command_settled(self):
        """Hook: the command ended done or failed (called once per outcome,
        also after a crash). Modules override it to act on the outcome."""
        self.ensure_one()
        meter = self.meter_id
        if self.state == "failed":
            meter.sudo().message_post(
                body=self.env._(
                    "Command %(name)s failed: %(error)s",
                    name=self.name,
                    error=self.last_error,
                )
            )
            return
        if self.command_type in SWITCH_COMMANDS:
            supply_on = SWITCH_COMMANDS[self.command_type][1]
            meter.sudo().write({"switch_state": "on" if supply_on else "off"})
            # Built outside _(): babel cannot extract a call holding an f-string.
            reason = f": {self.reason}" if self.reason else ""
            meter.sudo().message_post(
                body=self.env._(
                    "%(command)s done (%(name)s)%(reason)s",
                    command=dict(COMMAND_TYPES)[self.command_type],
                    name=self.name,
                    reason=reason,
                )
            )

    # ------------------------------------------------------------------
    # Recovery
    # ------------------------------------------------------------------
    @api.model
    def _cron_recover(self, commit=None, limit=100):
        """Recover what dead workers left behind.

        Commands sending since before the timeout (and not held by a live
        worker) are sent again by their type's rule: a switch command reads
        back and resends if needed, a counted record is settled by the meter's
        counter. Outcomes whose follow-up never ran get it now.
        """
        if commit is None:
            commit = not odoo_module.current_test
        if commit:
            start_read_committed(self.env.cr)
        before = self._stuck_before()
        self.env.flush_all()
        self.env.cr.execute(
            """
            SELECT id FROM prepaid_meter_command
             WHERE state = 'sending' AND claimed_at <= %s
             ORDER BY id LIMIT %s
               FOR UPDATE SKIP LOCKED
            """,
            (before, limit),
        )
        stuck = self.browse([row[0] for row in self.env.cr.fetchall()])
        for command in stuck:
            _logger.info("recovering meter command %s left sending", command.name)
        stuck._mark_sending()
        self.env.cr.execute(
            """
            SELECT id FROM prepaid_meter_command
             WHERE followup_pending AND state IN ('done', 'failed')
               AND write_date <= %s
             ORDER BY id LIMIT %s
               FOR UPDATE SKIP LOCKED
            """,
            (before, limit),
        )
        orphans = self.browse([row[0] for row in self.env.cr.fetchall()])
        if commit:
            # Deliberate: publish the new claim before talking to meters.
            self.env.cr.commit()  # pylint: disable=invalid-commit
        stuck._execute_claimed(commit)
        for command in orphans:
            command._run_followups()
            if commit:
                self.env.cr.commit()  # pylint: disable=invalid-commit
        return len(stuck) + len(orphans)

    # ------------------------------------------------------------------
    # Talking to the meter
    # ------------------------------------------------------------------
    def _send(self):
        """Talk to the meter; return an :class:`Outcome`."""
        self.ensure_one()
        meter = self.meter_id
        endpoint = meter.gateway_id._driver_endpoint()
        if self.command_type == "read_now":
            result = modbus.read_now(
                endpoint, meter.device_id, meter.profile_ids._read_plan()
            )
            result.key = meter.id
            self.env["prepaid.reading"]._store_poll_results(
                [(meter.gateway_id, [result])]
            )
            return Outcome(
                result.ok,
                self.env._("Read %s values", len(result.values))
                if result.ok
                else result.error,
            )
        if self.command_type == "write_params":
            return self._send_params(endpoint)
        if self.command_type == "record_write":
            return self._settle_record(endpoint)
        return self._send_switch(endpoint)

    def _send_switch(self, endpoint):
        meter = self.meter_id
        profiles = meter.profile_ids
        profile = profiles._switch_profile()
        supply_on = SWITCH_COMMANDS[self.command_type][1]
        words = profile._parse_words(
            profile.switch_on_words if supply_on else profile.switch_off_words
        )
        verify = profiles._find_register(profile.state_register or "")
        if supply_on:
            mask, expected = profile.state_on_mask, profile.state_on_value
        else:
            mask, expected = profile.state_off_mask, profile.state_off_value
        result = modbus.execute_write(
            endpoint,
            meter.device_id,
            address=profile.switch_address,
            words=words,
            function=int(profile.switch_function),
            verify=verify,
            mask=mask,
            expected=expected,
            settle_timeout=profile.settle_timeout_s,
        )
        if not result.ok:
            return Outcome(False, result.error)
        if verify is None:
            return Outcome(
                True,
                self.env._("Written; this profile has no state register to verify."),
            )
        return Outcome(
            True,
            self.env._(
                "Verified: %(register)s = %(value)s",
                register=verify.name,
                value=(result.readback or {}).get(verify.name),
            ),
        )

    def _send_params(self, endpoint):
        meter = self.meter_id
        pairs = self._writable_registers()
        for register, value in pairs:
            result = modbus.execute_write(
                endpoint,
                meter.device_id,
                address=register.address,
                words=register.encode_scaled(value),
                function=16,
            )
            if not result.ok:
                return Outcome(
                    False,
                    self.env._(
                        "%(name)s: %(error)s", name=register.name, error=result.error
                    ),
                )
        readable = [r for r, _v in pairs if "r" in r.access]
        if not readable:
            return Outcome(
                True, self.env._("Written (write-only registers, not read back).")
            )
        check = modbus.read_now(endpoint, meter.device_id, codec.plan_reads(readable))
        if not check.ok:
            return Outcome(
                False, self.env._("Written but not read back: %s", check.error)
            )
        for register, value in pairs:
            got = check.values.get(register.name)
            if got is not None and abs(got - value) > abs(register.scale) / 2:
                return Outcome(
                    False,
                    self.env._(
                        "%(name)s reads %(got)s after writing %(value)s",
                        name=register.name,
                        got=got,
                        value=value,
                    ),
                )
        # Built outside _(): babel cannot extract a call holding an f-string.
        written = ", ".join(f"{r.name}={check.values.get(r.name)}" for r, _v in pairs)
        return Outcome(True, self.env._("Written and read back: %s", written))

    def _read_counter(self, endpoint):
        """Read the record counter (and the balance beside it) now."""
        registers = self._record_registers()
        wanted = [registers[RECORD_COUNTER]]
        if registers[RECORD_READBACK_EXTRA]:
            wanted.append(registers[RECORD_READBACK_EXTRA])
        return modbus.read_now(
            endpoint, self.meter_id.device_id, codec.plan_reads(wanted)
        )

    def _prepare_record(self):
        """Outbox step of a counted record: read the counter and save the
        count the record will carry. Returns an Outcome when it cannot (then
        nothing was written), None when the record is ready to send."""
        endpoint = self.meter_id.gateway_id._driver_endpoint()
        before = self._read_counter(endpoint)
        if not before.ok:
            return Outcome(
                False,
                self.env._("Counter not read, nothing written: %s", before.error),
            )
        self._record_words()
        self._write_internal({"expected_count": int(before.values[RECORD_COUNTER]) + 1})
        return None

    def _settle_record(self, endpoint):
        """Write the record at most once, by the counter rule.

        counter = expected: the meter already applied it (a lost reply, a
        crash): done, never written again. counter = expected - 1: write it
        and read back; the counter must move by exactly one. Anything else
        needs an operator.
        """
        expected = self.expected_count
        now = self._read_counter(endpoint)
        if not now.ok:
            return Outcome(
                False,
                self.env._(
                    "Counter not read (%s); the record is settled by reading it "
                    "again, never written twice.",
                    now.error,
                ),
            )
        counter = int(now.values[RECORD_COUNTER])
        if counter == expected:
            return self._record_applied(now, self.env._("already applied"))
        if counter != expected - 1:
            return self._counter_conflict(counter)
        start, words = self._record_words(expected)
        written = modbus.execute_write(
            endpoint, self.meter_id.device_id, address=start, words=words, function=16
        )
        after = self._read_counter(endpoint)
        if not after.ok:
            return Outcome(
                False,
                self.env._(
                    "Record sent (%(write)s) but the counter could not be read back "
                    "(%(read)s); the next attempt reads it again and never writes "
                    "twice.",
                    write=written.error or self.env._("accepted"),
                    read=after.error,
                ),
            )
        counter = int(after.values[RECORD_COUNTER])
        if counter == expected:
            return self._record_applied(after, self.env._("written"))
        if counter == expected - 1:
            refused = written.error_kind == modbus.EXCEPTION
            return Outcome(
                False,
                self.env._(
                    "The meter did not apply the record (%s); its counter did not "
                    "move.",
                    written.error or self.env._("no error"),
                ),
                final=refused,
            )
        return self._counter_conflict(counter)

    def _record_applied(self, read, how):
        values = {
            name: read.values[name]
            for name in (RECORD_COUNTER, RECORD_READBACK_EXTRA)
            if name in read.values
        }
        self._write_internal({"readback": values})
        return Outcome(
            True,
            self.env._(
                "Record %(count)s applied (%(how)s); meter %(values)s",
                count=self.expected_count,
                how=how,
                values=", ".join(f"{k} = {v}" for k, v in values.items()),
            ),
        )

    def _counter_conflict(self, counter):
        return Outcome(
            False,
            self.env._(
                "The meter's counter is %(counter)s where %(before)s (record not "
                "applied) or %(expected)s (applied) was expected: another record "
                "reached the meter. Check the meter before settling this one by "
                "hand.",
                counter=counter,
                before=self.expected_count - 1,
                expected=self.expected_count,
            ),
            final=True,
        )
