"""The demo fleet the Odoo demo data describes (simulator/demo_fleet.json)."""

from __future__ import annotations

import json
import random
from pathlib import Path

DEMO_FLEET_PATH = Path(__file__).with_name("demo_fleet.json")


def demo_spec(start_time: str | None = None) -> dict:
    """Return the demo fleet spec; ``start_time`` None means "now" at start."""
    spec = json.loads(DEMO_FLEET_PATH.read_text())
    spec["start_time"] = start_time
    return spec


def generate_demo_spec() -> dict:
    """Regenerate the demo spec (deterministic); used to write demo_fleet.json."""
    rng = random.Random(2025)

    def electric(dev: int, kind: str, gw: int, load: tuple[float, float]) -> dict:
        return {
            "device_id": dev,
            "kind": kind,
            "serial": f"SIM-GW{gw}-{dev:03d}",
            "energy_kwh": round(rng.uniform(100, 5000), 2),
            "load_kw": round(rng.uniform(*load), 3),
            "profile": "residential",
            "balance": 200.0,
            "unit_price": 0.8,
            "alarm1_amount": 50.0,
            "alarm2_amount": 20.0,
            "overdraft_limit": 0.0,
        }

    gw1 = [electric(d, "electric_1p", 1, (0.2, 1.2)) for d in range(1, 16)]
    gw1 += [electric(d, "electric_3p", 1, (1.0, 4.0)) for d in range(16, 20)]
    # The master meter measures the whole feeder for loss checks; it is not
    # prepaid, so it has no meter-side deduction (unit price 0) and never trips.
    master = electric(20, "electric_3p", 1, (6.0, 6.0))
    master.update(profile="commercial", energy_kwh=4875.5, unit_price=0.0)
    gw1.append(master)
    gw2 = [electric(d, "electric_1p", 2, (0.2, 1.2)) for d in range(1, 13)]
    gw2 += [
        {
            "device_id": d,
            "kind": "water",
            "serial": f"SIM-GW2-{d:03d}",
            "volume_m3": round(rng.uniform(10, 500), 3),
            "flow_m3h": round(rng.uniform(0.02, 0.15), 3),
            "profile": "residential",
            "valve_open": True,
            "valve_delay": 2.0,
        }
        for d in range(13, 21)
    ]
    return {
        "description": "Demo fleet matching the Odoo demo data (see README.md)",
        "host": "127.0.0.1",
        "speed": 60,
        "start_time": None,
        "baud": None,
        "gateways": [
            {"name": "gw1", "port": 15020, "framer": "socket", "meters": gw1},
            {"name": "gw2", "port": 15021, "framer": "rtu", "meters": gw2},
        ],
    }


def write_demo_spec() -> None:
    """Rewrite demo_fleet.json from :func:`generate_demo_spec`."""
    DEMO_FLEET_PATH.write_text(json.dumps(generate_demo_spec(), indent=1) + "\n")
