"""History benchmark: does the cost of the hot paths grow with history?

Prints figures; it is not a timed test and asserts nothing. For each history
length (``--short-days``, default 30, then ``--long-days``, default 1,095 =
3 years) the same bench meters get that much history at one reading every
``--interval-min`` (15) minutes, generated with set-based SQL
(``generate_series``, ids in time order as polling makes them): readings,
their charges (one per reading, as billing writes them), the daily aggregates
and the meters' billing watermarks. Then, ``--repeat`` times (median shown):

(sweep)   ``prepaid.reading._store_poll_results`` of one sweep (one reading
          per meter, the values a driver returns) in a transaction of its
          own: the database side of a poll sweep;
(billing) ``prepaid.billing.engine._cron_bill(commit=True)`` of those new
          readings: steady-state billing;
(report)  ``prepaid.monthly.report._rows`` of this month (all its shops);
(portal)  the portal usage page's data (``_portal_usage_series`` day and
          month and their charts) of one tenant.

Finally (unless ``--skip-purge``) the retention job removes what is older
than ``--retention-months`` (default 25) in pieces (timed, readings/s) and
the four figures are measured once more. ``--explain`` prints the plans
(``EXPLAIN ANALYZE``) of the statements on readings, charges and daily
aggregates of the first round (left out of the medians), ``--sql-top N`` the
N slowest statement kinds of each length.

Rows per meter are what history changes for these paths (each reads a
meter's newest readings by a per-meter index range, or a few days of
aggregates): the default fleet is 100 meters, 105,120 readings each over
3 years (10.5 M rows); ``--gateways/--meters`` scale the fleet.

    PYTHONPATH=. python3 bench/history.py [--db NAME] [--keep]
        [--gateways 10 --meters 10] [--long-days 1095] [--explain]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent
for _path in (REPO_ROOT, BENCH_DIR):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from billing import (  # noqa: E402
    FLAT_PRICE,
    TZ,
    SqlTimer,
    create_accounts,
    create_company,
    create_meters,
    create_tariff,
    open_balances,
    vacuum,
)
from poll import new_env, open_registry, run_in_database  # noqa: E402

MODULE = "prepaid_wechat"
STEP_KWH = 0.05  # what each meter uses between two bench sweeps
TABLES = [
    "prepaid_reading",
    "prepaid_reading_charge",
    "prepaid_daily_usage",
    "prepaid_meter",
    "prepaid_ledger_line",
]


@dataclass
class Bench:
    company_id: int
    meter_ids: list[int]
    account_ids: list[int]


# ---------------------------------------------------------------------------
# Fleet and history (SQL)
# ---------------------------------------------------------------------------
def build(registry, args, label: str) -> Bench:
    """A company of its own with ``--gateways`` x ``--meters`` meters, one
    shop (room) and one open, well-funded prepaid account per meter."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S") + f"-{label}"
    with registry.cursor() as cr:
        env = new_env(cr)
        env, cash = create_company(env, stamp)
        tariff = create_tariff(env, "flat")
        site = env["prepaid.site"].create(
            {"name": f"bench-history-{stamp}", "code": stamp, "tz": TZ}
        )
        meters = create_meters(env, site, f"BH{label}", args.gateways, args.meters)
        building = env["prepaid.building"].create(
            {"name": f"History {label}", "site_id": site.id}
        )
        floor = env["prepaid.floor"].create(
            {"name": "F1", "level": 1, "building_id": building.id}
        )
        rooms = env["prepaid.room"].create(
            [{"name": f"Shop {meter.name}", "floor_id": floor.id} for meter in meters]
        )
        for meter, room in zip(meters, rooms, strict=True):
            meter.room_id = room
        accounts = create_accounts(env, meters, tariff, f"History {label}")
        # Enough for years of use: billing never cuts anyone off here.
        open_balances(env, cash, accounts, dict.fromkeys(accounts.ids, 1_000_000.0))
        cr.commit()
        return Bench(env.company.id, meters.ids, accounts.ids)


def clear_history(cr, bench: Bench) -> None:
    """Remove the bench meters' readings, charges, days and wallet lines of
    consumption (SQL; the bench's own company only)."""
    ids = bench.meter_ids
    cr.execute(
        """UPDATE prepaid_meter SET
                  daily_reading_id = NULL, suspect_reading_id = NULL
            WHERE id = ANY(%s)""",
        [ids],
    )
    cr.execute("DELETE FROM prepaid_meter_billing WHERE meter_id = ANY(%s)", [ids])
    cr.execute(
        "DELETE FROM prepaid_ledger_line WHERE meter_id = ANY(%s) "
        "AND line_type = 'consumption'",
        [ids],
    )
    cr.execute("DELETE FROM prepaid_reading_charge WHERE meter_id = ANY(%s)", [ids])
    cr.execute("DELETE FROM prepaid_daily_usage WHERE meter_id = ANY(%s)", [ids])
    cr.execute("DELETE FROM prepaid_reading WHERE meter_id = ANY(%s)", [ids])


def generate_history(cr, bench: Bench, days: int, interval_min: int, end) -> int:
    """``days`` of readings every ``interval_min`` minutes per meter up to
    ``end`` (naive UTC), billed: charges, daily aggregates and watermarks."""
    per_meter = days * 1440 // interval_min
    ids = bench.meter_ids
    cr.execute("SELECT setseed(0.42)")
    cr.execute(
        """
        WITH base AS (
            SELECT m.id AS meter_id, m.room_id, m.company_id, n,
                   %(end)s::timestamp
                       - make_interval(mins => (%(n)s - n) * %(step)s) AS read_at,
                   round((0.01 + random() * 0.29)::numeric, 2) AS d
              FROM prepaid_meter m, generate_series(1, %(n)s) AS n
             WHERE m.id = ANY(%(ids)s)
        ), summed AS (
            SELECT b.*, 1000 + sum(d) OVER w AS total
              FROM base b
            WINDOW w AS (PARTITION BY meter_id ORDER BY n)
        )
        INSERT INTO prepaid_reading (
            meter_id, room_id, company_id, read_at, source, energy_total_kwh,
            energy_sharp_kwh, energy_peak_kwh, energy_flat_kwh, energy_valley_kwh,
            delta_kwh, delta_m3, anomaly, create_uid, write_uid, create_date,
            write_date)
        SELECT meter_id, room_id, company_id, read_at, 'poll', total, 0, 0, 0, 0,
               d, 0, 'none', 1, 1, read_at, read_at
          FROM summed ORDER BY n, meter_id
        """,
        {"n": per_meter, "ids": ids, "end": end, "step": interval_min},
    )
    count = cr.rowcount
    cr.execute(
        """
        INSERT INTO prepaid_reading_charge (id, meter_id, quantity, amount)
        SELECT id, meter_id, delta_kwh, round(delta_kwh * %s, 2)
          FROM prepaid_reading WHERE meter_id = ANY(%s)
        """,
        [FLAT_PRICE, ids],
    )
    cr.execute(
        """
        INSERT INTO prepaid_daily_usage (
            meter_id, room_id, floor_id, building_id, site_id, company_id,
            account_id, partner_id, utility, date, energy_kwh, amount,
            charge_count, first_energy_kwh, last_energy_kwh, first_read_at,
            last_read_at, volume_m3, sharp_kwh, peak_kwh, flat_kwh, valley_kwh)
        SELECT m.id, m.room_id, rm.floor_id, fl.building_id, m.site_id,
               m.company_id, a.id, a.partner_id, 'electricity', d.day, d.kwh,
               d.amount, d.n, d.first_kwh, d.last_kwh, d.first_at, d.last_at,
               0, 0, 0, 0, 0
          FROM (SELECT r.meter_id,
                       (r.read_at AT TIME ZONE 'UTC' AT TIME ZONE %s)::date AS day,
                       sum(r.delta_kwh) AS kwh,
                       sum(round(r.delta_kwh * %s, 2)) AS amount, count(*) AS n,
                       min(r.energy_total_kwh) AS first_kwh,
                       max(r.energy_total_kwh) AS last_kwh,
                       min(r.read_at) AS first_at, max(r.read_at) AS last_at
                  FROM prepaid_reading r WHERE r.meter_id = ANY(%s)
                 GROUP BY 1, 2) d
          JOIN prepaid_meter m ON m.id = d.meter_id
          LEFT JOIN prepaid_room rm ON rm.id = m.room_id
          LEFT JOIN prepaid_floor fl ON fl.id = rm.floor_id
          JOIN prepaid_account a ON a.id = m.billing_account_id
        """,
        [TZ, FLAT_PRICE, ids],
    )
    cr.execute(
        """
        UPDATE prepaid_meter m
           SET energy_total_kwh = r.energy_total_kwh,
               energy_baseline_kwh = r.energy_total_kwh, baseline_at = r.read_at,
               state = 'online'
          FROM (SELECT DISTINCT ON (meter_id) id, meter_id, energy_total_kwh,
                       read_at
                  FROM prepaid_reading WHERE meter_id = ANY(%s)
                 ORDER BY meter_id, id DESC) r
         WHERE m.id = r.meter_id
        """,
        [ids],
    )
    # billed up to each meter's last reading (prepaid_meter_billing)
    cr.execute(
        """
        INSERT INTO prepaid_meter_billing (meter_id, billed_reading_id, bill_carry)
        SELECT meter_id, max(id), 0 FROM prepaid_reading
         WHERE meter_id = ANY(%s) GROUP BY meter_id
        ON CONFLICT (meter_id) DO UPDATE
           SET billed_reading_id = EXCLUDED.billed_reading_id, bill_carry = 0
        """,
        [ids],
    )
    return count


# ---------------------------------------------------------------------------
# The four measured paths
# ---------------------------------------------------------------------------
def sweep_results(env, bench: Bench):
    """One sweep's worth of driver results: every meter read, STEP_KWH up."""
    from odoo.addons.prepaid_metering.drivers.modbus import PollResult

    meters = env["prepaid.meter"].browse(bench.meter_ids)
    by_gateway = {}
    for meter in meters:
        value = round(meter.energy_total_kwh + STEP_KWH, 2)
        by_gateway.setdefault(meter.gateway_id, []).append(
            PollResult(
                key=meter.id,
                device_id=meter.device_id,
                ok=True,
                values={"energy_total": value, "voltage": 230.0, "current": 1.0},
            )
        )
    return list(by_gateway.items())


def measure(registry, bench: Bench) -> dict[str, float]:
    """One round of the four paths, each in a transaction of its own."""
    times = {}
    with registry.cursor() as cr:
        env = new_env(cr)
        results = sweep_results(env, bench)
        cr.commit()
        started = time.perf_counter()
        env["prepaid.reading"]._store_poll_results(results)
        cr.commit()
        times["sweep"] = time.perf_counter() - started
    with registry.cursor() as cr:
        env = new_env(cr)
        meters = env["prepaid.meter"].browse(bench.meter_ids)
        started = time.perf_counter()
        charged = env["prepaid.billing.engine"]._cron_bill(commit=True, meters=meters)
        times["billing"] = time.perf_counter() - started
        if charged != len(bench.meter_ids):
            print(f"  ! billed {charged} readings, expected {len(bench.meter_ids)}")
        cr.commit()
    from odoo import fields

    with registry.cursor() as cr:
        env = new_env(cr)
        env = env(context=dict(env.context, allowed_company_ids=[bench.company_id]))
        company = env["res.company"].browse(bench.company_id)
        # this month: both history lengths cover it from its first day on
        month = fields.Date.context_today(env["prepaid.account"]).replace(day=1)
        started = time.perf_counter()
        env["prepaid.monthly.report"]._rows(company, month)
        times["report"] = time.perf_counter() - started
        account = env["prepaid.account"].browse(bench.account_ids[0])
        env.invalidate_all()
        started = time.perf_counter()
        daily = account._portal_usage_series("day")
        monthly = account._portal_usage_series("month")
        account._portal_usage_charts(daily, label_every=7)
        account._portal_usage_charts(monthly)
        times["portal"] = time.perf_counter() - started
        cr.rollback()
    return times


class Capture:
    """Plans (``EXPLAIN ANALYZE``, run just before the statement itself, in
    a savepoint) of the statements on readings, charges and daily aggregates
    while active, once per statement text."""

    WATCH = ("prepaid_reading", "prepaid_daily_usage")

    def __init__(self, lines: int):
        from odoo import sql_db
        from odoo.tools import SQL

        self.lines = lines
        self.active = False
        self.label = ""
        self.plans = {}
        capture = self
        orig = sql_db.Cursor.execute

        def execute(cr, query, params=None, log_exceptions=True):
            text = query.code if isinstance(query, SQL) else str(query)
            if (
                capture.active
                and (capture.label, text) not in capture.plans
                and any(name in text for name in capture.WATCH)
                and text.lstrip().upper().startswith(("SELECT", "WITH"))
            ):
                # (the EXPLAIN itself passes here)
                capture.plans[capture.label, text] = None
                explain = (
                    SQL("EXPLAIN (ANALYZE, BUFFERS) %s", query)
                    if isinstance(query, SQL)
                    else f"EXPLAIN (ANALYZE, BUFFERS) {query}"
                )
                orig(cr, "SAVEPOINT bench_explain")
                try:
                    orig(cr, explain, None if isinstance(query, SQL) else params)
                    plan = [row[0] for row in cr.fetchall()]
                    capture.plans[capture.label, text] = plan
                finally:
                    orig(cr, "ROLLBACK TO SAVEPOINT bench_explain")
            return orig(cr, query, params, log_exceptions)

        sql_db.Cursor.execute = execute

    def print(self) -> None:
        print("\nplans (EXPLAIN ANALYZE) of the first round measured:")
        for (label, text), plan in self.plans.items():
            print(f"\n  [{label}] " + " ".join(text.split())[:200])
            for line in (plan or [])[: self.lines]:
                print(f"    {line}")
        self.plans.clear()


def phase(registry, benches, args, capture=None, timer=None):
    """``--repeat`` rounds of each bench, interleaved (the machine's speed
    drifts: both see the same drift); medians of rounds 2.. by bench."""
    rounds = {label: [] for label in benches}
    for index in range(args.repeat):
        for label, bench in benches.items():
            if capture is not None:
                capture.active = index == 0  # (the round left out)
                capture.label = label
            if timer is not None:
                timer.active = index > 0
                timer.label = label
            rounds[label].append(measure(registry, bench))
    if capture is not None:
        capture.active = False
    medians = {}
    for label, runs in rounds.items():
        kept = runs[1:] or runs
        medians[label] = {
            key: statistics.median(r[key] for r in kept) for key in runs[0]
        }
        print(
            f"  {label:<24}"
            + "".join(
                f" {key} {value * 1000:8.1f} ms"
                for key, value in medians[label].items()
            ),
            flush=True,
        )
    if timer is not None:
        timer.active = False
        timer.print(args.sql_top, "these rounds (2..)")
        timer.reset()
    return medians


def load(registry, bench: Bench, days: int, args, end) -> tuple[int, float]:
    """Replace ``bench``'s history by ``days`` of it (and VACUUM ANALYZE)."""
    started = time.perf_counter()
    with registry.cursor() as cr:
        clear_history(cr, bench)
        count = generate_history(cr, bench, days, args.interval_min, end)
        cr.commit()
    vacuum(registry.db_name, TABLES)
    return count, time.perf_counter() - started


def purge(registry, bench: Bench, months: int) -> tuple[int, float]:
    with registry.cursor() as cr:
        env = new_env(cr)
        env["ir.config_parameter"].set_param(
            "prepaid_metering.reading_retention_months", months
        )
        cr.commit()
        meters = env["prepaid.meter"].browse(bench.meter_ids)
        started = time.perf_counter()
        removed = env["prepaid.reading"]._cron_purge_old(commit=True, meters=meters)
        elapsed = time.perf_counter() - started
        cr.commit()
    vacuum(registry.db_name, TABLES)
    return removed, elapsed


def run(args) -> None:
    registry = open_registry(args.db)
    print("setting up", flush=True)
    short_label = f"{args.short_days} days"
    long_label = f"{args.long_days} days"
    short = build(registry, args, "S")
    long = build(registry, args, "L")
    meters = len(short.meter_ids)
    # The history ends one interval before now: the bench sweeps come next.
    end = datetime.now(UTC).replace(tzinfo=None, second=0, microsecond=0)
    end -= timedelta(minutes=args.interval_min)
    timer = SqlTimer() if args.sql_top else None
    capture = Capture(args.explain_lines) if args.explain else None
    with registry.cursor() as cr:
        clear_history(cr, long)
        cr.commit()
    for bench, days in ((short, args.short_days), (long, args.long_days)):
        count, seconds = load(registry, bench, days, args, end)
        print(
            f"\n{days} days of history for {meters} meters: {count:,} readings "
            f"({count // meters:,} per meter) generated in {seconds:.1f} s",
            flush=True,
        )
        if bench is short:
            print(f"\n(a) {short_label} only (the table holds no longer history)")
            alone = phase(registry, {short_label: short}, args, None, timer)
    print(f"\n(b) {short_label} and {long_label}, rounds interleaved")
    both = phase(registry, {short_label: short, long_label: long}, args, capture, timer)
    if capture is not None:
        capture.print()
    after = None
    if not args.skip_purge:
        removed, seconds = purge(registry, long, args.retention_months)
        rate = removed / seconds if seconds else 0.0
        print(
            f"\n(c) retention {args.retention_months} months on the {long_label}: "
            f"{removed:,} readings removed in {seconds:.1f} s ({rate:,.0f}/s, "
            "committed pieces)",
            flush=True,
        )
        after = phase(
            registry,
            {short_label: short, f"{long_label}, purged": long},
            args,
            None,
            timer,
        )
    print(f"\nratio {long_label} / {short_label} (goal <= 1.2):")
    first = alone[short_label]
    for key in first:
        ratio = both[long_label][key] / both[short_label][key]
        line = (
            f"  {key:<8} {short_label} alone {first[key] * 1000:7.1f} ms"
            f" | interleaved {both[short_label][key] * 1000:7.1f} ms"
            f" vs {both[long_label][key] * 1000:7.1f} ms  x{ratio:.2f}"
            f" | vs alone x{both[long_label][key] / first[key]:.2f}"
        )
        if after:
            purged = after[f"{long_label}, purged"][key] / after[short_label][key]
            line += f" | after retention x{purged:.2f}"
        print(line)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="bench_history")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--update", action="store_true")
    parser.add_argument("--gateways", type=int, default=10)
    parser.add_argument("--meters", type=int, default=10, help="per gateway")
    parser.add_argument("--interval-min", type=int, default=15)
    parser.add_argument("--short-days", type=int, default=30)
    parser.add_argument("--long-days", type=int, default=1095)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--retention-months", type=int, default=25)
    parser.add_argument("--skip-purge", action="store_true")
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--explain-lines", type=int, default=12)
    parser.add_argument(
        "--sql-top", type=int, default=0, help="print the N slowest statement kinds"
    )
    return parser.parse_args(argv)


def main(argv=None) -> int:
    return run_in_database(parse_args(argv), run, MODULE)


if __name__ == "__main__":
    sys.exit(main())
