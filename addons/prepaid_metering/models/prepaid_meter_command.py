from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError

from ..tools.constants import SWITCH_COMMANDS

COMMAND_TYPES = [
    ("relay_off", "Relay Off (cut supply)"),
    ("relay_on", "Relay On (restore supply)"),
    ("valve_close", "Valve Close"),
    ("valve_open", "Valve Open"),
    ("read_now", "Read Now"),
    ("write_params", "Write Parameters"),
    ("record_write", "Counted Record (recharge / refund)"),
]
STATES = [
    ("queued", "Queued"),
    ("sending", "Sending"),
    ("done", "Done"),
    ("failed", "Failed"),
    ("cancelled", "Cancelled"),
]
#: The bus notification of settled commands (read by static/src/live).
SETTLED_NOTIFICATION = "prepaid_metering/commands_settled"
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


class PrepaidMeterCommand(models.Model):
    """An order for one meter, sent through the driver and read back."""

    _name = "prepaid.meter.command"
    _inherit = [
        "prepaid.meter.command.wire",
        "prepaid.meter.command.queue",
        "prepaid.meter.command.recovery",
    ]
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

    # ------------------------------------------------------------------
    # User actions
    # ------------------------------------------------------------------
    def action_send_now(self):
        """Send the selected queued commands at once, through the same claims
        as the command job: a command another worker holds is left to it, a
        command whose bus is busy (being polled) stays queued for the job.

        Counted records are sent in a transaction of their own, first: their
        expected counter is committed before the record is written.
        """
        self.check_access("write")
        todo = self.filtered(lambda c: c.state == "queued")
        if not todo:
            raise UserError(self.env._("Only queued commands can be sent."))
        records = todo.filtered(lambda c: c.command_type == "record_write")
        others = todo - records
        sent, busy = self.browse(), self.env["prepaid.gateway"]
        if records:
            sent, busy = self._process_in_own_cursor(records.ids)
        if others:
            claim = self._claim_queued(len(others), ids=others.ids)
            claim.commands._execute_claimed(commit=False)
            sent, busy = sent | claim.commands, busy | claim.busy
        left = todo - sent
        if not left:
            return True
        message = left._not_sent_message(busy)
        if not sent:
            raise UserError(message)
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "message": message,
                "type": "warning",
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }

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

    def _on_command_settled(self):
        """The outcome of this one command (see ``_on_commands_settled``)."""
        self.ensure_one()
        self._on_commands_settled()

    def _on_commands_settled(self):
        """Hook: these commands ended done or failed (called once per outcome,
        also after a crash). Modules override it to act on the outcomes.

        Each outcome is a logged note on its meter (no follower notification:
        a batch task switches a thousand meters), written together; a switch
        that worked sets its meter's switch state.
        """
        notes, states = [], {}
        for command in self:
            meter = command.meter_id
            if command.state == "failed":
                body = self.env._(
                    "Command %(name)s failed: %(error)s",
                    name=command.name,
                    error=command.last_error,
                )
            elif command.command_type in SWITCH_COMMANDS:
                supply_on = SWITCH_COMMANDS[command.command_type][1]
                states[meter] = "on" if supply_on else "off"
                # Built outside _(): babel cannot extract a call holding an
                # f-string.
                reason = f": {command.reason}" if command.reason else ""
                body = self.env._(
                    "%(command)s done (%(name)s)%(reason)s",
                    command=dict(COMMAND_TYPES)[command.command_type],
                    name=command.name,
                    reason=reason,
                )
            else:
                continue
            notes.append((meter, body))
        Meter = self.env["prepaid.meter"].sudo()
        for state in ("on", "off"):
            meters = Meter.browse([m.id for m, s in states.items() if s == state])
            if meters:
                meters.write({"switch_state": state})
        # One note per meter and call: a meter with two outcomes here gets
        # its second note in a second round.
        rounds = []
        for meter, body in notes:
            free = next((r for r in rounds if meter.id not in r), None)
            if free is None:
                free = {}
                rounds.append(free)
            free[meter.id] = body
        for bodies in rounds:
            Meter.browse(list(bodies))._message_log_batch(bodies=bodies)
        self._notify_settled()

    def _notify_settled(self):
        """Tell the open screens (meter and room forms, the room board) that
        these commands' meters changed: the metering users' browsers reload
        them. Sent when the transaction commits, never for a rolled-back one."""
        meters = self.meter_id
        if not meters:
            return
        self.env.ref("prepaid_metering.group_metering_user")._bus_send(
            SETTLED_NOTIFICATION,
            {"meter_ids": meters.ids, "room_ids": meters.room_id.ids},
        )
