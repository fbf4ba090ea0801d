import logging
from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError
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
    last_error = fields.Char(readonly=True, copy=False)
    result = fields.Char(readonly=True, copy=False)
    requested_by = fields.Many2one(
        "res.users", default=lambda self: self.env.user, readonly=True
    )
    requested_at = fields.Datetime(default=fields.Datetime.now, readonly=True)
    done_at = fields.Datetime(readonly=True, copy=False)

    @api.depends("params")
    def _compute_params_text(self):
        for command in self:
            command.params_text = ", ".join(
                f"{key} = {value}" for key, value in (command.params or {}).items()
            )

    @api.model_create_multi
    def create(self, vals_list):
        new = self.env._("New")
        unnamed = [vals for vals in vals_list if vals.get("name", new) == new]
        for vals, name in zip(unnamed, self._next_names(len(unnamed)), strict=True):
            vals["name"] = name or new
        return super().create(vals_list)

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
        """Send the selected queued commands at once, in this request."""
        self.check_access("write")
        todo = self.filtered(lambda c: c.state == "queued")
        if not todo:
            raise UserError(self.env._("Only queued commands can be sent."))
        todo._execute()
        return True

    def action_cancel(self):
        self.check_access("write")
        if self.filtered(lambda c: c.state not in ("queued", "failed")):
            raise UserError(
                self.env._("Only queued or failed commands can be cancelled.")
            )
        self.write({"state": "cancelled"})
        return True

    def action_retry(self):
        self.check_access("write")
        if self.filtered(lambda c: c.state != "failed"):
            raise UserError(self.env._("Only failed commands can be retried."))
        self.write({"state": "queued", "attempts": 0, "next_attempt_at": False})
        self._trigger_processing()
        return True

    # ------------------------------------------------------------------
    # Processing
    # ------------------------------------------------------------------
    @api.model
    def _claim_queued(self, limit):
        self.env.flush_all()
        self.env.cr.execute(
            """
            SELECT id FROM prepaid_meter_command
             WHERE state = 'queued'
               AND (next_attempt_at IS NULL OR next_attempt_at <= %s)
             ORDER BY id
             LIMIT %s
               FOR UPDATE SKIP LOCKED
            """,
            (fields.Datetime.now(), limit),
        )
        return self.browse([row[0] for row in self.env.cr.fetchall()])

    @api.model
    def _cron_process(self, commit=None, limit=100):
        """Send queued commands; several workers never send the same one."""
        if commit is None:
            commit = not odoo_module.current_test
        if commit:
            start_read_committed(self.env.cr)
        commands = self._claim_queued(limit)
        commands.write({"state": "sending"})
        if commit:
            # Deliberate: make the claim visible and release the row locks
            # before talking to slow meters.
            self.env.cr.commit()  # pylint: disable=invalid-commit
        for done, command in enumerate(commands, start=1):
            command._execute()
            if commit:
                # Deliberate: keep each command's outcome even if a later one
                # fails or the cron is killed.
                self.env.cr.commit()  # pylint: disable=invalid-commit
            self.env["ir.cron"]._notify_progress(
                done=done, remaining=len(commands) - done
            )
        return len(commands)

    def _execute(self):
        for command in self:
            command.write({"state": "sending", "attempts": command.attempts + 1})
            try:
                ok, message = command._send()
            except (UserError, ValidationError) as err:
                ok, message = False, str(err)
            command._record_outcome(ok, message)

    def _record_outcome(self, ok, message):
        self.ensure_one()
        if ok:
            self.write(
                {
                    "state": "done",
                    "done_at": fields.Datetime.now(),
                    "result": message,
                    "last_error": False,
                }
            )
            self._apply_to_meter()
            return
        if self.attempts < self.max_attempts:
            self.write(
                {
                    "state": "queued",
                    "last_error": message,
                    "next_attempt_at": fields.Datetime.now() + RETRY_DELAY,
                }
            )
        else:
            self.write({"state": "failed", "last_error": message})
            self.meter_id.message_post(
                body=self.env._(
                    "Command %(name)s failed: %(error)s", name=self.name, error=message
                )
            )

    def _apply_to_meter(self):
        if self.command_type in SWITCH_COMMANDS:
            supply_on = SWITCH_COMMANDS[self.command_type][1]
            self.meter_id.sudo().write({"switch_state": "on" if supply_on else "off"})
            # Built outside _(): babel cannot extract a call holding an f-string.
            reason = f": {self.reason}" if self.reason else ""
            self.meter_id.message_post(
                body=self.env._(
                    "%(command)s done (%(name)s)%(reason)s",
                    command=dict(COMMAND_TYPES)[self.command_type],
                    name=self.name,
                    reason=reason,
                )
            )

    def _send(self):
        """Talk to the meter; return (ok, message)."""
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
            return result.ok, (
                self.env._("Read %s values", len(result.values))
                if result.ok
                else result.error
            )
        if self.command_type == "write_params":
            return self._send_params(endpoint)
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
            return False, result.error
        if verify is None:
            return True, self.env._(
                "Written; this profile has no state register to verify."
            )
        return True, self.env._(
            "Verified: %(register)s = %(value)s",
            register=verify.name,
            value=(result.readback or {}).get(verify.name),
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
                return False, self.env._(
                    "%(name)s: %(error)s", name=register.name, error=result.error
                )
        readable = [r for r, _v in pairs if "r" in r.access]
        if not readable:
            return True, self.env._("Written (write-only registers, not read back).")
        check = modbus.read_now(endpoint, meter.device_id, codec.plan_reads(readable))
        if not check.ok:
            return False, self.env._("Written but not read back: %s", check.error)
        for register, value in pairs:
            got = check.values.get(register.name)
            if got is not None and abs(got - value) > abs(register.scale) / 2:
                return False, self.env._(
                    "%(name)s reads %(got)s after writing %(value)s",
                    name=register.name,
                    got=got,
                    value=value,
                )
        # Built outside _(): babel cannot extract a call holding an f-string.
        written = ", ".join(f"{r.name}={check.values.get(r.name)}" for r, _v in pairs)
        return True, self.env._("Written and read back: %s", written)
