"""Plausibility benchmark: the cost of judging 1,000,000 readings.

Prints figures; it is not a timed test. Measures, for 10,000 meters x 100
readings five minutes apart (0.1 % of them spikes that the next reading
clears):

(a) the plain-Python rule, ``tools.plausibility.assess``, with the last
    accepted and pending suspect references kept like the storage does;
(b) with ``--db NAME`` (a database with ``prepaid_metering`` installed), the
    storage path's whole per-reading work in the model:
    ``prepaid.reading._judge`` + ``_state_after`` on the meter state dicts
    ``_store_poll_results`` uses (no SQL: it runs between the SELECT of the
    meters and the INSERT of the readings).

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
from datetime import datetime, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent
for _path in (REPO_ROOT / "addons" / "prepaid_metering", REPO_ROOT, BENCH_DIR):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from tools.plausibility import Reference, Rule, assess  # noqa: E402

BILLING_1M_S = 14.6
METERS = 10_000
START = datetime(2026, 3, 2)
STEP = timedelta(minutes=5)
WRAP = 42949672.96


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


def run_rule(readings) -> tuple[float, int]:
    """Judge every reading with the plain rule; returns (seconds, suspects)."""
    rule = Rule(15.0, 1.5, WRAP)
    good: dict[int, Reference] = {}
    pending: dict[int, Reference] = {}
    suspects = 0
    started = time.perf_counter()
    for meter, value, at in readings:
        verdict = assess(value, at, good.get(meter), pending.get(meter), rule)
        if verdict.suspect:
            suspects += 1
            pending[meter] = Reference(value, at)
        else:
            good[meter] = Reference(value, at)
            pending.pop(meter, None)
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


def report(label: str, seconds: float, suspects: int, total: int) -> None:
    per_million = seconds * 1_000_000 / total
    share = per_million / BILLING_1M_S * 100
    print(
        f"{label:<44} {seconds:7.2f} s for {total:,} readings "
        f"({suspects:,} suspect) = {per_million:5.2f} s per 1,000,000, "
        f"{share:4.1f} % of billing ({BILLING_1M_S} s)"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readings", type=int, default=1_000_000)
    parser.add_argument("--db", help="also time the model's storage work")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    readings = make_readings(args.readings)
    report(
        "(a) tools.plausibility.assess",
        *best(args.repeat, lambda: run_rule(readings)),
        args.readings,
    )
    if args.db:
        from poll import open_registry

        registry = open_registry(args.db)
        report(
            "(b) prepaid.reading._judge + _state_after",
            *best(args.repeat, lambda: run_model(registry, readings)),
            args.readings,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
