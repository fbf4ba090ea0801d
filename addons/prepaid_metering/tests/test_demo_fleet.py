import importlib
import json
import sys
from pathlib import Path

from odoo.modules.module import get_module_path
from odoo.tests import TransactionCase, tagged


def _repo_root():
    return Path(get_module_path("prepaid_metering")).resolve().parent.parent


def _gateways(spec):
    """The fleet's gateways: gw1 and gw2 (Modbus) and gw3 (DL/T 645, port
    15022), each with its Odoo demo records."""
    return spec["gateways"]


def _profiles():
    """The simulator's daily profiles (``simulator.meters.PROFILES``)."""
    root = str(_repo_root())
    added = root not in sys.path
    if added:
        sys.path.insert(0, root)
    try:
        return importlib.import_module("simulator.meters").PROFILES
    finally:
        if added:
            sys.path.remove(root)


@tagged("post_install", "-at_install")
class TestDemoFleet(TransactionCase):
    """The demo meters' rated demand covers what the demo fleet
    (simulator/demo_fleet.json) makes them count: at the fleet's speed, no
    reading of an undisturbed demo meter is suspect."""

    def test_demo_rated_demand_covers_the_demo_fleet_at_its_speed(self):
        fleet_path = _repo_root() / "simulator" / "demo_fleet.json"
        if not fleet_path.exists() or not self.env.ref(
            "prepaid_metering.demo_meter_1_1", raise_if_not_found=False
        ):
            self.skipTest("needs the repository's simulator and the demo data")
        spec = json.loads(fleet_path.read_text())
        profiles = _profiles()
        margin = self.env["prepaid.reading"]._plausibility_margin()
        meters = self.env["prepaid.meter"].search([("serial_number", "like", "SIM-GW")])
        by_serial = {meter.serial_number: meter for meter in meters}
        checked = 0
        for gateway in _gateways(spec):
            for item in gateway["meters"]:
                meter = by_serial[item["serial"]]
                water = item["kind"] == "water"
                rate = item["flow_m3h"] if water else item["load_kw"]
                peak = max(profiles[item.get("profile") or "flat"])
                rated = meter.rated_flow_m3h if water else meter.rated_power_kw
                # a third of headroom for readings a few seconds late
                self.assertLessEqual(
                    rate * peak * spec["speed"],
                    rated * margin * 2 / 3,
                    f"{meter.name}: the demo fleet counts faster than its rated "
                    "demand allows",
                )
                checked += 1
        self.assertEqual(checked, 46)

    def test_only_the_labelled_demo_meter_has_a_fault(self):
        fleet_path = _repo_root() / "simulator" / "demo_fleet.json"
        if not fleet_path.exists() or not self.env.ref(
            "prepaid_metering.demo_meter_2_6", raise_if_not_found=False
        ):
            self.skipTest("needs the repository's simulator and the demo data")
        spec = json.loads(fleet_path.read_text())
        faulty = [
            item["serial"]
            for gateway in _gateways(spec)
            for item in gateway["meters"]
            if item.get("faults")
        ]
        labelled = self.env["prepaid.meter"].search([("name", "ilike", "demo fault")])
        self.assertEqual(faulty, labelled.mapped("serial_number"))

    def test_demo_readings_end_where_the_demo_fleet_starts(self):
        fleet_path = _repo_root() / "simulator" / "demo_fleet.json"
        if not fleet_path.exists() or not self.env.ref(
            "prepaid_metering.demo_meter_1_13", raise_if_not_found=False
        ):
            self.skipTest("needs the repository's simulator and the demo data")
        spec = json.loads(fleet_path.read_text())
        start = {
            item["serial"]: item.get("energy_kwh", item.get("volume_m3"))
            for gateway in spec["gateways"]
            for item in gateway["meters"]
        }
        manual = self.env["prepaid.reading"].search(
            [("source", "=", "manual"), ("meter_id.serial_number", "like", "SIM-GW")],
            order="id",
        )
        last = {reading.meter_id: reading for reading in manual}
        for meter, reading in last.items():
            value = (
                reading.volume_m3
                if meter.meter_type == "water"
                else reading.energy_total_kwh
            )
            # the fleet's first polled reading continues from there: no drop
            self.assertAlmostEqual(value, start[meter.serial_number], places=3)
