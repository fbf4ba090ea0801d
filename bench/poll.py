"""Polling benchmark: simulated meter fleet -> product code path -> PostgreSQL.

Prints figures; it is not a timed test. Measures, in one run:

(a) one full sweep of every electric meter (acrel 0x0000+17 and px_prepaid_v1
    0x4000+14) of a 100 gateway x 100 meter fleet without bus latency, through
    ``prepaid.gateway._cron_poll`` (driver + batch storage + commits), against
    a bare pymodbus sweep of the same fleet (no decoding, no database);
(b) the same at 9,600 baud (simulator bus emulation) against the bus limit
    computed from RTU frame sizes (default 10 x 20 meters; ``--full`` for the
    whole fleet, ~11 s per bus);
(c) SQL statements executed by ``prepaid.reading._store_poll_results`` for
    batches of 10 .. 10,000 meters;
(d) the (a) fleet with the tamper block (``px_tamper_v1``, 0x4020+9) added to
    every meter: product sweeps with the tamper checks off and on, taken in
    turns in the same run (goal: on <= 1.10x off).

The simulator runs in its own processes (``ProcessFleet``). The script creates
a scratch database with ``prepaid_metering`` installed (or reuses ``--db``)
and drops it at the end when it created it, unless ``--keep``.

    PYTHONPATH=. python3 bench/poll.py [--db NAME] [--keep] [--full] [--profile]

``--protocol dlt645`` / ``--protocol mixed``: DL/T 645 beside Modbus, see
``bench/poll_protocols.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import multiprocessing
import os
import pstats
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from pymodbus.client import AsyncModbusTcpClient  # noqa: E402
from pymodbus.exceptions import ModbusException  # noqa: E402
from pymodbus.framer import FramerType  # noqa: E402

from simulator import ProcessFleet, build_spec, transaction_time  # noqa: E402

MODULE = "prepaid_metering"
PROFILES = ("profile_acrel_ddsy1352", "profile_px_prepaid_v1")
TAMPER_PROFILE = "profile_px_tamper_v1"
TAMPER_PARAM = "prepaid_metering.tamper_checks"
BATCH_PARAM = "prepaid_metering.poll_batch_gateways"
MUTE_CONTEXT = {
    "tracking_disable": True,
    "mail_create_nolog": True,
    "mail_create_nosubscribe": True,
    "mail_notrack": True,
}


# ---------------------------------------------------------------------------
# Odoo and database plumbing (the Python twin of scripts/odoo_env.sh)
# ---------------------------------------------------------------------------
def odoo_root() -> Path:
    import odoo

    return Path(odoo.__file__).resolve().parent.parent


def addons_path() -> str:
    root = odoo_root()
    paths = [p for p in (root / "addons", root / "odoo" / "addons") if p.is_dir()]
    return ",".join(str(p) for p in [*paths, REPO_ROOT / "addons"])


def odoo_bin() -> list[str]:
    if os.environ.get("ODOO_BIN"):
        return shlex.split(os.environ["ODOO_BIN"])
    script = odoo_root() / "odoo-bin"
    if script.exists():
        return [sys.executable, str(script)]
    return [sys.executable, "-m", "odoo"]


def odoo_db_args() -> list[str]:
    args = []
    if os.environ.get("ODOO_RC"):
        args += ["--config", os.environ["ODOO_RC"]]
    for var, opt in (
        ("PGHOST", "--db_host"),
        ("PGPORT", "--db_port"),
        ("PGUSER", "--db_user"),
        ("PGPASSWORD", "--db_password"),
    ):
        if os.environ.get(var):
            args += [opt, os.environ[var]]
    return args


def module_state(dbname: str, module: str = MODULE) -> str | None:
    """None when the database does not exist, else the module's state."""
    import psycopg2

    cnx = psycopg2.connect(dbname="postgres")
    try:
        with cnx.cursor() as cr:
            cr.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,))
            exists = cr.fetchone() is not None
    finally:
        cnx.close()
    if not exists:
        return None
    cnx = psycopg2.connect(dbname=dbname)
    try:
        with cnx.cursor() as cr:
            cr.execute(
                "SELECT state FROM ir_module_module WHERE name = %s"
                " AND to_regclass('ir_module_module') IS NOT NULL",
                (module,),
            )
            row = cr.fetchone()
    except psycopg2.Error:
        row = None
    finally:
        cnx.close()
    return row[0] if row else "absent"


def prepare_database(dbname: str, update: bool, module: str = MODULE) -> bool:
    """Install the module when needed; return True when the DB was created."""
    state = module_state(dbname, module)
    if state == "installed" and not update:
        print(f"reusing database {dbname}")
        return False
    flag = "-u" if state == "installed" else "-i"
    cmd = [
        *odoo_bin(),
        "-d",
        dbname,
        flag,
        module,
        "--stop-after-init",
        "--without-demo=all",
        "--addons-path",
        addons_path(),
        "--log-level=warn",
        *odoo_db_args(),
    ]
    print("$", " ".join(shlex.quote(c) for c in cmd), flush=True)
    started = time.perf_counter()
    subprocess.run(cmd, check=True)
    print(f"  database ready in {time.perf_counter() - started:.1f} s")
    return state is None


def open_registry(dbname: str):
    import odoo
    from odoo.modules.registry import Registry

    odoo.tools.config.parse_config(
        [
            "--addons-path",
            addons_path(),
            "-d",
            dbname,
            "--log-level=warn",
            *odoo_db_args(),
        ]
    )
    return Registry(dbname)


def drop_database(dbname: str) -> None:
    from odoo.service import db as db_service

    db_service.exp_drop(dbname)
    print(f"dropped database {dbname}")


def new_env(cr):
    import odoo

    return odoo.api.Environment(cr, odoo.SUPERUSER_ID, dict(MUTE_CONTEXT))


# ---------------------------------------------------------------------------
# Bench data: site, building, one floor per gateway, one room per meter
# ---------------------------------------------------------------------------
def ensure_fleet(registry, n_gateways: int, n_meters: int) -> list[int]:
    """Return the gateway ids (ordered gw1..gwN) of the bench site of this shape."""
    from odoo import Command

    code = f"bench-poll-{n_gateways}x{n_meters}"
    with registry.cursor() as cr:
        env = new_env(cr)
        site = env["prepaid.site"].search([("code", "=", code)], limit=1)
        if site:
            gateways = env["prepaid.gateway"].search(
                [("site_id", "=", site.id)], order="id"
            )
            return gateways.ids
        started = time.perf_counter()
        ref = env.ref
        profiles = [ref(f"{MODULE}.{xmlid}").id for xmlid in PROFILES]
        site = env["prepaid.site"].create({"name": code, "code": code, "tz": "UTC"})
        building = env["prepaid.building"].create({"name": "B1", "site_id": site.id})
        floors = env["prepaid.floor"].create(
            [
                {"name": f"F{g + 1}", "level": g + 1, "building_id": building.id}
                for g in range(n_gateways)
            ]
        )
        rooms = env["prepaid.room"].create(
            [
                {"name": f"R{g + 1}-{d}", "floor_id": floor.id}
                for g, floor in enumerate(floors)
                for d in range(1, n_meters + 1)
            ]
        )
        gateways = env["prepaid.gateway"].create(
            [
                {
                    "name": f"gw{g + 1:03d}",
                    "site_id": site.id,
                    "protocol": "modbus_tcp",
                    "host": "127.0.0.1",
                    "port": 502,
                    "timeout_s": 1.0,
                }
                for g in range(n_gateways)
            ]
        )
        room_ids = iter(rooms.ids)
        env["prepaid.meter"].create(
            [
                {
                    "name": f"M{g + 1}-{d}",
                    "meter_type": "electric_1p",
                    "gateway_id": gw.id,
                    "device_id": d,
                    "room_id": next(room_ids),
                    "profile_ids": [Command.set(profiles)],
                }
                for g, gw in enumerate(gateways)
                for d in range(1, n_meters + 1)
            ]
        )
        env.flush_all()
        print(
            f"created site {code}: {n_gateways} gateways, "
            f"{n_gateways * n_meters} meters/rooms in "
            f"{time.perf_counter() - started:.1f} s",
            flush=True,
        )
        return gateways.ids


def ensure_fleet_imported(registry, n_gateways: int, n_meters: int) -> list[int]:
    """``ensure_fleet`` through the fleet importer (``prepaid.fleet.import``:
    check, then committed pieces), the way an operator loads a big fleet."""
    import base64

    code = f"bench-poll-{n_gateways}x{n_meters}"
    with registry.cursor() as cr:
        env = new_env(cr)
        site = env["prepaid.site"].search([("code", "=", code)], limit=1)
        if site:
            return (
                env["prepaid.gateway"]
                .search([("site_id", "=", site.id)], order="id")
                .ids
            )
    tag = f"bp{n_gateways}x{n_meters}"
    lines = [
        "type,ref,parent,name,code,tz,host,port,timeout_s,device_id,profiles,room,level",
        f"site,{tag}S,,{code},{code},UTC,,,,,,,",
        f"building,{tag}B,{tag}S,B1,,,,,,,,,",
    ]
    profiles = " ".join(xmlid.split("_", 1)[1] for xmlid in PROFILES)
    for g in range(n_gateways):
        lines.append(f"floor,{tag}F{g},{tag}B,F{g + 1},,,,,,,,,{g + 1}")
        lines.append(f"gateway,{tag}G{g},{tag}S,gw{g + 1:03d},,,127.0.0.1,502,1.0,,,,")
        for d in range(1, n_meters + 1):
            room = f"{tag}R{g}x{d}"
            lines.append(f"room,{room},{tag}F{g},R{g + 1}-{d},,,,,,,,,")
            lines.append(
                f"meter,{tag}M{g}x{d},{tag}G{g},M{g + 1}-{d},,,,,,{d},"
                f"{profiles},{room},"
            )
    data = base64.b64encode(("\n".join(lines) + "\n").encode()).decode()
    started = time.perf_counter()
    with registry.cursor() as cr:
        env = new_env(cr)
        result = env["prepaid.fleet.import"].import_fleet(data, f"{code}.csv")
        if result["errors"]:
            raise RuntimeError(f"fleet import refused the bench table: {result}")
        cr.commit()
        env["prepaid.fleet.import"]._cron_run(job_ids=[result["id"]], commit=True)
        site = env["prepaid.site"].search([("code", "=", code)], limit=1)
        gateways = env["prepaid.gateway"].search(
            [("site_id", "=", site.id)], order="id"
        )
    print(
        f"imported site {code} (prepaid.fleet.import): {n_gateways} gateways, "
        f"{n_gateways * n_meters} meters/rooms in "
        f"{time.perf_counter() - started:.1f} s",
        flush=True,
    )
    return gateways.ids


def point_gateways(registry, gateway_ids: list[int], endpoints: list[dict]) -> None:
    """Aim the bench gateways at the fleet's (ephemeral) ports, gw1 -> gw1..."""
    by_name = {e["name"]: e for e in endpoints}
    ports = [by_name[f"gw{i + 1}"]["port"] for i in range(len(gateway_ids))]
    with registry.cursor() as cr:
        cr.execute(
            """
            UPDATE prepaid_gateway g SET host = '127.0.0.1', port = u.port
              FROM unnest(%s::int4[], %s::int4[]) AS u(id, port)
             WHERE g.id = u.id
            """,
            [gateway_ids, ports],
        )


def read_blocks(registry) -> list[tuple[int, int]]:
    """The product's read plan for acrel + px_prepaid_v1 (start, count)."""
    with registry.cursor() as cr:
        env = new_env(cr)
        profiles = env["prepaid.register.profile"].browse(
            [env.ref(f"{MODULE}.{xmlid}").id for xmlid in PROFILES]
        )
        return [(b.start, b.count) for b in profiles._read_plan()]


# ---------------------------------------------------------------------------
# Simulator processes
# ---------------------------------------------------------------------------
def start_fleet(n_gateways: int, n_meters: int, processes: int, baud: int | None):
    spec = build_spec(n_gateways, n_meters, kinds="electric_1p", speed=0, baud=baud)
    started = time.perf_counter()
    fleet = ProcessFleet(spec, processes=processes).start()
    elapsed = time.perf_counter() - started
    print(
        f"simulator: {n_gateways} x {n_meters} meters, baud={baud or 'none'}, "
        f"{len(fleet.slices)} processes, up in {elapsed:.1f} s",
        flush=True,
    )
    return fleet


def simulator_cpu() -> float:
    """CPU seconds (user + system) used so far by this process's children."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for child in multiprocessing.active_children():
        try:
            stat = Path(f"/proc/{child.pid}/stat").read_text()
        except OSError:
            continue
        fields_ = stat.rsplit(")", 1)[1].split()
        total += (int(fields_[11]) + int(fields_[12])) / tick
    return total


# ---------------------------------------------------------------------------
# Bare sweep: pymodbus only, one connection per gateway, no decoding, no DB
# ---------------------------------------------------------------------------
async def _bare_bus(
    endpoint: dict, blocks: list[tuple[int, int]], timeout: float
) -> tuple[int, int]:
    client = AsyncModbusTcpClient(
        endpoint["host"],
        port=endpoint["port"],
        framer=FramerType.SOCKET,
        timeout=timeout,
        retries=0,
        reconnect_delay=0,
    )
    meters = endpoint["device_ids"]
    if not await client.connect():
        return 0, len(meters)
    ok = 0
    try:
        for device_id in meters:
            good = True
            for start, count in blocks:
                try:
                    rr = await client.read_holding_registers(
                        start, count=count, device_id=device_id
                    )
                except ModbusException:
                    good = False
                    continue
                good = good and not rr.isError() and len(rr.registers) == count
            ok += good
    finally:
        client.close()
    return ok, len(meters) - ok


async def _bare_sweep(endpoints, blocks, timeout):
    return await asyncio.gather(*(_bare_bus(e, blocks, timeout) for e in endpoints))


@dataclass
class Run:
    wall: float
    ok: int
    failed: int
    cpu: float = 0.0
    sim_cpu: float = 0.0
    sweep: float = 0.0
    store: float = 0.0
    prepare: float = 0.0
    sql: list[int] = field(default_factory=list)


def bare_sweep(endpoints, blocks, timeout: float = 1.0) -> Run:
    cpu0, sim0 = time.process_time(), simulator_cpu()
    started = time.perf_counter()
    outcomes = asyncio.run(_bare_sweep(endpoints, blocks, timeout))
    wall = time.perf_counter() - started
    return Run(
        wall=wall,
        ok=sum(o[0] for o in outcomes),
        failed=sum(o[1] for o in outcomes),
        cpu=time.process_time() - cpu0,
        sim_cpu=simulator_cpu() - sim0,
    )


# ---------------------------------------------------------------------------
# Product sweep: prepaid.gateway._cron_poll, instrumented from the outside
# ---------------------------------------------------------------------------
class Probe:
    """Wraps the driver's sweeps, _store_poll_results and _start_sweep to
    split the time.

    ``_cron_poll`` reads the next batch's buses while it stores the batch
    read before (and each batch's chunks as its buses finish), so ``sweep``
    (the sum over batches of first request to last bus read), ``store`` and
    ``prep`` overlap and need not add up to the total ("other" < 0).
    """

    def __init__(self, registry):
        # the models sweep through drivers.bus, which routes each bus to its
        # protocol's driver
        from odoo.addons.prepaid_metering.drivers import bus as driver_bus

        self.sweep = self.store = self.prepare = 0.0
        self.sql: list[int] = []
        self.captured: list[tuple] = []
        #: {meter id: profiles} the cron handed to the store (for (c))
        self.profiles: dict = {}
        probe = self
        orig_start = driver_bus.start_sweep

        class ProbedSweep:
            def __init__(self, jobs):
                self._sweep = orig_start(jobs)
                self._jobs = jobs

            on_wire = property(lambda self: self._sweep.on_wire)
            wire_seconds = property(lambda self: self._sweep.wire_seconds)

            def join(self):
                self._sweep.join()

            def __iter__(self):
                results = [None] * len(self._jobs)
                for index, bus_results in self._sweep:
                    results[index] = bus_results
                    yield index, bus_results
                probe.sweep += self._sweep.wire_seconds or 0.0
                probe.captured.append((self._jobs, results))

        driver_bus.start_sweep = ProbedSweep
        reading_cls = registry["prepaid.reading"]
        self.store_poll_results = orig_store = reading_cls._store_poll_results

        def store(self_, gateway_results, *args, **kwargs):
            cr = self_.env.cr
            count0, started = cr.sql_log_count, time.perf_counter()
            stored = orig_store(self_, gateway_results, *args, **kwargs)
            probe.store += time.perf_counter() - started
            probe.sql.append(cr.sql_log_count - count0)
            if len(args) > 1 and args[1]:
                probe.profiles.update(args[1])
            return stored

        reading_cls._store_poll_results = store
        gateway_cls = registry["prepaid.gateway"]
        orig_start_sweep = gateway_cls._start_sweep

        def start_sweep(self_, *args, **kwargs):
            started = time.perf_counter()
            try:
                return orig_start_sweep(self_, *args, **kwargs)
            finally:
                probe.prepare += time.perf_counter() - started

        gateway_cls._start_sweep = start_sweep

    def reset(self) -> None:
        self.sweep = self.store = self.prepare = 0.0
        self.sql, self.captured = [], []


def _due_only(cr, gateway_ids: list[int]) -> dict[int, object]:
    """Make only ``gateway_ids`` due; return the others' next_poll_at to restore."""
    cr.execute(
        "SELECT id, next_poll_at FROM prepaid_gateway WHERE active AND id != ALL(%s)",
        [gateway_ids],
    )
    others = dict(cr.fetchall())
    cr.execute(
        "UPDATE prepaid_gateway SET next_poll_at = NULL WHERE id = ANY(%s)",
        [gateway_ids],
    )
    if others:
        cr.execute(
            """UPDATE prepaid_gateway
                  SET next_poll_at = (now() at time zone 'UTC') + interval '1 day'
                WHERE id = ANY(%s)""",
            [list(others)],
        )
    return others


def _restore_due(cr, others: dict[int, object]) -> None:
    if others:
        cr.execute(
            """UPDATE prepaid_gateway g SET next_poll_at = u.at
                 FROM unnest(%s::int4[], %s::timestamp[]) AS u(id, at)
                WHERE g.id = u.id""",
            [list(others), list(others.values())],
        )


#: The tables every sweep rewrites (one row version per meter and sweep).
POLLED_TABLES = ("prepaid_meter", "prepaid_gateway", "prepaid_room", "prepaid_reading")
#: "auto": VACUUM them before each product sweep when the server's autovacuum
#: is off (set by --vacuum).
VACUUM_MODE = {"mode": "auto", "done": 0, "seconds": 0.0}


def autovacuum_on(dbname: str) -> bool:
    import psycopg2

    cnx = psycopg2.connect(dbname=dbname)
    try:
        with cnx.cursor() as cr:
            cr.execute("SHOW autovacuum")
            return cr.fetchone()[0] == "on"
    finally:
        cnx.close()


def vacuum_polled(dbname: str) -> None:
    """What autovacuum does between two sweeps on a production server: each
    sweep leaves one dead row version per meter (and per room and gateway).
    Without it the meter table grows by the fleet's size every sweep and the
    next sweep's UPDATE crawls through the dead versions. Outside the timing."""
    import psycopg2

    mode = VACUUM_MODE["mode"]
    if mode == "never" or (mode == "auto" and autovacuum_on(dbname)):
        return
    started = time.perf_counter()
    cnx = psycopg2.connect(dbname=dbname)
    cnx.autocommit = True
    try:
        with cnx.cursor() as cr:
            cr.execute(f"VACUUM (ANALYZE) {', '.join(POLLED_TABLES)}")
    finally:
        cnx.close()
    VACUUM_MODE["done"] += 1
    VACUUM_MODE["seconds"] += time.perf_counter() - started


def product_sweep(registry, probe: Probe, gateway_ids, prof=None):
    vacuum_polled(registry.db_name)
    with registry.cursor() as cr:
        env = new_env(cr)
        cr.execute("SELECT coalesce(max(id), 0) FROM prepaid_reading")
        last_id = cr.fetchone()[0]
        others = _due_only(cr, gateway_ids)
        cr.commit()
        probe.reset()
        cpu0, sim0 = time.process_time(), simulator_cpu()
        started = time.perf_counter()
        if prof is not None:
            prof.enable()
        done = env["prepaid.gateway"]._cron_poll(commit=True)
        if prof is not None:
            prof.disable()
        wall = time.perf_counter() - started
        cpu, sim_cpu = time.process_time() - cpu0, simulator_cpu() - sim0
        _restore_due(cr, others)
        cr.execute(
            """SELECT count(*) FROM prepaid_reading r
                 JOIN prepaid_meter m ON m.id = r.meter_id
                WHERE r.id > %s AND m.gateway_id = ANY(%s)""",
            [last_id, gateway_ids],
        )
        stored = cr.fetchone()[0]
        cr.execute(
            """SELECT count(*) FILTER (WHERE state = 'online'), count(*)
                 FROM prepaid_meter WHERE gateway_id = ANY(%s)""",
            [gateway_ids],
        )
        online, total = cr.fetchone()
        cr.commit()
    if done != len(gateway_ids):
        print(f"  WARNING: _cron_poll swept {done} gateways, not {len(gateway_ids)}")
    return Run(
        wall=wall,
        ok=stored,
        failed=total - online,
        cpu=cpu,
        sim_cpu=sim_cpu,
        sweep=probe.sweep,
        store=probe.store,
        prepare=probe.prepare,
        sql=list(probe.sql),
    )


# ---------------------------------------------------------------------------
# (c) statements per stored batch
# ---------------------------------------------------------------------------
def _batch_of(env, captured, size: int):
    """``size`` meters' worth of (gateway, results) from a captured sweep."""
    gateway_results, left = [], size
    for jobs, results in captured:
        for (endpoint, _polls), res in zip(jobs, results, strict=True):
            if left <= 0:
                return gateway_results
            chunk = res[:left]
            gateway_results.append((env["prepaid.gateway"].browse(endpoint.key), chunk))
            left -= len(chunk)
    return gateway_results


def _count_store(
    env, store, gateway_results, reset_state: bool, profiles=None
) -> tuple[int, float]:
    cr = env.cr
    cr.execute("SAVEPOINT bench_sql")
    try:
        if reset_state:
            meter_ids = [r.key for _gw, res in gateway_results for r in res]
            cr.execute(
                "UPDATE prepaid_meter SET state = 'offline' WHERE id = ANY(%s)",
                [meter_ids],
            )
        env.invalidate_all()
        count0, started = cr.sql_log_count, time.perf_counter()
        # the profiles as the cron passes them (known from its read plans)
        by_meter = None
        if profiles:
            by_meter = {
                r.key: profiles[r.key].with_env(env)
                for _gw, res in gateway_results
                for r in res
            }
        store(env["prepaid.reading"], gateway_results, None, by_meter)
        return cr.sql_log_count - count0, time.perf_counter() - started
    finally:
        cr.execute("ROLLBACK TO SAVEPOINT bench_sql")
        env.invalidate_all()


def sql_per_batch(registry, probe: Probe, captured, sizes: list[int]) -> list[tuple]:
    available = sum(len(r) for _jobs, results in captured for r in results)
    rows = []
    with registry.cursor() as cr:
        env = new_env(cr)
        for size in sizes:
            if size > available:
                continue
            batch = _batch_of(env, captured, size)
            args = (env, probe.store_poll_results, batch)
            steady = _count_store(*args, False, probe.profiles)
            changed = _count_store(*args, True, probe.profiles)
            rows.append((size, len(batch), *steady, *changed))
        cr.rollback()
    return rows


# ---------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------
def best_median(values: list[float]) -> tuple[float, float]:
    return min(values), statistics.median(values)


def bus_limit(n_meters: int, blocks, baud: int) -> float:
    """Slowest bus: every bus carries n_meters x the plan's reads (FC03)."""
    return n_meters * sum(transaction_time(3, count, baud) for _s, count in blocks)


def print_runs(label: str, runs: list[Run], meters: int) -> None:
    for i, run in enumerate(runs, 1):
        split = ""
        if run.sweep:
            split = (
                f"  driver {run.sweep:6.2f}  store {run.store:5.2f}"
                f"  prep {run.prepare:5.2f}"
                f"  other {run.wall - run.sweep - run.store - run.prepare:5.2f}"
                f"  sql/batch {run.sql}"
            )
        print(
            f"  {label} #{i}: {run.wall:6.2f} s  {meters / run.wall:7.0f} rd/s  "
            f"ok {run.ok:5d}  bad {run.failed:3d}  cpu {run.cpu:5.2f}  "
            f"sim cpu {run.sim_cpu:5.2f}{split}",
            flush=True,
        )


def phase(registry, probe, args, n_gw, n_m, baud, blocks, prof=None):
    """Start a fleet, point the bench gateways at it, sweep bare then product."""
    create = ensure_fleet_imported if args.import_fleet else ensure_fleet
    gateway_ids = create(registry, n_gw, n_m)
    fleet = start_fleet(n_gw, n_m, args.processes, baud)
    try:
        endpoints = fleet.endpoints()
        point_gateways(registry, gateway_ids, endpoints)
        meters = n_gw * n_m
        bare = [bare_sweep(endpoints, blocks) for _ in range(args.repeat)]
        print_runs("bare   ", bare, meters)
        prod = [product_sweep(registry, probe, gateway_ids) for _ in range(args.repeat)]
        print_runs("product", prod, meters)
        captured = list(probe.captured)
        if prof is not None:
            product_sweep(registry, probe, gateway_ids, prof=prof)
    finally:
        fleet.stop()
    return bare, prod, captured, len(fleet.slices)


def link_tamper_profile(registry, gateway_ids, link: bool) -> None:
    """Give (take back) the bench meters the px_tamper_v1 block, in SQL."""
    with registry.cursor() as cr:
        profile = new_env(cr).ref(f"{MODULE}.{TAMPER_PROFILE}").id
        cr.execute(
            "DELETE FROM prepaid_meter_prepaid_register_profile_rel"
            " WHERE prepaid_register_profile_id = %s AND prepaid_meter_id IN"
            " (SELECT id FROM prepaid_meter WHERE gateway_id = ANY(%s))",
            [profile, gateway_ids],
        )
        if link:
            cr.execute(
                "INSERT INTO prepaid_meter_prepaid_register_profile_rel"
                " (prepaid_meter_id, prepaid_register_profile_id)"
                " SELECT id, %s FROM prepaid_meter WHERE gateway_id = ANY(%s)",
                [profile, gateway_ids],
            )


def phase_tamper(registry, probe, args, n_gw, n_m):
    """(d): product sweeps with the tamper checks off, then on, in turns."""
    gateway_ids = ensure_fleet(registry, n_gw, n_m)
    old = set_param(registry, TAMPER_PARAM, None)
    link_tamper_profile(registry, gateway_ids, True)
    fleet = start_fleet(n_gw, n_m, args.processes, None)
    runs = {"off": [], "on": []}
    try:
        point_gateways(registry, gateway_ids, fleet.endpoints())
        set_param(registry, TAMPER_PARAM, "off")
        product_sweep(registry, probe, gateway_ids)  # first read of the block
        for _ in range(args.repeat):
            for mode in ("off", "on"):
                set_param(registry, TAMPER_PARAM, mode)
                runs[mode].append(product_sweep(registry, probe, gateway_ids))
        for mode in ("off", "on"):
            print_runs(f"checks {mode:<3}", runs[mode], n_gw * n_m)
    finally:
        fleet.stop()
        link_tamper_profile(registry, gateway_ids, False)
        set_param(registry, TAMPER_PARAM, old or False)
    return runs


def print_profile(prof: cProfile.Profile, top: int) -> None:
    for key in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(prof, stream=out).strip_dirs().sort_stats(key).print_stats(top)
        text = out.getvalue()
        start = text.find("   ncalls")
        print(f"\n--- cProfile of one product sweep, by {key} ---")
        print(text[start:] if start >= 0 else text)


def report(args, blocks, res_a, res_b, sql_rows, processes, res_d=None) -> None:
    bare_a, prod_a, meters_a = res_a
    bb, bm = best_median([r.wall for r in bare_a])
    pb, pm = best_median([r.wall for r in prod_a])
    print("\n================ polling benchmark ================")
    print(
        f"command : cd {REPO_ROOT} && PYTHONPATH=. python3 "
        + " ".join(shlex.quote(a) for a in sys.argv)
    )
    print(
        f"machine : {os.cpu_count()} cores; simulator {processes} processes "
        f"(ProcessFleet), Odoo + driver in this process; runs: {args.repeat}"
    )
    if VACUUM_MODE["done"]:
        print(
            f"vacuum  : autovacuum is off on this server: VACUUM (ANALYZE) of "
            f"{', '.join(POLLED_TABLES)} before each product sweep, outside the "
            f"timing ({VACUUM_MODE['done']} x, {VACUUM_MODE['seconds']:.1f} s)"
        )
    plan = ", ".join(f"0x{s:04X}+{c}" for s, c in blocks)
    print(f"reads   : {plan} per meter (FC03), product read plan")
    print(f"\n(a) no latency, {args.gateways} gw x {args.meters} = {meters_a} meters")
    print("                  best      median   readings/s(best)")
    print(f"    bare        {bb:6.2f} s  {bm:6.2f} s  {meters_a / bb:9.0f}")
    print(f"    product     {pb:6.2f} s  {pm:6.2f} s  {meters_a / pb:9.0f}")
    print(
        f"    product/bare {pb / bb:5.2f}x  {pm / bm:5.2f}x   "
        f"(goal <= 10 s, stretch <= 4 s, <= 4x bare)"
    )
    if res_b:
        bare_b, prod_b, n_gw, n_m, limit = res_b
        bb, bm = best_median([r.wall for r in bare_b])
        pb, pm = best_median([r.wall for r in prod_b])
        print(
            f"\n(b) {args.baud} baud, {n_gw} gw x {n_m} = {n_gw * n_m} meters; "
            f"bus limit {limit:.3f} s (slowest bus, frame sizes)"
        )
        print("                  best      median   best/limit  median/limit")
        for name, b, m in (("bare", bb, bm), ("product", pb, pm)):
            print(
                f"    {name:<10}  {b:6.2f} s  {m:6.2f} s  {b / limit:6.2f}x"
                f"      {m / limit:6.2f}x"
            )
        print("    (goal: product <= 1.3x the bus limit)")
    if sql_rows:
        print("\n(c) SQL statements in _store_poll_results per batch")
        print(
            "    meters  gateways  statements  time      | all change state:"
            " statements  time"
        )
        for size, gws, n, t, n2, t2 in sql_rows:
            print(
                f"    {size:6d}  {gws:8d}  {n:10d}  {t:6.3f} s  |"
                f"                    {n2:10d}  {t2:6.3f} s"
            )
        print(
            "    (goal: constant; right column: every meter offline -> online, "
            "one chatter note per meter)"
        )
    if res_d:
        report_tamper(args, res_d)


def report_tamper(args, res_d) -> None:
    if args.tamper_only:
        print(
            f"command : cd {REPO_ROOT} && PYTHONPATH=. python3 "
            + " ".join(shlex.quote(a) for a in sys.argv)
        )
    print(
        f"\n(d) tamper checks, {args.gateways} gw x {args.meters} meters with "
        "px_tamper_v1 (0x4020+9), off and on in turns"
    )
    print("                  best      median   store best  store median")
    figures = {}
    for mode in ("off", "on"):
        wall = best_median([r.wall for r in res_d[mode]])
        store = best_median([r.store for r in res_d[mode]])
        figures[mode] = wall
        print(
            f"    checks {mode:<3}  {wall[0]:6.2f} s  {wall[1]:6.2f} s  "
            f"{store[0]:6.2f} s    {store[1]:6.2f} s"
        )
    print(
        f"    on/off      {figures['on'][0] / figures['off'][0]:5.2f}x  "
        f"{figures['on'][1] / figures['off'][1]:5.2f}x   (goal <= 1.10x)"
    )


# ---------------------------------------------------------------------------
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="bench_poll", help="database (reused)")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument("--update", action="store_true", help="-u the module")
    parser.add_argument("--gateways", type=int, default=100)
    parser.add_argument("--meters", type=int, default=100, help="per gateway")
    parser.add_argument("--processes", type=int, default=2, help="simulator")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baud", type=int, default=9600)
    parser.add_argument("--baud-gateways", type=int, default=10)
    parser.add_argument("--baud-meters", type=int, default=20)
    parser.add_argument(
        "--full", action="store_true", help="(b) on the whole (a) fleet"
    )
    parser.add_argument("--skip-baud", action="store_true", help="no (b)")
    parser.add_argument("--skip-tamper", action="store_true", help="no (d)")
    parser.add_argument("--tamper-only", action="store_true", help="(d) only")
    parser.add_argument(
        "--batch-gateways",
        type=int,
        help=f"override {BATCH_PARAM} (gateways per _cron_poll batch) for the run",
    )
    parser.add_argument("--sizes", default="10,100,1000,10000", help="(c) batches")
    parser.add_argument(
        "--import-fleet",
        action="store_true",
        help="create the bench fleet through the fleet importer (big fleets)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile one extra (a) sweep"
    )
    parser.add_argument("--profile-top", type=int, default=30)
    parser.add_argument(
        "--vacuum",
        choices=("auto", "always", "never"),
        default="auto",
        help="VACUUM the polled tables before each product sweep (auto: when "
        "the server's autovacuum is off, as it would between two sweeps)",
    )
    parser.add_argument(
        "--protocol",
        choices=("modbus", "dlt645", "mixed"),
        default="modbus",
        help="modbus: (a)-(c) above; dlt645: a DL/T 645 site against a Modbus "
        "one per request, and the 8E1 line; mixed: also a half/half site",
    )
    parser.add_argument(
        "--dlt-baud", type=int, default=2400, help="DL/T 645 line (b), 8E1"
    )
    parser.add_argument(
        "--dlt-baud-meters",
        type=int,
        default=5,
        help="DL/T 645 meters per line in (b) (with --baud-gateways lines)",
    )
    return parser.parse_args(argv)


def set_param(registry, key: str, value) -> str | None:
    """Set a system parameter (False deletes it, None leaves it); return the
    previous value."""
    with registry.cursor() as cr:
        icp = new_env(cr)["ir.config_parameter"]
        old = icp.get_param(key)
        if value is not None:
            icp.set_param(key, value)
        return old


def run(args) -> None:
    registry = open_registry(args.db)
    probe = Probe(registry)
    blocks = read_blocks(registry)
    old_batch = set_param(registry, BATCH_PARAM, args.batch_gateways)
    VACUUM_MODE["mode"] = args.vacuum
    with registry.cursor() as cr:
        batch = new_env(cr)["prepaid.gateway"]._get_batch_size()
    print(f"_cron_poll batch: {batch} gateways ({BATCH_PARAM})")
    prof = cProfile.Profile() if args.profile else None
    if args.tamper_only:
        print("\n(d) tamper checks off / on", flush=True)
        res_d = phase_tamper(registry, probe, args, args.gateways, args.meters)
        report_tamper(args, res_d)
        return
    try:
        print("\n(a) no latency", flush=True)
        bare_a, prod_a, captured, processes = phase(
            registry, probe, args, args.gateways, args.meters, None, blocks, prof
        )
        sizes = [int(s) for s in args.sizes.split(",") if s]
        sql_rows = sql_per_batch(registry, probe, captured, sizes)
        res_b = None
        if not args.skip_baud:
            n_gw, n_m = (
                (args.gateways, args.meters)
                if args.full
                else (args.baud_gateways, args.baud_meters)
            )
            print(f"\n(b) {args.baud} baud", flush=True)
            bare_b, prod_b, _c, _p = phase(
                registry, probe, args, n_gw, n_m, args.baud, blocks
            )
            res_b = (bare_b, prod_b, n_gw, n_m, bus_limit(n_m, blocks, args.baud))
        res_d = None
        if not args.skip_tamper:
            print("\n(d) tamper checks off / on", flush=True)
            res_d = phase_tamper(registry, probe, args, args.gateways, args.meters)
    finally:
        if args.batch_gateways is not None:
            set_param(registry, BATCH_PARAM, old_batch or False)
    if prof is not None:
        print_profile(prof, args.profile_top)
    report(
        args,
        blocks,
        (bare_a, prod_a, args.gateways * args.meters),
        res_b,
        sql_rows,
        processes,
        res_d,
    )


def run_in_database(args, body, module: str = MODULE) -> int:
    """Prepare ``args.db``, run ``body(args)``, drop the DB if created here."""
    created = prepare_database(args.db, args.update, module)
    try:
        body(args)
    finally:
        if created and not args.keep:
            drop_database(args.db)
        elif created:
            print(f"kept database {args.db}")
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.protocol != "modbus":
        import poll_protocols

        return run_in_database(args, poll_protocols.run)
    return run_in_database(args, run)


if __name__ == "__main__":
    sys.exit(main())
