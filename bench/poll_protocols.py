"""``bench/poll.py --protocol dlt645|mixed``: DL/T 645-2007 sites beside Modbus.

Measures, in one run (figures of issue 19):

(a) one full product sweep (``prepaid.gateway._cron_poll``: driver, storage,
    commits) of a Modbus site and of a DL/T 645 site of the same shape
    (default 100 gateways x 100 meters, loopback, no line latency), with
    requests per meter and time per request for both: goal DL/T 645 per
    request <= 1.5x Modbus per request. Bare sweeps (raw sockets, no decoding,
    no database) for reference;
(b) DL/T 645 with line emulation at 2,400 baud 8E1 (default 10 x 5 meters):
    one product sweep against the bus limit computed from the frame sizes
    the sweep sent and the simulator answered (goal <= 1.3x);
(m) ``--protocol mixed`` also sweeps a site of half Modbus, half DL/T 645
    gateways: goal no slower than the slower protocol alone (same run).

The simulator runs in its own processes (``ProcessFleet``), the product in
this one. Sites are created once per shape and reused with ``--keep``.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import sys
import time
from dataclasses import dataclass

import poll
from poll import MODULE, Run, best_median, new_env

from simulator import (
    DltMeter,
    ProcessFleet,
    build_spec,
    dlt645_bus_time,
    dlt645_frame_size,
)
from simulator import dlt645_frame as frame

DLT_PROFILE = "profile_dlt645_1p"
KINDS = {"modbus": ("modbus",), "dlt645": ("dlt645",), "mixed": ("modbus", "dlt645")}
ODOO_PROTOCOL = {"modbus": "modbus_tcp", "dlt645": "dlt645_tcp"}


# ---------------------------------------------------------------------------
# Bench sites
# ---------------------------------------------------------------------------
def gateway_protocols(kind: str, n_gateways: int) -> list[str]:
    """Protocol of each gateway, as ``build_spec(protocol=...)`` cycles them."""
    cycle = KINDS[kind]
    return [cycle[g % len(cycle)] for g in range(n_gateways)]


def ensure_site(registry, kind: str, n_gateways: int, n_meters: int) -> list[int]:
    """Gateway ids (gw1..gwN) of the bench site of this protocol and shape."""
    if kind == "modbus":
        return poll.ensure_fleet(registry, n_gateways, n_meters)
    from odoo import Command

    code = f"bench-poll-{kind}-{n_gateways}x{n_meters}"
    with registry.cursor() as cr:
        env = new_env(cr)
        site = env["prepaid.site"].search([("code", "=", code)], limit=1)
        if site:
            gateways = env["prepaid.gateway"].search([("site_id", "=", site.id)])
            return sorted(gateways.ids)
        started = time.perf_counter()
        profiles = {
            "modbus": [env.ref(f"{MODULE}.{x}").id for x in poll.PROFILES],
            "dlt645": [env.ref(f"{MODULE}.{DLT_PROFILE}").id],
        }
        site = env["prepaid.site"].create({"name": code, "code": code, "tz": "UTC"})
        building = env["prepaid.building"].create({"name": "B1", "site_id": site.id})
        floors = env["prepaid.floor"].create(
            [
                {"name": f"F{g + 1}", "level": g + 1, "building_id": building.id}
                for g in range(n_gateways)
            ]
        )
        protocols = gateway_protocols(kind, n_gateways)
        gateways = env["prepaid.gateway"].create(
            [
                {
                    "name": f"gw{g + 1:03d}",
                    "site_id": site.id,
                    "protocol": ODOO_PROTOCOL[protocols[g]],
                    "host": "127.0.0.1",
                    "port": 502,
                    "timeout_s": 1.0,
                }
                for g in range(n_gateways)
            ]
        )
        for g, (floor, gateway) in enumerate(zip(floors, gateways, strict=True)):
            rooms = env["prepaid.room"].create(
                [
                    {"name": f"R{g + 1}-{d}", "floor_id": floor.id}
                    for d in range(1, n_meters + 1)
                ]
            )
            dlt = protocols[g] == "dlt645"
            env["prepaid.meter"].create(
                [
                    {
                        "name": f"M{g + 1}-{d}",
                        "meter_type": "electric_1p",
                        "gateway_id": gateway.id,
                        "device_id": d,
                        "room_id": room.id,
                        "profile_ids": [Command.set(profiles[protocols[g]])],
                        **({"address": f"{g + 1:06d}{d:06d}"} if dlt else {}),
                    }
                    for d, room in enumerate(rooms, 1)
                ]
            )
            # one gateway's meters a create: one huge create() grows quadratically
            env.flush_all()
        env.flush_all()
        print(
            f"created site {code}: {n_gateways} gateways ({kind}), "
            f"{n_gateways * n_meters} meters in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        return gateways.ids


def start_fleet(kind, n_gateways, n_meters, processes, baud):
    spec = build_spec(
        n_gateways,
        n_meters,
        kinds="electric_1p",
        speed=0,
        baud=baud,
        protocol=list(KINDS[kind]),
    )
    started = time.perf_counter()
    fleet = ProcessFleet(spec, processes=processes).start()
    print(
        f"simulator: {kind}, {n_gateways} x {n_meters} meters, "
        f"baud={baud or 'none'}, {len(fleet.slices)} processes, "
        f"up in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    return fleet


def dlt_items(registry, with_slow: bool = False) -> list:
    """The product's DL/T 645 read plan (data items) of the bench profile."""
    with registry.cursor() as cr:
        env = new_env(cr)
        profile = env.ref(f"{MODULE}.{DLT_PROFILE}")
        return list(profile._read_plan(with_slow=with_slow))


# ---------------------------------------------------------------------------
# Bare DL/T 645 sweep: raw asyncio sockets, frames built from the standard
# ---------------------------------------------------------------------------
async def _ask(reader, writer, request: bytes, timeout: float) -> bool:
    writer.write(request)
    buf = bytearray()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        chunk = await asyncio.wait_for(reader.read(512), deadline - loop.time())
        if not chunk:
            return False
        buf += chunk
        found, _used = frame.next_frame(buf)
        if found is not None:
            return not found.control & 0x40


async def _bare_dlt_bus(endpoint, dis, timeout) -> tuple[int, int]:
    addresses = endpoint["addresses"]
    try:
        host, port = endpoint["host"], endpoint["port"]
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        return 0, len(addresses)
    ok = 0
    try:
        for address in addresses:
            raw = frame.address_bytes(address)
            good = True
            for di in dis:
                request = frame.encode(raw, frame.READ, frame.di_bytes(di))
                try:
                    good = await _ask(reader, writer, request, timeout) and good
                except TimeoutError:
                    good = False
            ok += good
    finally:
        writer.close()
    return ok, len(addresses) - ok


async def _bare_mixed(endpoints, blocks, dis, timeout):
    return await asyncio.gather(
        *(
            _bare_dlt_bus(e, dis, timeout)
            if e.get("protocol") == "dlt645"
            else poll._bare_bus(e, blocks, timeout)
            for e in endpoints
        )
    )


def bare_sweep(endpoints, blocks, dis, timeout: float = 1.0) -> Run:
    cpu0, sim0 = time.process_time(), poll.simulator_cpu()
    started = time.perf_counter()
    outcomes = asyncio.run(_bare_mixed(endpoints, blocks, dis, timeout))
    return Run(
        wall=time.perf_counter() - started,
        ok=sum(o[0] for o in outcomes),
        failed=sum(o[1] for o in outcomes),
        cpu=time.process_time() - cpu0,
        sim_cpu=poll.simulator_cpu() - sim0,
    )


# ---------------------------------------------------------------------------
# What a sweep sent (from the jobs the probe captured)
# ---------------------------------------------------------------------------
def requests_of(captured) -> dict[str, tuple[int, int]]:
    """{protocol: (requests, meters)} of the captured sweep jobs."""
    out: dict[str, list[int]] = {}
    for jobs, _results in captured:
        for _endpoint, polls in jobs:
            for meter_poll in polls:
                items = getattr(meter_poll, "items", None)
                proto = "modbus" if items is None else "dlt645"
                # the driver reads the items sharing a (block) identifier at once
                count = len(meter_poll.blocks) if items is None else len(_dis(items))
                acc = out.setdefault(proto, [0, 0])
                acc[0] += count
                acc[1] += 1
    return {k: (v[0], v[1]) for k, v in out.items()}


def _dis(items) -> list[str]:
    """The distinct data identifiers of ``items``, in order: one request each."""
    return list(dict.fromkeys(item.di.upper() for item in items))


_REPLY_SIZES: dict[str, int] = {}


def reply_size(di: str, preamble: int = 4) -> int:
    """Bytes of the simulator's reply to a read of ``di`` (single phase)."""
    if di not in _REPLY_SIZES:
        meter = DltMeter(1, address="000000000001")
        reply = meter.serve(
            frame.Frame(meter.address_raw, frame.READ, frame.di_bytes(int(di, 16)))
        )
        _REPLY_SIZES[di] = len(reply.data)
    return dlt645_frame_size(_REPLY_SIZES[di], preamble)


def dlt_bus_limit(captured, baud: int) -> tuple[float, int, list[int]]:
    """Slowest line of the captured sweep: sum over its requests of the
    request + reply frame times at ``baud`` 8E1. Returns (seconds, request
    bytes, reply sizes seen)."""
    request = dlt645_frame_size(4)
    worst, sizes = 0.0, set()
    for jobs, _results in captured:
        for _endpoint, polls in jobs:
            line = 0.0
            for meter_poll in polls:
                for di in _dis(meter_poll.items):
                    size = reply_size(di)
                    sizes.add(size)
                    line += dlt645_bus_time(request, size, baud)
            worst = max(worst, line)
    return worst, request, sorted(sizes)


# ---------------------------------------------------------------------------
# Phases
# ---------------------------------------------------------------------------
@dataclass
class Phase:
    kind: str
    meters: int
    bare: list[Run]
    product: list[Run]
    requests: list[dict]
    captured_runs: list[list]


def phase(registry, probe, args, kind, n_gw, n_m, baud, blocks, dis) -> Phase:
    gateway_ids = ensure_site(registry, kind, n_gw, n_m)
    fleet = start_fleet(kind, n_gw, n_m, args.processes, baud)
    try:
        endpoints = fleet.endpoints()
        poll.point_gateways(registry, gateway_ids, endpoints)
        meters = n_gw * n_m
        bare = []
        if not baud:
            bare = [bare_sweep(endpoints, blocks, dis) for _ in range(args.repeat)]
            poll.print_runs(f"bare    {kind:<6}", bare, meters)
        product, requests, captured_runs = [], [], []
        for _ in range(args.repeat):
            product.append(poll.product_sweep(registry, probe, gateway_ids))
            requests.append(requests_of(probe.captured))
            captured_runs.append(list(probe.captured))
        poll.print_runs(f"product {kind:<6}", product, meters)
    finally:
        fleet.stop()
    return Phase(kind, meters, bare, product, requests, captured_runs)


def per_request(ph: Phase, proto: str) -> tuple[float, float, float]:
    """(requests per meter, best and median seconds per request) of the
    product sweeps of ``ph`` counting only ``proto``'s requests."""
    per_run = [
        run.wall / req[proto][0]
        for run, req in zip(ph.product, ph.requests, strict=True)
        if proto in req
    ]
    total, meters = ph.requests[-1][proto]
    best, median = best_median(per_run)
    return total / meters, best, median


def report(args, blocks, dis, res: dict, res_b) -> None:
    print("\n=========== polling benchmark: DL/T 645 beside Modbus ===========")
    print(
        f"command : cd {poll.REPO_ROOT} && PYTHONPATH=. python3 "
        + " ".join(shlex.quote(a) for a in sys.argv)
    )
    print(
        f"machine : {os.cpu_count()} cores; simulator {args.processes} processes "
        f"(ProcessFleet), Odoo + drivers in this process; runs: {args.repeat}"
    )
    plan = ", ".join(f"0x{s:04X}+{c}" for s, c in blocks)
    print(f"modbus  : {plan} per meter (FC03)")
    print(f"dlt645  : {len(dis)} data identifiers per meter per sweep (0x11 each)")
    n = args.gateways * args.meters
    print(f"\n(a) no latency, {args.gateways} gw x {args.meters} = {n} meters per site")
    print(
        "                    best      median    req/meter  per request (best/median)"
    )
    rows = {}
    for kind in ("modbus", "dlt645"):
        ph = res[kind]
        bb = best_median([r.wall for r in ph.bare]) if ph.bare else None
        pb, pm = best_median([r.wall for r in ph.product])
        rpm, rb, rm = per_request(ph, kind)
        rows[kind] = (pb, pm, rb, rm)
        if bb:
            print(f"    bare {kind:<7}  {bb[0]:6.2f} s  {bb[1]:6.2f} s")
        print(
            f"    product {kind:<7}{pb:6.2f} s  {pm:6.2f} s  {rpm:7.1f}"
            f"    {rb * 1e6:7.1f} / {rm * 1e6:7.1f} us"
        )
    ratio_b = rows["dlt645"][2] / rows["modbus"][2]
    ratio_m = rows["dlt645"][3] / rows["modbus"][3]
    print(
        f"    DL/T 645 per request / Modbus per request: {ratio_b:4.2f}x best, "
        f"{ratio_m:4.2f}x median   (goal <= 1.5x)"
    )
    for kind in ("modbus", "dlt645"):
        per_run = [
            f"{r[kind][0] / r[kind][1]:.0f}" for r in res[kind].requests if kind in r
        ]
        print(f"    {kind} requests per meter, run by run: {', '.join(per_run)}")
    if "mixed" in res:
        ph = res["mixed"]
        pb, pm = best_median([r.wall for r in ph.product])
        slower_b = max(rows["modbus"][0], rows["dlt645"][0])
        slower_m = max(rows["modbus"][1], rows["dlt645"][1])
        print(
            f"\n(m) mixed site, {args.gateways} gw (half Modbus, half DL/T 645) x "
            f"{args.meters} meters"
        )
        print(
            f"    product mixed  {pb:6.2f} s  {pm:6.2f} s   slower protocol alone "
            f"{slower_b:6.2f} s / {slower_m:6.2f} s  -> {pb / slower_b:4.2f}x best, "
            f"{pm / slower_m:4.2f}x median (goal <= 1.0x)"
        )
    if res_b:
        ph, n_gw, n_m, limits = res_b
        print(
            f"\n(b) DL/T 645 at {args.dlt_baud} baud 8E1 (11 bits/byte), {n_gw} gw x "
            f"{n_m} meters"
        )
        for i, (run, (limit, req, sizes)) in enumerate(
            zip(ph.product, limits, strict=True), 1
        ):
            rpm = ph.requests[i - 1]["dlt645"]
            print(
                f"    run {i}: product {run.wall:6.2f} s, bus limit {limit:6.2f} s "
                f"(slowest line; requests {req} B, replies {sizes} B, "
                f"{rpm[0] / rpm[1]:.0f} req/meter) -> {run.wall / limit:4.2f}x"
                "  (goal <= 1.3x)"
            )
    print("\n(figures measured on a shared, loaded machine; re-measure quietly)")


def run(args) -> None:
    registry = poll.open_registry(args.db)
    probe = poll.Probe(registry)
    blocks = poll.read_blocks(registry)
    dis = [int(di, 16) for di in _dis(dlt_items(registry))]
    old_batch = poll.set_param(registry, poll.BATCH_PARAM, args.batch_gateways)
    kinds = ["modbus", "dlt645"] + (["mixed"] if args.protocol == "mixed" else [])
    res, res_b = {}, None
    try:
        for kind in kinds:
            print(f"\n(a) {kind}, no latency", flush=True)
            res[kind] = phase(
                registry,
                probe,
                args,
                kind,
                args.gateways,
                args.meters,
                None,
                blocks,
                dis,
            )
        if not args.skip_baud:
            n_gw, n_m = args.baud_gateways, args.dlt_baud_meters
            print(f"\n(b) dlt645 at {args.dlt_baud} baud 8E1", flush=True)
            ph = phase(
                registry, probe, args, "dlt645", n_gw, n_m, args.dlt_baud, blocks, dis
            )
            # every run's own jobs: the slow items ride along every N sweeps
            limits = [dlt_bus_limit(c, args.dlt_baud) for c in ph.captured_runs]
            res_b = (ph, n_gw, n_m, limits)
    finally:
        if args.batch_gateways is not None:
            poll.set_param(registry, poll.BATCH_PARAM, old_batch or False)
    report(args, blocks, dis, res, res_b)
