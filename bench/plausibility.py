"""Plausibility benchmark: the cost of judging 1,000,000 readings.

Prints figures; it is not a timed test. Measures, for 10,000 meters x 100
readings five minutes apart (0.1 % of them spikes that the next reading
clears):

(0) the former counter step (``counters.classify`` before issue 8: the delta
    and its rollover/drop kind, no limit), which the storage ran anyway;
(a) the plain-Python rule, ``tools.plausibility.assess``, with the last
    accepted and pending suspect references kept like the storage does; the
    cost of the plausibility check is (a) - (0);
(b) with ``--db NAME`` (a database with ``prepaid_metering`` installed), the
    storage path's whole per-reading work in the model:
    ``prepaid.reading._judge`` + ``_state_after`` on the meter state dicts
    ``_store_poll_results`` uses (no SQL: it runs between the SELECT of the
    meters and the INSERT of the readings), next to (0b) the former model step
    (``_classify`` of commit d230094, with its counter step). (b) - (0b)
    overstates the extra cost a little: ``_state_after`` also does what the
    former row building did.

Each is run ``--repeat`` times (default 3) and the best time is shown: the
machine is shared. Both are compared with the billing of 1,000,000 readings by
one worker (14.6 s, issue 8) and the goal of under 10 % of it.

    PYTHONPATH=. python3 bench/plausibility.py [--db NAME] [--readings N]
        [--repeat N]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent
for _path in (REPO_ROOT / "addons" / "prepaid_metering", REPO_ROOT, BENCH_DIR):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from tools.plausibility import NORMAL, Reference, Rule, assess  # noqa: E402

BILLING_1M_S = 14.6
METERS = 10_000
START = datetime(2026, 3, 2)
STEP = timedelta(minutes=5)
WRAP = 42949672.96
MULTIPLIED = {"energy_total_kwh"}


def make_readings(total: int, seed: int = 8) -> list[tuple[int, float, datetime]]:
    """(meter index, counter value, read at), in storage order: one sweep of
    every meter after the other; up to 0.5 kWh per step (6 kW), 0.1 %
    spikes."""
    rng = random.Random(seed)
    meters = min(METERS, total)
    values = [rng.uniform(100.0, 50_000.0) for _i in range(meters)]
    readings = []
    at = START
    while len(readings) < total:
        at += STEP
        for meter in range(meters):
            values[meter] = round(values[meter] + rng.uniform(0.0, 0.5), 2)
            value = values[meter]
            if rng.random() < 0.001:
                value = round(value + 10_000.0, 2)
            readings.append((meter, value, at))
            if len(readings) == total:
                break
    return readings


@dataclass(frozen=True)
class FormerStep:
    """``counters.CounterStep`` before the plausibility rule."""

    kind: str
    delta: float


def former_classify(previous, current, wrap, replacement_max=10.0, digits=4):
    """``counters.classify`` before the plausibility rule (commit d230094)."""
    if previous is None:
        return FormerStep("normal", 0.0)
    if current >= previous:
        return FormerStep("normal", round(current - previous, digits))
    if wrap and previous >= wrap * 0.9 and current <= wrap * 0.1:
        return FormerStep("rollover", round(wrap - previous + current, digits))
    if current <= replacement_max:
        return FormerStep("replacement", round(current, digits))
    return FormerStep("lower", 0.0)


def run_former(readings) -> tuple[float, int]:
    """The former counter step on every reading; returns (seconds, lower)."""
    baseline: dict[int, float] = {}
    lower = 0
    started = time.perf_counter()
    for meter, value, _at in readings:
        if former_classify(baseline.get(meter), value, WRAP).kind == "lower":
            lower += 1
        else:
            baseline[meter] = value
    return time.perf_counter() - started, lower


def former_model_step(multiplier, previous_kwh, previous_m3, values, wraps):
    """``prepaid.reading._classify`` of commit d230094 (notes left out)."""
    result = {
        "delta_kwh": 0.0,
        "delta_m3": 0.0,
        "anomaly": "none",
        "anomaly_note": False,
    }
    for column, previous, delta_field, _unit in (
        ("energy_total_kwh", previous_kwh, "delta_kwh", "kWh"),
        ("volume_m3", previous_m3, "delta_m3", "m³"),
    ):
        current = values.get(column)
        if current is None:
            continue
        wrap = wraps.get(column)
        if wrap and column in MULTIPLIED:
            wrap *= multiplier
        step = former_classify(previous, current, wrap)
        result[delta_field] = step.delta
        if step.kind != "normal":
            result["anomaly"] = step.kind
    return result


def run_former_model(readings) -> tuple[float, int]:
    """The former model step on every reading; returns (seconds, lower)."""
    wraps = {"energy_total_kwh": WRAP}
    baseline: dict[int, float] = {}
    lower = 0
    started = time.perf_counter()
    for meter, value, _at in readings:
        values = {"energy_total_kwh": value, "voltage_v": 230.0}
        step = former_model_step(1.0, baseline.get(meter), None, values, wraps)
        if step["anomaly"] == "lower":
            lower += 1
        else:
            baseline[meter] = value
    return time.perf_counter() - started, lower


def run_rule(readings) -> tuple[float, int]:
    """Judge every reading with the plain rule; returns (seconds, suspects)."""
    rule = Rule(15.0, 1.5, WRAP)
    good: dict[int, float] = {}
    since: dict[int, datetime] = {}
    pending: dict[int, Reference] = {}
    suspects = 0
    started = time.perf_counter()
    for meter, value, at in readings:
        verdict = assess(
            value, at, good.get(meter), since.get(meter), rule, pending.get(meter)
        )
        if verdict.kind == NORMAL or not verdict.suspect:
            good[meter], since[meter] = value, at
            pending.pop(meter, None)
        else:
            suspects += 1
            pending[meter] = Reference(value, at)
    return time.perf_counter() - started, suspects


def best(runs: int, job) -> tuple[float, int]:
    """The fastest of ``runs`` runs of ``job()`` (seconds, suspects)."""
    return min(job() for _run in range(runs))


def run_model(registry, readings) -> tuple[float, int]:
    """The model's per-reading work of the storage path, on state dicts."""
    from poll import new_env

    with registry.cursor() as cr:
        Reading = new_env(cr)["prepaid.reading"]
        margin = Reading._plausibility_margin()
        wraps = {"energy_total_kwh": WRAP}
        states = {}
        for meter in {r[0] for r in readings}:
            states[meter] = {
                "id": meter,
                "multiplier": 1.0,
                "rated_power_kw": 15.0,
                "rated_flow_m3h": 0.0,
                "energy_baseline_kwh": None,
                "volume_baseline_m3": None,
                "baseline_at": None,
                "last_reading_at": None,
                "suspect_at": None,
                "suspect_kwh": None,
                "suspect_m3": None,
            }
        suspects = 0
        started = time.perf_counter()
        for meter, value, at in readings:
            state = states[meter]
            values = {"energy_total_kwh": value, "voltage_v": 230.0}
            judged = Reading._judge(state, values, at, wraps, margin)
            state.update(Reading._state_after(state, values, at, judged))
            if judged["review_state"]:
                suspects += 1
        return time.perf_counter() - started, suspects


def report(label: str, seconds: float, flagged: str, total: int) -> None:
    per_million = seconds * 1_000_000 / total
    share = per_million / BILLING_1M_S * 100
    print(
        f"{label:<44} {seconds:6.2f} s for {total:,} readings {flagged:<16} "
        f"= {per_million:5.2f} s per 1,000,000, {share:4.1f} % of billing "
        f"({BILLING_1M_S} s)"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readings", type=int, default=1_000_000)
    parser.add_argument("--db", help="also time the model's storage work")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    readings = make_readings(args.readings)
    former = best(args.repeat, lambda: run_former(readings))
    report(
        "(0) former counter step",
        former[0],
        f"({former[1]:,} lower)",
        args.readings,
    )
    rule = best(args.repeat, lambda: run_rule(readings))
    report(
        "(a) tools.plausibility.assess",
        rule[0],
        f"({rule[1]:,} suspect)",
        args.readings,
    )
    report("(a) - (0): the plausibility check", rule[0] - former[0], "", args.readings)
    if args.db:
        from poll import open_registry

        registry = open_registry(args.db)
        former_model = best(args.repeat, lambda: run_former_model(readings))
        report(
            "(0b) former model step (_classify)",
            former_model[0],
            f"({former_model[1]:,} lower)",
            args.readings,
        )
        seconds, suspects = best(args.repeat, lambda: run_model(registry, readings))
        report(
            "(b) prepaid.reading._judge + _state_after",
            seconds,
            f"({suspects:,} suspect)",
            args.readings,
        )
        report(
            "(b) - (0b): extra work of the storage path",
            seconds - former_model[0],
            "",
            args.readings,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
