"""The demo fleet the Odoo demo data describes (simulator/demo_fleet.json)."""

from __future__ import annotations

import json
import random
from pathlib import Path

DEMO_FLEET_PATH = Path(__file__).with_name("demo_fleet.json")
#: Simulated seconds per real second. The product judges readings against the
#: meters' rated demand x real time x 1.5 (prepaid_metering's plausibility
#: rule): at this speed every demo load, at its daily peak, stays below 60 %
#: of that limit (checked by prepaid_metering's TestDemoFleet).
DEMO_SPEED = 5
#: gw2 device ids of the apartments B-101..B-104, whose demo accounts open just
#: above an alarm level: a steady 2.5 kW (0.21 kWh a minute at DEMO_SPEED)
#: walks them through alarm levels 1, 2, 3 and the cut-off within minutes.
STAGED_DEVICES = (1, 2, 3, 4)
STAGED_LOAD_KW = 2.5
#: The one meter with a fault on purpose ("demo fault" in its Odoo name): its
#: counter jumps by 500 kWh 20 simulated minutes (4 real ones) after start.
FAULT_DEVICE = 6
FAULT = {"name": "jump", "after_s": 1200, "amount": 500.0}
#: gw3: the DL/T 645-2007 line (transparent RS-485-to-TCP gateway, port 15022).
DLT_PORT = 15022
DLT_ADDRESSES = tuple(f"{301 + i:012d}" for i in range(6))
#: The gw3 meter with a fault on purpose: it has no reverse active energy, so
#: it answers 00020000 with 0xD1 "no data requested" (error bit 1).
DLT_FAULT_ADDRESS = "000000000304"
DLT_FAULT = {"name": "dlt_error", "after_s": 0, "di": "00020000", "bits": 2}
#: A gw3 meter whose cover is opened 30 simulated minutes (6 real ones) after
#: the start: its cover-opened counter (03300D00) goes from 0 to 1.
DLT_EVENT_ADDRESS = "000000000302"
DLT_EVENT = {"counter": "cover_open", "after_s": 1800}
#: Tamper faults on gw1 ("demo fault" in their Odoo names too): open meter
#: events on the room board one, two and three real minutes after start.
TAMPER_FAULTS = {
    5: {"name": "reverse_energy", "after_s": 300, "kw": 1.2},
    17: {"name": "phase_loss", "after_s": 600, "phase": "c"},
    8: {"name": "cover_open", "after_s": 900},
}


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
            # Odoo bills these meters on the server; only gw1/1 (billing mode
            # "meter" in the demo) deducts on the meter itself.
            "unit_price": 0.8 if (gw, dev) == (1, 1) else 0.0,
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
    for meter in gw1:
        if meter["device_id"] in TAMPER_FAULTS:
            meter["faults"] = [dict(TAMPER_FAULTS[meter["device_id"]])]
    gw2 = [electric(d, "electric_1p", 2, (0.2, 1.2)) for d in range(1, 13)]
    for meter in gw2:
        if meter["device_id"] in STAGED_DEVICES:
            meter.update(load_kw=STAGED_LOAD_KW, profile="flat")
        if meter["device_id"] == FAULT_DEVICE:
            meter["faults"] = [dict(FAULT)]
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
    gw3 = []
    for i, address in enumerate(DLT_ADDRESSES):
        kind = "electric_1p" if i < 4 else "electric_3p"
        meter = electric(i + 1, kind, 3, (0.2, 1.2) if i < 4 else (1.0, 4.0))
        meter.update(
            address=address,
            password_level=2,
            password="123456",
            operator="00000001",
            balance=0.0,
            unit_price=0.0,
        )
        if address == DLT_FAULT_ADDRESS:
            meter["faults"] = [dict(DLT_FAULT)]
        if address == DLT_EVENT_ADDRESS:
            meter["scheduled_events"] = [dict(DLT_EVENT)]
        gw3.append(meter)
    return {
        "description": "Demo fleet matching the Odoo demo data (see README.md)",
        "host": "127.0.0.1",
        "speed": DEMO_SPEED,
        "start_time": None,
        "baud": None,
        "gateways": [
            {"name": "gw1", "port": 15020, "framer": "socket", "meters": gw1},
            {"name": "gw2", "port": 15021, "framer": "rtu", "meters": gw2},
            {
                "name": "gw3",
                "port": DLT_PORT,
                "protocol": "dlt645",
                "meters": gw3,
            },
        ],
    }


def write_demo_spec() -> None:
    """Rewrite demo_fleet.json from :func:`generate_demo_spec`."""
    DEMO_FLEET_PATH.write_text(json.dumps(generate_demo_spec(), indent=1) + "\n")
