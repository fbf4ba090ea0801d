"""Reports benchmark: daily aggregates, the monthly report, batch tasks.

Prints figures; it is not a timed test. Uses the billing benchmark's fleet
(10,000 meters in rooms, one company of its own) and measures:

(c) billing 1,000,000 readings (``_cron_bill(commit=True)``, batches of
    1,000 meters) with the daily aggregates maintained, and without them
    (``prepaid.daily.usage._count_batch`` and ``_add_batch`` replaced by
    no-ops), ``--billing-pairs`` times each, alternating, after a warm-up
    run, each run from an SQL reset and compacted tables; medians, and the
    time spent counting and writing them inside the runs with aggregates;
(a) the comprehensive monthly report for all shops
    (``prepaid.monthly.report._rows``, June 2026) over a year of aggregates
    (June 2025, the month compared, to June 2026: 395 days), against a
    hand-written SQL aggregate of the same month, previous month and month a
    year before over as many days of raw daily readings (one per meter/day);
(b) the same report once 3 years of aggregates are stored (two more years
    before June 2025: the same three months read, the ratio is the cost of
    history);
(d) a batch relay-off of 1,000 meters on 10 simulated gateways (the
    ``simulator`` package in worker processes, loopback ports from
    ``--sim-port``): from ``action_run_now`` through the batch cron and the
    meter command job (run back to back) until every relay reads open on the
    simulator; and a batch tariff change of the 10,000 meters, end to end
    (``action_run_now`` then the batch cron, billing first included).

    PYTHONPATH=. python3 bench/reports.py [--db NAME] [--keep] [--repeat 3]
    PYTHONPATH=. python3 bench/reports.py --gateways 20 --skip-billing  # smaller
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from unittest.mock import patch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import billing  # noqa: E402
from poll import new_env, open_registry, run_in_database  # noqa: E402
from pymodbus.client import AsyncModbusTcpClient  # noqa: E402
from pymodbus.framer import FramerType  # noqa: E402

from simulator import ProcessFleet, build_spec  # noqa: E402

MONTH = date(2026, 6, 1)
# One year of history up to the end of MONTH, from the month a year before
# (the report compares with it): 2025-06-01 .. 2026-06-30; the 3 years of (b)
# add the two years before that. Both read the same three months.
HISTORY_START = date(2025, 6, 1)
HISTORY_DAYS = (date(2026, 7, 1) - HISTORY_START).days


def fill_days(cr, meter_ids: list[int], first: date, days: int) -> int:
    """``days`` daily aggregates per meter from ``first`` (SQL)."""
    cr.execute(
        """
        INSERT INTO prepaid_daily_usage (
            meter_id, date, utility, room_id, floor_id, building_id, site_id,
            company_id, account_id, partner_id, energy_kwh, sharp_kwh, peak_kwh,
            flat_kwh, valley_kwh, volume_m3, sharp_cost, peak_cost, flat_cost,
            valley_cost, amount, charge_count)
        SELECT m.id, %s::date + n, 'electricity', m.room_id, m.floor_id,
               m.building_id, m.site_id, m.company_id, m.billing_account_id,
               a.partner_id, 24, 2, 6, 8, 8, 0, 2.6, 6.6, 5.6, 2.8, 17.6, 24
          FROM prepaid_meter m
          LEFT JOIN prepaid_account a ON a.id = m.billing_account_id
         CROSS JOIN generate_series(0, %s - 1) AS n
         WHERE m.id = ANY(%s)
            ON CONFLICT (meter_id, date) DO NOTHING
        """,
        [first, days, meter_ids],
    )
    return cr.rowcount


def insert_daily_readings(cr, meter_ids: list[int], first: date, days: int) -> int:
    """One raw reading per meter and day (the hand-written SQL's input)."""
    cr.execute(
        """
        INSERT INTO prepaid_reading (
            meter_id, room_id, company_id, read_at, source, energy_total_kwh,
            delta_kwh, delta_m3, anomaly, create_uid, write_uid, create_date,
            write_date)
        SELECT m.id, m.room_id, m.company_id,
               (%s::date + n)::timestamp + interval '4 hours', 'import',
               1000 + 24 * n, 24, 0, 'none', 1, 1,
               now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC'
          FROM prepaid_meter m CROSS JOIN generate_series(0, %s - 1) AS n
         WHERE m.id = ANY(%s)
        """,
        [first, days, meter_ids],
    )
    return cr.rowcount


def drop_raw_readings(registry, fleet, after_id: int) -> None:
    """Delete the hand SQL's raw readings: left unbilled, they would be
    billed by the tariff change of (d) (millions of readings)."""
    with registry.cursor() as cr:
        # Nothing refers to them (never billed): no FK triggers, which would
        # scan the tables referring to readings for each deleted row.
        cr.execute("SET LOCAL session_replication_role = replica")
        cr.execute(
            "DELETE FROM prepaid_reading WHERE id > %s AND meter_id = ANY(%s)",
            [after_id, fleet.meter_ids],
        )


HAND_SQL = """
    SELECT r.room_id,
           date_trunc('month', r.read_at AT TIME ZONE 'UTC'
                      AT TIME ZONE 'Asia/Shanghai') AS month,
           SUM(r.delta_kwh)
      FROM prepaid_reading r
     WHERE r.meter_id = ANY(%(ids)s)
       AND (   r.read_at >= %(m0)s AND r.read_at < %(m1)s
            OR r.read_at >= %(p0)s AND r.read_at < %(m0)s
            OR r.read_at >= %(y0)s AND r.read_at < %(y1)s)
     GROUP BY 1, 2
"""


def timed(repeat: int, call) -> float:
    times = []
    for _index in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def report_times(registry, fleet, repeat: int) -> tuple[float, float, int]:
    with registry.cursor() as cr:
        env = new_env(cr)
        company = env["res.company"].browse(fleet.company_id)
        Report = env["prepaid.monthly.report"]
        rows = []

        def product():
            env.invalidate_all()
            rows[:] = Report._rows(company, MONTH)

        def hand():
            cr.execute(
                HAND_SQL,
                {
                    "ids": fleet.meter_ids,
                    "m0": MONTH,
                    "m1": date(2026, 7, 1),
                    "p0": date(2026, 5, 1),
                    "y0": date(2025, 6, 1),
                    "y1": date(2025, 7, 1),
                },
            )
            cr.fetchall()

        product()  # warm the caches once
        return timed(repeat, product), timed(repeat, hand), len(rows)


def place_meters(registry, fleet) -> None:
    """The billing benchmark's meters have no rooms: one building per
    gateway, one floor, one shop per meter (batched creates)."""
    with registry.cursor() as cr:
        env = new_env(cr)
        meters = env["prepaid.meter"].browse(fleet.meter_ids)
        gateways = meters.gateway_id
        buildings = env["prepaid.building"].create(
            [{"name": g.name, "site_id": g.site_id.id} for g in gateways]
        )
        floors = env["prepaid.floor"].create(
            [{"name": "F1", "level": 1, "building_id": b.id} for b in buildings]
        )
        floor_of = dict(zip(gateways.ids, floors.ids, strict=True))
        rooms = env["prepaid.room"].create(
            [{"name": m.name, "floor_id": floor_of[m.gateway_id.id]} for m in meters]
        )
        for meter, room in zip(meters, rooms, strict=True):
            meter.room_id = room
        cr.commit()


def _fresh(registry, fleet) -> None:
    """Unbill the readings and empty the daily use, with the tables
    compacted (every run starts from the same state)."""
    billing.reset_billing(registry, fleet)
    with registry.cursor() as cr:
        cr.execute("DELETE FROM prepaid_daily_usage")
    billing.vacuum(
        registry.db_name,
        [
            "prepaid_daily_usage",
            "prepaid_ledger_line",
            "prepaid_reading_charge",
            "prepaid_account",
            "prepaid_meter",
        ],
        full=True,
    )


def billing_runs(registry, probe, fleet, pairs: int) -> dict:
    """Billing the readings with and without the daily use, ``pairs`` times
    each, alternating (with first, then without first), after a warm-up run
    (the first billing of new readings also sets their hint bits). Returns
    the walls of each kind and the time the aggregates took inside the runs
    with them (the counts of the meters as they are priced, and
    ``_add_batch``)."""
    from odoo.addons.prepaid_billing.tools import daily as daily_tools

    Daily = registry["prepaid.daily.usage"]
    add_batch, count = Daily._add_batch, daily_tools.BatchDays.count
    inside = []

    def timed(func):
        # the time of the outermost timed call (_add_batch counts the last
        # meters before its upsert)
        depth = [0]

        def wrapper(*args):
            depth[0] += 1
            started = time.perf_counter()
            try:
                return func(*args)
            finally:
                depth[0] -= 1
                if not depth[0]:
                    inside[-1] += time.perf_counter() - started

        return wrapper

    shared = timed(lambda call, *args: call(*args))

    def run(with_days: bool) -> float:
        _fresh(registry, fleet)
        if with_days:
            inside.append(0.0)
            with (
                patch.object(
                    Daily, "_add_batch", lambda *args: shared(add_batch, *args)
                ),
                patch.object(
                    daily_tools.BatchDays, "count", lambda *args: shared(count, *args)
                ),
            ):
                return billing.product_run(registry, probe, fleet, 1000).wall
        # no daily use at all: nothing counted, nothing written
        with (
            patch.object(Daily, "_count_batch", lambda self, *args: None),
            patch.object(Daily, "_add_batch", lambda self, *args: None),
        ):
            return billing.product_run(registry, probe, fleet, 1000).wall

    print("  warm-up run (not counted)", flush=True)
    run(False)
    walls = {True: [], False: []}
    for pair in range(pairs):
        for with_days in (True, False) if pair % 2 == 0 else (False, True):
            walls[with_days].append(run(with_days))
    return {"with": walls[True], "without": walls[False], "inside": inside}


def tariff_change(registry, fleet) -> tuple[float, int]:
    with registry.cursor() as cr:
        env = new_env(cr)
        env = env(context=dict(env.context, allowed_company_ids=[fleet.company_id]))
        tariff = env["prepaid.tariff"].browse(fleet.tariff_id).copy()
        started = time.perf_counter()
        job = env["prepaid.batch.job"].create(
            {
                "operation": "set_tariff",
                "company_id": fleet.company_id,
                "tariff_id": tariff.id,
                "meter_ids": [(6, 0, fleet.meter_ids)],
            }
        )
        job.action_run_now()
        cr.commit()
        env["prepaid.batch.job"]._cron_run(commit=True)
        wall = time.perf_counter() - started
        return wall, job.done_count


RELAY_STATE = 0x4000  # px_prepaid_v1 relay_state: 0 closed, 1 open


async def _relays_open(endpoint: dict, device_ids: list[int]) -> list[int]:
    """The meters of ``device_ids`` whose relay reads open (one connection)."""
    client = AsyncModbusTcpClient(
        endpoint["host"],
        port=endpoint["port"],
        framer=FramerType.SOCKET,
        timeout=2,
        retries=1,
    )
    if not await client.connect():
        return []
    opened = []
    try:
        for device_id in device_ids:
            rr = await client.read_holding_registers(
                RELAY_STATE, count=1, device_id=device_id
            )
            if not rr.isError() and rr.registers[0] & 1:
                opened.append(device_id)
    finally:
        client.close()
    return opened


def relays_open(pending: dict[str, tuple[dict, list[int]]]) -> dict[str, list[int]]:
    """``{gateway name: device ids open}`` read from the simulator, one
    connection per gateway, the gateways at once."""

    async def sweep():
        names = list(pending)
        results = await asyncio.gather(
            *(_relays_open(*pending[name]) for name in names)
        )
        return dict(zip(names, results, strict=True))

    return asyncio.run(sweep())


def relay_fleet(registry, fleet, endpoints: list[dict], per_gateway: int) -> list[int]:
    """Gateways of the bench company aimed at the simulator's endpoints,
    ``per_gateway`` electric meters each; returns the meter ids."""
    stamp = time.strftime("%H%M%S")
    with registry.cursor() as cr:
        env = new_env(cr)
        env = env(context=dict(env.context, allowed_company_ids=[fleet.company_id]))
        site = env["prepaid.site"].create(
            {
                "name": f"bench-relay-{stamp}",
                "code": f"relay-{stamp}",
                "tz": billing.TZ,
                "company_id": fleet.company_id,
            }
        )
        gateways = env["prepaid.gateway"].create(
            [
                {
                    "name": f"relay-{endpoint['name']}",
                    "site_id": site.id,
                    "protocol": "modbus_tcp",
                    "host": endpoint["host"],
                    "port": endpoint["port"],
                    "timeout_s": 2.0,
                }
                for endpoint in endpoints
            ]
        )
        meters = billing.create_gateway_meters(env, gateways, "RL", per_gateway)
        cr.commit()
        return meters.ids


def relay_off(registry, fleet, args) -> dict:
    """(d) relay-off of ``gateways x meters`` simulated meters: seconds from
    Run to lines queued, to every command settled in Odoo, and to every relay
    read open on the simulator."""
    spec = build_spec(
        args.relay_gateways,
        args.relay_meters,
        kinds="electric_1p",
        speed=0,
        base_port=args.sim_port,
    )
    sim = ProcessFleet(spec, processes=args.sim_processes).start()
    try:
        endpoints = sim.endpoints()
        meter_ids = relay_fleet(registry, fleet, endpoints, args.relay_meters)
        devices = list(range(1, args.relay_meters + 1))
        pending = {e["name"]: (e, devices) for e in endpoints}
        with registry.cursor() as cr:
            # Commands queued by earlier phases (cut-offs of the billing
            # fleet, whose gateways lead nowhere) would share the command job.
            cr.execute(
                """UPDATE prepaid_meter_command SET state = 'cancelled'
                    WHERE state = 'queued' AND meter_id != ALL(%s)""",
                [meter_ids],
            )
            if cr.rowcount:
                print(f"  cancelled {cr.rowcount} other queued commands")
        already = sum(map(len, relays_open(pending).values()))
        if already:
            print(f"  WARNING: {already} relays open before the task")
        with registry.cursor() as cr:
            env = new_env(cr)
            env = env(context=dict(env.context, allowed_company_ids=[fleet.company_id]))
            job = env["prepaid.batch.job"].create(
                {
                    "operation": "switch_off",
                    "company_id": fleet.company_id,
                    "meter_ids": [(6, 0, meter_ids)],
                }
            )
            cr.commit()
            Job, Command = env["prepaid.batch.job"], env["prepaid.meter.command"]
            started = time.perf_counter()
            job.action_run_now()
            cr.commit()
            # The batch job, then the command job back to back (as the cron
            # runner does while they report work left), then the batch job
            # again to settle the lines.
            Job._cron_run(commit=True)
            queued = time.perf_counter() - started
            rounds = 0
            while Command._cron_process(commit=True):
                rounds += 1
            Job._cron_run(commit=True)
            settled = time.perf_counter() - started
            left, sweeps = len(meter_ids), 0
            while left and sweeps < 20:
                sweeps += 1
                opened = relays_open(pending)
                pending = {
                    name: (endpoint, sorted(set(ids) - set(opened[name])))
                    for name, (endpoint, ids) in pending.items()
                    if set(ids) - set(opened[name])
                }
                left = sum(len(ids) for _e, ids in pending.values())
                if left:
                    Command._cron_process(commit=True)
            on_simulator = time.perf_counter() - started
            job.invalidate_recordset()
            return {
                "meters": len(meter_ids),
                "queued": queued,
                "settled": settled,
                "simulator": on_simulator,
                "rounds": rounds,
                "sweeps": sweeps,
                "left": left,
                "done": job.done_count,
                "failed": job.failed_count,
                "state": job.state,
            }
    finally:
        sim.stop()


def run(args) -> None:
    registry = open_registry(args.db)
    fleet_args = billing.parse_args(
        [
            "--db",
            args.db,
            "--skip-naive",
            "--gateways",
            str(args.gateways),
            "--meters",
            str(args.meters),
            "--readings",
            str(args.readings),
        ]
    )
    print("setting up (the billing benchmark's fleet)", flush=True)
    fleet = billing.build_fleet(registry, fleet_args)
    place_meters(registry, fleet)
    figures = []
    if not args.skip_billing:
        probe = billing.Probe(registry)
        print("\n(c) billing the readings", flush=True)
        runs = billing_runs(registry, probe, fleet, args.billing_pairs)
        with_agg = statistics.median(runs["with"])
        without = statistics.median(runs["without"])
        inside = statistics.median(runs["inside"])
        readings = len(fleet.meter_ids) * args.readings
        figures.append(
            f"(c) billing {readings} readings, median of {args.billing_pairs}: "
            f"{with_agg:.2f} s with aggregates, {without:.2f} s without: "
            f"+{(with_agg / without - 1) * 100:.1f} %; inside the runs with "
            f"them, counting and writing the aggregates took {inside:.2f} s "
            f"({inside / (with_agg - inside) * 100:.1f} % of the rest) "
            f"[with {', '.join(f'{w:.2f}' for w in runs['with'])}; without "
            f"{', '.join(f'{w:.2f}' for w in runs['without'])}]"
        )
        print(figures[-1], flush=True)
    print(f"\n(a) monthly report over {args.days} days", flush=True)
    with registry.cursor() as cr:
        cr.execute("DELETE FROM prepaid_daily_usage")
        started = time.perf_counter()
        first = date(2026, 7, 1) - timedelta(days=args.days)
        days = fill_days(cr, fleet.meter_ids, first, args.days)
        cr.execute("SELECT COALESCE(MAX(id), 0) FROM prepaid_reading")
        last_reading = cr.fetchone()[0]
        readings = insert_daily_readings(cr, fleet.meter_ids, first, args.days)
        print(
            f"  setup: {days} daily rows, {readings} raw readings "
            f"{time.perf_counter() - started:.1f} s",
            flush=True,
        )
    billing.vacuum(registry.db_name, ["prepaid_daily_usage", "prepaid_reading"])
    one_year, hand, shops = report_times(registry, fleet, args.repeat)
    figures.append(
        f"(a) monthly report, {shops} shops, 1 year: {one_year:.3f} s; hand SQL "
        f"over raw readings: {hand:.3f} s; ratio {one_year / hand:.2f} "
        f"(goal <= 2 s and <= 3)"
    )
    print(figures[-1], flush=True)
    print("\n(b) the same with 3 years of aggregates", flush=True)
    with registry.cursor() as cr:
        fill_days(cr, fleet.meter_ids, first - timedelta(days=730), 730)
    billing.vacuum(registry.db_name, ["prepaid_daily_usage"])
    three_years, _hand, _shops = report_times(registry, fleet, args.repeat)
    drop_raw_readings(registry, fleet, last_reading)
    figures.append(
        f"(b) monthly report, 3 years: {three_years:.3f} s vs 1 year "
        f"{one_year:.3f} s; ratio 3y/1y {three_years / one_year:.2f} (goal <= 1.2)"
    )
    print(figures[-1], flush=True)
    if not args.skip_relay:
        print(
            f"\n(d) batch relay-off of {args.relay_gateways} x {args.relay_meters} "
            "simulated meters",
            flush=True,
        )
        relay = relay_off(registry, fleet, args)
        figures.append(
            f"(d) relay-off of {relay['meters']} meters on {args.relay_gateways} "
            f"gateways: every relay open on the simulator {relay['simulator']:.2f} s "
            f"after Run (goal <= 15 s; lines queued {relay['queued']:.2f} s, "
            f"commands settled {relay['settled']:.2f} s in "
            f"{relay['rounds']} command-job runs; {relay['sweeps']} simulator "
            f"sweeps, {relay['left']} still closed); task {relay['state']}, "
            f"{relay['done']} done, {relay['failed']} failed"
        )
        print(figures[-1], flush=True)
    if not args.skip_tariff:
        print(f"\n(d) batch tariff change of {len(fleet.meter_ids)} meters", flush=True)
        tariff_wall, tariff_done = tariff_change(registry, fleet)
        figures.append(
            f"(d) tariff change of {len(fleet.meter_ids)} meters: "
            f"{tariff_wall:.2f} s, {tariff_done} lines done"
        )
        print(figures[-1], flush=True)
    print("\n== figures ==")
    for line in figures:
        print(line)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="bench_reports", help="database (reused)")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument("--update", action="store_true", help="-u the module")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--gateways", type=int, default=100, help="billing fleet")
    parser.add_argument("--meters", type=int, default=100, help="per gateway")
    parser.add_argument("--readings", type=int, default=100, help="per meter, (c)")
    parser.add_argument(
        "--days",
        type=int,
        default=HISTORY_DAYS,
        help="(a) days of aggregates and raw readings up to the end of the month "
        "reported (default: from the same month a year before)",
    )
    parser.add_argument("--skip-billing", action="store_true", help="no (c)")
    parser.add_argument(
        "--billing-pairs",
        type=int,
        default=3,
        help="(c) runs with and without the aggregates (medians reported)",
    )
    parser.add_argument("--skip-relay", action="store_true", help="no relay-off")
    parser.add_argument("--skip-tariff", action="store_true", help="no tariff change")
    parser.add_argument("--relay-gateways", type=int, default=10)
    parser.add_argument("--relay-meters", type=int, default=100, help="per gateway")
    parser.add_argument(
        "--sim-port", type=int, default=15100, help="first simulator port (loopback)"
    )
    parser.add_argument("--sim-processes", type=int, default=2)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    return run_in_database(parse_args(argv), run, billing.MODULE)


if __name__ == "__main__":
    sys.exit(main())
