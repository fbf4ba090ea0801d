"""Fleet import benchmark: a generated fleet table -> prepaid.fleet.import.

Prints figures; it is not a timed test. In one run:

(a) with ``--bad-row``: the same table with one bad row in the middle is
    checked: every error reported, nothing written (time of the check);
(b) the table is imported through ``prepaid.fleet.import.import_fleet`` and
    the background run (``_cron_run``, one commit per piece), timed by phase
    (read + check, create); with ``--kill-after N`` the run happens in a
    child process killed with SIGKILL after N committed pieces, then resumed
    here; the counts prove nothing was created twice.

    PYTHONPATH=. python3 bench/import.py --gateways 1000 --meters 100 [--keep]
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import functools
import io
import os
import pstats
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.poll import (  # noqa: E402
    drop_database,
    new_env,
    open_registry,
    prepare_database,
)

MODULE = "prepaid_metering"
PROFILES = "acrel_ddsy1352 px_prepaid_v1"
HEADER = "type,ref,parent,name,host,port,device_id,profiles,room,level,tz\n"


class Phases:
    """Wall time and SQL statements per phase of the importer, from wrapped
    methods (nested phases count in both)."""

    def __init__(self):
        self.time: dict[str, float] = {}
        self.sql: dict[str, int] = {}
        self.calls: dict[str, int] = {}
        self.rows: dict[str, int] = {}
        self._undo = []

    def wrap(self, owner, name, label, rows_of=None):
        original = getattr(owner, name)
        phases = self

        @functools.wraps(original)
        def wrapper(self_, *args, **kwargs):
            key = label(self_, args) if callable(label) else label
            cr = self_.env.cr
            count0, started = cr.sql_log_count, time.perf_counter()
            try:
                return original(self_, *args, **kwargs)
            finally:
                phases.time[key] = phases.time.get(key, 0.0) + (
                    time.perf_counter() - started
                )
                phases.sql[key] = phases.sql.get(key, 0) + cr.sql_log_count - count0
                phases.calls[key] = phases.calls.get(key, 0) + 1
                if rows_of:
                    phases.rows[key] = phases.rows.get(key, 0) + rows_of(args)

        setattr(owner, name, wrapper)
        self._undo.append((owner, name, original))

    def install(self, registry):
        job = registry["prepaid.fleet.import"]
        self.wrap(job, "_read_plan", "read + check (whole file)")
        self.wrap(job, "_known", "  db look-ups (_known)")
        self.wrap(
            job,
            "_create_piece",
            lambda _self, args: f"create {args[0]}",
            rows_of=lambda args: len(args[2]),
        )
        self.wrap(job, "_insert_xmlids", "  external ids")
        self.wrap(
            registry["prepaid.room"],
            "_compute_monitor_state",
            "room monitor state (recompute)",
        )

    def uninstall(self):
        for owner, name, original in reversed(self._undo):
            setattr(owner, name, original)
        self._undo.clear()

    def print(self, title):
        print(f"\n--- {title}: time and SQL statements per phase ---")
        print(
            f"{'phase':32} {'calls':>6} {'rows':>8} {'s':>8} {'sql':>8}"
            f" {'ms/row':>7} {'sql/row':>7}"
        )
        for key in self.time:
            rows = self.rows.get(key, 0)
            per_row = f"{1000 * self.time[key] / rows:7.3f}" if rows else " " * 7
            sql_row = f"{self.sql[key] / rows:7.2f}" if rows else " " * 7
            print(
                f"{key:32} {self.calls[key]:6d} {rows:8d} {self.time[key]:8.2f}"
                f" {self.sql[key]:8d} {per_row} {sql_row}"
            )


def print_profile(prof: cProfile.Profile, top: int, title: str) -> None:
    for key in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(prof, stream=out).strip_dirs().sort_stats(key).print_stats(top)
        text = out.getvalue()
        start = text.find("   ncalls")
        print(f"\n--- cProfile of {title}, by {key} ---")
        print(text[start:] if start >= 0 else text)


def fleet_table(tag: str, n_gateways: int, n_meters: int, bad_line=False) -> bytes:
    """One site, one building, one floor and one gateway per bus, one room
    and one meter per address."""
    out = io.StringIO()
    out.write(HEADER)
    out.write(f"site,{tag}S,,{tag},,,,,,,Asia/Shanghai\n")
    out.write(f"building,{tag}B,{tag}S,B1,,,,,,,\n")
    for g in range(n_gateways):
        out.write(f"floor,{tag}F{g},{tag}B,F{g + 1},,,,,,{g + 1},\n")
        out.write(f"gateway,{tag}G{g},{tag}S,gw{g + 1:04d},127.0.0.1,502,,,,,\n")
        for d in range(1, n_meters + 1):
            room = f"{tag}R{g}x{d}"
            out.write(f"room,{room},{tag}F{g},R{g + 1}-{d},,,,,,,\n")
            device = d
            if bad_line and g == n_gateways // 2 and d == 1:
                device = 300
            out.write(
                f"meter,{tag}M{g}x{d},{tag}G{g},M{g + 1}-{d},,,{device},"
                f"{PROFILES},{room},,\n"
            )
    return out.getvalue().encode()


def counts(registry, tag: str) -> dict:
    with registry.cursor() as cr:
        cr.execute(
            """SELECT model, count(*), count(DISTINCT res_id) FROM ir_model_data
                WHERE module = '__import__' AND name LIKE %s GROUP BY model""",
            [f"{tag}%"],
        )
        xmlids = {model: (n, d) for model, n, d in cr.fetchall()}
        cr.execute(
            """SELECT count(*) FROM prepaid_meter m JOIN prepaid_site s
                 ON s.id = m.site_id WHERE s.name = %s""",
            [tag],
        )
        meters = cr.fetchone()[0]
        cr.execute(
            """SELECT count(*) FROM prepaid_room r JOIN prepaid_site s
                 ON s.id = r.site_id WHERE s.name = %s""",
            [tag],
        )
        rooms = cr.fetchone()[0]
    return {"xmlids": xmlids, "meters": meters, "rooms": rooms}


def start_job(
    registry, data: bytes, filename="fleet.csv", prof=None
) -> tuple[dict, float]:
    with registry.cursor() as cr:
        env = new_env(cr)
        started = time.perf_counter()
        if prof:
            prof.enable()
        try:
            result = env["prepaid.fleet.import"].import_fleet(
                base64.b64encode(data).decode(), filename
            )
        finally:
            if prof:
                prof.disable()
        elapsed = time.perf_counter() - started
        cr.commit()
    return result, elapsed


def run_job(registry, job_id: int, prof=None) -> float:
    with registry.cursor() as cr:
        env = new_env(cr)
        started = time.perf_counter()
        if prof:
            prof.enable()
        try:
            env["prepaid.fleet.import"]._cron_run(job_ids=[job_id], commit=True)
        finally:
            if prof:
                prof.disable()
        return time.perf_counter() - started


def job_state(registry, job_id: int) -> tuple[str, int, int]:
    with registry.cursor() as cr:
        cr.execute(
            "SELECT state, rows_done, rows_total FROM prepaid_fleet_import"
            " WHERE id = %s",
            [job_id],
        )
        return cr.fetchone()


def child_run(args) -> int:
    """Run the job in this (child) process; the parent kills it."""
    registry = open_registry(args.db)
    run_job(registry, args.child_job)
    return 0


def kill_after(registry, args, job_id: int, pieces: int) -> None:
    """Run the job in a child process and SIGKILL it once ``pieces`` pieces
    are committed (watched through rows_done)."""
    cmd = [
        sys.executable,
        __file__,
        "--db",
        args.db,
        "--child-job",
        str(job_id),
    ]
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    child = subprocess.Popen(cmd, env=env)
    seen, last = 0, job_state(registry, job_id)[1]
    while child.poll() is None:
        done = job_state(registry, job_id)[1]
        if done != last:
            seen, last = seen + 1, done
            if seen >= pieces:
                child.send_signal(signal.SIGKILL)
                child.wait()
                print(
                    f"  killed the worker (SIGKILL) after {seen} committed pieces, "
                    f"{done} rows in",
                    flush=True,
                )
                break
        time.sleep(0.2)
    # The dead worker's lease: let the resumed run take the task at once.
    with registry.cursor() as cr:
        cr.execute(
            "UPDATE prepaid_fleet_import SET lease_until = NULL WHERE id = %s",
            [job_id],
        )


def set_piece(registry, rows: int | None) -> None:
    if rows:
        with registry.cursor() as cr:
            # (set_param() left an existing value unchanged in this script)
            cr.execute(
                """INSERT INTO ir_config_parameter (key, value)
                   VALUES ('prepaid_metering.import_piece_rows', %s)
                   ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value""",
                [str(rows)],
            )


def import_baseline(registry, args, tag: str) -> tuple[float, tuple]:
    """The same table imported with ``prepaid.bulk.create`` switched off
    (Odoo's default_get and precompute per record, ``_check_company`` per
    record): the "before" of this run, under the same load."""
    from odoo.addons.prepaid_metering.models import prepaid_bulk_create

    data = fleet_table(tag, args.gateways, args.meters)
    saved = prepaid_bulk_create.BULK_MINIMUM
    prepaid_bulk_create.BULK_MINIMUM = 10**9
    load = [os.getloadavg()[0]]
    try:
        started = time.perf_counter()
        result, _check = start_job(registry, data)
        run_job(registry, result["id"])
        total = time.perf_counter() - started
    finally:
        prepaid_bulk_create.BULK_MINIMUM = saved
    load.append(os.getloadavg()[0])
    state, done, rows = job_state(registry, result["id"])
    print(f"baseline ({tag}): {state} {done}/{rows} rows in {total:.1f} s", flush=True)
    return total, tuple(load)


def run(args) -> None:
    registry = open_registry(args.db)
    set_piece(registry, args.piece)
    tag = args.tag or f"imp{int(time.time())}"
    n_rows = 2 + args.gateways * (2 + 2 * args.meters)
    print(f"table: {n_rows} rows ({args.gateways} gateways x {args.meters} meters)")
    if args.bad_row:
        data = fleet_table(tag + "bad", args.gateways, args.meters, bad_line=True)
        result, elapsed = start_job(registry, data)
        before = counts(registry, tag + "bad")
        print(
            f"(a) one bad row in {n_rows}: state {result['state']}, "
            f"{len(result['errors'])} error(s) in {elapsed:.1f} s: "
            f"{result['errors'][:3]}; written: rooms {before['rooms']}, "
            f"meters {before['meters']}"
        )
    baseline = None
    if args.baseline:
        baseline = import_baseline(registry, args, tag + "base")
    data = fleet_table(tag, args.gateways, args.meters)
    print(f"file: {len(data) / 1e6:.1f} MB CSV", flush=True)
    phases = Phases()
    phases.install(registry)
    prof_check = cProfile.Profile() if args.profile else None
    prof_run = cProfile.Profile() if args.profile else None
    load_before = os.getloadavg()
    started = time.perf_counter()
    result, check = start_job(registry, data, prof=prof_check)
    print(f"(b) checked and queued in {check:.1f} s: state {result['state']}")
    if args.kill_after:
        kill_after(registry, args, result["id"], args.kill_after)
        partial = counts(registry, tag)
        print(f"  after the kill: rooms {partial['rooms']}, meters {partial['meters']}")
    run = run_job(registry, result["id"], prof=prof_run)
    total = time.perf_counter() - started
    load_after = os.getloadavg()
    phases.uninstall()
    state, done, rows = job_state(registry, result["id"])
    final = counts(registry, tag)
    print(f"    background run {run:.1f} s; state {state}, {done}/{rows} rows")
    print(f"    rooms {final['rooms']}, meters {final['meters']}")
    for model, (n, distinct) in sorted(final["xmlids"].items()):
        print(f"    external ids {model}: {n} ({distinct} distinct records)")
    phases.print("import (check + background run)")
    if args.profile:
        print_profile(prof_check, args.profile_top, "import_fleet (read + check)")
        print_profile(prof_run, args.profile_top, "the background run")
    print("\n================ fleet import benchmark ================")
    print(f"command : cd {REPO_ROOT} && PYTHONPATH=. python3 " + " ".join(sys.argv))
    print(
        f"machine : {os.cpu_count()} cores (shared); load average before "
        f"{load_before[0]:.2f} {load_before[1]:.2f}, after {load_after[0]:.2f} "
        f"{load_after[1]:.2f}"
    )
    print(
        f"import  : {rows} rows, {final['rooms']} rooms + {final['meters']} meters "
        f"on {args.gateways} gateways in {total:.1f} s (goal <= 300 s): "
        f"check {check:.1f} s + run {run:.1f} s, {1000 * total / max(rows, 1):.2f} "
        "ms/row"
    )
    if baseline:
        base_total, base_load = baseline
        print(
            f"baseline: the same table with Odoo's per-record create preparation "
            f"(prepaid.bulk.create off) in {base_total:.1f} s (load {base_load[0]:.2f}"
            f" -> {base_load[1]:.2f}): bulk / baseline = {total / base_total:.2f}"
        )


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="bench_import", help="database (reused)")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument("--update", action="store_true", help="-u the module")
    parser.add_argument("--gateways", type=int, default=1000)
    parser.add_argument("--meters", type=int, default=100, help="per gateway")
    parser.add_argument("--piece", type=int, help="rows per committed piece")
    parser.add_argument("--tag", help="ref prefix (default: a timestamp)")
    parser.add_argument("--bad-row", action="store_true", help="(a) first")
    parser.add_argument(
        "--kill-after", type=int, help="SIGKILL the worker after N pieces"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="cProfile the check and the background run (slower: compare "
        "the phase table's ratios, not the total)",
    )
    parser.add_argument("--profile-top", type=int, default=30)
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="first import the same table with prepaid.bulk.create off "
        "(Odoo's per-record create preparation) and print the ratio",
    )
    parser.add_argument("--child-job", type=int, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child_job:
        return child_run(args)
    created = prepare_database(args.db, args.update, MODULE)
    try:
        run(args)
    finally:
        if created and not args.keep:
            drop_database(args.db)
    return 0


if __name__ == "__main__":
    sys.exit(main())
