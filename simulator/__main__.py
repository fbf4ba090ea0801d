"""Command line: ``python3 -m simulator --help``."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time

from .demo import demo_spec
from .fleet import Fleet, ProcessFleet, build_spec


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python3 -m simulator",
        description="Serve simulated prepaid meters behind Modbus TCP and "
        "DL/T 645-2007 (transparent RS-485-to-TCP) gateways.",
    )
    parser.add_argument("--demo", action="store_true", help="serve demo_fleet.json")
    parser.add_argument("--spec", help="fleet spec JSON file (see README.md)")
    parser.add_argument("--gateways", type=int, default=1)
    parser.add_argument("--meters-per-gateway", type=int, default=10)
    parser.add_argument(
        "--kinds",
        default="electric_1p",
        help="comma separated kinds cycled over meters: electric_1p,electric_3p,water",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--base-port", type=int, default=15020, help="0 = ephemeral")
    parser.add_argument("--framer", default="socket", help="socket, rtu or socket,rtu")
    parser.add_argument(
        "--protocol",
        default="modbus",
        help="modbus, dlt645 or a comma separated list cycled over gateways "
        "(dlt645 meters get addresses GGGGGGDDDDDD, password 123456 level 2, "
        "operator 00000001)",
    )
    parser.add_argument("--speed", type=float, help="simulated s per real s")
    parser.add_argument(
        "--baud",
        type=int,
        help="emulate RS-485 timing, e.g. 9600 (Modbus 8N1, DL/T 645 8E1)",
    )
    parser.add_argument("--start-time", help="simulated start, ISO (default now)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--processes", type=int, default=1, help="worker processes")
    parser.add_argument("--json", action="store_true", help="print endpoints as JSON")
    parser.add_argument(
        "--state",
        help="state file: meters resume from it at start (when it exists) and "
        "it is written every --state-every seconds and at stop",
    )
    parser.add_argument(
        "--state-every",
        type=float,
        default=30.0,
        help="seconds between state file writes (default 30)",
    )
    return parser


def _spec(args: argparse.Namespace) -> dict:
    if args.demo:
        spec = demo_spec(args.start_time)
    elif args.spec:
        with open(args.spec) as fh:
            spec = json.load(fh)
    else:
        spec = build_spec(
            args.gateways,
            args.meters_per_gateway,
            kinds=args.kinds.split(","),
            framer=args.framer.split(","),
            protocol=args.protocol.split(","),
            speed=args.speed or 0.0,
            host=args.host,
            base_port=args.base_port,
            start_time=args.start_time,
            seed=args.seed,
        )
    if args.speed is not None:
        spec["speed"] = args.speed
    if args.baud is not None:
        spec["baud"] = args.baud
    if args.start_time:
        spec["start_time"] = args.start_time
    return spec


def _interrupt(*_args):
    raise KeyboardInterrupt


def _print_banner(args, spec, fleet, restored: int) -> None:
    endpoints = fleet.endpoints()
    if args.json:
        print(json.dumps({"endpoints": endpoints}), flush=True)
        return
    meters = sum(len(e["device_ids"]) for e in endpoints)
    print(
        f"simulator: {meters} meters on {len(endpoints)} gateways, "
        f"speed {spec.get('speed', 0)}, baud {spec.get('baud') or 'unlimited'}",
        flush=True,
    )
    for e in endpoints:
        ids = e.get("addresses") or e["device_ids"]
        span = f"{ids[0]}..{ids[-1]}" if ids else "-"
        what = "addresses" if e.get("addresses") else "device ids"
        print(
            f"  {e['name']} {e['host']}:{e['port']} {e['framer']} {what} {span}",
            flush=True,
        )
    if args.state:
        print(
            f"  state file {args.state}: "
            + (f"{restored} meters resumed" if restored else "new"),
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    """Run the simulator until SIGINT/SIGTERM."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.state and args.processes > 1:
        parser.error("--state needs one process (--processes 1)")
    if args.state_every <= 0:
        parser.error("--state-every must be positive")
    try:
        spec = _spec(args)
    except ValueError as err:
        parser.error(str(err))
    restored = 0
    if args.processes > 1:
        fleet = ProcessFleet(spec, args.processes)
    else:
        fleet = Fleet.from_spec(spec)
        if args.state:
            try:
                restored = fleet.load_state(args.state)
            except (ValueError, KeyError, TypeError) as err:
                parser.error(f"cannot resume from {args.state}: {err!r}")
    # The handler only raises: setting an Event from a signal handler while
    # the main thread waits on that Event deadlocks on the Event's own lock.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    fleet.start()
    try:
        _print_banner(args, spec, fleet, restored)
        next_save = time.monotonic() + args.state_every
        while True:
            time.sleep(1.0)
            if args.state and time.monotonic() >= next_save:
                fleet.save_state(args.state)
                next_save = time.monotonic() + args.state_every
    except KeyboardInterrupt:
        pass
    finally:
        fleet.stop()
        if args.state:
            fleet.save_state(args.state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
