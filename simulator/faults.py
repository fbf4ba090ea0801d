"""Fault catalogue: the faults of meter-protocols.md and how they are named here.

Persistent meter faults stay until :meth:`Meter.clear_faults`; one-shot faults
change the meter state once (the counter then carries on from the new value).

============== ========= ===================================================
name           kind      effect seen by a client
============== ========= ===================================================
timeout        persistent no reply (``probability`` < 1 drops only some)
disappear      persistent no reply until cleared or ``seconds`` elapsed
exception      persistent exception reply with ``code`` (default 0x04)
illegal_address persistent alias of ``exception`` with code 0x02
device_failure persistent alias of ``exception`` with code 0x04
garbage        persistent response replaced by random bytes of the same length
bad_crc        persistent RTU response with a broken CRC (last byte inverted)
stuck_relay    persistent relay / valve commands acknowledged but nothing moves
bad_float      persistent water meter's FLOAT32 volume reads ``value`` (default NaN;
                         "inf", "-inf" or a number), the counter goes on underneath
rollover       one-shot   energy/volume set ``before`` units below the UINT32 wrap
replacement    one-shot   counter restarts at ``start`` (default 0.5) like a new meter
step_back      one-shot   counter goes down by ``amount`` (default 1.0)
jump           one-shot   counter goes up by ``amount`` at once (default 100.0)
dlt_error      persistent DL/T 645 meter answers a read of ``di`` (one data
                         identifier, a list, or every one when absent) with
                         0xD1 and error ``bits`` (default 0x02 no data)
event          one-shot   DL/T 645 meter: event counter ``counter`` += ``count``
press_button   one-shot   DL/T 645 meter: the tenant closes a "close allowed" relay
stall          gateway    gateway accepts TCP and requests, never answers
-------------- --------- ---------------------------------------------------
tamper and theft faults (electric meters with the ``px_tamper_v1`` block at
0x4020, water meters with ``valve_water_v1``)
-------------- --------- ---------------------------------------------------
reverse_energy persistent reverse energy (0x4020) grows at ``kw`` (default 0.5)
no_voltage     persistent ``phase`` (default "a") reads 0 V while its current
                         still flows (voltage link cut / CT bypass): that
                         phase's energy is not measured; alias ``ct_bypass``
phase_loss     persistent three-phase meter: ``phase`` (default "c") has no
                         voltage and no current
cover_open     one-shot   meter cover opened: counter 0x4026 + 1
terminal_cover_open one-shot terminal cover opened: counter 0x4027 + 1
meter_clear    one-shot   meter cleared: counter 0x4028 + 1 (energy to 0 too
                         with ``reset_energy``)
valve_leak     persistent water still flows at ``flow_m3h`` (default the
                         meter's flow) while the valve is closed
theft_load     persistent an extra ``kw`` (default 2.0) through the meter: on
                         a master meter, a tap between it and its sub-meters
============== ========= ===================================================
"""

from __future__ import annotations

PERSISTENT_FAULTS = frozenset(
    {
        "timeout",
        "disappear",
        "exception",
        "garbage",
        "bad_crc",
        "stuck_relay",
        "bad_float",
        "dlt_error",
        "reverse_energy",
        "no_voltage",
        "phase_loss",
        "valve_leak",
        "theft_load",
    }
)
TAMPER_EVENTS = frozenset({"cover_open", "terminal_cover_open", "meter_clear"})
ONE_SHOT_FAULTS = (
    frozenset({"rollover", "replacement", "step_back", "jump"}) | TAMPER_EVENTS
)
GATEWAY_FAULTS = frozenset({"stall"})
ALIASES = {
    "illegal_address": ("exception", {"code": 0x02}),
    "device_failure": ("exception", {"code": 0x04}),
    "no_reply": ("timeout", {}),
    "stuck_valve": ("stuck_relay", {}),
    "crc": ("bad_crc", {}),
    "ct_bypass": ("no_voltage", {}),
    "current_without_voltage": ("no_voltage", {}),
}
METER_FAULTS = PERSISTENT_FAULTS | ONE_SHOT_FAULTS | frozenset(ALIASES)


class ModbusError(Exception):
    """A request the meter answers with a Modbus exception ``code``."""

    def __init__(self, code: int, reason: str = "") -> None:
        """Remember the Modbus exception code and a human reason."""
        super().__init__(f"exception 0x{code:02X}: {reason}")
        self.code = code


#: Marker returned by :meth:`Meter.reply_fault` when the meter must stay silent.
NO_REPLY = "no_reply"


def normalize(name: str, params: dict) -> tuple[str, dict]:
    """Resolve aliases and check the fault name; return ``(name, params)``."""
    if name in ALIASES:
        base, extra = ALIASES[name]
        return base, {**extra, **params}
    if name not in PERSISTENT_FAULTS | ONE_SHOT_FAULTS:
        raise ValueError(f"unknown meter fault {name!r}; known: {sorted(METER_FAULTS)}")
    return name, params
