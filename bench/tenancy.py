"""Tenancy benchmark: 1,000 move-outs and 1,000 move-ins on a 10,000-room site.

Prints figures; it is not a timed test. One batch task
(``prepaid.tenancy._batch_moves``): one live reading of each of the 2,000
meters concerned from the simulator (all buses in parallel, under the bus
claim), 1,000 move-outs (last usage billed, charges credited, meters
released, rooms vacant) and 1,000 move-ins (accounts opened, deposits of
500.00 received into the tenant deposits account, one entry), committed
once. Then the 1,000 settlements (wallet + deposit -> refund, one
``_settle_batch``: one entry for the deposits returned, one for the
refunds), and the reconciliations:
wallets against the prepayment liability, deposits held against the tenant
deposits account.

The site: 100 gateways x 100 meters (one room each) served by the simulator
(``ProcessFleet``); 9,000 rooms occupied (active tenancies, 50.00 in the
wallet, a deposit of 500.00 for the 1,000 that leave), 1,000 vacant.
Occupation is set up in bulk (one sweep for the opening readings, SQL for
the accounts' state, one ledger batch for the wallets), not timed.

    PYTHONPATH=. python3 bench/tenancy.py [--db NAME] [--keep] [--moves 1000]
        [--template BASE] [--profile] [--top 40]

``--template BASE`` makes ``--db`` (which must not exist) a copy of the
database ``BASE`` (the module installed and the site made, not occupied:
e.g. a first run's database before ``occupy``; see ``--setup-only``), so
each run starts from a fresh site in seconds. ``--setup-only`` stops after
making the site (use it to build such a template). ``--profile`` prints the
cProfile of the batch task and of the settlements (``--top`` lines) and the
SQL statements of each.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent
for _path in (REPO_ROOT, BENCH_DIR):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from poll import (  # noqa: E402
    ensure_fleet,
    new_env,
    open_registry,
    point_gateways,
    run_in_database,
)

from simulator import ProcessFleet, build_spec  # noqa: E402

MODULE = "prepaid_tenancy"
GATEWAYS, METERS = 100, 100
WALLET, DEPOSIT = 50.0, 500.0


def setup_company(env):
    """Accounts and journals of the bench (the company of the site)."""
    company = env.company
    if company.prepaid_liability_account_id:
        cash = env["account.journal"].search([("code", "=", "BTCSH")], limit=1)
        return cash
    Account = env["account.account"]
    liability = Account.create(
        {
            "name": "Bench prepayments",
            "code": "BTP219",
            "account_type": "liability_current",
        }
    )
    cash_account = Account.create(
        {"name": "Bench cash", "code": "BTC101", "account_type": "asset_cash"}
    )
    cash = env["account.journal"].create(
        {
            "name": "Bench cash",
            "code": "BTCSH",
            "type": "cash",
            "default_account_id": cash_account.id,
        }
    )
    misc = env["account.journal"].create(
        {"name": "Bench transfers", "code": "BTMSC", "type": "general"}
    )
    company.write(
        {
            "prepaid_liability_account_id": liability.id,
            "prepaid_journal_id": misc.id,
        }
    )
    company._prepaid_deposit_account()
    return cash


def occupy(env, cash, tariff, rooms, leaving_count):
    """Active tenancies in ``rooms`` (opening reading: a sweep of the site,
    50.00 in the wallet; the first ``leaving_count`` hold a 500.00
    deposit)."""
    from odoo import Command, fields

    started = time.perf_counter()
    meters = rooms.meter_ids
    # the opening readings: one real sweep of the whole site
    meters.gateway_id._poll_now()
    env.cr.execute(
        """SELECT DISTINCT ON (meter_id) meter_id, id FROM prepaid_reading
            WHERE meter_id = ANY(%s) ORDER BY meter_id, id DESC""",
        [meters.ids],
    )
    opening = dict(env.cr.fetchall())
    partners = env["res.partner"].create(
        [{"name": f"Bench tenant {room.name}"} for room in rooms]
    )
    opened = fields.Datetime.now()
    accounts = env["prepaid.account"].create(
        [{"partner_id": partner.id, "tariff_id": tariff.id} for partner in partners]
    )
    env.flush_all()
    env.cr.execute(
        "UPDATE prepaid_account SET state = 'open', opened_at = %s WHERE id = ANY(%s)",
        [opened, accounts.ids],
    )
    env.cr.execute(
        """UPDATE prepaid_meter m SET billing_account_id = u.account_id
             FROM unnest(%s::int4[], %s::int4[]) AS u(id, account_id)
            WHERE m.id = u.id""",
        [[room.meter_ids.id for room in rooms], accounts.ids],
    )
    env.cr.execute(
        """INSERT INTO prepaid_meter_billing (meter_id, billed_reading_id)
           SELECT * FROM unnest(%s::int4[], %s::int4[])
           ON CONFLICT (meter_id) DO UPDATE
              SET billed_reading_id = EXCLUDED.billed_reading_id""",
        [
            [room.meter_ids.id for room in rooms],
            [opening[room.meter_ids.id] for room in rooms],
        ],
    )
    env.invalidate_all()
    env["prepaid.ledger.line"]._post(
        [
            {
                "account_id": account.id,
                "line_type": "opening",
                "amount": WALLET,
                "name": "Opening balance",
                "idempotency_key": f"bench_opening:{account.id}",
                "payment_method": "opening",
            }
            for account in accounts
        ]
    )
    total = WALLET * len(accounts)
    move = env["account.move"].create(
        {
            "move_type": "entry",
            "journal_id": cash.id,
            "line_ids": [
                Command.create(
                    {"account_id": cash.default_account_id.id, "debit": total}
                ),
                Command.create(
                    {
                        "account_id": env.company.prepaid_liability_account_id.id,
                        "credit": total,
                    }
                ),
            ],
        }
    )
    move.action_post()
    tenancies = env["prepaid.tenancy"].browse()
    for start in range(0, len(rooms), 1000):
        some = range(start, min(start + 1000, len(rooms)))
        tenancies |= env["prepaid.tenancy"].create(
            [
                {
                    "partner_id": partners[i].id,
                    "room_ids": [Command.set(rooms[i].ids)],
                    "tariff_id": tariff.id,
                    "account_id": accounts[i].id,
                    "state": "active",
                    "date_start": opened,
                    "deposit_amount": DEPOSIT if i < leaving_count else 0.0,
                    "reading_ids": [
                        Command.create(
                            {
                                "kind": "opening",
                                "meter_id": rooms[i].meter_ids.id,
                                "reading_id": opening[rooms[i].meter_ids.id],
                            }
                        )
                    ],
                }
                for i in some
            ]
        )
    env.cr.execute(
        """UPDATE prepaid_room r SET tenant_id = u.partner_id
             FROM unnest(%s::int4[], %s::int4[]) AS u(id, partner_id)
            WHERE r.id = u.id""",
        [rooms.ids, partners.ids],
    )
    tenancies[:leaving_count]._take_deposit("receive", cash)
    elapsed = time.perf_counter() - started
    print(f"  setup: {len(rooms)} occupied rooms in {elapsed:.1f} s", flush=True)
    return tenancies


class Measure:
    """Wall time, SQL statements and (``--profile``) the cProfile of a
    step."""

    def __init__(self, cr, label, profile, top):
        self.cr, self.label, self.profile, self.top = cr, label, profile, top
        self.prof = cProfile.Profile() if profile else None

    def __enter__(self):
        self.sql0 = self.cr.sql_log_count
        self.started = time.perf_counter()
        if self.prof:
            self.prof.enable()
        return self

    def __exit__(self, *exc):
        if self.prof:
            self.prof.disable()
        self.seconds = time.perf_counter() - self.started
        self.sql = self.cr.sql_log_count - self.sql0
        if self.prof and not exc[0]:
            for key in ("tottime", "cumulative"):
                out = io.StringIO()
                stats = pstats.Stats(self.prof, stream=out).strip_dirs()
                stats.sort_stats(key).print_stats(self.top)
                text = out.getvalue()
                start = text.find("   ncalls")
                print(f"\n--- cProfile of {self.label}, by {key} ---")
                print(text[start:] if start >= 0 else text, flush=True)
        return False


def load() -> str:
    with open("/proc/loadavg") as handle:
        return "load " + " ".join(handle.read().split()[:3])


def run(args) -> None:
    from odoo import Command

    registry = open_registry(args.db)
    gateway_ids = ensure_fleet(registry, GATEWAYS, METERS)
    if args.setup_only:
        return
    # the meters run at 60x speed: the leavers use a little between the
    # opening sweep and the batch
    spec = build_spec(GATEWAYS, METERS, kinds="electric_1p", speed=60, baud=None)
    fleet = ProcessFleet(spec, processes=args.processes).start()
    try:
        point_gateways(registry, gateway_ids, fleet.endpoints())
        with registry.cursor() as cr:
            env = new_env(cr)
            cash = setup_company(env)
            tariff = env["prepaid.tariff"].search([("name", "=", "Bench flat")])
            if not tariff:
                tariff = env["prepaid.tariff"].create(
                    {
                        "name": "Bench flat",
                        "utility": "electricity",
                        "version_ids": [
                            Command.create(
                                {
                                    "date_from": "2020-01-01",
                                    "kind": "flat",
                                    "price": 0.8,
                                }
                            )
                        ],
                    }
                )
            rooms = env["prepaid.room"].search(
                [("meter_ids.gateway_id", "in", gateway_ids)], order="id"
            )
            if env["prepaid.tenancy"].search_count([]):
                sys.exit("the bench site is occupied already: use a fresh --db")
            # every 10th room is vacant; the leavers are spread over all buses
            vacant = rooms.filtered(lambda r: r.id % 10 == 0)[: args.moves]
            occupied = rooms - vacant
            step = max(len(occupied) // args.moves, 1)
            leaving_rooms = occupied[::step][: args.moves]
            staying = occupied - leaving_rooms
            tenancies = occupy(
                env, cash, tariff, leaving_rooms | staying, len(leaving_rooms)
            )
            leaving = tenancies[: len(leaving_rooms)]
            newcomers = env["res.partner"].create(
                [{"name": f"Bench newcomer {room.name}"} for room in vacant]
            )
            arriving = env["prepaid.tenancy"].create(
                [
                    {
                        "partner_id": partner.id,
                        "room_ids": [Command.set(room.ids)],
                        "tariff_id": tariff.id,
                        "deposit_amount": DEPOSIT,
                    }
                    for partner, room in zip(newcomers, vacant, strict=True)
                ]
            )
            cr.commit()
            leaving_ids, arriving_ids = leaving.ids, arriving.ids
        print(
            f"site: {len(rooms)} rooms, {len(leaving_ids)} moving out, "
            f"{len(arriving_ids)} moving in",
            flush=True,
        )
        with registry.cursor() as cr:
            env = new_env(cr)
            Tenancy = env["prepaid.tenancy"]
            journal = env["account.journal"].browse(cash.id)
            with Measure(cr, "the batch task", args.profile, args.top) as batch:
                out, inn, refused = Tenancy._batch_moves(
                    Tenancy.browse(leaving_ids),
                    Tenancy.browse(arriving_ids),
                    deposit_journal=journal,
                )
                cr.commit()
            print(
                f"batch task (readings + {len(out)} move-outs + {len(inn)} "
                f"move-ins): {batch.seconds:.1f} s, {batch.sql} SQL, refused "
                f"{len(refused)} ({load()})",
                flush=True,
            )
            print_reconciliation(env)
            with Measure(cr, "the settlements", args.profile, args.top) as settle:
                out._settle_batch(journal)
                cr.commit()
            refunded = sum(out.mapped("settle_refund"))
            print(
                f"settlements of {len(out)} move-outs: {settle.seconds:.1f} s, "
                f"{settle.sql} SQL, refunded {refunded:,.2f} ({load()})"
            )
            print_reconciliation(env)
    finally:
        fleet.stop()


def print_reconciliation(env):
    """Wallets against the prepayment liability, deposits held against the
    tenant deposits account."""
    result = env["prepaid.billing.engine"]._reconciliation(env.company)
    print(
        f"  wallets {result['wallets']:,.2f} + unrecognised "
        f"{result['unrecognised']:,.2f} vs liability {result['liability']:,.2f}: "
        f"difference {result['difference'] + 0.0:,.2f}"
    )
    print(
        f"  deposits held {result['deposits']:,.2f} vs tenant deposits account "
        f"{result['deposit_account']:,.2f}: difference "
        f"{result['deposit_difference'] + 0.0:,.2f}; balanced: {result['balanced']}",
        flush=True,
    )


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", default="tenancy_bench")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--update", action="store_true")
    parser.add_argument("--moves", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--template", help="copy --db from this database")
    parser.add_argument("--setup-only", action="store_true")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--top", type=int, default=40)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.template:
        subprocess.run(["createdb", "-T", args.template, args.db], check=True)
        args.keep = True
    return run_in_database(args, run, module=MODULE)


if __name__ == "__main__":
    sys.exit(main())
