"""Tamper and theft signals worked out from two consecutive readings of a meter.

The store path finds the meters of a sweep that show something with one SQL
statement (:func:`sql_filter` gives its condition); :func:`signals` then
judges those few meters exactly and builds the evidence of each signal: the
raw register values and their times before and after, and the threshold.

Register names are those of the profiles: ``voltage``/``current`` (phase A,
``acrel_ddsy1352``), ``voltage_b``, ``voltage_c``, ``current_b``,
``current_c``, ``energy_reverse`` and the event counters
``cover_open_count``, ``terminal_cover_open_count``, ``clear_count``
(``px_tamper_v1``), ``volume_total`` (``valve_water_v1``). A meter whose
profiles lack a register simply never shows the signal that needs it.

Plain Python: no Odoo import.
"""

from __future__ import annotations

import json
import math
from typing import NamedTuple

PHASES = (
    ("a", "voltage", "current"),
    ("b", "voltage_b", "current_b"),
    ("c", "voltage_c", "current_c"),
)
#: event counter register -> event kind
COUNTERS = {
    "cover_open_count": "cover_opened",
    "terminal_cover_open_count": "terminal_cover_opened",
    "clear_count": "meter_cleared",
}

#: registers the checks read in a new reading, and those compared with the
#: meter's last values
NEW_NAMES = (
    "energy_reverse",
    *(name for _p, volts, amps in PHASES for name in (volts, amps)),
    *COUNTERS,
    "volume_total",
)
OLD_NAMES = ("energy_reverse", *COUNTERS)


class Thresholds(NamedTuple):
    """When a reading is a signal (settings of the metering app)."""

    reverse_kwh: float = 0.05  # reverse energy rise between two reads
    voltage_min_v: float = 50.0  # a phase below this has no voltage
    current_min_a: float = 0.5  # current that flows
    flow_m3: float = 0.005  # volume rise through a closed valve


class Signal(NamedTuple):
    kind: str
    source: str  # "counter" or "analysis"
    evidence: dict
    count_before: int = 0
    count_after: int = 0


def _num(values: dict | None, name: str) -> float | None:
    if not values:
        return None
    value = values.get(name)
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _evidence(names, old, new, old_at, new_at, **extra) -> dict:
    evidence = {"before_at": str(old_at) if old_at else None, "after_at": str(new_at)}
    for name in names:
        evidence[f"before_{name}"] = (old or {}).get(name)
        evidence[f"after_{name}"] = (new or {}).get(name)
    evidence.update(extra)
    return evidence


DEFAULT_THRESHOLDS = Thresholds()


def signals(
    meter_type: str,
    old: dict | None,
    new: dict,
    *,
    old_at=None,
    new_at=None,
    multiplier: float = 1.0,
    closed_before: bool = False,
    closed_after: bool = False,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> list[Signal]:
    """The signals shown by the reading ``new`` after ``old`` (decoded register
    values, before the CT ratio ``multiplier``); ``closed_*``: the valve
    reported closed at each read."""
    times = (old, new, old_at, new_at)
    multiplier = multiplier or 1.0
    return [
        *_reverse(times, multiplier, thresholds),
        *_phases(meter_type, times, multiplier, thresholds),
        *_counters(times),
        *(_flow(times, thresholds) if closed_before and closed_after else []),
    ]


def _reverse(times, multiplier, t):
    old, new = times[0], times[1]
    rev_old, rev_new = _num(old, "energy_reverse"), _num(new, "energy_reverse")
    if rev_old is None or rev_new is None:
        return []
    grown = round((rev_new - rev_old) * multiplier, 6)  # 0.3 - 0.1 is 0.2
    if grown < t.reverse_kwh:
        return []
    evidence = _evidence(
        ["energy_reverse"],
        *times,
        grown_kwh=grown,
        threshold_kwh=t.reverse_kwh,
    )
    return [Signal("reverse_energy", "analysis", evidence)]


def _phases(meter_type, times, multiplier, t):
    """Current without voltage (any meter), phase loss (three-phase)."""
    new = times[1]
    names = [n for _p, v, c in PHASES for n in (v, c)]
    dead, live = [], []
    for phase, vname, cname in PHASES:
        volts, amps = _num(new, vname), _num(new, cname)
        if volts is None:
            continue
        amps = (amps or 0.0) * multiplier
        if volts < t.voltage_min_v:
            dead.append((phase, amps))
        else:
            live.append(phase)
    found = []
    flowing = [p for p, amps in dead if amps >= t.current_min_a]
    if flowing:
        evidence = _evidence(
            names,
            *times,
            phases=",".join(flowing),
            threshold_v=t.voltage_min_v,
            threshold_a=t.current_min_a,
        )
        found.append(Signal("current_without_voltage", "analysis", evidence))
    lost = [p for p, amps in dead if amps < t.current_min_a]
    if meter_type == "electric_3p" and lost and live:
        evidence = _evidence(
            names, *times, phases=",".join(lost), threshold_v=t.voltage_min_v
        )
        found.append(Signal("phase_loss", "analysis", evidence))
    return found


def _counters(times):
    """The meter's own event counters that rose."""
    old, new = times[0], times[1]
    found = []
    for name, kind in COUNTERS.items():
        before, after = _num(old, name), _num(new, name)
        if before is not None and after is not None and after > before:
            evidence = _evidence([name], *times)
            found.append(Signal(kind, "counter", evidence, int(before), int(after)))
    return found


def _flow(times, t):
    """Water through a valve reported closed at both reads."""
    old, new = times[0], times[1]
    vol_old, vol_new = _num(old, "volume_total"), _num(new, "volume_total")
    if vol_old is None or vol_new is None:
        return []
    flowed = round(vol_new - vol_old, 6)
    if flowed < t.flow_m3:
        return []
    evidence = _evidence(
        ["volume_total", "valve"],
        *times,
        flowed_m3=flowed,
        threshold_m3=t.flow_m3,
    )
    return [Signal("flow_while_closed", "analysis", evidence)]


def master_loss(
    master_kwh: float, sub_kwh: dict, loss_pct: float, min_kwh: float
) -> float | None:
    """The loss in % of the master's use when it is above ``loss_pct`` (and the
    master used at least ``min_kwh``), else None. ``sub_kwh``: use of each
    sub-meter over the same window."""
    if master_kwh < max(min_kwh, 1e-9):
        return None
    loss = (master_kwh - sum(sub_kwh.values())) / master_kwh * 100.0
    return round(loss, 2) if loss > loss_pct else None


def pg_array(values) -> str:
    """A PostgreSQL array literal of ``values`` (numbers, None, booleans,
    plain strings), made by json.dumps: far cheaper than psycopg2 adapting
    each item, for the thousands of values of a sweep. NaN and infinities
    come out as PostgreSQL spells them."""
    text = json.dumps(values)
    return "{" + text[1:-1].replace("null", "NULL") + "}"
