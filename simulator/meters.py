"""Simulated meters: pure state, register images and Modbus request handling.

Nothing here knows about sockets or pymodbus; :mod:`simulator.fleet` plugs a
meter into a pymodbus server. Values advance lazily from the simulated clock on
every access, so 10,000 idle meters cost nothing.
"""

from __future__ import annotations

import math
import random
import struct
import threading
import time
from collections.abc import Sequence

from .clock import SimClock, hour_of
from .faults import NO_REPLY, TAMPER_EVENTS, ModbusError, normalize

UINT32_WRAP = 1 << 32

#: Tariff bands in register order (0x0002 sharp, 0x0004 peak, 0x0006 flat,
#: 0x0008 valley).
BANDS = ("sharp", "peak", "flat", "valley")
SHARP, PEAK, FLAT, VALLEY = range(4)

#: Fixed time-of-use schedule by hour of the simulated day: valley 23-07,
#: peak 08-11 and 17-19, sharp 19-21, flat the rest (07-08, 11-17, 21-23).
TOU_SCHEDULE: tuple[int, ...] = (
    (VALLEY,) * 7
    + (FLAT,)
    + (PEAK,) * 3
    + (FLAT,) * 6
    + (PEAK,) * 2
    + (SHARP,) * 2
    + (FLAT,) * 2
    + (VALLEY,)
)

#: Split of an energy total over the bands when a meter has no history yet.
DEFAULT_BAND_SPLIT = (10, 25, 35, 30)

#: Daily load multipliers by hour; ``None``/"flat" means constant load.
# fmt: off
PROFILES: dict[str, tuple[float, ...]] = {
    "flat": (1.0,) * 24,
    "residential": (
        0.4, 0.3, 0.3, 0.3, 0.3, 0.4, 0.8, 1.4, 1.2, 0.8, 0.7, 0.8,
        1.0, 0.8, 0.7, 0.7, 0.9, 1.4, 1.9, 2.0, 1.8, 1.4, 0.9, 0.6,
    ),
    "commercial": (
        0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.4, 0.9, 1.6, 1.8, 1.8, 1.7,
        1.5, 1.7, 1.8, 1.8, 1.7, 1.4, 0.8, 0.5, 0.3, 0.2, 0.2, 0.2,
    ),
}
# fmt: on

# acrel_ddsy1352 addresses
ACREL_START, ACREL_COUNT = 0x0000, 17
REG_VOLTAGE, REG_CURRENT, REG_POWER, REG_PF = 0x000B, 0x000C, 0x000D, 0x0010
RELAY_CONTROL = 0x0057
RELAY_TRIP, RELAY_CLOSE = (0x0001, 0x0001), (0x0001, 0x0000)

# px_prepaid_v1 addresses
PREPAID_START, PREPAID_COUNT = 0x4000, 20
REG_RELAY_STATE, REG_STATUS, REG_BALANCE, REG_PURCHASE_COUNT = (
    0x4000,
    0x4001,
    0x4002,
    0x4004,
)
REG_UNIT_PRICE, REG_ALARM1, REG_ALARM2, REG_OVERDRAFT = 0x4006, 0x4008, 0x400A, 0x400C
REG_RECHARGE = 0x4010
#: project extension px_limit_v1: the load limit the meter keeps (UINT32, W)
REG_POWER_LIMIT = 0x400E
STATUS_RELAY_OPEN, STATUS_ALARM1, STATUS_ALARM2 = 0x01, 0x02, 0x04
STATUS_NO_CREDIT, STATUS_PREPAID_OPEN = 0x08, 0x10

# px_tamper_v1 addresses: reverse energy, phases B and C, event counters
TAMPER_START, TAMPER_COUNT = 0x4020, 9
PHASE_NAMES = ("a", "b", "c")

# valve_water_v1 addresses
WATER_START, WATER_COUNT = 0x0000, 29
REG_VOLUME, REG_VALVE = 0x0001, 0x001C
VALVE_OPEN_CMD, VALVE_CLOSE_CMD = 1, 2
VALVE_OPEN, VALVE_CLOSED, VALVE_ABNORMAL, VALVE_LOW_BATTERY = 0x01, 0x02, 0x04, 0x08

#: FLOAT32 loses whole litres above ~10^5 m³, so the simulated register wraps
#: there like a 5-digit mechanical counter.
VOLUME_WRAP_M3 = 100_000.0


def u32_regs(raw: int) -> list[int]:
    """Split an unsigned 32-bit raw value into two ABCD registers."""
    raw %= UINT32_WRAP
    return [raw >> 16, raw & 0xFFFF]


def i32_regs(raw: int) -> list[int]:
    """Split a signed 32-bit raw value into two ABCD registers."""
    return u32_regs(raw & 0xFFFFFFFF)


def regs_u32(high: int, low: int) -> int:
    """Join two ABCD registers into an unsigned 32-bit value."""
    return (high << 16) | low


def regs_i32(high: int, low: int) -> int:
    """Join two ABCD registers into a signed 32-bit value."""
    raw = regs_u32(high, low)
    return raw - UINT32_WRAP if raw & 0x80000000 else raw


def float32_dcba_regs(value: float) -> list[int]:
    """Encode a FLOAT32 in DCBA order (R1 high word, bytes swapped in each word)."""
    return list(struct.unpack(">HH", struct.pack("<f", value)))


def dcba_regs_float32(r0: int, r1: int) -> float:
    """Decode two DCBA registers into a float."""
    return struct.unpack("<f", struct.pack(">HH", r0, r1))[0]


def _cents(money: float) -> int:
    return math.floor(money * 100 + 0.5)


def _int16(value: int) -> int:
    return max(-32768, min(32767, value)) & 0xFFFF


def _uint16(value: int) -> int:
    return max(0, min(0xFFFF, value))


def _overlaps(start: int, end: int, reg: int, size: int) -> bool:
    return start < reg + size and reg < end


def _profile(profile: str | Sequence[float] | None) -> tuple[float, ...] | None:
    if profile is None or profile == "flat":
        return None
    if isinstance(profile, str):
        return PROFILES[profile]
    if len(profile) != 24:
        raise ValueError("a daily profile needs 24 hourly multipliers")
    return tuple(float(x) for x in profile)


class _Live:
    """A state field that brings the meter up to date before it is read or set.

    Without this, a test setting ``meter.balance`` would apply the new value to
    consumption that happened before the change.
    """

    def __init__(self, doc: str) -> None:
        self.__doc__ = doc

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = "_" + name

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        with obj.lock:
            obj._advance()
            return getattr(obj, self.slot)

    def __set__(self, obj, value) -> None:
        with obj.lock:
            obj._advance()
            setattr(obj, self.slot, value)


class Meter:
    """Common part of simulated meters: clock, lock, faults, request dispatch.

    Every public method takes :attr:`lock`, so tests may read or change a meter
    from the main thread while the fleet's server thread answers requests.
    """

    kind = "meter"

    def __init__(
        self,
        device_id: int,
        *,
        clock: SimClock | None = None,
        profile: str | Sequence[float] | None = None,
        serial: str | None = None,
        seed: int | None = None,
        faults: Sequence[dict] | None = None,
    ) -> None:
        """Set up the parts shared by every meter kind.

        ``faults`` schedules faults: ``{"name": ..., "after_s": ..., **params}``
        fires once, ``after_s`` simulated seconds after the meter was built.
        """
        if not 1 <= device_id <= 247:
            raise ValueError("device_id must be 1..247")
        self.device_id = device_id
        self.clock = clock or SimClock(speed=0)
        self.profile = _profile(profile)
        self.serial = serial
        self.lock = threading.RLock()
        self.faults: dict[str, dict] = {}
        self._rng = random.Random(device_id if seed is None else seed)
        self._last_t = self.clock.now()
        self._scheduled = sorted(
            (
                (self._last_t + float(f.get("after_s", 0.0)), _fault_key(f), f)
                for f in faults or ()
            ),
            key=lambda item: item[0],
        )
        # keys of the scheduled faults that fired (kept in the state file, so a
        # restarted simulator does not fire them again)
        self.fired: list[str] = []

    # -- faults ---------------------------------------------------------
    def inject(self, name: str, **params) -> None:
        """Inject a fault (see :mod:`simulator.faults` for names and params)."""
        name, params = normalize(name, params)
        with self.lock:
            self._advance()
            if name == "rollover":
                self._rollover(float(params.get("before", 1.0)))
            elif name == "replacement":
                self._replace(float(params.get("start", 0.0)), params)
            elif name == "step_back":
                self._step_back(float(params.get("amount", 1.0)))
            elif name == "jump":
                self._jump(float(params.get("amount", 100.0)))
            elif name in TAMPER_EVENTS:
                self._tamper_event(name, params)
            else:
                if name == "disappear" and params.get("seconds") is not None:
                    params = {**params, "until": time.monotonic() + params["seconds"]}
                if name == "exception":
                    params = {"code": int(params.get("code", 0x04))}
                self.faults[name] = params

    def clear_faults(self, name: str | None = None) -> None:
        """Remove one persistent fault, or all of them when ``name`` is None."""
        with self.lock:
            self._advance()
            if name is None:
                self.faults.clear()
            else:
                self.faults.pop(normalize(name, {})[0], None)
            self._faults_cleared()

    def fire_due_faults(self) -> None:
        """Inject the scheduled faults whose time has come (each once)."""
        if not self._scheduled:
            return
        with self.lock:
            now = self.clock.now()
            while self._scheduled and self._scheduled[0][0] <= now:
                _due, key, fault = self._scheduled.pop(0)
                self.fired.append(key)
                params = {
                    k: v for k, v in fault.items() if k not in ("name", "after_s")
                }
                self.inject(fault["name"], **params)

    # -- state file -------------------------------------------------------
    def state(self) -> dict:
        """The meter's changing state as JSON-friendly values (counters,
        money, relay/valve, fired scheduled faults), for :meth:`restore`."""
        with self.lock:
            self._advance()
            return {"kind": self.kind, "fired": list(self.fired), **self._state()}

    def restore(self, state: dict) -> None:
        """Take over a :meth:`state` saved earlier: the meter carries on from
        it now (the time in between used nothing)."""
        if state.get("kind") != self.kind:
            raise ValueError(
                f"device {self.device_id}: saved state is a {state.get('kind')}, "
                f"the spec a {self.kind}"
            )
        with self.lock:
            self._advance()
            self._restore(state)
            self.fired = list(state.get("fired", ()))
            self._scheduled = [s for s in self._scheduled if s[1] not in self.fired]
            self._last_t = self.clock.now()

    def reply_fault(self) -> str | int | None:
        """Return :data:`NO_REPLY`, an exception code, or None to answer normally."""
        if not self.faults:
            return None
        with self.lock:
            gone = self.faults.get("disappear")
            if gone is not None:
                if gone.get("until") is None or time.monotonic() < gone["until"]:
                    return NO_REPLY
                del self.faults["disappear"]
            lost = self.faults.get("timeout")
            if lost is not None and self._rng.random() < lost.get("probability", 1.0):
                return NO_REPLY
            exc = self.faults.get("exception")
            return exc["code"] if exc else None

    def corruption(self) -> str | None:
        """Return "garbage" or "bad_crc" when the response frame must be broken."""
        faults = self.faults
        if "garbage" in faults:
            return "garbage"
        if "bad_crc" in faults:
            return "bad_crc"
        return None

    # -- Modbus ---------------------------------------------------------
    def handle_request(
        self, function_code: int, address: int, count: int, values: Sequence[int] | None
    ) -> list[int] | None:
        """Serve one request; return read registers or None; raise ModbusError."""
        self.fire_due_faults()
        with self.lock:
            if function_code in (3, 4) and values is None:
                return self._read(address, count)
            if function_code in (6, 16) and values:
                self._advance()
                self._write(function_code, address, list(values))
                return None
            raise ModbusError(0x01, f"function code {function_code} not supported")

    def read_registers(self, address: int, count: int) -> list[int]:
        """Return ``count`` registers at ``address`` exactly as a client reads them."""
        self.fire_due_faults()
        with self.lock:
            return self._read(address, count)

    def write_registers(self, address: int, values: Sequence[int]) -> None:
        """Apply an FC16 write as if it came from a client (may raise ModbusError)."""
        self.handle_request(16, address, len(values), list(values))

    def register_image(self) -> dict[int, int]:
        """Return every readable register as ``{address: value}``."""
        self.fire_due_faults()
        with self.lock:
            self._advance()
            image: dict[int, int] = {}
            for start, build in self._blocks():
                for offset, value in enumerate(build()):
                    image[start + offset] = value
            return image

    def _read(self, address: int, count: int) -> list[int]:
        self._advance()
        end = address + count
        for start, build in self._blocks():
            if start <= address and end <= start + self._block_len(start):
                return build()[address - start : end - start]
        raise ModbusError(0x02, f"registers 0x{address:04X}+{count} not readable")

    def _factor(self, hour: int) -> float:
        return self.profile[hour] if self.profile else 1.0

    def _integrate(self, t_end: float, rate: float, use) -> None:
        """Feed ``use(amount, hour)`` hour by hour up to ``t_end`` at ``rate``/h.

        Splitting at hour boundaries keeps TOU bands and profiles exact even
        when a meter was not read for many simulated hours.
        """
        t = self._last_t
        if t_end <= t:
            return
        self._last_t = t_end
        if rate <= 0:
            return
        while t < t_end and self._flowing():
            seg_end = min(t_end, (t // 3600 + 1) * 3600)
            hour = hour_of(t)
            use(rate * self._factor(hour) * (seg_end - t) / 3600, hour)
            t = seg_end

    # hooks for subclasses
    def _advance(self) -> None:
        raise NotImplementedError

    def _flowing(self) -> bool:
        raise NotImplementedError

    def _blocks(self):
        raise NotImplementedError

    def _block_len(self, start: int) -> int:
        raise NotImplementedError

    def _write(self, function_code: int, address: int, values: list[int]) -> None:
        raise NotImplementedError

    def _rollover(self, before: float) -> None:
        raise NotImplementedError

    def _replace(self, start: float, params: dict) -> None:
        raise NotImplementedError

    def _step_back(self, amount: float) -> None:
        raise NotImplementedError

    def _jump(self, amount: float) -> None:
        raise NotImplementedError

    def _state(self) -> dict:
        raise NotImplementedError

    def _restore(self, state: dict) -> None:
        raise NotImplementedError

    def _faults_cleared(self) -> None:
        """Let a meter react when faults are removed (e.g. a freed relay)."""

    def _tamper_event(self, name: str, params: dict) -> None:
        """A one-shot tamper event (cover opened, meter cleared): electric
        meters count them; others have no such counter."""


class ElectricMeter(Meter):
    """Acrel DDSY1352/DTSY1352 (``acrel_ddsy1352``) plus ``px_prepaid_v1``."""

    kind = "electric_1p"

    balance = _Live("money left on the meter (negative = overdraft used)")
    unit_price = _Live("money per kWh for the meter-side deduction")
    alarm1_amount = _Live("status bit1 threshold")
    alarm2_amount = _Live("status bit2 threshold")
    overdraft_limit = _Live("relay opens when balance < -overdraft_limit")
    power_limit_kw = _Live("load limit written by the server (px_limit_v1)")
    load_kw = _Live("load in kW before the daily profile")
    voltage_v = _Live("phase A voltage")
    power_factor = _Live("power factor reported at 0x0010")
    purchase_count = _Live("accepted recharge/refund records")

    def __init__(
        self,
        device_id: int,
        *,
        kind: str = "electric_1p",
        clock: SimClock | None = None,
        energy_kwh: float = 0.0,
        load_kw: float = 0.5,
        profile: str | Sequence[float] | None = None,
        voltage_v: float = 230.0,
        power_factor: float = 0.95,
        balance: float = 0.0,
        unit_price: float = 0.8,
        alarm1_amount: float = 50.0,
        alarm2_amount: float = 20.0,
        overdraft_limit: float = 0.0,
        power_limit_kw: float = 0.0,
        purchase_count: int = 0,
        relay_open: bool = False,
        serial: str | None = None,
        seed: int | None = None,
        faults: Sequence[dict] | None = None,
    ) -> None:
        """Create an electric meter; money in currency units, energy in kWh."""
        if kind not in ("electric_1p", "electric_3p"):
            raise ValueError(f"unknown electric kind {kind!r}")
        super().__init__(
            device_id,
            clock=clock,
            profile=profile,
            serial=serial,
            seed=seed,
            faults=faults,
        )
        self.kind = kind
        self.phases = 3 if kind == "electric_3p" else 1
        self._load_kw = float(load_kw)
        self._voltage_v = float(voltage_v)
        self._power_factor = float(power_factor)
        self._balance = float(balance)
        self._unit_price = float(unit_price)
        self._alarm1_amount = float(alarm1_amount)
        self._alarm2_amount = float(alarm2_amount)
        self._overdraft_limit = float(overdraft_limit)
        self._power_limit_kw = float(power_limit_kw)
        self._purchase_count = int(purchase_count)
        self.last_record = (0, 0)
        # Band counters are whole 0.01 kWh pulses; the fraction not yet worth a
        # pulse waits in _residual, so total == sum of bands == floor(energy).
        self._raws = [0] * 4
        self._residual = 0.0
        self._reverse_raw = 0  # reverse energy, 0.01 kWh pulses
        self._reverse_residual = 0.0
        self._cover_count = 0
        self._terminal_count = 0
        self._clear_count = 0
        self._cmd_open = bool(relay_open)
        self._prepaid_open = False
        self._contact_open = bool(relay_open)
        self._set_total(energy_kwh)
        self._check_prepaid()

    # -- direct state API --------------------------------------------------
    @property
    def energy_total(self) -> float:
        """Total energy in kWh (sum of the four bands, not wrapped)."""
        with self.lock:
            self._advance()
            return sum(self._raws) / 100

    @energy_total.setter
    def energy_total(self, kwh: float) -> None:
        with self.lock:
            self._advance()
            self._set_total(kwh)

    @property
    def bands(self) -> dict[str, float]:
        """Energy per tariff band in kWh."""
        with self.lock:
            self._advance()
            return {n: r / 100 for n, r in zip(BANDS, self._raws, strict=True)}

    @property
    def relay_open(self) -> bool:
        """True when the contact is open (supply off), whatever opened it."""
        with self.lock:
            self._advance()
            return self._contact_open

    @relay_open.setter
    def relay_open(self, value: bool) -> None:
        with self.lock:
            self._advance()
            self._command_relay(bool(value))

    @property
    def prepaid_open(self) -> bool:
        """True when the prepaid logic wants the relay open (status bit4)."""
        with self.lock:
            self._advance()
            return self._prepaid_open

    def power_kw(self) -> float:
        """Present active power in kW (0 while the relay is open)."""
        with self.lock:
            self._advance()
            return self._power_kw()

    def consume(self, kwh: float) -> None:
        """Use ``kwh`` now, as the load would (deduction and relay logic apply)."""
        with self.lock:
            self._advance()
            if not self._contact_open:
                self._use(kwh, hour_of(self.clock.now()))

    def trip(self) -> None:
        """Open the relay as the 0x0057 trip command would."""
        self.write_registers(RELAY_CONTROL, RELAY_TRIP)

    def close(self) -> None:
        """Close the relay as the 0x0057 close command would."""
        self.write_registers(RELAY_CONTROL, RELAY_CLOSE)

    def recharge(self, amount: float, count: int | None = None) -> None:
        """Write a recharge record (``count`` defaults to purchase_count + 1)."""
        with self.lock:
            count = self._purchase_count + 1 if count is None else count
            self.write_registers(
                REG_RECHARGE, i32_regs(_cents(amount)) + u32_regs(count)
            )

    # -- simulation -----------------------------------------------------
    def _set_total(self, kwh: float) -> None:
        """Set the total exactly (in 0.01 kWh) keeping the band proportions."""
        total = max(0, math.floor(kwh * 100 + 0.5))
        weights = list(self._raws)
        if sum(weights) <= 0:
            weights = list(DEFAULT_BAND_SPLIT)
        wsum = sum(weights)
        raws = [total * w // wsum for w in weights]
        raws[weights.index(max(weights))] += total - sum(raws)
        self._raws = raws

    def _advance(self) -> None:
        start, now = self._last_t, self.clock.now()
        self._integrate(now, self._load_kw * self._metered_share(), self._use)
        reverse = self.faults.get("reverse_energy")
        if reverse is not None and now > start:
            self._reverse_residual += (
                float(reverse.get("kw", 0.5)) * (now - start) / 3600
            )
            pulses = math.floor(self._reverse_residual * 100 + 1e-7)
            self._reverse_residual -= pulses / 100
            self._reverse_raw += pulses

    def _flowing(self) -> bool:
        return not self._contact_open

    def _dead_phases(self) -> tuple[set[str], set[str]]:
        """Phases without voltage: (current still flows, nothing flows)."""
        live_current, no_current = set(), set()
        cut = self.faults.get("no_voltage")
        if cut is not None:
            live_current.add(str(cut.get("phase", "a")).lower())
        lost = self.faults.get("phase_loss")
        if lost is not None and self.phases == 3:
            no_current.add(str(lost.get("phase", "c")).lower())
        return live_current, no_current - live_current

    def _metered_share(self) -> float:
        """Share of the real load the meter measures: a phase without voltage
        measures no energy, a lost phase carries none; a theft load adds."""
        live_current, no_current = self._dead_phases()
        share = (self.phases - len(live_current) - len(no_current)) / self.phases
        theft = self.faults.get("theft_load")
        if theft is not None and self._load_kw > 0:
            share += float(theft.get("kw", 2.0)) / self._load_kw
        return max(share, 0.0)

    def _use(self, kwh: float, hour: int) -> None:
        if kwh <= 0 or self._contact_open:
            return
        price = self._unit_price
        if price > 0 and not self._prepaid_open:
            # Stop one cent past the threshold: the meter opens exactly when the
            # balance first goes below -overdraft_limit, not a whole segment later.
            headroom = self._balance + self._overdraft_limit + 0.01
            if kwh * price >= headroom:
                kwh = max(headroom / price, 0.0)
        self._residual += kwh
        pulses = math.floor(self._residual * 100 + 1e-7)
        if pulses > 0:
            self._residual -= pulses / 100
            self._raws[TOU_SCHEDULE[hour]] += pulses
        self._balance -= kwh * price
        self._check_prepaid()

    def _check_prepaid(self) -> None:
        if _cents(self._balance) < -_cents(self._overdraft_limit):
            self._prepaid_open = True
        self._sync_contact()

    def _sync_contact(self) -> None:
        if "stuck_relay" not in self.faults:
            self._contact_open = self._cmd_open or self._prepaid_open

    def _command_relay(self, open_: bool) -> None:
        self._cmd_open = open_
        self._sync_contact()

    def _faults_cleared(self) -> None:
        self._sync_contact()

    def _power_kw(self) -> float:
        if self._contact_open:
            return 0.0
        return (
            self._load_kw
            * self._metered_share()
            * self._factor(hour_of(self.clock.now()))
        )

    def _phase_values(self) -> dict[str, tuple[float, float]]:
        """(volts, amps) of each phase as the meter measures them."""
        live_current, no_current = self._dead_phases()
        volts = self._voltage_v
        theft = self.faults.get("theft_load")
        load = self._load_kw + (float(theft.get("kw", 2.0)) if theft else 0.0)
        power = 0.0
        if not self._contact_open:
            power = load * self._factor(hour_of(self.clock.now()))
        amps = 0.0
        if volts > 0 and self._power_factor > 0:
            amps = power * 1000 / (volts * self._power_factor * self.phases)
        values = {}
        for phase in PHASE_NAMES[: self.phases]:
            if phase in no_current:
                values[phase] = (0.0, 0.0)
            elif phase in live_current:
                values[phase] = (0.0, amps)
            else:
                values[phase] = (volts, amps)
        return values

    # -- registers ------------------------------------------------------
    def _blocks(self):
        return (
            (ACREL_START, self._acrel_block),
            (PREPAID_START, self._prepaid_block),
            (TAMPER_START, self._tamper_block),
        )

    def _block_len(self, start: int) -> int:
        return {ACREL_START: ACREL_COUNT, PREPAID_START: PREPAID_COUNT}.get(
            start, TAMPER_COUNT
        )

    def _tamper_block(self) -> list[int]:
        phases = self._phase_values()
        regs = u32_regs(self._reverse_raw)
        for phase in ("b", "c"):
            regs.append(_uint16(round(phases.get(phase, (0.0, 0.0))[0] * 10)))
        for phase in ("b", "c"):
            regs.append(_uint16(round(phases.get(phase, (0.0, 0.0))[1] * 100)))
        regs += [
            self._cover_count & 0xFFFF,
            self._terminal_count & 0xFFFF,
            self._clear_count & 0xFFFF,
        ]
        return regs

    def _acrel_block(self) -> list[int]:
        raws = self._raws
        power = self._power_kw()
        volts, amps = self._phase_values()["a"]
        regs = [0] * ACREL_COUNT
        regs[0:2] = u32_regs(sum(raws))
        for i, raw in enumerate(raws):
            regs[2 + 2 * i : 4 + 2 * i] = u32_regs(raw)
        regs[REG_VOLTAGE] = _uint16(round(volts * 10))
        regs[REG_CURRENT] = _uint16(round(amps * 100))
        regs[REG_POWER] = _int16(round(power * 1000))
        regs[REG_PF] = _int16(round(self._power_factor * 1000))
        return regs

    def status_bits(self) -> int:
        """Return the 0x4001 status word."""
        with self.lock:
            self._advance()
            balance = _cents(self._balance)
            bits = STATUS_RELAY_OPEN if self._contact_open else 0
            if balance < _cents(self._alarm1_amount):
                bits |= STATUS_ALARM1
            if balance < _cents(self._alarm2_amount):
                bits |= STATUS_ALARM2
            if balance <= 0:
                bits |= STATUS_NO_CREDIT
            if self._prepaid_open:
                bits |= STATUS_PREPAID_OPEN
            return bits

    def _prepaid_block(self) -> list[int]:
        return (
            [int(self._contact_open), self.status_bits()]
            + i32_regs(_cents(self._balance))
            + u32_regs(self._purchase_count)
            + u32_regs(round(self._unit_price * 10000))
            + u32_regs(_cents(self._alarm1_amount))
            + u32_regs(_cents(self._alarm2_amount))
            + u32_regs(_cents(self._overdraft_limit))
            + u32_regs(round(self._power_limit_kw * 1000))
            + i32_regs(self.last_record[0])
            + u32_regs(self.last_record[1])
        )

    _SETTINGS = {
        REG_UNIT_PRICE: ("unit_price", 10000),
        REG_ALARM1: ("alarm1_amount", 100),
        REG_ALARM2: ("alarm2_amount", 100),
        REG_OVERDRAFT: ("overdraft_limit", 100),
        REG_POWER_LIMIT: ("power_limit_kw", 1000),
    }

    def _write(self, function_code: int, address: int, values: list[int]) -> None:
        end = address + len(values)
        if address == RELAY_CONTROL and function_code == 16 and len(values) == 2:
            self._write_relay(values)
        elif address == REG_RECHARGE and function_code == 16 and len(values) == 4:
            self._write_recharge(values)
        elif REG_UNIT_PRICE <= address and end <= REG_POWER_LIMIT + 2:
            if (address - REG_UNIT_PRICE) % 2 or len(values) % 2:
                raise ModbusError(0x03, "a UINT32 setting must be written whole")
            for i in range(0, len(values), 2):
                name, scale = self._SETTINGS[address + i]
                setattr(self, "_" + name, regs_u32(values[i], values[i + 1]) / scale)
            self._check_prepaid()
        elif _overlaps(address, end, RELAY_CONTROL, 2) or _overlaps(
            address, end, REG_RECHARGE, 4
        ):
            raise ModbusError(0x03, "relay command / recharge record needs FC16, whole")
        else:
            raise ModbusError(0x02, f"0x{address:04X}+{len(values)} is not writable")

    def _write_relay(self, values: list[int]) -> None:
        command = tuple(values)
        if command == RELAY_TRIP:
            self._command_relay(True)
        elif command == RELAY_CLOSE:
            self._command_relay(False)
        else:
            raise ModbusError(0x03, f"unknown relay command {values}")

    def _write_recharge(self, values: list[int]) -> None:
        amount = regs_i32(values[0], values[1])
        count = regs_u32(values[2], values[3])
        if count != (self._purchase_count + 1) % UINT32_WRAP:
            raise ModbusError(
                0x03, f"record count {count} != {self._purchase_count + 1}"
            )
        if amount == 0:
            raise ModbusError(0x03, "empty recharge record")
        if amount < 0 and _cents(self._balance) + amount < 0:
            raise ModbusError(0x03, "refund would leave a negative balance")
        self._balance += amount / 100
        self._purchase_count = count
        self.last_record = (amount, count)
        if self._prepaid_open and _cents(self._balance) > 0:
            self._prepaid_open = False
            self._sync_contact()

    # -- one-shot faults ------------------------------------------------
    def _rollover(self, before: float) -> None:
        self._set_total(UINT32_WRAP / 100 - before)

    def _replace(self, start: float, params: dict) -> None:
        self._raws = [0] * 4
        self._set_total(start)
        if params.get("reset_prepaid"):
            self._balance = 0.0
            self._purchase_count = 0
            self.last_record = (0, 0)

    def _step_back(self, amount: float) -> None:
        total = sum(self._raws) / 100
        self._set_total(max(0.0, total - amount))

    def _jump(self, amount: float) -> None:
        self._set_total(sum(self._raws) / 100 + amount)

    def _tamper_event(self, name: str, params: dict) -> None:
        if name == "cover_open":
            self._cover_count += 1
        elif name == "terminal_cover_open":
            self._terminal_count += 1
        elif name == "meter_clear":
            self._clear_count += 1
            if params.get("reset_energy"):
                self._raws = [0] * 4
                self._residual = 0.0

    _STATE_FIELDS = (
        "balance",
        "unit_price",
        "alarm1_amount",
        "alarm2_amount",
        "overdraft_limit",
        "power_limit_kw",
        "purchase_count",
        "residual",
        "cmd_open",
        "prepaid_open",
        "contact_open",
    )
    _TAMPER_STATE = (
        "reverse_raw",
        "reverse_residual",
        "cover_count",
        "terminal_count",
        "clear_count",
    )

    def _state(self) -> dict:
        state = {
            name: getattr(self, "_" + name)
            for name in self._STATE_FIELDS + self._TAMPER_STATE
        }
        state["band_pulses"] = list(self._raws)
        state["last_record"] = list(self.last_record)
        return state

    def _restore(self, state: dict) -> None:
        for name in self._STATE_FIELDS:
            setattr(self, "_" + name, state[name])
        for name in self._TAMPER_STATE:  # state files older than the tamper block
            setattr(
                self, "_" + name, type(getattr(self, "_" + name))(state.get(name, 0))
            )
        self._raws = [int(r) for r in state["band_pulses"]]
        self.last_record = tuple(state["last_record"])


class WaterMeter(Meter):
    """Battery powered valve-controlled water meter (``valve_water_v1``)."""

    kind = "water"

    flow_m3h = _Live("flow in m³/h before the daily profile")

    def __init__(
        self,
        device_id: int,
        *,
        kind: str = "water",
        clock: SimClock | None = None,
        volume_m3: float = 0.0,
        flow_m3h: float = 0.05,
        profile: str | Sequence[float] | None = None,
        valve_open: bool = True,
        valve_delay: float = 2.0,
        low_battery: bool = False,
        serial: str | None = None,
        seed: int | None = None,
        faults: Sequence[dict] | None = None,
    ) -> None:
        """Create a water meter; a valve command completes after ``valve_delay`` s."""
        if kind != "water":
            raise ValueError(f"unknown water kind {kind!r}")
        super().__init__(
            device_id,
            clock=clock,
            profile=profile,
            serial=serial,
            seed=seed,
            faults=faults,
        )
        self.volume_m3 = float(volume_m3)
        self._flow_m3h = float(flow_m3h)
        self.valve_delay = float(valve_delay)
        self.low_battery = bool(low_battery)
        self.abnormal = False
        self._valve_open = bool(valve_open)
        self._pending: tuple[bool, float] | None = None

    @property
    def volume(self) -> float:
        """Cumulative volume in m³ (not wrapped)."""
        with self.lock:
            self._advance()
            return self.volume_m3

    @volume.setter
    def volume(self, m3: float) -> None:
        with self.lock:
            self._advance()
            self.volume_m3 = float(m3)

    @property
    def valve_open(self) -> bool:
        """True when the valve is (physically) open."""
        with self.lock:
            self._advance()
            return self._valve_open

    @valve_open.setter
    def valve_open(self, value: bool) -> None:
        with self.lock:
            self._advance()
            self._pending = None
            self._valve_open = bool(value)

    @property
    def valve_moving(self) -> bool:
        """True while a valve command is still being carried out."""
        with self.lock:
            self._advance()
            return self._pending is not None

    def consume(self, m3: float) -> None:
        """Let ``m3`` flow now (nothing flows while the valve is closed)."""
        with self.lock:
            self._advance()
            if self._valve_open:
                self.volume_m3 += m3

    def valve_status(self) -> int:
        """Return the 0x001C status word."""
        with self.lock:
            self._advance()
            bits = VALVE_OPEN if self._valve_open else VALVE_CLOSED
            if self.abnormal:
                bits |= VALVE_ABNORMAL
            if self.low_battery:
                bits |= VALVE_LOW_BATTERY
            return bits

    def _advance(self) -> None:
        if self._pending is not None and self._pending[1] <= time.monotonic():
            target, due = self._pending
            self._integrate(self.clock.at(due), self._flow_m3h, self._use)
            self._pending = None
            if "stuck_relay" in self.faults:
                self.abnormal = True
            else:
                self._valve_open = target
                self.abnormal = False
        self._integrate(self.clock.now(), self._flow_m3h, self._use)

    def _flowing(self) -> bool:
        return self._valve_open or "valve_leak" in self.faults

    def _use(self, m3: float, _hour: int) -> None:
        leak = self.faults.get("valve_leak")
        if leak is not None and not self._valve_open:
            m3 *= float(leak.get("flow_m3h", self._flow_m3h)) / (self._flow_m3h or 1.0)
        self.volume_m3 += m3

    def _blocks(self):
        return ((WATER_START, self._water_block),)

    def _block_len(self, start: int) -> int:
        return WATER_COUNT

    def _water_block(self) -> list[int]:
        regs = [0] * WATER_COUNT
        bad = self.faults.get("bad_float")
        regs[REG_VOLUME : REG_VOLUME + 2] = float32_dcba_regs(
            float(bad.get("value", "nan"))
            if bad is not None
            else self.volume_m3 % VOLUME_WRAP_M3
        )
        regs[REG_VALVE] = self.valve_status()
        return regs

    def _write(self, function_code: int, address: int, values: list[int]) -> None:
        if address != REG_VALVE or len(values) != 1:
            raise ModbusError(0x02, f"0x{address:04X}+{len(values)} is not writable")
        if values[0] not in (VALVE_OPEN_CMD, VALVE_CLOSE_CMD):
            raise ModbusError(0x03, f"unknown valve command {values[0]}")
        self._pending = (
            values[0] == VALVE_OPEN_CMD,
            time.monotonic() + self.valve_delay,
        )
        if self.valve_delay <= 0:
            self._advance()

    def _rollover(self, before: float) -> None:
        self.volume_m3 = VOLUME_WRAP_M3 - before

    def _replace(self, start: float, params: dict) -> None:
        self.volume_m3 = start

    def _step_back(self, amount: float) -> None:
        self.volume_m3 = max(0.0, self.volume_m3 - amount)

    def _jump(self, amount: float) -> None:
        self.volume_m3 += amount

    def _state(self) -> dict:
        # a valve still moving is saved where it is going
        target = self._pending[0] if self._pending else self._valve_open
        return {
            "volume_m3": self.volume_m3,
            "valve_open": target,
            "low_battery": self.low_battery,
            "abnormal": self.abnormal,
        }

    def _restore(self, state: dict) -> None:
        self.volume_m3 = float(state["volume_m3"])
        self._valve_open = bool(state["valve_open"])
        self._pending = None
        self.low_battery = bool(state["low_battery"])
        self.abnormal = bool(state["abnormal"])


def _fault_key(fault: dict) -> str:
    """Name of a scheduled fault in the state file: ``name@after_s``."""
    return f"{fault['name']}@{float(fault.get('after_s', 0.0)):g}"


METER_CLASSES: dict[str, type[Meter]] = {
    "electric_1p": ElectricMeter,
    "electric_3p": ElectricMeter,
    "water": WaterMeter,
}


def make_meter(spec: dict, clock: SimClock | None = None) -> Meter:
    """Build a meter from a spec dict (``kind``, ``device_id`` and initial values)."""
    spec = dict(spec)
    kind = spec.setdefault("kind", "electric_1p")
    if kind not in METER_CLASSES:
        raise ValueError(f"unknown meter kind {kind!r}; known: {sorted(METER_CLASSES)}")
    device_id = spec.pop("device_id")
    return METER_CLASSES[kind](device_id, clock=clock, **spec)
