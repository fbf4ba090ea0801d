"""Billing benchmark: 1,000,000 readings -> product billing path -> wallets.

Prints figures; it is not a timed test. Measures, in one run:

(a) ``prepaid.billing.engine._cron_bill(commit=True)`` over 10,000 meters x
    100 unbilled readings (batches of ``prepaid_billing.bill_batch_meters``,
    default 1000; ``--batches 1000,2000,5000`` re-bills the same readings
    with other batch sizes after an SQL reset), ledger, alarms and cut-off
    included;
(b) a naive per-record ORM loop (tariff version, price, ``_post`` of one
    line, ``_after_balance_change`` and a meter ``write`` per reading) over
    10,000 other readings (100 meters x 100), as the per-reading speed-up;
(c) SQL statements of ``_bill_claimed_upto`` for batches of 10 .. 1,000 meters
    (in a savepoint, rolled back);
(d) correctness: one consumption line per reading, wallets == ledger, alarm
    levels, ``_reconciliation`` balanced before and after ``_recognize``;
(e) with ``--debt-limits N``: the same readings billed N times without and N
    times with a debt (recovered 25 % per top-up and 1.00 a day) and a power
    and a daily energy limit on every account (set high enough not to trip:
    the limit check runs on every batch), alternating, after an SQL reset;
    then the same for one new reading per meter (steady state). Both medians
    are printed with their ratio.

Readings are input data: they are inserted with one SQL statement
(generate_series), not through the polling path. Every run works in a
company of its own (``Bench Billing <stamp>``). The script creates a scratch
database with ``prepaid_billing`` installed (or reuses ``--db``) and drops
it at the end when it created it, unless ``--keep``.

    PYTHONPATH=. python3 bench/billing.py [--db NAME] [--keep] [--tariff tou]
        [--batches 1000,2000,5000] [--profile] [--debt-limits 3]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import random
import shlex
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent
for _path in (REPO_ROOT, BENCH_DIR):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from poll import (  # noqa: E402
    PROFILES,
    new_env,
    open_registry,
    run_in_database,
    set_param,
)

MODULE = "prepaid_billing"
BATCH_PARAM = "prepaid_billing.bill_batch_meters"
TZ = "Asia/Shanghai"
TZ_HOURS = 8  # Asia/Shanghai has no DST
FLAT_PRICE = 0.8
TOU_PRICES = {"sharp": 1.2, "peak": 1.0, "flat": 0.7, "valley": 0.4}
TOU_DAY = [
    ("valley", 0, 7),
    ("flat", 7, 8),
    ("peak", 8, 11),
    ("flat", 11, 17),
    ("peak", 17, 19),
    ("sharp", 19, 21),
    ("flat", 21, 23),
    ("valley", 23, 24),
]
BANDS = ("sharp", "peak", "flat", "valley")
ALARMS = (50.0, 20.0, 5.0)
# Final balance after billing: share of accounts -> (low, high).
FINAL_BALANCES = [
    (0.02, (-10.0, -0.5)),  # overdrawn -> cut-off (credit limit 0)
    (0.03, (0.5, 4.5)),  # alarm 3
    (0.025, (5.5, 19.5)),  # alarm 2
    (0.025, (20.5, 49.5)),  # alarm 1
    (0.90, (60.0, 300.0)),  # no alarm
]


# ---------------------------------------------------------------------------
# Database plumbing (see poll.py)
# ---------------------------------------------------------------------------
def vacuum(dbname: str, tables: list[str], full: bool = False) -> None:
    import psycopg2

    cnx = psycopg2.connect(dbname=dbname)
    cnx.autocommit = True
    try:
        with cnx.cursor() as cr:
            for table in tables:
                cr.execute(f"VACUUM {'FULL ' if full else ''}ANALYZE {table}")
    finally:
        cnx.close()


# ---------------------------------------------------------------------------
# Bench data
# ---------------------------------------------------------------------------
@dataclass
class Fleet:
    company_id: int
    tariff_id: int
    meter_ids: list[int]  # billed by the product path
    account_ids: list[int]
    naive_meter_ids: list[int]
    naive_account_ids: list[int]
    openings: dict[int, float] = field(default_factory=dict)
    setup: dict[str, float] = field(default_factory=dict)


def _timed(setup: dict, key: str, started: float) -> float:
    now = time.perf_counter()
    setup[key] = now - started
    return now


def create_company(env, stamp: str):
    company = env["res.company"].create(
        {
            "name": f"Bench Billing {stamp}",
            "currency_id": env.company.currency_id.id,
        }
    )
    env.user.company_ids |= company
    env = env(context=dict(env.context, allowed_company_ids=[company.id]))
    Account = env["account.account"]
    liability = Account.create(
        {
            "name": "Bench prepayments",
            "code": "BPP219",
            "account_type": "liability_current",
        }
    )
    revenue = Account.create(
        {
            "name": "Bench utility revenue",
            "code": "BPR419",
            "account_type": "income",
        }
    )
    cash_account = Account.create(
        {
            "name": "Bench cash",
            "code": "BPC101",
            "account_type": "asset_cash",
        }
    )
    cash = env["account.journal"].create(
        {
            "name": "Bench cash",
            "code": "BCSH",
            "type": "cash",
            "default_account_id": cash_account.id,
        }
    )
    misc = env["account.journal"].create(
        {
            "name": "Bench prepaid revenue",
            "code": "BMSC",
            "type": "general",
        }
    )
    env.company.write(
        {
            "prepaid_liability_account_id": liability.id,
            "prepaid_revenue_account_id": revenue.id,
            "prepaid_journal_id": misc.id,
            "prepaid_alarm1_amount": ALARMS[0],
            "prepaid_alarm2_amount": ALARMS[1],
            "prepaid_alarm3_amount": ALARMS[2],
            "prepaid_alarm_times": 2,
            "prepaid_alarm_interval_hours": 12.0,
        }
    )
    return env, cash


def create_tariff(env, kind: str):
    from odoo import Command

    version = {"date_from": "2020-01-01", "kind": kind}
    if kind == "tou":
        version.update({f"price_{b}": p for b, p in TOU_PRICES.items()})
        version["season_ids"] = [
            Command.create(
                {
                    "name": "All year",
                    "months": "1-12",
                    "period_ids": [
                        Command.create({"band": b, "hour_from": f, "hour_to": t})
                        for b, f, t in TOU_DAY
                    ],
                }
            )
        ]
    else:
        version["price"] = FLAT_PRICE
    return env["prepaid.tariff"].create(
        {
            "name": f"Bench {kind}",
            "utility": "electricity",
            "version_ids": [Command.create(version)],
        }
    )


def create_meters(env, site, name: str, n_gateways: int, per_gateway: int):
    gateways = env["prepaid.gateway"].create(
        [
            {
                "name": f"{name}{g + 1:03d}",
                "site_id": site.id,
                "protocol": "modbus_tcp",
                "host": "127.0.0.1",
                "port": 1,
            }
            for g in range(n_gateways)
        ]
    )
    return create_gateway_meters(env, gateways, name, per_gateway)


def create_gateway_meters(env, gateways, name: str, per_gateway: int):
    """``per_gateway`` single-phase meters (devices 1..n, the benchmark's
    register profiles) on each of ``gateways``, named ``<name><g>-<device>``."""
    from odoo import Command

    profiles = [env.ref(f"prepaid_metering.{xmlid}").id for xmlid in PROFILES]
    return env["prepaid.meter"].create(
        [
            {
                "name": f"{name}{g + 1}-{d}",
                "meter_type": "electric_1p",
                "gateway_id": gw.id,
                "device_id": d,
                "profile_ids": [Command.set(profiles)],
            }
            for g, gw in enumerate(gateways)
            for d in range(1, per_gateway + 1)
        ]
    )


def create_accounts(env, meters, tariff, label: str):
    """One open prepaid account per meter (state written, as ``_open`` does)."""
    partners = env["res.partner"].create(
        [{"name": f"{label} tenant {i + 1}"} for i in range(len(meters))]
    )
    now = datetime.now().replace(microsecond=0)
    accounts = env["prepaid.account"].create(
        [
            {
                "partner_id": partner.id,
                "tariff_id": tariff.id,
                "state": "open",
                "opened_at": now,
            }
            for partner in partners
        ]
    )
    env.flush_all()
    env.cr.execute(
        """UPDATE prepaid_meter m SET billing_account_id = u.account_id
             FROM unnest(%s::int4[], %s::int4[]) AS u(id, account_id)
            WHERE m.id = u.id""",
        [meters.ids, accounts.ids],
    )
    env.cr.execute(
        "DELETE FROM prepaid_meter_billing WHERE meter_id = ANY(%s)", [meters.ids]
    )
    env.invalidate_all()
    return accounts


def insert_readings(cr, meter_ids: list[int], per_meter: int, seed: float) -> int:
    """``per_meter`` hourly poll readings per meter, ending one hour ago.

    Deltas are 0.05-2.00 kWh; the totals and the time-of-use registers (band
    of the local hour) are their running sums. Inserted hour by hour (all
    meters of one sweep, then the next), like the polling job does.
    """
    case = " ".join(f"WHEN h >= {f} AND h < {t} THEN '{b}'" for b, f, t in TOU_DAY)
    cr.execute("SELECT setseed(%s)", [seed])
    cr.execute(
        f"""
        WITH base AS (
            SELECT m.id AS meter_id, m.room_id, m.company_id, n,
                   date_trunc('hour', now() at time zone 'UTC')
                       - make_interval(hours => %(n)s + 1 - n) AS read_at,
                   round((0.05 + random() * 1.95)::numeric, 2) AS d
              FROM prepaid_meter m, generate_series(1, %(n)s) AS n
             WHERE m.id = ANY(%(ids)s)
        ), banded AS (
            SELECT b.*, CASE {case} END AS band
              FROM base b, LATERAL (SELECT extract(hour FROM b.read_at
                   + make_interval(hours => {TZ_HOURS}) - interval '30 minutes'
                   )::int AS h) AS x
        ), summed AS (
            SELECT b.*,
                   sum(d) OVER w AS total,
                   sum(d) FILTER (WHERE band = 'sharp') OVER w AS sharp,
                   sum(d) FILTER (WHERE band = 'peak') OVER w AS peak,
                   sum(d) FILTER (WHERE band = 'flat') OVER w AS flat,
                   sum(d) FILTER (WHERE band = 'valley') OVER w AS valley
              FROM banded b
            WINDOW w AS (PARTITION BY meter_id ORDER BY n)
        )
        INSERT INTO prepaid_reading (
            meter_id, room_id, company_id, read_at, source, energy_total_kwh,
            energy_sharp_kwh, energy_peak_kwh, energy_flat_kwh, energy_valley_kwh,
            delta_kwh, delta_m3, anomaly, create_uid, write_uid, create_date,
            write_date)
        SELECT meter_id, room_id, company_id, read_at, 'poll', total,
               coalesce(sharp, 0), coalesce(peak, 0), coalesce(flat, 0),
               coalesce(valley, 0), d, 0, 'none', 1, 1,
               now() at time zone 'UTC', now() at time zone 'UTC'
          FROM summed ORDER BY n, meter_id
        """,  # noqa: S608 - constants of this module
        {"n": per_meter, "ids": meter_ids},
    )
    return cr.rowcount


def expected_cost(cr, meter_ids: list[int], kind: str) -> dict[int, float]:
    """What billing every unbilled reading of each meter will cost (to a cent)."""
    if kind == "tou":
        cr.execute(
            """SELECT meter_id, max(energy_sharp_kwh) * %s + max(energy_peak_kwh) * %s
                      + max(energy_flat_kwh) * %s + max(energy_valley_kwh) * %s
                 FROM prepaid_reading WHERE meter_id = ANY(%s) GROUP BY meter_id""",
            [*(TOU_PRICES[b] for b in BANDS), meter_ids],
        )
    else:
        cr.execute(
            """SELECT meter_id, sum(delta_kwh) * %s FROM prepaid_reading
                WHERE meter_id = ANY(%s) GROUP BY meter_id""",
            [FLAT_PRICE, meter_ids],
        )
    return {meter_id: float(cost) for meter_id, cost in cr.fetchall()}


def draw_final_balance(rng: random.Random) -> float:
    pick, acc = rng.random(), 0.0
    for share, (low, high) in FINAL_BALANCES:
        acc += share
        if pick < acc:
            return rng.uniform(low, high)
    return rng.uniform(*FINAL_BALANCES[-1][1])


def open_balances(env, cash, accounts, openings: dict[int, float]) -> None:
    """One cash entry for all openings, then the product's ``_post`` in a batch."""
    from odoo import Command, fields

    company = env.company
    total = round(sum(openings.values()), 2)
    move = env["account.move"].create(
        {
            "move_type": "entry",
            "journal_id": cash.id,
            "company_id": company.id,
            "date": fields.Date.context_today(env["account.move"]),
            "ref": "Bench opening balances",
            "line_ids": [
                Command.create(
                    {
                        "account_id": cash.default_account_id.id,
                        "debit": total,
                        "credit": 0.0,
                        "name": "Openings",
                    }
                ),
                Command.create(
                    {
                        "account_id": company.prepaid_liability_account_id.id,
                        "debit": 0.0,
                        "credit": total,
                        "name": "Openings",
                    }
                ),
            ],
        }
    )
    move.action_post()
    env["prepaid.ledger.line"]._post(
        [
            {
                "account_id": account_id,
                "line_type": "opening",
                "amount": amount,
                "name": "Opening balance",
                "idempotency_key": f"opening:{account_id}",
                "move_id": move.id,
                "payment_method": "opening",
            }
            for account_id, amount in openings.items()
        ]
    )


def build_fleet(registry, args) -> Fleet:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    timings: dict[str, float] = {}
    with registry.cursor() as cr:
        env = new_env(cr)
        # Meters of earlier runs must not be billed by this one.
        cr.execute(
            """UPDATE prepaid_meter SET active = false
                WHERE active AND company_id IN (
                      SELECT id FROM res_company WHERE name LIKE 'Bench Billing %%')"""
        )
        started = time.perf_counter()
        env, cash = create_company(env, stamp)
        tariff = create_tariff(env, args.tariff)
        site = env["prepaid.site"].create(
            {"name": f"bench-billing-{stamp}", "code": stamp, "tz": TZ}
        )
        started = _timed(timings, "company, tariff, site", started)
        meters = create_meters(env, site, "BB", args.gateways, args.meters)
        naive_meters = create_meters(env, site, "BN", 1, args.naive_meters)
        env.flush_all()
        started = _timed(timings, f"{len(meters) + len(naive_meters)} meters", started)
        accounts = create_accounts(env, meters, tariff, "Bench")
        naive_accounts = create_accounts(env, naive_meters, tariff, "Naive")
        started = _timed(
            timings, f"{len(accounts) + len(naive_accounts)} partners+accounts", started
        )
        count = insert_readings(cr, meters.ids, args.readings, 0.42)
        count += insert_readings(cr, naive_meters.ids, args.naive_readings, 0.17)
        started = _timed(timings, f"{count} readings (SQL)", started)
        # The naive set stays out of _cron_bill until the naive loop runs.
        naive_meters.write({"active": False})
        rng = random.Random(7)
        openings = {}
        for some_meters, some_accounts in (
            (meters, accounts),
            (naive_meters, naive_accounts),
        ):
            cost = expected_cost(cr, some_meters.ids, args.tariff)
            for meter, account in zip(some_meters, some_accounts, strict=True):
                amount = cost[meter.id] + draw_final_balance(rng)
                openings[account.id] = round(max(amount, ALARMS[0] + 5.0), 2)
        open_balances(env, cash, accounts | naive_accounts, openings)
        started = _timed(timings, "opening balances (_post)", started)
        cr.commit()
        fleet = Fleet(
            company_id=env.company.id,
            tariff_id=tariff.id,
            meter_ids=meters.ids,
            account_ids=accounts.ids,
            naive_meter_ids=naive_meters.ids,
            naive_account_ids=naive_accounts.ids,
            openings=openings,
            setup=timings,
        )
    vacuum(
        registry.db_name,
        ["prepaid_reading", "prepaid_meter", "prepaid_account", "prepaid_ledger_line"],
    )
    _timed(timings, "vacuum analyze", started)
    for key, value in timings.items():
        print(f"  setup: {key:<32} {value:6.1f} s", flush=True)
    return fleet


def reset_billing(registry, fleet: Fleet) -> None:
    """Undo a billing run of the product meters (SQL), to bill them again."""
    with registry.cursor() as cr:
        accounts, meters = fleet.account_ids, fleet.meter_ids
        # No FK triggers: each deleted line would scan the unindexed
        # reversed_line_id for referencing lines (minutes for 1M lines).
        cr.execute("SET LOCAL session_replication_role = replica")
        cr.execute(
            """DELETE FROM prepaid_ledger_line
                WHERE line_type = 'consumption' AND account_id = ANY(%s)""",
            [accounts],
        )
        cr.execute(
            "DELETE FROM prepaid_reading_charge WHERE meter_id = ANY(%s)", [meters]
        )
        cr.execute(
            """UPDATE prepaid_account a
                  SET balance = (SELECT sum(amount) FROM prepaid_ledger_line l
                                  WHERE l.account_id = a.id),
                      alarm_level = 0, supply_state = 'on', balance_state = 'normal'
                WHERE a.id = ANY(%s)""",
            [accounts],
        )
        cr.execute(
            "DELETE FROM prepaid_meter_billing WHERE meter_id = ANY(%s)", [meters]
        )
        cr.execute(
            "DELETE FROM prepaid_alarm_notice WHERE account_id = ANY(%s)", [accounts]
        )
        cr.execute(
            "DELETE FROM prepaid_meter_command WHERE meter_id = ANY(%s)", [meters]
        )
        cr.execute(
            """DELETE FROM mail_message
                WHERE model = 'prepaid.account' AND res_id = ANY(%s)""",
            [accounts],
        )
    vacuum(
        registry.db_name,
        [
            "prepaid_ledger_line",
            "prepaid_reading_charge",
            "prepaid_account",
            "prepaid_meter",
        ],
    )


# ---------------------------------------------------------------------------
# Probe: time and statements of the engine's steps
# ---------------------------------------------------------------------------
class Probe:
    """Wraps the engine's steps: time and statements of each."""

    STEPS = (
        "_bill_claimed_upto",
        "_post_batch",
        "_after_balance_change",
        "_store_meter_billing",
        "_claim_meters",
        "_check_limits_after_billing",
    )

    def __init__(self, registry):
        self.time: dict[str, float] = {}
        self.sql: dict[str, int] = {}
        self.calls: dict[str, list[tuple[int, float]]] = {}
        for name in self.STEPS:
            model = {
                "_post": "prepaid.ledger.line",
                "_check_limits_after_billing": "prepaid.account",
            }.get(name, "prepaid.billing.engine")
            self._wrap(registry[model], name)
        self.reset()

    def _wrap(self, cls, name):
        orig = getattr(cls, name)
        probe = self

        def wrapper(self_, *args, **kwargs):
            cr = self_.env.cr
            count0, started = cr.sql_log_count, time.perf_counter()
            try:
                return orig(self_, *args, **kwargs)
            finally:
                elapsed = time.perf_counter() - started
                probe.time[name] += elapsed
                probe.sql[name] += cr.sql_log_count - count0
                probe.calls[name].append((cr.sql_log_count - count0, elapsed))

        setattr(cls, name, wrapper)

    def reset(self) -> None:
        self.time = dict.fromkeys(self.STEPS, 0.0)
        self.sql = dict.fromkeys(self.STEPS, 0)
        self.calls = {name: [] for name in self.STEPS}


# ---------------------------------------------------------------------------
# (a) product path
# ---------------------------------------------------------------------------
@dataclass
class BillRun:
    batch: int
    wall: float
    cpu: float
    lines: int
    readings: int
    steps: dict[str, float]
    sql: list[int]
    pg_cpu: float = 0.0


def backend_cpu(cr) -> float:
    """CPU seconds (user + system) of this cursor's PostgreSQL backend so far
    (from /proc: PostgreSQL runs on this machine)."""
    cr.execute("SELECT pg_backend_pid()")
    pid = cr.fetchone()[0]
    try:
        fields_ = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields_[11]) + int(fields_[12])) / os.sysconf("SC_CLK_TCK")


def unbilled(cr, meter_ids: list[int]) -> int:
    cr.execute(
        """SELECT count(*) FROM prepaid_reading r JOIN prepaid_meter m
                ON m.id = r.meter_id
              LEFT JOIN prepaid_meter_billing b ON b.meter_id = m.id
            WHERE m.id = ANY(%s) AND r.id > COALESCE(b.billed_reading_id, 0)""",
        [meter_ids],
    )
    return cr.fetchone()[0]


def product_run(registry, probe: Probe, fleet: Fleet, batch: int, prof=None) -> BillRun:
    old = set_param(registry, BATCH_PARAM, batch)
    try:
        with registry.cursor() as cr:
            env = new_env(cr)
            todo = unbilled(cr, fleet.meter_ids)
            cr.execute("SELECT count(*) FROM prepaid_ledger_line")
            lines0 = cr.fetchone()[0]
            cr.execute("SELECT count(*) FROM prepaid_reading_charge")
            charges0 = cr.fetchone()[0]
            cr.commit()
            probe.reset()
            backend0 = backend_cpu(cr)
            if prof is not None:
                prof.enable()
            cpu0, started = time.process_time(), time.perf_counter()
            posted = env["prepaid.billing.engine"]._cron_bill(commit=True)
            wall = time.perf_counter() - started
            cpu = time.process_time() - cpu0
            if prof is not None:
                prof.disable()
            pg_cpu = backend_cpu(cr) - backend0
            cr.execute("SELECT count(*) FROM prepaid_ledger_line")
            lines = cr.fetchone()[0] - lines0
            cr.execute("SELECT count(*) FROM prepaid_reading_charge")
            charges = cr.fetchone()[0] - charges0
            left = unbilled(cr, fleet.meter_ids)
    finally:
        set_param(registry, BATCH_PARAM, old or False)
    if left:
        print(f"  WARNING: {left} readings left unbilled")
    if posted != charges:
        print(f"  WARNING: _cron_bill returned {posted}, {charges} charges inserted")
    run = BillRun(
        batch=batch,
        wall=wall,
        cpu=cpu,
        lines=lines,
        readings=todo - left,
        steps=dict(probe.time),
        sql=[n for n, _t in probe.calls["_bill_claimed_upto"]],
        pg_cpu=pg_cpu,
    )
    print(
        f"  _cron_bill batch {batch:5d}: {wall:6.2f} s  "
        f"{run.readings / wall:9.0f} readings/s  {charges} charges  {lines} wallet "
        f"lines  cpu {cpu:5.2f} s  postgres cpu {pg_cpu:5.2f} s",
        flush=True,
    )
    steps = ", ".join(
        f"{name} {probe.time[name]:.2f}"
        for name in probe.STEPS
        if name != "_bill_claimed_upto"
    )
    print(f"      steps (s): {steps}", flush=True)
    return run


def set_debt_limits(registry, fleet: Fleet, on: bool) -> None:
    """Give every account of the fleet a debt with its recovery rule and a
    power and daily energy limit (``on``), or none. Billing reads no debt
    line: the debt amount is set in SQL."""
    with registry.cursor() as cr:
        cr.execute(
            """UPDATE prepaid_account
                  SET power_limit_kw = %s, daily_energy_limit_kwh = %s,
                      debt_amount = %s, debt_recovery_override = %s,
                      debt_recovery_percent = %s, debt_recovery_daily = %s,
                      limit_state = 'none'
                WHERE id = ANY(%s)""",
            [
                1000.0 if on else 0.0,
                100000.0 if on else 0.0,
                100.0 if on else 0.0,
                on,
                25.0 if on else 0.0,
                1.0 if on else 0.0,
                fleet.account_ids,
            ],
        )


def debt_limit_runs(registry, probe: Probe, fleet: Fleet, batch: int, count: int):
    """(e) ``count`` rounds of the backlog and of one new reading per meter,
    billed without and with debt and limits (alternating, the order swapped
    each round); returns ``{(kind, mode): [BillRun]}``."""
    runs: dict[tuple[str, str], list[BillRun]] = {}
    for index in range(count):
        modes = ("without", "with") if index % 2 == 0 else ("with", "without")
        for mode in modes:
            reset_billing(registry, fleet)
            set_debt_limits(registry, fleet, mode == "with")
            print(f"  backlog, {mode} debt and limits:", flush=True)
            runs.setdefault(("backlog", mode), []).append(
                product_run(registry, probe, fleet, batch)
            )
        for mode in modes:
            set_debt_limits(registry, fleet, mode == "with")
            with registry.cursor() as cr:
                insert_readings(cr, fleet.meter_ids, 1, 0.7 + index / 100)
            print(f"  one reading per meter, {mode} debt and limits:", flush=True)
            runs.setdefault(("steady", mode), []).append(
                product_run(registry, probe, fleet, batch)
            )
    set_debt_limits(registry, fleet, False)
    print("\n(e) billing with debt recovery and limits on every account", flush=True)
    for kind in ("backlog", "steady"):
        without = sorted(r.wall for r in runs[(kind, "without")])
        with_ = sorted(r.wall for r in runs[(kind, "with")])
        median_without = without[len(without) // 2]
        median_with = with_[len(with_) // 2]
        print(
            f"  {kind:8s} without {median_without:7.2f} s   with "
            f"{median_with:7.2f} s   ratio {median_with / median_without:5.3f} "
            f"(median of {count}, {runs[(kind, 'with')][0].readings} readings "
            f"a run)",
            flush=True,
        )
        checks = [
            (r.steps["_check_limits_after_billing"], r.wall)
            for r in runs[(kind, "with")]
        ]
        print(
            f"  {kind:8s} the limit check itself: "
            + ", ".join(f"{spent:.2f} s of {wall:.2f} s" for spent, wall in checks)
            + f" ({100 * sum(c[0] for c in checks) / sum(c[1] for c in checks):.1f} %"
            " of the wall time with debt and limits)",
            flush=True,
        )
    return runs


#: The tables every steady run rewrites a row of per meter.
HOT_TABLES = [
    "prepaid_meter",
    "prepaid_meter_billing",
    "prepaid_account",
    "prepaid_daily_usage",
    "prepaid_reading",
    "prepaid_ledger_line",
    "prepaid_reading_charge",
]


def vacuum_hot(registry) -> None:
    """VACUUM ANALYZE the tables a steady run rewrites, before it (not
    timed): each run leaves a dead version of every meter, account and day
    row, which autovacuum removes on a production server (its threshold, 20 %
    of a table, is passed by every poll); a server running with autovacuum
    off (as this machine's) would otherwise measure the bloat of the earlier
    runs."""
    vacuum(registry.db_name, HOT_TABLES)


def steady_runs(
    registry, probe: Probe, fleet: Fleet, batch: int, count: int, prof=None
):
    """``count`` times: one more reading per meter (a poll), then bill it.

    ``prof``: a cProfile enabled around the last run's ``_cron_bill``."""
    runs = []
    for index in range(count):
        with registry.cursor() as cr:
            insert_readings(cr, fleet.meter_ids, 1, 0.5 + index / 100)
        vacuum_hot(registry)
        last = prof if index == count - 1 else None
        runs.append(product_run(registry, probe, fleet, batch, last))
    return runs


def _worker(dbname: str, ready, start, results) -> None:
    """One billing worker process (like an Odoo cron worker in prefork mode)."""
    for path in (REPO_ROOT, BENCH_DIR):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    registry = open_registry(dbname)
    with registry.cursor() as cr:
        env = new_env(cr)
        engine = env["prepaid.billing.engine"]
        ready.put(True)
        start.wait()
        backend0 = backend_cpu(cr)
        cpu0, started = time.process_time(), time.perf_counter()
        done = engine._cron_bill(commit=True)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu0
        results.put((done, wall, cpu, backend_cpu(cr) - backend0))


def workers_run(registry, fleet: Fleet, batch: int, workers: int) -> BillRun:
    """``_cron_bill`` in ``workers`` processes at once (SKIP LOCKED claims)."""
    import multiprocessing

    old = set_param(registry, BATCH_PARAM, batch)
    try:
        with registry.cursor() as cr:
            todo = unbilled(cr, fleet.meter_ids)
            cr.execute("SELECT count(*) FROM prepaid_ledger_line")
            lines0 = cr.fetchone()[0]
        context = multiprocessing.get_context("spawn")
        ready, results, start = context.Queue(), context.Queue(), context.Event()
        procs = [
            context.Process(
                target=_worker, args=(registry.db_name, ready, start, results)
            )
            for _i in range(workers)
        ]
        for proc in procs:
            proc.start()
        for _proc in procs:
            ready.get(timeout=300)
        started = time.perf_counter()
        start.set()
        outcome = [results.get(timeout=900) for _proc in procs]
        wall = time.perf_counter() - started
        for proc in procs:
            proc.join()
        with registry.cursor() as cr:
            cr.execute("SELECT count(*) FROM prepaid_ledger_line")
            lines = cr.fetchone()[0] - lines0
            left = unbilled(cr, fleet.meter_ids)
    finally:
        set_param(registry, BATCH_PARAM, old or False)
    charged = sum(done for done, _w, _c, _p in outcome)
    run = BillRun(
        batch=batch,
        wall=wall,
        cpu=sum(cpu for _d, _w, cpu, _p in outcome),
        lines=lines,
        readings=todo - left,
        steps={},
        sql=[],
        pg_cpu=sum(pg for _d, _w, _c, pg in outcome),
    )
    print(
        f"  {workers} workers, batch {batch:5d}: {wall:6.2f} s  "
        f"{run.readings / wall:9.0f} readings/s  {charged} charges "
        f"(per worker {[d for d, _w, _c, _p in outcome]})  {lines} wallet lines  "
        f"cpu {run.cpu:5.2f} s  postgres cpu {run.pg_cpu:5.2f} s"
        f"{'  WARNING: ' + str(left) + ' left unbilled' if left else ''}",
        flush=True,
    )
    return run


# ---------------------------------------------------------------------------
# (c) statements per batch, and the optional profile, in savepoints
# ---------------------------------------------------------------------------
def sql_per_batch(
    registry,
    probe: Probe,
    sizes: list[int],
    prof_size: int,
    prof: cProfile.Profile | None,
):
    rows = []
    with registry.cursor() as cr:
        env = new_env(cr)
        engine = env["prepaid.billing.engine"]
        jobs = [(size, None) for size in sizes]
        if prof is not None:
            jobs.append((prof_size, prof))
        for size, profiler in jobs:
            cr.execute("SAVEPOINT bench_sql")
            try:
                env.invalidate_all()
                meter_ids = engine._claim_meters(size)
                readings = unbilled(cr, meter_ids)
                probe.reset()
                if profiler is not None:
                    profiler.enable()
                count0, started = cr.sql_log_count, time.perf_counter()
                lines, _resume = engine._bill_claimed_upto(meter_ids)
                env.flush_all()  # pending ORM writes (alarm levels), as a commit
                elapsed = time.perf_counter() - started
                count = cr.sql_log_count - count0
                if profiler is not None:
                    profiler.disable()
                    continue
                cr.execute(
                    """SELECT count(*) FROM prepaid_account WHERE id IN (
                           SELECT billing_account_id FROM prepaid_meter
                            WHERE id = ANY(%s)) AND alarm_level > 0""",
                    [meter_ids],
                )
                alarmed = cr.fetchone()[0]
                rows.append(
                    (
                        len(meter_ids),
                        readings,
                        lines,
                        count,
                        probe.sql["_after_balance_change"],
                        alarmed,
                        elapsed,
                        probe.time["_after_balance_change"],
                    )
                )
            finally:
                cr.execute("ROLLBACK TO SAVEPOINT bench_sql")
                env.invalidate_all()
        cr.rollback()
    return rows


# ---------------------------------------------------------------------------
# (b) naive per-record ORM loop
# ---------------------------------------------------------------------------
def naive_price(version, local: datetime) -> float:
    if version.kind != "tou":
        return version.price
    hour = local.hour + local.minute / 60.0
    for season in version.season_ids:
        if local.month in season._months():
            for period in season.period_ids:
                if period.hour_from <= hour < period.hour_to:
                    return version[f"price_{period.band}"]
    return 0.0


def naive_bill(env, meter_ids: list[int]) -> int:
    """What a straightforward per-record implementation would do."""
    import pytz

    engine = env["prepaid.billing.engine"]
    Ledger = env["prepaid.ledger.line"]
    readings = env["prepaid.reading"].search(
        [("meter_id", "in", meter_ids)], order="meter_id, id"
    )
    posted = 0
    for reading in readings:
        meter = reading.meter_id
        if meter.billed_reading_id and reading.id <= meter.billed_reading_id.id:
            continue
        account = meter.billing_account_id
        if account.state != "open" or account.mode != "prepaid":
            continue
        tariff = meter.tariff_id or account.tariff_id
        local = (
            pytz.utc.localize(reading.read_at)
            .astimezone(pytz.timezone(meter.site_id.tz or "UTC"))
            .replace(tzinfo=None)
        )
        version = tariff._version_at(local)
        amount = round(reading.delta_kwh * naive_price(version, local), 2)
        if reading.anomaly != "lower" and reading.delta_kwh > 0 and amount:
            Ledger._post(
                [
                    {
                        "account_id": account.id,
                        "line_type": "consumption",
                        "amount": -amount,
                        "date": reading.read_at,
                        "name": f"{reading.delta_kwh} kWh",
                        "meter_id": meter.id,
                        "reading_id": reading.id,
                        "quantity": reading.delta_kwh,
                        "unit": "kWh",
                        "tariff_version_id": version.id,
                    }
                ]
            )
            engine._after_balance_change(account)
            posted += 1
        meter.write({"billed_reading_id": reading.id})
    return posted


@dataclass
class NaiveRun:
    wall: float
    cpu: float
    readings: int
    lines: int


def naive_run(registry, fleet: Fleet, args) -> NaiveRun:
    with registry.cursor() as cr:
        env = new_env(cr)
        env["prepaid.meter"].browse(fleet.naive_meter_ids).write({"active": True})
        count = unbilled(cr, fleet.naive_meter_ids)
        cr.commit()
        cpu0, started = time.process_time(), time.perf_counter()
        lines = naive_bill(env, fleet.naive_meter_ids)
        env.flush_all()
        cr.commit()
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu0
    print(
        f"  naive loop: {count} readings in {wall:6.2f} s  "
        f"{count / wall:7.0f} readings/s  {lines} lines",
        flush=True,
    )
    return NaiveRun(wall=wall, cpu=cpu, readings=count, lines=lines)


# ---------------------------------------------------------------------------
# (d) correctness
# ---------------------------------------------------------------------------
def level_for(balance: float) -> int:
    level = 0
    for number, threshold in enumerate(ALARMS, start=1):
        if round(balance - threshold, 2) <= 0:
            level = number
    return level


def check(
    registry,
    fleet: Fleet,
    meter_ids: list[int],
    account_ids: list[int],
    evidence: str = "charges",
):
    """Correctness of a run; ``evidence``: "charges" (the product: one charge
    row per reading) or "lines" (the naive loop: one wallet line per reading)."""
    out: dict[str, object] = {"evidence": evidence}
    per_reading = (
        """SELECT id AS reading_id, count(*) AS lines FROM prepaid_reading_charge
            WHERE meter_id = ANY(%s) GROUP BY id"""
        if evidence == "charges"
        else """SELECT reading_id, count(*) AS lines FROM prepaid_ledger_line
                 WHERE line_type = 'consumption' AND meter_id = ANY(%s)
                 GROUP BY reading_id"""
    )
    with registry.cursor() as cr:
        cr.execute(
            f"""SELECT count(*) FILTER (WHERE r.delta_kwh > 0),
                      count(*) FILTER (WHERE r.delta_kwh > 0 AND n.lines = 1),
                      count(*) FILTER (WHERE n.lines > 1),
                      count(*) FILTER (WHERE r.delta_kwh <= 0 AND n.lines > 0)
                 FROM prepaid_reading r
                 LEFT JOIN ({per_reading}) n ON n.reading_id = r.id
                WHERE r.meter_id = ANY(%s)""",  # noqa: S608 - constants
            [meter_ids, meter_ids],
        )
        out["readings"], out["one_line"], out["dupes"], out["spurious"] = cr.fetchone()
        out["charges_vs_lines"] = 0
        if evidence == "charges":
            # every wallet line is the sum of its charges, to the cent
            cr.execute(
                """SELECT count(*) FROM prepaid_ledger_line l
                     LEFT JOIN (SELECT ledger_line_id, sum(amount) AS total
                                  FROM prepaid_reading_charge
                                 WHERE meter_id = ANY(%s)
                                 GROUP BY ledger_line_id) c
                       ON c.ledger_line_id = l.id
                    WHERE l.line_type = 'consumption' AND l.meter_id = ANY(%s)
                      AND -l.amount IS DISTINCT FROM c.total""",
                [meter_ids, meter_ids],
            )
            out["charges_vs_lines"] = cr.fetchone()[0]
        cr.execute(
            """SELECT a.id, a.balance, coalesce(l.total, 0), coalesce(a.alarm_level, 0),
                      a.supply_state, l.last_after
                 FROM prepaid_account a
                 LEFT JOIN (SELECT account_id, sum(amount) AS total,
                                   (array_agg(balance_after ORDER BY id DESC))[1]
                                       AS last_after
                              FROM prepaid_ledger_line GROUP BY account_id) l
                   ON l.account_id = a.id
                WHERE a.id = ANY(%s)""",
            [account_ids],
        )
        rows = cr.fetchall()
        out["sum_wallets"] = round(float(sum(r[1] for r in rows)), 2)
        out["sum_ledger"] = round(float(sum(r[2] for r in rows)), 2)
        out["balance_mismatch"] = sum(1 for r in rows if round(r[1] - r[2], 2))
        out["after_mismatch"] = sum(1 for r in rows if round(r[1] - r[5], 2))
        out["level_mismatch"] = sum(1 for r in rows if level_for(float(r[1])) != r[3])
        levels = [0, 0, 0, 0]
        for r in rows:
            levels[r[3]] += 1
        out["levels"] = levels
        out["overdrawn"] = sum(1 for r in rows if r[1] <= 0)
        out["cut_off"] = sum(1 for r in rows if r[4] == "cut_off")
        cr.execute(
            """SELECT event, count(*) FROM prepaid_alarm_notice
                WHERE account_id = ANY(%s) GROUP BY event ORDER BY event""",
            [account_ids],
        )
        out["notices"] = dict(cr.fetchall())
        cr.execute(
            """SELECT command_type, count(*) FROM prepaid_meter_command
                WHERE meter_id = ANY(%s) GROUP BY command_type""",
            [meter_ids],
        )
        out["commands"] = dict(cr.fetchall())
    return out


def recognize(registry, fleet: Fleet) -> tuple[dict, float, dict, int]:
    with registry.cursor() as cr:
        env = new_env(cr)
        engine = env["prepaid.billing.engine"]
        company = env["res.company"].browse(fleet.company_id)
        before = engine._reconciliation(company)
        started = time.perf_counter()
        move = engine._recognize(company)
        cr.commit()
        elapsed = time.perf_counter() - started
        after = engine._reconciliation(company)
        return before, elapsed, after, len(move.line_ids)


# ---------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------
def print_profile(
    prof: cProfile.Profile, top: int, size: int, what: str = "batch"
) -> None:
    for key in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(prof, stream=out).strip_dirs().sort_stats(key).print_stats(top)
        text = out.getvalue()
        start = text.find("   ncalls")
        print(f"\n--- cProfile of one {what} (batches of {size} meters), by {key} ---")
        print(text[start:] if start >= 0 else text)


def report(
    args,
    fleet,
    runs,
    naive,
    sql_rows,
    checks,
    naive_checks,
    recog,
    parallel=None,
    steady=None,
):
    print("\n================ billing benchmark ================")
    print(
        f"command : cd {REPO_ROOT} && PYTHONPATH=. python3 "
        + " ".join(shlex.quote(a) for a in sys.argv)
    )
    print(
        f"machine : {os.cpu_count()} cores shared by Odoo (this process) and "
        f"PostgreSQL; tariff {args.tariff}; site tz {TZ}"
    )
    n_meters = len(fleet.meter_ids)
    print(
        f"\n(a) product: {n_meters} meters x {args.readings} readings, "
        f"prepaid.billing.engine._cron_bill(commit=True)"
    )
    print(
        "    batch   wall s   readings/s  w.lines    cpu s  | read, price+COPY  "
        "post  meters  alarms  claim  | sql/batch"
    )
    for run in runs:
        steps = run.steps
        other = (
            steps["_bill_claimed_upto"]
            - steps["_post_batch"]
            - steps["_store_meter_billing"]
            - steps["_after_balance_change"]
        )
        print(
            f"    {run.batch:5d}  {run.wall:7.2f}  {run.readings / run.wall:11.0f}"
            f"  {run.lines:7d}  {run.cpu:6.2f}  |  {other:15.2f}"
            f"  {steps['_post_batch']:5.2f}  {steps['_store_meter_billing']:6.2f}"
            f"  {steps['_after_balance_change']:6.2f}  {steps['_claim_meters']:5.2f}"
            f"  | {min(run.sql, default=0)}-{max(run.sql, default=0)} + COPY"
        )
    print(
        "    (w.lines: wallet lines, one per meter and local month of a batch; each "
        "reading has its own charge row, streamed with COPY while pricing)"
    )
    print("    (goal <= 20 s, stretch <= 10 s for 1,000,000 readings)")
    if parallel:
        print(
            f"\n(a2) the same readings again (after a reset) billed by "
            f"{args.workers} worker processes running _cron_bill at once (as "
            f"Odoo's cron workers in prefork mode), batch {parallel.batch}:\n"
            f"    {parallel.wall:7.2f} s  {parallel.readings / parallel.wall:9.0f} "
            f"readings/s  {parallel.lines} wallet lines  cpu {parallel.cpu:6.2f} s "
            f"(sum of the workers)"
        )
    if steady:
        walls = ", ".join(f"{run.wall:.2f}" for run in steady)
        print(
            f"\n(a3) steady state, as after each poll: one new reading for each of "
            f"the {len(fleet.meter_ids)} meters, billed by _cron_bill (one wallet "
            f"line per reading): {walls} s per run"
        )
    if naive:
        first = runs[0]
        product = first.wall / first.readings
        per = naive.wall / naive.readings
        print(
            f"\n(b) naive per-record ORM loop: {naive.readings} readings of "
            f"{args.naive_meters} other meters"
        )
        print(
            f"    {naive.wall:7.2f} s  {naive.readings / naive.wall:9.0f} readings/s"
            f"  {per * 1e3:7.3f} ms/reading  ({naive.lines} lines)"
        )
        print(
            f"    product {product * 1e6:7.2f} us/reading (batch {first.batch}) -> "
            f"speed-up {per / product:6.1f}x per reading   (goal >= 50x)"
        )
    if sql_rows:
        print("\n(c) SQL statements per _bill_claimed_upto (savepoint, rolled back)")
        print(
            "    meters  readings  charged  statements  of which alarms"
            "  (accounts alarmed)  time s  alarms s"
        )
        for size, readings, lines, count, alarm_sql, alarmed, t, ta in sql_rows:
            print(
                f"    {size:6d}  {readings:8d}  {lines:6d}  {count:10d}  "
                f"{alarm_sql:15d}  ({alarmed:16d})  {t:6.3f}  {ta:7.3f}"
            )
        print(
            "    (goal: constant; plus one COPY of the charges, not counted by the "
            "cursor)"
        )
    print("\n(d) correctness")
    for label, c in (("product", checks), ("naive", naive_checks)):
        if not c:
            continue
        ok = c["one_line"] == c["readings"] and not c["dupes"] and not c["spurious"]
        what = "charge" if c["evidence"] == "charges" else "consumption line"
        print(
            f"    {label:<8} readings with delta>0: {c['readings']}, with exactly one "
            f"{what}: {c['one_line']} -> {'OK' if ok else 'FAIL'}"
            f" (dupes {c['dupes']}, on delta 0: {c['spurious']})"
        )
        if c["evidence"] == "charges":
            ok = not c["charges_vs_lines"]
            print(
                f"    {label:<8} wallet lines != sum of their charges: "
                f"{c['charges_vs_lines']} -> {'OK' if ok else 'FAIL'}"
            )
        ok = (
            c["sum_wallets"] == c["sum_ledger"]
            and not c["balance_mismatch"]
            and not c["after_mismatch"]
        )
        print(
            f"    {label:<8} sum wallets {c['sum_wallets']:.2f} == sum ledger "
            f"{c['sum_ledger']:.2f}; accounts off: {c['balance_mismatch']}, last "
            f"balance_after off: {c['after_mismatch']} -> {'OK' if ok else 'FAIL'}"
        )
        print(
            f"    {label:<8} alarm levels 0/1/2/3: {c['levels']}, level != "
            f"expected from balance: {c['level_mismatch']}; balance <= 0: "
            f"{c['overdrawn']}, cut off: {c['cut_off']}; notices {c['notices']}; "
            f"commands {c['commands']}"
        )
    if recog:
        before, elapsed, after, move_lines = recog
        print(
            f"    reconciliation before _recognize: {before}\n"
            f"    _recognize: {elapsed:.2f} s ({move_lines} move lines)\n"
            f"    reconciliation after  _recognize: {after}"
        )
    print("\nsetup   : " + ", ".join(f"{k} {v:.1f} s" for k, v in fleet.setup.items()))


# ---------------------------------------------------------------------------
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="bench_billing", help="database (reused)")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument("--update", action="store_true", help="-u the module")
    parser.add_argument("--tariff", choices=("flat", "tou"), default="flat")
    parser.add_argument("--gateways", type=int, default=100)
    parser.add_argument("--meters", type=int, default=100, help="per gateway")
    parser.add_argument("--readings", type=int, default=100, help="per meter")
    parser.add_argument("--naive-meters", type=int, default=100)
    parser.add_argument("--naive-readings", type=int, default=100, help="per meter")
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument(
        "--batches",
        default="1000",
        help=f"{BATCH_PARAM} values; each after the first re-bills after a reset",
    )
    parser.add_argument("--sizes", default="10,100,1000", help="(c) batches")
    parser.add_argument(
        "--steady",
        type=int,
        default=3,
        help="(a3) runs of one new reading per meter, each billed (0: skip)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="(a2) re-bill after a reset with this many worker processes (0: skip)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="cProfile one batch of the first --batches size (rolled back)",
    )
    parser.add_argument(
        "--steady-batch",
        type=int,
        default=0,
        help=f"{BATCH_PARAM} of the (a3) steady runs (default: the first --batches)",
    )
    parser.add_argument(
        "--steady-workers",
        type=int,
        default=0,
        help="(a3) each steady run billed by this many worker processes at once",
    )
    parser.add_argument(
        "--steady-compare",
        action="store_true",
        help="(a3) alternates runs with every batch of --steady-batch meters "
        "and runs with the engine's steady batches",
    )
    parser.add_argument(
        "--setup-only",
        action="store_true",
        help="build the fleet, bill its readings once and stop (then --reuse)",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="no setup: the newest bench fleet of --db, (a3) steady runs only",
    )
    parser.add_argument(
        "--profile-steady",
        action="store_true",
        help="cProfile the last (a3) steady run (_cron_bill, committed)",
    )
    parser.add_argument("--profile-top", type=int, default=30)
    parser.add_argument(
        "--debt-limits",
        type=int,
        default=0,
        help="(e) rounds of billing without and with debt recovery and limits "
        "on every account (0: skip)",
    )
    parser.add_argument(
        "--sql-top",
        type=int,
        default=0,
        help="time every statement of the first (a) run; print the N slowest kinds",
    )
    return parser.parse_args(argv)


class SqlTimer:
    """Wall time of the statements run while active, by statement kind (its
    first words, numbers and whitespace folded)."""

    def __init__(self):
        self.time: dict[str, float] = {}
        self.count: dict[str, int] = {}
        self.active = False
        from odoo import sql_db

        timer = self
        for name in ("execute", "copy_expert"):
            orig = getattr(sql_db.Cursor, name, None)
            if orig is None:  # delegated to psycopg2's cursor

                def orig(self_, *args, _name=name, **kwargs):
                    return getattr(self_._obj, _name)(*args, **kwargs)

            def wrapper(self_, query, *args, _orig=orig, **kwargs):
                if not timer.active:
                    return _orig(self_, query, *args, **kwargs)
                started = time.perf_counter()
                try:
                    return _orig(self_, query, *args, **kwargs)
                finally:
                    key = " ".join(str(query).split())[:110]
                    timer.time[key] = timer.time.get(key, 0.0) + (
                        time.perf_counter() - started
                    )
                    timer.count[key] = timer.count.get(key, 0) + 1

            setattr(sql_db.Cursor, name, wrapper)

    def reset(self) -> None:
        self.time.clear()
        self.count.clear()

    def print(self, top: int, what: str = "the first (a) run") -> None:
        total = sum(self.time.values())
        print(f"\nSQL of {what}: {total:.2f} s in all; slowest kinds:")
        for key, spent in sorted(self.time.items(), key=lambda kv: -kv[1])[:top]:
            print(f"  {spent:7.2f} s {self.count[key]:6d}x  {key}")


def reuse_fleet(registry) -> Fleet:
    """The fleet of the newest ``Bench Billing`` company of the database
    (``--reuse``): its product meters active again, the others archived."""
    with registry.cursor() as cr:
        cr.execute(
            """SELECT id FROM res_company WHERE name LIKE 'Bench Billing %%'
                ORDER BY id DESC LIMIT 1"""
        )
        row = cr.fetchone()
        if not row:
            raise SystemExit("--reuse: no Bench Billing company in this database")
        company_id = row[0]
        cr.execute(
            """UPDATE prepaid_meter SET active = (company_id = %s AND name LIKE 'BB%%')
                WHERE company_id IN (
                      SELECT id FROM res_company WHERE name LIKE 'Bench Billing %%')""",
            [company_id],
        )
        cr.execute(
            """SELECT m.id, m.billing_account_id FROM prepaid_meter m
                WHERE m.company_id = %s AND m.active ORDER BY m.id""",
            [company_id],
        )
        rows = cr.fetchall()
        cr.execute("SELECT tariff_id FROM prepaid_account WHERE id = %s", [rows[0][1]])
        tariff_id = cr.fetchone()[0]
    print(f"  reusing company {company_id}: {len(rows)} meters", flush=True)
    return Fleet(
        company_id=company_id,
        tariff_id=tariff_id,
        meter_ids=[r[0] for r in rows],
        account_ids=[r[1] for r in rows],
        naive_meter_ids=[],
        naive_account_ids=[],
    )


STEADY_PARAM = "prepaid_billing.bill_batch_meters_steady"


def run_steady(args, registry, probe, fleet, batch, timer):
    print(f"\n(a3) steady state: one new reading per meter, batch {batch}", flush=True)
    if timer is not None:
        timer.reset()
        timer.active = True
    steady_prof = cProfile.Profile() if args.profile_steady else None
    if args.steady_workers > 1:
        steady = []
        for index in range(args.steady):
            with registry.cursor() as cr:
                insert_readings(cr, fleet.meter_ids, 1, 0.7 + index / 100)
            vacuum_hot(registry)
            steady.append(workers_run(registry, fleet, batch, args.steady_workers))
    elif args.steady_compare:
        steady = steady_compare(registry, probe, fleet, batch, args.steady)
    else:
        steady = steady_runs(registry, probe, fleet, batch, args.steady, steady_prof)
    if timer is not None:
        timer.active = False
        timer.print(args.sql_top, "the steady runs")
    if steady_prof is not None:
        print_profile(steady_prof, args.profile_top, batch, "steady run")
    walls = ", ".join(f"{run.wall:.2f}" for run in steady)
    print(
        f"  steady: {len(fleet.meter_ids)} meters, batch {batch}: {walls} s "
        f"per run; load {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    return steady


def steady_compare(registry, probe, fleet, batch, count):
    """``count`` rounds of two steady runs, alternating which goes first:
    every batch of ``batch`` meters (as before issue 22: the steady size
    set to the batch) and the engine's own steady batches. Prints the
    medians of wall time and of CPU time (this process + its PostgreSQL
    backend) and their ratios."""
    runs = {"fixed": [], "steady": []}
    for index in range(count):
        order = ("fixed", "steady") if index % 2 == 0 else ("steady", "fixed")
        for mode in order:
            # None leaves the parameter as it is (the engine's default)
            old = set_param(registry, STEADY_PARAM, batch if mode == "fixed" else None)
            try:
                print(f"  [{mode}]", flush=True)
                with registry.cursor() as cr:
                    insert_readings(cr, fleet.meter_ids, 1, 0.3 + index / 100)
                vacuum_hot(registry)
                runs[mode].append(product_run(registry, probe, fleet, batch))
            finally:
                set_param(registry, STEADY_PARAM, old or False)

    def median(values):
        return sorted(values)[len(values) // 2]

    figures = {
        mode: (
            median([r.wall for r in done]),
            median([r.cpu + r.pg_cpu for r in done]),
        )
        for mode, done in runs.items()
    }
    for mode, (wall, cpu) in figures.items():
        print(
            f"  {mode:6s} median wall {wall:6.2f} s, cpu (odoo + postgres) "
            f"{cpu:6.2f} s over {count} runs",
            flush=True,
        )
    print(
        f"  steady / fixed: wall {figures['steady'][0] / figures['fixed'][0]:.2f}, "
        f"cpu {figures['steady'][1] / figures['fixed'][1]:.2f} "
        f"(load {os.getloadavg()[0]:.2f})",
        flush=True,
    )
    return runs["steady"]


def run(args) -> None:
    registry = open_registry(args.db)
    probe = Probe(registry)
    batches = [int(b) for b in args.batches.split(",") if b]
    steady_batch = args.steady_batch or batches[0]
    timer = SqlTimer() if args.sql_top else None
    if args.reuse:
        fleet = reuse_fleet(registry)
        steady = run_steady(args, registry, probe, fleet, steady_batch, timer)
        checks = check(registry, fleet, fleet.meter_ids, fleet.account_ids)
        report(args, fleet, [], None, [], checks, None, None, steady=steady)
        return
    print("setting up", flush=True)
    fleet = build_fleet(registry, args)
    if args.setup_only:
        # bill what the setup inserted: the next --reuse run starts steady
        product_run(registry, probe, fleet, steady_batch)
        return
    sizes = [int(s) for s in args.sizes.split(",") if s]
    prof = cProfile.Profile() if args.profile else None
    print("\n(c) statements per batch", flush=True)
    sql_rows = sql_per_batch(registry, probe, sizes, batches[0], prof)
    print("\n(a) product path", flush=True)
    runs = []
    for index, batch in enumerate(batches):
        if index:
            reset_billing(registry, fleet)
        if timer is not None:
            timer.active = not index
        runs.append(product_run(registry, probe, fleet, batch))
    if timer is not None:
        timer.active = False
        timer.print(args.sql_top)
    parallel = None
    if args.workers > 1:
        print(f"\n(a2) {args.workers} billing workers", flush=True)
        reset_billing(registry, fleet)
        parallel = workers_run(registry, fleet, batches[0], args.workers)
    steady = None
    if args.steady:
        steady = run_steady(args, registry, probe, fleet, steady_batch, timer)
    if args.debt_limits:
        print("\n(e) debt recovery and limits on every account", flush=True)
        debt_limit_runs(registry, probe, fleet, batches[0], args.debt_limits)
    naive = None
    if not args.skip_naive:
        print("\n(b) naive loop", flush=True)
        naive = naive_run(registry, fleet, args)
    print("\n(d) checks", flush=True)
    checks = check(registry, fleet, fleet.meter_ids, fleet.account_ids)
    naive_checks = (
        check(registry, fleet, fleet.naive_meter_ids, fleet.naive_account_ids, "lines")
        if naive
        else None
    )
    recog = recognize(registry, fleet)
    if prof is not None:
        print_profile(prof, args.profile_top, batches[0])
    report(
        args,
        fleet,
        runs,
        naive,
        sql_rows,
        checks,
        naive_checks,
        recog,
        parallel,
        steady,
    )


def main(argv=None) -> int:
    return run_in_database(parse_args(argv), run, MODULE)


if __name__ == "__main__":
    sys.exit(main())
