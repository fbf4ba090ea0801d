from typing import NamedTuple

from odoo import models
from odoo.exceptions import ValidationError

from ..drivers import bus, codec, modbus
from ..tools import counted_record
from ..tools.constants import SWITCH_COMMANDS
from ..tools.counted_record import Verdict

#: Registers of a counted record (px_prepaid_v1 names): the record is the
#: signed amount plus its number, the counter says how many records the meter
#: applied; the optional balance is read back with it.
RECORD_AMOUNT, RECORD_COUNT, RECORD_COUNTER = (
    "recharge_amount",
    "recharge_count",
    "purchase_count",
)
RECORD_READBACK_EXTRA = "balance"


class Outcome(NamedTuple):
    """What one attempt at a command gave. ``final`` failures are not retried
    (the meter refused, or an operator must look)."""

    ok: bool
    message: str
    final: bool = False


class PrepaidMeterCommandWire(models.AbstractModel):
    """What a meter command puts on the wire and how it reads the outcome
    back: switch words, parameter registers, counted records (mixed into
    ``prepaid.meter.command``)."""

    _name = "prepaid.meter.command.wire"
    _description = "Meter Command: talking to the meter"

    def _check_modbus_only(self):
        """Parameter writes and counted records are Modbus features: DL/T 645
        cost-control writes need ESAM encryption (out of scope)."""
        if "dlt645" in self.meter_id.profile_ids.mapped("protocol"):
            raise ValidationError(
                self.env._(
                    "Meter %s speaks DL/T 645: parameter writes and meter-side "
                    "prepaid records are available on Modbus meters only.",
                    self.meter_id.name,
                )
            )

    def _writable_registers(self):
        """Driver registers and values of a Write Parameters command."""
        self.ensure_one()
        self._check_modbus_only()
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
        self._check_modbus_only()
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

    def _send(self):
        """Talk to the meter; return an :class:`Outcome`."""
        self.ensure_one()
        meter = self.meter_id
        endpoint = meter.gateway_id._driver_endpoint()
        if self.command_type == "read_now":
            poll = bus.meter_poll(
                endpoint,
                meter.id,
                meter.device_id,
                meter.address,
                meter.profile_ids._read_plan(with_slow=True),
            )
            result = bus.read_now(endpoint, poll)
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
        job = self._switch_job()
        return self._switch_outcome(job, bus.execute_job(endpoint, job))

    def _switch_job(self):
        """The driver's write of this relay or valve command (its words and
        the read-back that proves it), keyed by the command id."""
        self.ensure_one()
        meter = self.meter_id
        profiles = meter.profile_ids
        profile = profiles._switch_profile()
        if profile.protocol == "dlt645":
            return profile._relay_job(meter, self)
        supply_on = SWITCH_COMMANDS[self.command_type][1]
        words = profile._parse_words(
            profile.switch_on_words if supply_on else profile.switch_off_words
        )
        if supply_on:
            mask, expected = profile.state_on_mask, profile.state_on_value
        else:
            mask, expected = profile.state_off_mask, profile.state_off_value
        return modbus.WriteJob(
            key=self.id,
            device_id=meter.device_id,
            address=profile.switch_address,
            words=words,
            function=int(profile.switch_function),
            verify=profiles._find_register(profile.state_register or ""),
            mask=mask,
            expected=expected,
            settle_timeout=profile.settle_timeout_s,
        )

    def _switch_outcome(self, job, result):
        """The :class:`Outcome` of a switch write's driver result."""
        if not result.ok:
            return Outcome(False, result.error)
        verify = job.verify
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
        self._write_internal(
            {
                "expected_count": counted_record.expected_after(
                    before.values[RECORD_COUNTER]
                )
            }
        )
        return None

    def _settle_record(self, endpoint):
        """Write the record at most once, by the counter rule
        (:mod:`..tools.counted_record`): already applied, done without
        writing; one below, write it and read back; anything else needs an
        operator."""
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
        decision = counted_record.before_write(now.values[RECORD_COUNTER], expected)
        if decision.verdict is Verdict.ALREADY_APPLIED:
            return self._record_applied(now, self.env._("already applied"))
        if decision.verdict is Verdict.CONFLICT:
            return self._counter_conflict(decision.counter)
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
        decision = counted_record.after_write(
            after.values[RECORD_COUNTER], expected, written.exception_code
        )
        if decision.verdict is Verdict.APPLIED:
            return self._record_applied(after, self.env._("written"))
        if decision.verdict is Verdict.CONFLICT:
            return self._counter_conflict(decision.counter)
        return Outcome(
            False,
            self.env._(
                "The meter did not apply the record (%s); its counter did not move.",
                written.error or self.env._("no error"),
            ),
            final=decision.verdict.final,
        )

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
