"""A DL/T 645-2007 electric meter on the same physical model as the Modbus one.

:class:`DltMeter` is an :class:`~simulator.meters.ElectricMeter` (energy by
tariff band, load profile, relay, voltage, current, power) that also has a
12-digit address, a password and operator code for relay control and writes,
its own clock (set by broadcast time sync or a write) and event counters. It
answers plain request frames (:class:`~simulator.dlt645_frame.Frame`) with
plain reply frames; the gateway puts them on the wire.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timedelta

from . import dlt645_frame as f
from .clock import EPOCH
from .faults import NO_REPLY
from .meters import ElectricMeter

#: Event counter name -> data identifier (3-byte BCD count each).
EVENTS: dict[str, int] = {
    "cover_open": 0x03300D00,
    "terminal_cover_open": 0x03300E00,
    "voltage_loss": 0x03010000,
    "phase_loss": 0x03040000,
    "reverse_power": 0x030E0000,
    "meter_cleared": 0x03300100,
    "clock_set": 0x03300400,
}
EVENT_SIZE = 3

# status word 3 (04000503) bits
ST3_RELAY_OFF = 0x0010
ST3_RELAY_CMD_OFF = 0x0040
# status word 1 (04000501): active power direction reversed
ST1_REVERSE = 0x0010

#: Phase offsets of the B and C voltages of three-phase meters (volts).
PHASE_VOLT_OFFSET = (0.0, -0.4, 0.3)


class Reply:
    """What the meter says to one frame: a frame, silence, or an error."""

    __slots__ = ("control", "data")

    def __init__(self, control: int, data: bytes = b"") -> None:
        self.control = control
        self.data = data


def _error(request: int, bits: int) -> Reply:
    return Reply(request | f.ERROR, bytes((bits,)))


class DltMeter(ElectricMeter):
    """Electric meter speaking DL/T 645-2007 (plaintext password, no ESAM).

    Meter-side prepaid (recharge records) stays a Modbus feature: ``unit_price``
    defaults to 0 so the meter never deducts money by itself.
    """

    protocol = "dlt645"

    def __init__(
        self,
        device_id: int,
        *,
        address: str,
        password_level: int = 2,
        password: str = "123456",
        operator: str | None = "00000001",
        clock_offset_s: float = 0.0,
        events: dict[str, int] | None = None,
        reverse_kwh: float = 0.0,
        keep_power: bool = False,
        unit_price: float = 0.0,
        scheduled_events: list[dict] | None = None,
        **kwargs,
    ) -> None:
        """Create a meter; ``operator`` None accepts any operator code.

        ``scheduled_events`` (``{"counter": ..., "after_s": ..., "count": 1}``)
        raise event counters by themselves once, like scheduled ``faults``.
        """
        faults = list(kwargs.pop("faults", None) or ())
        faults += [{"name": "event", **e} for e in scheduled_events or ()]
        super().__init__(device_id, unit_price=unit_price, faults=faults, **kwargs)
        self.address = f.valid_address(address)
        self.address_raw = f.address_bytes(address)
        if not (len(str(password)) == 6 and str(password).isdigit()):
            raise ValueError("a DL/T 645 password has 6 digits")
        if operator is not None and not (len(operator) == 8 and operator.isdigit()):
            raise ValueError("a DL/T 645 operator code has 8 digits")
        if not 0 <= int(password_level) <= 9:
            raise ValueError("password level is 0..9")
        self.password_level = int(password_level)
        self.password = password
        self.operator = operator
        self.clock_offset_s = float(clock_offset_s)
        unknown = set(events or ()) - set(EVENTS)
        if unknown:
            raise ValueError(f"unknown event counters {sorted(unknown)}")
        self.events = {name: int((events or {}).get(name, 0)) for name in EVENTS}
        self.reverse_kwh = float(reverse_kwh)
        self.keep_power = bool(keep_power)
        self.close_allowed = False
        self.alarm = False
        self.last_operator: str | None = None
        self._readers = self._build_readers()

    # -- direct API ---------------------------------------------------------
    def meter_time(self) -> datetime:
        """The meter's own clock (simulated time plus its offset), to the second."""
        with self.lock:
            seconds = self.clock.now() + self.clock_offset_s
        return (EPOCH + timedelta(seconds=math.floor(seconds))).replace(microsecond=0)

    def set_meter_time(self, when: datetime) -> None:
        """Set the meter clock to ``when`` (the simulated clock runs on)."""
        with self.lock:
            self.clock_offset_s = (when - EPOCH).total_seconds() - self.clock.now()

    def raise_event(self, name: str, count: int = 1) -> int:
        """Add ``count`` to an event counter (see :data:`EVENTS`); return it."""
        if name not in EVENTS:
            raise ValueError(f"unknown event counter {name!r}; known: {sorted(EVENTS)}")
        with self.lock:
            self.events[name] += int(count)
            return self.events[name]

    def press_button(self) -> None:
        """The tenant presses the button after a 0x1B "close allowed"."""
        with self.lock:
            self._advance()
            if self.close_allowed:
                self.close_allowed = False
                self._command_relay(False)

    def inject(self, name: str, **params) -> None:
        """Meter faults, plus the one-shots ``event`` (``counter``, ``count``)
        and ``press_button`` usable in a spec's scheduled ``faults``."""
        if name == "event":
            counter = params.get("counter", "cover_open")
            self.raise_event(counter, params.get("count", 1))
        elif name == "press_button":
            self.press_button()
        else:
            super().inject(name, **params)

    # -- the protocol ---------------------------------------------------------
    def serve(self, frame: f.Frame) -> Reply | None:
        """Answer one request addressed to this meter; None = stay silent.

        Broadcast time sync never gets a reply; a meter with an ``exception``
        fault answers every other request with error bit 0 ("other").
        """
        self.fire_due_faults()
        fault = self.reply_fault()
        if fault == NO_REPLY:
            return None
        control = frame.control
        with self.lock:
            if control == f.BROADCAST_TIME:
                self._broadcast_time(frame.data)
                return None
            if fault is not None:
                return _error(control, f.ERR_OTHER)
            if control == f.READ:
                return self._read_di(frame.data)
            if control == f.READ_ADDRESS:
                return Reply(f.READ_ADDRESS | f.REPLY, self.address_raw)
            if control == f.RELAY:
                return self._relay(frame.data)
            if control == f.WRITE:
                return self._write_di(frame.data)
            if control == f.READ_NEXT:
                return _error(control, f.ERR_NO_DATA)
        return _error(control, f.ERR_OTHER)

    def error_for(self, di: int) -> int | None:
        """Error bits of a ``dlt_error`` fault that applies to ``di``."""
        fault = self.faults.get("dlt_error")
        if fault is None:
            return None
        dis = fault.get("di")
        if dis is not None:
            dis = [dis] if isinstance(dis, str | int) else dis
            if not any(_di_int(d) == di for d in dis):
                return None
        return int(fault.get("bits", f.ERR_NO_DATA))

    def _read_di(self, data: bytes) -> Reply:
        if len(data) < 4:
            return _error(f.READ, f.ERR_OTHER)
        di = f.di_of(data)
        bits = self.error_for(di)
        if bits is not None:
            return _error(f.READ, bits)
        reader = self._readers.get(di)
        if reader is None:
            return _error(f.READ, f.ERR_NO_DATA)
        self._advance()
        return Reply(f.READ | f.REPLY, data[:4] + reader())

    def _authorised(self, password: bytes, operator: bytes) -> bool:
        ok = password == f.password_bytes(self.password_level, self.password)
        if self.operator is not None:
            ok = ok and operator == f.operator_bytes(self.operator)
        if ok:
            try:
                self.last_operator = f"{f.from_bcd(operator):08d}"
            except f.FrameError:
                return False
        return ok

    def _relay(self, data: bytes) -> Reply:
        if len(data) != 16:
            return _error(f.RELAY, f.ERR_OTHER)
        if not self._authorised(data[0:4], data[4:8]):
            return _error(f.RELAY, f.ERR_PASSWORD)
        self._advance()
        n1 = data[8]
        if n1 == f.TRIP:
            if self.keep_power:
                return _error(f.RELAY, f.ERR_OTHER)
            self.close_allowed = False
            self._command_relay(True)
        elif n1 == f.CLOSE_ALLOWED:
            if self._cmd_open:
                self.close_allowed = True
        elif n1 == f.CLOSE_DIRECT:
            self.close_allowed = False
            self._command_relay(False)
        elif n1 in (f.ALARM_ON, f.ALARM_OFF):
            self.alarm = n1 == f.ALARM_ON
        elif n1 in (f.KEEP_POWER_ON, f.KEEP_POWER_OFF):
            self.keep_power = n1 == f.KEEP_POWER_ON
        else:
            return _error(f.RELAY, f.ERR_OTHER)
        return Reply(f.RELAY | f.REPLY)

    def _write_di(self, data: bytes) -> Reply:
        if len(data) < 12:
            return _error(f.WRITE, f.ERR_OTHER)
        di = f.di_of(data)
        if not self._authorised(data[4:8], data[8:12]):
            return _error(f.WRITE, f.ERR_PASSWORD)
        value = data[12:]
        now = self.meter_time()
        try:
            if di == 0x04000101 and len(value) == 4:
                # WW DD MM YY; the weekday is recomputed, as meters do
                day = datetime(
                    2000 + f.from_bcd(value[3:4]),
                    f.from_bcd(value[2:3]),
                    f.from_bcd(value[1:2]),
                )
                self.set_meter_time(datetime.combine(day.date(), now.time()))
            elif di == 0x04000102 and len(value) == 3:
                hh, mm, ss = (f.from_bcd(value[i : i + 1]) for i in (2, 1, 0))
                self.set_meter_time(now.replace(hour=hh, minute=mm, second=ss))
            else:
                return _error(f.WRITE, f.ERR_PASSWORD)
        except (f.FrameError, ValueError):
            return _error(f.WRITE, f.ERR_OTHER)
        self.events["clock_set"] += 1
        return Reply(f.WRITE | f.REPLY)

    def _broadcast_time(self, data: bytes) -> None:
        if len(data) != 6:
            return
        try:
            ss, mm, hh, dd, mo, yy = (f.from_bcd(data[i : i + 1]) for i in range(6))
            self.set_meter_time(datetime(2000 + yy, mo, dd, hh, mm, ss))
        except (f.FrameError, ValueError):
            return

    # -- values -------------------------------------------------------------------
    def _phase_values(self) -> tuple[list[float], list[float], float]:
        """Voltages, signed currents per phase and signed total power (kW)."""
        power = self._power_kw()
        volts = [
            max(0.0, self._voltage_v + PHASE_VOLT_OFFSET[p]) for p in range(self.phases)
        ]
        amps = []
        for v in volts:
            per_phase = power / self.phases
            pf = self._power_factor
            amps.append(per_phase * 1000 / (v * pf) if v > 0 and pf > 0 else 0.0)
        return volts, amps, power

    def _energy(self, band: int | None) -> bytes:
        raw = sum(self._raws) if band is None else self._raws[band]
        return f.bcd(raw, 4)

    def _voltage(self, phase: int) -> bytes:
        return f.bcd(round(self._phase_values()[0][phase] * 10), 2)

    def _current(self, phase: int) -> bytes:
        return f.bcd_signed(round(self._phase_values()[1][phase] * 1000), 3)

    def _power(self, phase: int | None) -> bytes:
        _v, _a, total = self._phase_values()
        kw = total if phase is None else total / self.phases
        return f.bcd_signed(round(kw * 10000), 3)

    def _status(self, word: int) -> bytes:
        bits = 0
        if word == 1 and self._power_kw() < 0:
            bits |= ST1_REVERSE
        if word == 3:
            if self._contact_open:
                bits |= ST3_RELAY_OFF
            if self._cmd_open and not self.close_allowed:
                bits |= ST3_RELAY_CMD_OFF
        return bits.to_bytes(2, "little")

    def _date(self) -> bytes:
        now = self.meter_time()
        week = (now.weekday() + 1) % 7  # the standard counts Sunday as 0
        return bytes(f.bcd(v, 1)[0] for v in (week, now.day, now.month, now.year % 100))

    def _time(self) -> bytes:
        now = self.meter_time()
        return bytes(f.bcd(v, 1)[0] for v in (now.second, now.minute, now.hour))

    def _build_readers(self) -> dict[int, Callable[[], bytes]]:
        phases = range(self.phases)
        readers: dict[int, Callable[[], bytes]] = {
            0x00000000: lambda: f.bcd(
                sum(self._raws) + math.floor(self.reverse_kwh * 100), 4
            ),
            0x00010000: lambda: self._energy(None),
            0x00020000: lambda: f.bcd(math.floor(self.reverse_kwh * 100), 4),
            0x0001FF00: lambda: b"".join(self._energy(b) for b in (None, 0, 1, 2, 3)),
            0x02030000: lambda: self._power(None),
            0x02060000: lambda: f.bcd_signed(round(self._power_factor * 1000), 2),
            0x02800002: lambda: f.bcd(5000, 2),
            0x04000101: self._date,
            0x04000102: self._time,
            0x04000401: lambda: self.address_raw,
            0x0400FF05: lambda: b"".join(self._status(w) for w in range(1, 8)),
            0x0201FF00: lambda: b"".join(self._voltage(p) for p in phases),
            0x0202FF00: lambda: b"".join(self._current(p) for p in phases),
        }
        for band in range(4):
            readers[0x00010100 + 0x100 * band] = lambda b=band: self._energy(b)
        for p in phases:
            readers[0x02010100 + 0x100 * p] = lambda p=p: self._voltage(p)
            readers[0x02020100 + 0x100 * p] = lambda p=p: self._current(p)
            if self.phases > 1:
                readers[0x02030100 + 0x100 * p] = lambda p=p: self._power(p)
        for word in range(1, 8):
            readers[0x04000500 + word] = lambda w=word: self._status(w)
        for name, di in EVENTS.items():
            readers[di] = lambda n=name: f.bcd(self.events[n], EVENT_SIZE)
        return readers

    def readable(self) -> list[int]:
        """The data identifiers this meter answers."""
        return sorted(self._readers)

    # -- state file -----------------------------------------------------------------
    def _state(self) -> dict:
        state = super()._state()
        state.update(
            clock_offset_s=self.clock_offset_s,
            events=dict(self.events),
            keep_power=self.keep_power,
            close_allowed=self.close_allowed,
            reverse_kwh=self.reverse_kwh,
        )
        return state

    def _restore(self, state: dict) -> None:
        super()._restore(state)
        self.clock_offset_s = float(state.get("clock_offset_s", 0.0))
        self.events.update(state.get("events", {}))
        self.keep_power = bool(state.get("keep_power", False))
        self.close_allowed = bool(state.get("close_allowed", False))
        self.reverse_kwh = float(state.get("reverse_kwh", 0.0))


def _di_int(di: str | int) -> int:
    return di if isinstance(di, int) else int(di, 16)


def make_dlt_meter(spec: dict, clock, index: int) -> DltMeter:
    """Build a DL/T 645 meter from a spec dict (``device_id`` defaults to the
    meter's 1-based position on its gateway)."""
    spec = dict(spec)
    kind = spec.get("kind", "electric_1p")
    if kind not in ("electric_1p", "electric_3p"):
        raise ValueError(f"a DL/T 645 meter is an electric meter, not {kind!r}")
    if "address" not in spec:
        raise ValueError("a DL/T 645 meter needs its 12-digit address")
    device_id = spec.pop("device_id", index + 1)
    return DltMeter(device_id, clock=clock, **spec)
