"""Several Odoo servers on one PostgreSQL: two real Odoo processes, one database.

Starts a simulated meter fleet and two Odoo server processes (threaded, cron
threads in each, HTTP on two ports) on one scratch database, runs an hour of
simulated time, kills one server with SIGKILL at random moments and restarts
it, then checks and prints:

- polls: every gateway read once per interval (two readings of a meter less
  than half an interval apart are a duplicate poll), and how many intervals
  were read;
- billing: every reading charged exactly once, none left unbilled, wallets ==
  ledger, the liability account == wallets + unrecognised consumption (GL);
- commands: none queued or sending at the end, no relay written twice in a
  row with the same command (the simulator counts every write);
- the share of readings stored, readings charged and commands settled by each
  server (counted by PostgreSQL triggers in the scratch database, by the
  ``application_name`` of the session that wrote them).

Time: the simulator runs ``--speed`` simulated seconds per real second, and
each Odoo process runs its Python clock at the same factor (freezegun,
ticking, scaled: ``fields.Datetime.now()`` and ``time.time()``; monotonic
time, sleeps and socket timeouts stay real). Gateways are due every
``--interval`` simulated minutes. Odoo's cron scheduler compares ``nextcall``
with PostgreSQL's ``now()``, which no process can speed up, so the bench plays
the scheduler's clock: it adds an ``ir.cron.trigger`` for the polling and
command jobs twice per simulated minute, for the two billing jobs once a
minute and for the recovery job every five minutes, and wakes the cron
threads of both servers (``pg_notify('cron_trigger')``), as Odoo does for a
due job. Which server runs a job is decided by Odoo itself (``ir_cron`` row
locks), which claims inside a job by the product (``FOR NO KEY UPDATE SKIP LOCKED``, bus
claims with an expiry, per-reading charge keys).

The scratch database is a copy of ``--template`` (a database with
``prepaid_billing`` installed; ``make test`` passes its own) or, without one,
a new database where ``prepaid_billing`` is installed first. It is dropped at
the end unless ``--keep``.

    PYTHONPATH=. python3 bench/servers.py [--minutes 60] [--kills 3]
        [--template DB] [--db NAME] [--ports 18107,18117] [--json]

``--serve`` is the server launcher the bench itself uses (the clock, then
``odoo-bin`` with the arguments after it).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent
for _path in (REPO_ROOT, BENCH_DIR):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

#: Environment of a server process: its clock's origin (epoch seconds) and
#: speed factor.
CLOCK_ENV = "PREPAID_BENCH_CLOCK"
#: The cron jobs the bench schedules, by XML id, and every how many
#: simulated minutes.
JOBS = {
    "prepaid_metering.ir_cron_poll_gateways": 0.5,
    "prepaid_billing.ir_cron_bill_readings": 1.0,
    "prepaid_billing.ir_cron_bill_readings_2": 1.0,
    "prepaid_metering.ir_cron_meter_commands": 0.5,
    "prepaid_metering.ir_cron_recover_commands": 5.0,
}
#: Work counted per server in the scratch database.
WORK_SQL = """
CREATE TABLE bench_servers_work (
    app text NOT NULL, kind text NOT NULL, n integer NOT NULL);
CREATE FUNCTION bench_servers_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO bench_servers_work
    SELECT current_setting('application_name'), TG_ARGV[0], count(*)
      FROM new_rows HAVING count(*) > 0;
    RETURN NULL;
END $$;
CREATE FUNCTION bench_servers_settled() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO bench_servers_work
    SELECT current_setting('application_name'), 'commands', count(*)
      FROM new_rows n JOIN old_rows o ON o.id = n.id
     WHERE n.state = 'done' AND o.state != 'done' HAVING count(*) > 0;
    RETURN NULL;
END $$;
CREATE TRIGGER bench_servers_readings AFTER INSERT ON prepaid_reading
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION bench_servers_inserted('readings');
CREATE TRIGGER bench_servers_charges AFTER INSERT ON prepaid_reading_charge
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION bench_servers_inserted('charges');
CREATE TRIGGER bench_servers_commands AFTER UPDATE ON prepaid_meter_command
    REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION bench_servers_settled();
"""


# ---------------------------------------------------------------------------
# The server launcher (--serve)
# ---------------------------------------------------------------------------
def serve(odoo_args: list[str]) -> None:
    """Run ``odoo-bin odoo_args`` with this process's clock sped up.

    ``datetime.now()``/``utcnow()`` and ``time.time()`` run ``factor`` times
    faster from the origin (the same for every server of the bench, and for
    a restarted one); monotonic clocks stay real, so sleeps, socket and
    asyncio timeouts (pymodbus) are real time.
    """
    origin, factor = (float(v) for v in os.environ[CLOCK_ENV].split(":"))
    import freezegun.api as fapi

    class ScaledTicking(fapi.TickingDateTimeFactory):
        def __call__(self):
            return (
                self.time_to_freeze + (fapi.real_datetime.now() - self.start) * factor
            )

    fapi.TickingDateTimeFactory = ScaledTicking
    base = datetime(1970, 1, 1) + timedelta(seconds=origin)
    real_now = datetime.now(timezone.utc).replace(tzinfo=None)
    clock = fapi.freeze_time(base + (real_now - base) * factor, tick=True)
    # Every thread gets the fast clock (the default list would give threads
    # started by ``threading`` the real one); asyncio keeps the real one.
    clock.ignore = ("asyncio", "pymodbus")
    clock.start()
    import time as _time

    for name in ("monotonic", "perf_counter", "monotonic_ns", "perf_counter_ns"):
        real = getattr(fapi, f"real_{name}", None)
        if real is not None:
            setattr(_time, name, real)
    # Log lines in the fast time too (a plain function as a class attribute
    # would be bound to the formatter).
    import logging

    logging.Formatter.converter = staticmethod(_time.localtime)
    import odoo.cli

    sys.argv = ["odoo-bin", *odoo_args]
    odoo.cli.main()


# ---------------------------------------------------------------------------
# Database
# ---------------------------------------------------------------------------
def psql(dbname: str, sql: str, params=None, fetch=False):
    import psycopg2

    cnx = psycopg2.connect(dbname=dbname)
    cnx.autocommit = True
    try:
        with cnx.cursor() as cr:
            cr.execute(sql, params)
            return cr.fetchall() if fetch else None
    finally:
        cnx.close()


def make_database(args) -> None:
    """The scratch database: a copy of the template, or a new install."""
    from poll import addons_path, odoo_bin, odoo_db_args

    psql("postgres", f'DROP DATABASE IF EXISTS "{args.db}"')
    if args.template:
        psql("postgres", f'CREATE DATABASE "{args.db}" TEMPLATE "{args.template}"')
        print(f"database {args.db}: copy of {args.template}", flush=True)
        return
    cmd = [
        *odoo_bin(),
        "-d",
        args.db,
        "-i",
        "prepaid_billing",
        "--stop-after-init",
        "--without-demo=all",
        "--addons-path",
        addons_path(),
        "--log-level=warn",
        "--http-port",
        str(args.ports[0]),
        *odoo_db_args(),
    ]
    started = time.perf_counter()
    subprocess.run(cmd, check=True)
    print(
        f"database {args.db}: prepaid_billing installed in "
        f"{time.perf_counter() - started:.0f} s",
        flush=True,
    )


@dataclass
class Setup:
    company_id: int
    gateway_ids: list[int]
    meter_ids: list[int]
    account_ids: list[int]
    cash_journal_id: int
    cron_ids: dict[int, float]


def setup_fleet(registry, endpoints: list[dict], args) -> Setup:
    """Company, tariff, gateways on the simulator, meters, open accounts with
    small opening balances (some run out within the hour: cut-off, then a
    recharge: restore); the jobs' ids. Everything else in the copy is left
    alone but its gateways, which are deactivated (nobody listens there)."""
    from billing import (
        create_accounts,
        create_company,
        create_gateway_meters,
        create_tariff,
        open_balances,
    )
    from poll import new_env

    rng = random.Random(args.seed)
    with registry.cursor() as cr:
        env = new_env(cr)
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        env, cash = create_company(env, f"servers {stamp}")
        env.company.write(
            {
                "prepaid_alarm1_amount": 0.0,
                "prepaid_alarm2_amount": 0.0,
                "prepaid_alarm3_amount": 0.0,
            }
        )
        tariff = create_tariff(env, "flat")
        site = env["prepaid.site"].create(
            {"name": f"servers-{stamp}", "code": f"S{stamp}", "tz": "Asia/Shanghai"}
        )
        gateways = env["prepaid.gateway"].create(
            [
                {
                    "name": f"SRV{g + 1:02d}",
                    "site_id": site.id,
                    "protocol": "modbus_tcp",
                    "host": endpoint["host"],
                    "port": endpoint["port"],
                    "timeout_s": 2.0,
                    "poll_interval_min": args.interval,
                }
                for g, endpoint in enumerate(endpoints)
            ]
        )
        meters = create_gateway_meters(env, gateways, "SRV", args.meters)
        accounts = create_accounts(env, meters, tariff, "Servers")
        openings = {a: round(rng.uniform(0.3, 2.0), 2) for a in accounts.ids}
        open_balances(env, cash, accounts, openings)
        cr.execute(
            "UPDATE prepaid_gateway SET active = false WHERE id != ALL(%s)",
            [gateways.ids],
        )
        # Commands of other records would go to gateways nobody serves.
        cr.execute(
            """UPDATE prepaid_meter_command SET state = 'failed',
                      followup_pending = false
                WHERE state IN ('queued', 'sending') AND gateway_id != ALL(%s)""",
            [gateways.ids],
        )
        cr.execute(WORK_SQL)
        crons = {env.ref(xmlid).id: every for xmlid, every in JOBS.items()}
        # The other jobs (mail queues, partner autocomplete's online sync...)
        # are not what is measured; they would also take the cron threads.
        cr.execute(
            "UPDATE ir_cron SET active = false WHERE id != ALL(%s)", [list(crons)]
        )
        cr.commit()
        return Setup(
            company_id=env.company.id,
            gateway_ids=gateways.ids,
            meter_ids=meters.ids,
            account_ids=accounts.ids,
            cash_journal_id=cash.id,
            cron_ids=crons,
        )


# ---------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------
@dataclass
class Server:
    label: str
    port: int
    args: argparse.Namespace
    clock: str
    proc: subprocess.Popen | None = None
    logs: list[Path] = field(default_factory=list)
    starts: int = 0
    kills: int = 0

    def start(self) -> None:
        from poll import addons_path, odoo_db_args

        self.starts += 1
        log = Path(self.args.logdir) / f"{self.label}-{self.starts}.log"
        self.logs.append(log)
        env = dict(
            os.environ,
            **{CLOCK_ENV: self.clock, "ODOO_PGAPPNAME": f"bench-{self.label}-{{pid}}"},
        )
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--serve",
            "--",
            "-d",
            self.args.db,
            "--db-filter",
            f"^{self.args.db}$",
            "--addons-path",
            addons_path(),
            "--http-port",
            str(self.port),
            "--workers",
            "0",
            "--max-cron-threads",
            str(self.args.cron_threads),
            "--logfile",
            str(log),
            # the threaded server's time limits are measured with the fast
            # clock: the usual 120 s of real time
            "--limit-time-real",
            str(int(120 * self.args.speed)),
            "--log-level",
            "info",
            *odoo_db_args(),
        ]
        self.proc = subprocess.Popen(cmd, env=env)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        self.kills += 1
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def problems(self) -> list[str]:
        """WARNING/ERROR lines of its logs (a killed log is cut, not wrong)."""
        lines = []
        for log in self.logs:
            if log.exists():
                for line in log.read_text(errors="replace").splitlines():
                    parts = line.split(" ", 4)
                    if len(parts) > 3 and parts[3] in ("WARNING", "ERROR", "CRITICAL"):
                        lines.append(f"{self.label}: {line}")
        return lines


def wait_ready(servers: list[Server], timeout: float) -> None:
    """Until every server's registry is loaded (its HTTP port answers)."""
    import urllib.request

    deadline = time.monotonic() + timeout
    for server in servers:
        url = f"http://127.0.0.1:{server.port}/web/webclient/version_info"
        while True:
            if not server.alive():
                raise RuntimeError(f"server {server.label} exited; see {server.logs}")
            try:
                request = urllib.request.Request(
                    url,
                    data=b'{"jsonrpc": "2.0", "params": {}}',
                    headers={"Content-Type": "application/json"},
                )
                urllib.request.urlopen(request, timeout=5).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"server {server.label} not ready") from None
                time.sleep(0.5)


def wake_jobs(dbname: str, cron_ids: list[int]) -> None:
    """What Odoo does for due jobs: a trigger each, then wake the cron threads
    (they listen in the ``postgres`` database)."""
    if cron_ids:
        psql(
            dbname,
            """INSERT INTO ir_cron_trigger (cron_id, call_at, create_uid, write_uid,
                                            create_date, write_date)
               SELECT id, now() at time zone 'UTC', 1, 1, now() at time zone 'UTC',
                      now() at time zone 'UTC'
                 FROM unnest(%s::int4[]) AS id""",
            [cron_ids],
        )
    psql("postgres", "SELECT pg_notify('cron_trigger', %s)", [dbname])


# ---------------------------------------------------------------------------
# The simulator, with every write counted
# ---------------------------------------------------------------------------
class WriteLog:
    """Every register write the simulated meters accept, in order."""

    def __init__(self):
        self.writes: list[tuple[str, int, tuple]] = []

    def install(self):
        from simulator import meters

        log = self
        for cls in (meters.ElectricMeter, meters.WaterMeter):
            orig = cls._write

            def wrapper(meter, function_code, address, values, _orig=orig):
                _orig(meter, function_code, address, values)
                log.writes.append((meter.serial, address, tuple(values)))

            cls._write = wrapper

    def duplicates(self) -> int:
        """Writes that repeat the meter's previous write to the same register
        (a relay cut twice in a row: a command sent twice)."""
        last, repeated = {}, 0
        for serial, address, values in self.writes:
            key = (serial, address)
            if last.get(key) == values:
                repeated += 1
            last[key] = values
        return repeated


# ---------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------
def check(registry, setup: Setup, args) -> dict:
    from poll import new_env

    out = {}
    interval = timedelta(minutes=args.interval)
    with registry.cursor() as cr:
        env = new_env(cr)
        cr.execute(
            """SELECT meter_id, read_at FROM prepaid_reading
                WHERE meter_id = ANY(%s) ORDER BY meter_id, read_at, id""",
            [setup.meter_ids],
        )
        by_meter = defaultdict(list)
        for meter_id, read_at in cr.fetchall():
            by_meter[meter_id].append(read_at)
        duplicates = 0
        for stamps in by_meter.values():
            duplicates += sum(
                1
                for a, b in zip(stamps, stamps[1:], strict=False)
                if b - a < interval / 2
            )
        readings = sum(len(s) for s in by_meter.values())
        out["readings"] = readings
        out["duplicate_polls"] = duplicates
        out["polls_per_meter"] = readings / max(len(setup.meter_ids), 1)
        cr.execute(
            """SELECT count(*) FROM prepaid_reading r JOIN prepaid_meter m
                   ON m.id = r.meter_id
                WHERE m.id = ANY(%s) AND r.id > COALESCE((SELECT b.billed_reading_id
                                       FROM prepaid_meter_billing b
                                      WHERE b.meter_id = m.id), 0)""",
            [setup.meter_ids],
        )
        out["unbilled"] = cr.fetchone()[0]
        cr.execute(
            """SELECT count(*), count(DISTINCT c.id) FROM prepaid_reading_charge c
                 JOIN prepaid_reading r ON r.id = c.id WHERE r.meter_id = ANY(%s)""",
            [setup.meter_ids],
        )
        charges, distinct = cr.fetchone()
        out["charges"] = charges
        out["charged_twice"] = charges - distinct
        cr.execute(
            """SELECT count(*) FROM prepaid_reading r
                WHERE r.meter_id = ANY(%s) AND r.anomaly != 'none'""",
            [setup.meter_ids],
        )
        out["not_money_readings"] = cr.fetchone()[0]
        # A reading without its charge: lost money (the watermark passed it);
        # a meter's first reading is its baseline.
        cr.execute(
            """SELECT count(*) FROM prepaid_reading r JOIN prepaid_meter m
                   ON m.id = r.meter_id
                WHERE m.id = ANY(%s) AND r.id <= COALESCE((SELECT b.billed_reading_id
                                       FROM prepaid_meter_billing b
                                      WHERE b.meter_id = m.id), 0)
                  AND r.anomaly = 'none'
                  AND (r.delta_kwh != 0 OR r.delta_m3 != 0)
                  AND r.id > (SELECT min(f.id) FROM prepaid_reading f
                               WHERE f.meter_id = m.id)
                  AND NOT EXISTS (SELECT 1 FROM prepaid_reading_charge c
                                   WHERE c.id = r.id)""",
            [setup.meter_ids],
        )
        out["billed_without_charge"] = cr.fetchone()[0]
        # Each meter's counter: what was read == what was charged.
        cr.execute(
            """SELECT count(*) FROM (
                 SELECT r.meter_id,
                        max(r.energy_total_kwh) - min(r.energy_total_kwh) AS read,
                        sum(r.delta_kwh) FILTER (WHERE r.id != f.first) AS deltas
                   FROM prepaid_reading r
                   JOIN (SELECT meter_id, min(id) AS first FROM prepaid_reading
                          WHERE meter_id = ANY(%s) GROUP BY meter_id) f
                     ON f.meter_id = r.meter_id
                  GROUP BY r.meter_id) x
                WHERE abs(COALESCE(deltas, 0) - COALESCE(read, 0)) > 0.0001""",
            [setup.meter_ids],
        )
        out["meters_with_gaps"] = cr.fetchone()[0]
        cr.execute(
            """SELECT count(*) FROM prepaid_account a
                WHERE a.id = ANY(%s) AND a.balance != (
                      SELECT COALESCE(sum(l.amount), 0) FROM prepaid_ledger_line l
                       WHERE l.account_id = a.id)""",
            [setup.account_ids],
        )
        out["wallets_off_ledger"] = cr.fetchone()[0]
        cr.execute(
            """SELECT count(*) FROM prepaid_ledger_line l
                WHERE l.account_id = ANY(%s) AND l.line_type = 'consumption'
                  AND round(-l.amount, 2) != round((
                      SELECT COALESCE(sum(c.amount), 0) FROM prepaid_reading_charge c
                       WHERE c.ledger_line_id = l.id), 2)""",
            [setup.account_ids],
        )
        out["lines_off_charges"] = cr.fetchone()[0]
        company = env["res.company"].browse(setup.company_id)
        out["gl"] = env["prepaid.billing.engine"]._reconciliation(company)
        cr.execute(
            """SELECT state, count(*) FROM prepaid_meter_command
                WHERE gateway_id = ANY(%s) GROUP BY state""",
            [setup.gateway_ids],
        )
        out["commands"] = dict(cr.fetchall())
        cr.execute(
            """SELECT count(*) FROM prepaid_meter_command
                WHERE gateway_id = ANY(%s) AND followup_pending""",
            [setup.gateway_ids],
        )
        out["followups_pending"] = cr.fetchone()[0]
        cr.execute("SELECT app, kind, sum(n) FROM bench_servers_work GROUP BY 1, 2")
        share = defaultdict(Counter)
        for app, kind, n in cr.fetchall():
            label = app.split("-")[1] if app.startswith("bench-") else "bench"
            share[kind][label] += int(n)
        out["share"] = {kind: dict(c) for kind, c in share.items()}
    return out


def unsettled(dbname: str, setup: Setup) -> int:
    """Readings still to bill and commands not settled (the drain waits)."""
    rows = psql(
        dbname,
        """SELECT (SELECT count(*) FROM prepaid_reading r JOIN prepaid_meter m
                      ON m.id = r.meter_id
                   WHERE m.id = ANY(%(m)s) AND r.anomaly = 'none'
                     AND r.id > COALESCE((SELECT b.billed_reading_id
                                       FROM prepaid_meter_billing b
                                      WHERE b.meter_id = m.id), 0))
                + (SELECT count(*) FROM prepaid_meter_command
                    WHERE gateway_id = ANY(%(g)s)
                      AND (state IN ('queued', 'sending') OR followup_pending))""",
        {"m": setup.meter_ids, "g": setup.gateway_ids},
        fetch=True,
    )
    return rows[0][0]


# ---------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------
def recharge_cut(registry, setup: Setup, rng: random.Random, round_no: int) -> int:
    """A cashier: most accounts whose supply is cut get 1.00 (a restore),
    each in a transaction of its own retried on a serialization failure, as
    Odoo retries a request (billing moves the same balances meanwhile)."""
    from functools import partial

    from poll import new_env

    from odoo.service.model import retrying

    with registry.cursor() as cr:
        env = new_env(cr)
        cut = env["prepaid.account"].search(
            [("id", "in", setup.account_ids), ("supply_state", "!=", "on")]
        )
        paid = [account_id for account_id in cut.ids if rng.random() < 0.7]

    def pay(env, account_id):
        journal = env["account.journal"].browse(setup.cash_journal_id)
        key = f"bench-servers:{round_no}:{account_id}"
        env["prepaid.account"].browse(account_id)._recharge(1.0, journal, key, "cash")

    for account_id in paid:
        with registry.cursor() as cr:
            env = new_env(cr)
            env = env(context=dict(env.context, allowed_company_ids=[setup.company_id]))
            retrying(partial(pay, env, account_id), env)
    return len(paid)


def simulate(args, registry, setup: Setup, servers: list[Server], rng) -> list[str]:
    """The simulated hour: the jobs woken on time, a cashier recharging the
    cut-off accounts every five minutes, ``args.kills`` SIGKILLs of a random
    server at random moments, each restarted 2-5 minutes later."""
    minute = 60.0 / args.speed  # real seconds per simulated minute
    kill_at = sorted(rng.uniform(3, args.minutes - 8) for _i in range(args.kills))
    events, last_job, recharges = [], {}, 0
    down: tuple[Server, float] | None = None
    started = time.monotonic()
    while True:
        now_min = (time.monotonic() - started) / minute
        if now_min >= args.minutes:
            break
        due = [
            cron
            for cron, every in setup.cron_ids.items()
            if now_min - last_job.get(cron, -1e9) >= every
        ]
        for cron in due:
            last_job[cron] = now_min
        wake_jobs(args.db, due)
        if kill_at and now_min >= kill_at[0] and down is None:
            kill_at.pop(0)
            victim = rng.choice(servers)
            victim.kill()
            events.append(f"{now_min:5.1f} min: SIGKILL {victim.label}")
            down = (victim, now_min + rng.uniform(2, 5))
        if down and now_min >= down[1]:
            down[0].start()
            events.append(f"{now_min:5.1f} min: restart {down[0].label}")
            down = None
        if int(now_min) % 5 == 4 and int(now_min) // 5 != recharges:
            recharges = int(now_min) // 5
            recharge_cut(registry, setup, rng, recharges)
        time.sleep(minute / 4)
    if down:
        down[0].start()
        events.append(f"{args.minutes:5.1f} min: restart {down[0].label}")
    return events


def drain(args, registry, setup: Setup):
    """No more polls; billing, commands and recovery until everything is
    settled or ``args.drain`` seconds passed. Returns what is left."""
    minute = 60.0 / args.speed
    poll_cron = registry_cron(registry, "prepaid_metering.ir_cron_poll_gateways")
    jobs = [c for c in setup.cron_ids if c != poll_cron]
    deadline = time.monotonic() + args.drain
    left = None
    while time.monotonic() < deadline:
        wake_jobs(args.db, jobs)
        time.sleep(minute)
        left = unsettled(args.db, setup)
        if not left:
            break
    return left


def run(args) -> dict:
    from poll import open_registry

    from simulator.fleet import Fleet

    Path(args.logdir).mkdir(parents=True, exist_ok=True)
    for old in Path(args.logdir).glob("*.log"):
        old.unlink()
    make_database(args)
    rng = random.Random(args.seed)
    writes = WriteLog()
    writes.install()
    fleet = Fleet.build(args.gateways, args.meters, speed=args.speed, seed=args.seed)
    fleet.start()
    servers = []
    try:
        registry = open_registry(args.db)
        setup = setup_fleet(registry, fleet.endpoints(), args)
        origin = time.time()
        clock = f"{origin}:{args.speed}"
        servers = [
            Server(label, port, args, clock)
            for label, port in zip("AB", args.ports, strict=True)
        ]
        for server in servers:
            server.start()
        wait_ready(servers, 300)
        print(
            f"{len(servers)} servers up; {args.gateways} gateways x {args.meters} "
            f"meters, {args.minutes} simulated minutes at x{args.speed:g}",
            flush=True,
        )
        events = simulate(args, registry, setup, servers, rng)
        for line in events:
            print("  " + line, flush=True)
        left = drain(args, registry, setup)
        for server in servers:
            server.stop()
        servers_stopped = True
        result = check(registry, setup, args)
        result["drain_left"] = left
        result["duplicate_writes"] = writes.duplicates()
        result["writes"] = len(writes.writes)
        result["events"] = events
        result["kills"] = sum(s.kills for s in servers)
        result["log_problems"] = [p for s in servers for p in s.problems()]
        result["interval_polls_expected"] = args.minutes / args.interval
        return result
    finally:
        if not locals().get("servers_stopped"):
            for server in servers:
                server.stop()
        fleet.stop()
        if "odoo.sql_db" in sys.modules:
            sys.modules["odoo.sql_db"].close_db(args.db)
        if not args.keep:
            psql("postgres", f'DROP DATABASE IF EXISTS "{args.db}"')


def registry_cron(registry, xmlid: str) -> int:
    from poll import new_env

    with registry.cursor() as cr:
        return new_env(cr).ref(xmlid).id


def report(result: dict) -> None:
    print(
        f"readings stored      {result['readings']}  "
        f"({result['polls_per_meter']:.1f} per meter for "
        f"{result['interval_polls_expected']:.0f} intervals)"
    )
    print(f"duplicate polls      {result['duplicate_polls']}")
    print(
        f"charges              {result['charges']}  charged twice "
        f"{result['charged_twice']}  unbilled {result['unbilled']}  "
        f"billed without charge {result['billed_without_charge']}"
    )
    print(f"meters with gaps     {result['meters_with_gaps']}")
    print(
        f"wallets != ledger    {result['wallets_off_ledger']}  "
        f"lines != charges {result['lines_off_charges']}"
    )
    gl = result["gl"]
    print(
        f"GL                   liability {gl['liability']} = wallets "
        f"{gl['wallets']} + unrecognised {gl['unrecognised']}: "
        f"{'balanced' if gl['balanced'] else 'OFF by ' + str(gl['difference'])}"
    )
    print(
        f"commands             {result['commands']}  follow-ups pending "
        f"{result['followups_pending']}"
    )
    print(
        f"meter writes         {result['writes']}  sent twice "
        f"{result['duplicate_writes']}"
    )
    print(f"kills                {result['kills']}")
    duplicates = (
        result["duplicate_polls"] + result["charged_twice"] + result["duplicate_writes"]
    )
    print(f"duplicates = {duplicates}")
    for kind, share in sorted(result["share"].items()):
        total = sum(share.values()) or 1
        parts = ", ".join(
            f"{label} {n} ({100 * n / total:.0f} %)"
            for label, n in sorted(share.items())
        )
        print(f"share of {kind:<10} {parts}")
    for line in result["log_problems"][:20]:
        print("log: " + line)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="bench_servers", help="scratch database")
    parser.add_argument("--template", help="database to copy (prepaid_billing in it)")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument("--ports", default="18107,18117", help="HTTP ports A,B")
    parser.add_argument("--gateways", type=int, default=4)
    parser.add_argument("--meters", type=int, default=5, help="per gateway")
    parser.add_argument("--minutes", type=float, default=60, help="simulated")
    parser.add_argument("--interval", type=int, default=1, help="poll, minutes")
    parser.add_argument("--speed", type=float, default=60.0, help="time factor")
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--cron-threads", type=int, default=2)
    parser.add_argument("--drain", type=float, default=60, help="real seconds")
    parser.add_argument("--seed", type=int, default=22)
    parser.add_argument("--logdir", default="/tmp/bench-servers")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    args.ports = [int(p) for p in args.ports.split(",")]
    return args


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--serve"]:
        serve(argv[2:] if argv[1:2] == ["--"] else argv[1:])
        return 0
    args = parse_args(argv)
    result = run(args)
    if args.json:
        print("RESULT " + json.dumps(result, default=str))
    else:
        report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
