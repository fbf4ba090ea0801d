"""Shared set-up: a site, rooms, and a real simulated meter fleet on loopback."""

import sys
import threading
from pathlib import Path

from odoo import SUPERUSER_ID, Command, api
from odoo.tests import TransactionCase

# The simulator is a standalone package at the repository root (no Odoo
# import); the tests run it in-process so they can inspect and fault meters.
_REPO_ROOT = Path(__file__).resolve().parents[3]
if str(_REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(_REPO_ROOT))

from simulator import Fleet  # noqa: E402


def run_in_workers(registry, job, count=2):
    """Run ``job(env)`` in ``count`` threads at once, each with a cursor of
    its own (committed data, like cron workers); returns (results, errors)."""
    start = threading.Barrier(count)
    results, errors = [], []

    def worker():
        try:
            with registry.cursor() as cr:
                # Environment() would look the registry up under the registry
                # lock, which the test runner's thread holds.
                cr.transaction = api.Transaction(registry)
                # No e-mail sent after the commit: that opens a cursor of its
                # own through Registry(), whose lock the test runner's thread
                # holds, and the worker would wait for the end of the tests
                # (the mails stay queued, as a cron would find them).
                env = api.Environment(
                    cr, SUPERUSER_ID, {"mail_notify_force_send": False}
                )
                start.wait(timeout=10)
                results.append(job(env))
        except Exception as err:  # noqa: BLE001 - reported by the test
            errors.append(err)

    threads = [threading.Thread(target=worker) for _i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results, errors


PROTOCOL_BY_FRAMER = {"socket": "modbus_tcp", "rtu": "rtu_over_tcp"}


def fleet_spec(gateways, speed=0.0):
    """A fleet spec: ``gateways`` is a list of (framer, [meter dicts])."""
    return {
        "host": "127.0.0.1",
        "speed": speed,
        "start_time": "2026-03-02T10:00:00",
        "baud": None,
        "gateways": [
            {"name": f"gw{i}", "port": 0, "framer": framer, "meters": meters}
            for i, (framer, meters) in enumerate(gateways, start=1)
        ],
    }


def electric(device_id, kind="electric_1p", energy_kwh=1000.0, **extra):
    return {
        "device_id": device_id,
        "kind": kind,
        "energy_kwh": energy_kwh,
        "load_kw": 1.0,
        "balance": 100.0,
        "unit_price": 0.8,
        **extra,
    }


def water(device_id, volume_m3=12.5, **extra):
    return {
        "device_id": device_id,
        "kind": "water",
        "volume_m3": volume_m3,
        "flow_m3h": 0.1,
        "valve_delay": 0.2,
        **extra,
    }


class MeteringCase(TransactionCase):
    """Locations and profiles; subclasses start a fleet with ``start_fleet``."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env = cls.env(context=dict(cls.env.context, tracking_disable=True))
        # The database may hold gateways and meters of its own (the demo's,
        # with queued commands or readings at some hours): the jobs a test
        # runs leave them alone.
        cls.other_gateways = (
            cls.env["prepaid.gateway"].with_context(active_test=False).search([])
        )
        cls.other_meters = (
            cls.env["prepaid.meter"].with_context(active_test=False).search([])
        )
        cls.company = cls._setup_company()
        cls.site = cls.env["prepaid.site"].create(
            {"name": "Test Plaza", "tz": "Asia/Shanghai"}
        )
        cls.building = cls.env["prepaid.building"].create(
            {"name": "Tower 1", "site_id": cls.site.id}
        )
        cls.floor = cls.env["prepaid.floor"].create(
            {"name": "F1", "level": 1, "building_id": cls.building.id}
        )
        cls.room = cls.env["prepaid.room"].create(
            {"name": "Shop 1", "floor_id": cls.floor.id, "area_m2": 42.5}
        )
        cls.room2 = cls.env["prepaid.room"].create(
            {"name": "Shop 2", "floor_id": cls.floor.id, "area_m2": 30}
        )
        ref = cls.env.ref
        cls.profile_acrel = ref("prepaid_metering.profile_acrel_ddsy1352")
        cls.profile_px = ref("prepaid_metering.profile_px_prepaid_v1")
        cls.profile_water = ref("prepaid_metering.profile_valve_water_v1")
        icp = cls.env["ir.config_parameter"].sudo()
        icp.set_param("prepaid_metering.offline_after_failures", 3)
        icp.set_param("prepaid_metering.command_max_attempts", 1)

    @classmethod
    def _setup_company(cls):
        """The company the test works in (subclasses may use their own)."""
        return cls.env.company

    def own_meters(self):
        """The meters this test (and its class) made."""
        return (
            self.env["prepaid.meter"]
            .with_context(active_test=False)
            .search([("id", "not in", self.other_meters.ids)])
        )

    def own_gateways(self):
        """The gateways this test (and its class) made."""
        return (
            self.env["prepaid.gateway"]
            .with_context(active_test=False)
            .search([("id", "not in", self.other_gateways.ids)])
        )

    def process_commands(self, **kwargs):
        """The command job (``_cron_process``) on this test's gateways only;
        returns how many commands it claimed."""
        return self.env["prepaid.meter.command"]._cron_process(
            gateways=self.own_gateways(), **kwargs
        )

    @classmethod
    def start_fleet(cls, gateways, speed=0.0):
        """Start a fleet for the whole class (tests must not change meters)."""
        fleet = Fleet.from_spec(fleet_spec(gateways, speed=speed)).start()
        cls.addClassCleanup(fleet.stop)
        return fleet

    def start_fresh_fleet(self, gateways, records, speed=0.0):
        """Start a new fleet for one test and point ``records`` at its ports.

        Each test gets meters in their initial state, whatever the previous
        test did to them.
        """
        fleet = Fleet.from_spec(fleet_spec(gateways, speed=speed)).start()
        self.addCleanup(fleet.stop)
        for record, sim_gateway in zip(records, fleet.gateways, strict=True):
            record.port = sim_gateway.port
        return fleet

    def age_baselines(self, meters, hours=1.0):
        """Pretend ``hours`` passed since the last accepted reading of
        ``meters``: the plausibility rule allows their rated demand x the time
        elapsed, and the polls of a test are milliseconds apart."""
        self.env.flush_all()
        self.env.cr.execute(
            """UPDATE prepaid_meter
                  SET baseline_at = baseline_at - make_interval(secs => %s)
                WHERE id = ANY(%s)""",
            [hours * 3600, meters.ids],
        )
        meters.invalidate_recordset(["baseline_at"])

    @classmethod
    def make_gateway(
        cls, fleet_gateway=None, port=None, name="GW", framer=None, **vals
    ):
        framer = framer or (fleet_gateway.framer if fleet_gateway else "socket")
        return cls.env["prepaid.gateway"].create(
            {
                "name": name,
                "site_id": cls.site.id,
                "protocol": PROTOCOL_BY_FRAMER[framer],
                "host": "127.0.0.1",
                "port": port if port is not None else fleet_gateway.port,
                "timeout_s": 0.3,
                **vals,
            }
        )

    @classmethod
    def make_meter(cls, gateway, device_id, kind="electric_1p", room=None, **vals):
        profiles = (
            cls.profile_water if kind == "water" else cls.profile_acrel + cls.profile_px
        )
        return cls.env["prepaid.meter"].create(
            {
                "name": f"M{gateway.id}-{device_id}",
                "meter_type": kind,
                "gateway_id": gateway.id,
                "device_id": device_id,
                "room_id": (room or cls.room).id,
                "profile_ids": [Command.set(profiles.ids)],
                **vals,
            }
        )
