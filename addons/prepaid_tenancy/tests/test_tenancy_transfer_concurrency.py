import time
from datetime import timedelta

from psycopg2.errors import SerializationFailure

from odoo import SUPERUSER_ID, Command, api, fields
from odoo.tests import TransactionCase, tagged
from odoo.tools import mute_logger

from odoo.addons.prepaid_metering.tests.common import (
    Fleet,
    electric,
    fleet_spec,
    run_in_workers,
)
from odoo.addons.prepaid_metering.tools.transactions import start_read_committed

from .common import PHOTO


@tagged("post_install", "-at_install")
class TestTransferDuringAPoll(TransactionCase):
    """A transfer and the poll job at the same moment, in two real
    transactions (committed data, two threads): the reading the poll stores
    belongs to exactly one tenancy, and the use up to the transfer reading
    to the tenant leaving, whichever transaction gets the meter first."""

    def setUp(self):
        super().setUp()
        self.fleet = Fleet.from_spec(
            fleet_spec([("socket", [electric(1, energy_kwh=1000.0)])])
        ).start()
        self.addCleanup(self.fleet.stop)
        self.sim = self.fleet.meter(0, 1)
        self.ids = {}
        self.addCleanup(self._remove_committed_data)
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {"tracking_disable": True})
            ids = self.ids
            ids["partners"] = (
                env["res.partner"]
                .create([{"name": "Race leaving"}, {"name": "Race arriving"}])
                .ids
            )
            tariff = env["prepaid.tariff"].create(
                {
                    "name": "Race flat",
                    "version_ids": [
                        Command.create(
                            {"date_from": "2020-01-01", "kind": "flat", "price": 1.0}
                        )
                    ],
                }
            )
            ids["tariff"] = tariff.id
            site = env["prepaid.site"].create(
                {"name": "Race site", "tz": "Asia/Shanghai"}
            )
            ids["site"] = site.id
            building = env["prepaid.building"].create(
                {"name": "Race tower", "site_id": site.id}
            )
            floor = env["prepaid.floor"].create(
                {"name": "F1", "level": 1, "building_id": building.id}
            )
            room = env["prepaid.room"].create(
                {"name": "Race shop", "floor_id": floor.id}
            )
            ids.update(building=building.id, floor=floor.id, room=room.id)
            gateway = env["prepaid.gateway"].create(
                {
                    "name": "Race bus",
                    "site_id": site.id,
                    "protocol": "modbus_tcp",
                    "host": "127.0.0.1",
                    "port": self.fleet.gateways[0].port,
                    "timeout_s": 0.5,
                    "next_poll_at": "2999-01-01 00:00:00",
                }
            )
            ids["gateway"] = gateway.id
            meter = env["prepaid.meter"].create(
                {
                    "name": "Race meter",
                    "gateway_id": gateway.id,
                    "device_id": 1,
                    "room_id": room.id,
                    "rated_power_kw": 50.0,
                    "profile_ids": [
                        Command.set(
                            env.ref("prepaid_metering.profile_acrel_ddsy1352").ids
                        )
                    ],
                }
            )
            ids["meter"] = meter.id
            tenancy = env["prepaid.tenancy"].create(
                {
                    "partner_id": ids["partners"][0],
                    "room_ids": [Command.set(room.ids)],
                    "tariff_id": tariff.id,
                }
            )
            # moved in a day ago at 1000.00 kWh (60 kWh a day is plausible)
            tenancy._move_in(
                [
                    {
                        "meter": meter,
                        "manual": True,
                        "value": 1000.0,
                        "read_at": fields.Datetime.now() - timedelta(days=1),
                        "photo": PHOTO,
                    }
                ]
            )
            ids["tenancies"] = tenancy.ids
            ids["accounts"] = tenancy.account_id.ids

    def _remove_committed_data(self):
        ids = self.ids
        if "tenancies" not in ids:
            return
        with self.registry.cursor() as cr:
            cr.execute(
                "SELECT t.id, t.account_id FROM prepaid_tenancy t "
                "JOIN prepaid_tenancy_room_rel r ON r.tenancy_id = t.id "
                "WHERE r.room_id = %s",
                [ids["room"]],
            )
            rows = cr.fetchall()
            tenancies = [row[0] for row in rows]
            accounts = [row[1] for row in rows if row[1]]
            for statement, params in [
                (
                    "DELETE FROM prepaid_reading_charge WHERE meter_id = %s",
                    [ids["meter"]],
                ),
                (
                    "DELETE FROM prepaid_ledger_line WHERE account_id = ANY(%s)",
                    [accounts],
                ),
                ("DELETE FROM prepaid_tenancy WHERE id = ANY(%s)", [tenancies]),
                (
                    "DELETE FROM prepaid_daily_usage WHERE meter_id = %s",
                    [ids["meter"]],
                ),
                (
                    "DELETE FROM prepaid_meter_command WHERE meter_id = %s",
                    [ids["meter"]],
                ),
                (
                    "UPDATE prepaid_meter SET billing_account_id = NULL WHERE id = %s",
                    [ids["meter"]],
                ),
                (
                    "DELETE FROM ir_attachment WHERE res_model = 'prepaid.reading' "
                    "AND res_id IN (SELECT id FROM prepaid_reading "
                    "WHERE meter_id = %s)",
                    [ids["meter"]],
                ),
                ("DELETE FROM prepaid_reading WHERE meter_id = %s", [ids["meter"]]),
                ("DELETE FROM prepaid_account WHERE id = ANY(%s)", [accounts]),
                ("DELETE FROM prepaid_meter WHERE id = %s", [ids["meter"]]),
                ("DELETE FROM prepaid_gateway WHERE id = %s", [ids["gateway"]]),
                ("DELETE FROM prepaid_room WHERE id = %s", [ids["room"]]),
                ("DELETE FROM prepaid_floor WHERE id = %s", [ids["floor"]]),
                ("DELETE FROM prepaid_building WHERE id = %s", [ids["building"]]),
                ("DELETE FROM prepaid_site WHERE id = %s", [ids["site"]]),
                ("DELETE FROM prepaid_tariff WHERE id = %s", [ids["tariff"]]),
                (
                    "DELETE FROM mail_message WHERE (model = 'prepaid.account' "
                    "AND res_id = ANY(%s)) OR (model = 'prepaid.tenancy' "
                    "AND res_id = ANY(%s)) OR (model = 'prepaid.meter' "
                    "AND res_id = %s)",
                    [accounts, tenancies, ids["meter"]],
                ),
                ("DELETE FROM res_partner WHERE id = ANY(%s)", [ids["partners"]]),
            ]:
                cr.execute(statement, params)

    def test_a_reading_polled_during_the_transfer_belongs_to_one_side(self):
        self.sim.energy_total = 1060.0
        tenancy_id, meter_id = self.ids["tenancies"][0], self.ids["meter"]
        arriving = self.ids["partners"][1]

        roles = iter(["transfer", "poll"])

        def worker(env):
            role = next(roles)
            if role == "transfer":
                tenancy = env["prepaid.tenancy"].browse(tenancy_id)
                following = tenancy._transfer(
                    [
                        {
                            "meter": env["prepaid.meter"].browse(meter_id),
                            "manual": True,
                            "value": 1060.0,
                            "read_at": fields.Datetime.now(),
                            "photo": PHOTO,
                        }
                    ],
                    {"partner_id": arriving, "tariff_id": self.ids["tariff"]},
                )
                # hold the meters a moment: a poll meanwhile waits for us
                time.sleep(1.0)
                return ("transfer", following.id)
            # as the poll job does: READ COMMITTED, the bus claimed and
            # committed, the sweep stored and committed
            # A sweep whose snapshot predates the transfer's commit fails on
            # the meter row (REPEATABLE READ) and stores nothing: the next
            # sweep stores the reading, on the arriving tenant's side.
            attempts = 0
            while True:
                attempts += 1
                start_read_committed(env.cr)
                gateway = env["prepaid.gateway"].browse(self.ids["gateway"])
                claimed = gateway._claim_bus("poll")
                env.cr.commit()
                try:
                    claimed._poll_now(on_stored=env.cr.commit)
                except SerializationFailure:
                    env.cr.rollback()
                    env.invalidate_all()
                    claimed._release_bus("poll")
                    env.cr.commit()
                    if attempts < 3:
                        continue
                    raise
                claimed._release_bus("poll")
                return ("poll", len(claimed))

        with mute_logger("odoo.sql_db"):
            results, errors = run_in_workers(self.registry, worker)
        self.assertFalse(errors)
        self.assertEqual(dict(results)["poll"], 1)
        following_id = dict(results)["transfer"]
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            Reading = env["prepaid.reading"]
            (polled,) = Reading.search(
                [("meter_id", "=", meter_id), ("source", "=", "poll")]
            )
            leaving = env["prepaid.tenancy"].browse(tenancy_id)
            following = env["prepaid.tenancy"].browse(following_id)
            (final,) = leaving.final_reading_ids.reading_id
            self.assertEqual(following.opening_reading_ids.reading_id, final)
            env["prepaid.billing.engine"]._bill([meter_id])
            charges = env["prepaid.reading.charge"].search(
                [("meter_id", "=", meter_id)]
            )
            used = {
                account: sum(
                    charges.filtered(lambda c, a=account: c.account_id == a).mapped(
                        "quantity"
                    )
                )
                for account in (leaving.account_id, following.account_id)
            }
            # all 60 kWh up to the transfer reading are the leaving tenant's
            self.assertEqual(used[leaving.account_id], 60.0)
            self.assertEqual(used[following.account_id], 0.0)
            # the polled reading is on one side: before the transfer reading
            # (billed to the leaving tenant, or not at all) or after it
            polled_charge = charges.filtered(lambda c: c.id == polled.id)
            if polled.id < final.id:
                self.assertNotEqual(polled_charge.account_id, following.account_id)
            else:
                self.assertNotEqual(polled_charge.account_id, leaving.account_id)
            self.assertEqual(
                env["prepaid.meter"].browse(meter_id).billing_account_id,
                following.account_id,
            )
            cr.rollback()
