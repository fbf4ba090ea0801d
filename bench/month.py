"""The accountant's month benchmark: charges, apportionment, postpaid bills.

Prints figures; it is not a timed test. In one scratch company (generic chart
of accounts) with ``--accounts`` postpaid accounts, one meter each, a month
of readings every 4 hours (inserted with one SQL statement), two charge items
for every room and one apportionment over ``--members`` rooms:

(c) the charge-item generation (``prepaid.charge.line._generate``) for all
    targets, with its SQL statements per item;
(a) ``prepaid.bill.run._compute_bills``: draft bills for every account
    (usage priced by the tariff core, charges, shares), SQL statements per
    meter batch;
(b) confirming ``--invoices`` bills into posted invoices in batches, against
    a plain loop of ``account.move`` create + post of the same invoice values
    (other bills of the same run).

    PYTHONPATH=. python3 bench/month.py [--db NAME] [--keep] [--accounts 10000]
        [--members 1000] [--invoices 1000] [--loop-invoices N] [--sql-top N]
        [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import random
import sys
import time
from datetime import date, datetime
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
for _path in (BENCH_DIR.parent, BENCH_DIR):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from poll import new_env, open_registry, run_in_database  # noqa: E402

MODULE = "prepaid_billing"
MONTH_START = date(2026, 1, 1)
MONTH_END = date(2026, 1, 31)


def statements(cr):
    return cr.sql_log_count


def setup(env, args):
    """Company, chart, tariff, rooms, meters, accounts, readings."""
    from odoo import Command

    started = time.perf_counter()
    stamp = datetime.now().strftime("%H%M%S")
    company = env["res.company"].create(
        {"name": f"Bench Month {stamp}", "currency_id": env.company.currency_id.id}
    )
    env.user.company_ids |= company
    env = env(context=dict(env.context, allowed_company_ids=[company.id]))
    env["account.chart.template"].try_loading(
        "generic_coa", company, install_demo=False
    )
    product = env["product.product"].create({"name": "Electricity", "type": "service"})
    fee = env["product.product"].create({"name": "Property fee", "type": "service"})
    service = env["product.product"].create({"name": "Service fee", "type": "service"})
    common = env["product.product"].create({"name": "Common area", "type": "service"})
    tariff = env["prepaid.tariff"].create(
        {
            "name": "Bench flat",
            "product_id": product.id,
            "version_ids": [
                Command.create(
                    {"date_from": "2025-01-01", "kind": "flat", "price": 0.8}
                )
            ],
        }
    )
    site = env["prepaid.site"].create({"name": f"Bench {stamp}", "tz": "Asia/Shanghai"})
    building = env["prepaid.building"].create({"name": "B", "site_id": site.id})
    floor = env["prepaid.floor"].create(
        {"name": "F", "level": 1, "building_id": building.id}
    )
    rng = random.Random(7)
    rooms = env["prepaid.room"].create(
        [
            {"name": f"R{i}", "floor_id": floor.id, "area_m2": rng.randint(20, 120)}
            for i in range(args.accounts + 1)
        ]
    )
    gateways = env["prepaid.gateway"].create(
        [
            {"name": f"G{g}", "site_id": site.id, "host": "127.0.0.1", "port": 1}
            for g in range(args.accounts // 240 + 2)
        ]
    )
    meters = env["prepaid.meter"].create(
        [
            {
                "name": f"M{i}",
                "gateway_id": gateways[i // 240].id,
                "device_id": i % 240 + 1,
                "room_id": rooms[i].id,
                "is_master": i == args.accounts,
            }
            for i in range(args.accounts + 1)
        ]
    )
    partners = env["res.partner"].create(
        [{"name": f"Tenant {i}"} for i in range(args.accounts)]
    )
    accounts = env["prepaid.account"].create(
        [
            {
                "partner_id": partners[i].id,
                "mode": "postpaid",
                "tariff_id": tariff.id,
                "meter_link_ids": [Command.set([meters[i].id])],
            }
            for i in range(args.accounts)
        ]
    )
    env.flush_all()
    env.cr.execute(
        "UPDATE prepaid_account SET state = 'open', opened_at = '2025-12-01' "
        "WHERE id = ANY(%s)",
        [accounts.ids],
    )
    # a reading every 4 hours from 2025-12-31 16:00 UTC (local midnight)
    steps = 31 * 6 + 1
    env.cr.execute(
        """
        INSERT INTO prepaid_reading (meter_id, room_id, company_id, read_at, source,
               energy_total_kwh, delta_kwh, delta_m3, anomaly)
        SELECT m.id, m.room_id, %s,
               timestamp '2025-12-31 16:00:00' + (s * interval '4 hours'), 'import',
               1000 + s * (1 + m.id %% 5),
               CASE WHEN s = 0 THEN 0 ELSE 1 + m.id %% 5 END,
               0, 'none'
          FROM prepaid_meter m, generate_series(0, %s) s
         WHERE m.id = ANY(%s)
        """,
        [company.id, steps - 1, meters.ids],
    )
    readings = env.cr.rowcount
    env.cr.execute("ANALYZE prepaid_reading")
    items = env["prepaid.charge.item"].create(
        [
            {
                "name": "Property fee",
                "product_id": fee.id,
                "amount_type": "per_m2",
                "rate_m2": 2.5,
                "date_start": MONTH_START,
                "target_type": "building",
                "building_ids": [Command.set(building.ids)],
                "company_id": company.id,
            },
            {
                "name": "Service fee",
                "product_id": service.id,
                "amount_type": "fixed",
                "amount": 30.0,
                "date_start": MONTH_START,
                "target_type": "building",
                "building_ids": [Command.set(building.ids)],
                "company_id": company.id,
                "collection": "invoice",
            },
        ]
    )
    apportionment = env["prepaid.apportionment"].create(
        {
            "name": "Common",
            "master_meter_id": meters[-1].id,
            "tariff_id": tariff.id,
            "product_id": common.id,
            "method": "area",
            "company_id": company.id,
            "line_ids": [
                Command.create({"room_id": room.id}) for room in rooms[: args.members]
            ],
        }
    )
    print(
        f"setup: {args.accounts} postpaid accounts, {readings} readings, "
        f"{time.perf_counter() - started:.1f} s",
        flush=True,
    )
    return env, company, items, apportionment


def print_profile(prof, top):
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(top)
    print(out.getvalue())


def bench_charges(env, items, args, timer):
    """(c) the charge-item generation for all targets."""
    cr = env.cr
    Line = env["prepaid.charge.line"]
    if timer is not None:
        timer.reset()
        timer.active = True
    prof = cProfile.Profile() if args.profile else None
    if prof is not None:
        prof.enable()
    before = statements(cr)
    started = time.perf_counter()
    for item in items:
        count = statements(cr)
        created = Line._generate(item, today=MONTH_END)
        print(
            f"(c) {item.name}: {len(created)} charges, "
            f"{statements(cr) - count} SQL statements"
        )
    elapsed = time.perf_counter() - started
    if prof is not None:
        prof.disable()
        print_profile(prof, args.profile_top)
    print(
        f"(c) charge cron: {2 * args.accounts} targets in {elapsed:.2f} s "
        f"(goal <= 10 s), {statements(cr) - before} statements"
    )
    if timer is not None:
        timer.active = False
        timer.print(args.sql_top, "(c)")
    again = time.perf_counter()
    assert not Line._generate(items, today=MONTH_END)
    print(f"    second run: nothing new, {time.perf_counter() - again:.2f} s")


def bench_bills(env, company, args, timer):
    """(a) draft bills, with meter batches of 500 (rolled back) and 1000."""
    cr = env.cr
    prof = cProfile.Profile() if args.profile else None
    for size in (500, 1000):
        bill_run = env["prepaid.bill.run"].create(
            {
                "date_from": MONTH_START,
                "date_to": MONTH_END,
                "company_id": company.id,
                "batch_size": size,
            }
        )
        count = statements(cr)
        if timer is not None:
            timer.reset()
            timer.active = True
        if prof is not None and size == 500:
            prof.enable()
        started = time.perf_counter()
        bill_run.action_compute()
        elapsed = time.perf_counter() - started
        if prof is not None:
            prof.disable()
        if timer is not None:
            timer.active = False
        batches = -(-args.accounts // size)
        print(
            f"(a) batch {size}: {len(bill_run.bill_ids)} draft bills in "
            f"{elapsed:.2f} s (goal <= 30 s), {statements(cr) - count} "
            f"statements for {batches} meter batches"
        )
        if timer is not None:
            timer.print(args.sql_top, f"(a) batch {size}")
        if size == 500:
            cr.rollback()
    if prof is not None:
        print_profile(prof, args.profile_top)
    total = sum(bill_run.bill_ids.mapped("amount_total"))
    print(f"    bills total {total:.2f}")
    return bill_run


def bench_invoices(env, bill_run, args):
    """(b) batched confirm of ``--invoices`` bills against a plain loop."""
    cr = env.cr
    bills = bill_run.bill_ids.sorted("id")
    looped_count = args.invoices if args.loop_invoices is None else args.loop_invoices
    batch = bills[: args.invoices]
    loop = bills[args.invoices : args.invoices + looped_count]
    prof = cProfile.Profile() if args.profile else None
    if prof is not None:
        prof.enable()
    started = time.perf_counter()
    batch._confirm_batch(batch_size=200)
    batched = time.perf_counter() - started
    if prof is not None:
        prof.disable()
        print_profile(prof, args.profile_top)
    cr.commit()
    Move = env["account.move"]
    today = date.today()
    started = time.perf_counter()
    for bill in loop:
        Move.create(bill._invoice_vals(today)).action_post()
    looped = time.perf_counter() - started
    print(
        f"(b) {len(batch)} invoices batched: {len(batch) / batched:.1f}/s; "
        f"plain create+post loop ({len(loop)}): {len(loop) / looped:.1f}/s; "
        f"ratio {looped / batched * len(batch) / max(len(loop), 1):.2f}x "
        "(goal >= 2x)"
    )
    posted = batch.move_id.filtered(lambda m: m.state == "posted")
    same = all(
        abs(bill.amount_total - bill.move_id.amount_untaxed) < 0.005 for bill in batch
    )
    print(f"    {len(posted)} posted; bill totals == invoice untaxed: {same}")


def bench(args):
    registry = open_registry(args.db)
    with registry.cursor() as cr:
        env = new_env(cr)
        env, company, items, apportionment = setup(env, args)
        cr.commit()
        timer = None
        if args.sql_top:
            from billing import SqlTimer

            timer = SqlTimer()
        bench_charges(env, items, args, timer)
        run = env["prepaid.apportionment.run"].create(
            {
                "apportionment_id": apportionment.id,
                "period_start": MONTH_START,
                "period_end": MONTH_END,
            }
        )
        started = time.perf_counter()
        run.action_post()
        print(
            f"apportionment over {args.members} rooms: {run.amount} in "
            f"{time.perf_counter() - started:.2f} s, parts sum "
            f"{round(sum(run.share_ids.mapped('amount')), 2)}"
        )
        cr.commit()
        bill_run = bench_bills(env, company, args, timer)
        cr.commit()
        bench_invoices(env, bill_run, args)
        cr.rollback()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="bench_month")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--update", action="store_true")
    parser.add_argument("--accounts", type=int, default=10000)
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument(
        "--invoices", type=int, default=1000, help="bills confirmed in batches (b)"
    )
    parser.add_argument(
        "--loop-invoices",
        type=int,
        default=None,
        help="bills invoiced by the plain loop (default: --invoices); the loop "
        "is slow, a sample gives its rate",
    )
    parser.add_argument(
        "--sql-top", type=int, default=0, help="print the N slowest SQL kinds of (a)"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="cProfile (c), the first (a) run and the batched (b)",
    )
    parser.add_argument("--profile-top", type=int, default=40)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    return run_in_database(parse_args(argv), bench, MODULE)


if __name__ == "__main__":
    sys.exit(main())
