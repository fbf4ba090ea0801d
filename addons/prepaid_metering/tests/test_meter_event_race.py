import threading

from odoo import SUPERUSER_ID, Command, api
from odoo.tests import TransactionCase, tagged

from .common import run_in_workers


@tagged("post_install", "-at_install")
class TestOpenEventRace(TransactionCase):
    """Two transactions (committed data, two threads, like two Odoo servers)
    report the same signal of one meter at the same moment: one open event,
    one alarm, and neither transaction fails."""

    def setUp(self):
        super().setUp()
        self.ids = {}
        self.addCleanup(self._remove_committed_data)
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {"tracking_disable": True})
            site = env["prepaid.site"].create({"name": "Event race site"})
            building = env["prepaid.building"].create(
                {"name": "Event race tower", "site_id": site.id}
            )
            floor = env["prepaid.floor"].create(
                {"name": "F1", "level": 1, "building_id": building.id}
            )
            room = env["prepaid.room"].create({"name": "R1", "floor_id": floor.id})
            gateway = env["prepaid.gateway"].create(
                {
                    "name": "Event race bus",
                    "site_id": site.id,
                    "protocol": "modbus_tcp",
                    "host": "127.0.0.1",
                    "port": 1,
                    "next_poll_at": "2999-01-01 00:00:00",
                }
            )
            meter = env["prepaid.meter"].create(
                {
                    "name": "Event race meter",
                    "gateway_id": gateway.id,
                    "device_id": 1,
                    "room_id": room.id,
                    "profile_ids": [
                        Command.set(
                            env.ref("prepaid_metering.profile_acrel_ddsy1352").ids
                        )
                    ],
                }
            )
            self.ids = {
                "site": site.id,
                "building": building.id,
                "floor": floor.id,
                "room": room.id,
                "gateway": gateway.id,
                "meter": meter.id,
            }

    def _remove_committed_data(self):
        if not self.ids:
            return
        ids = self.ids
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            events = env["prepaid.meter.event"].search(
                [("meter_id", "=", ids["meter"])]
            )
            env["mail.activity"].search(
                [
                    ("res_model", "=", "prepaid.meter.event"),
                    ("res_id", "in", events.ids),
                ]
            ).unlink()
            events.unlink()
            env["prepaid.meter"].browse(ids["meter"]).unlink()
            env["prepaid.gateway"].browse(ids["gateway"]).unlink()
            env["prepaid.room"].browse(ids["room"]).unlink()
            env["prepaid.floor"].browse(ids["floor"]).unlink()
            env["prepaid.building"].browse(ids["building"]).unlink()
            env["prepaid.site"].browse(ids["site"]).unlink()

    def test_the_same_signal_at_once_opens_one_event(self):
        meter_id = self.ids["meter"]
        both_looked = threading.Barrier(2)

        def report(env):
            # each transaction takes its snapshot first: neither sees the
            # other's event when it looks for an open one
            env.cr.execute("SELECT count(*) FROM prepaid_meter_event")
            both_looked.wait(timeout=10)
            env["prepaid.meter.event"].create(
                {
                    "meter_id": meter_id,
                    "kind": "cover_opened",
                    "source": "counter",
                    "count_before": 1,
                    "count_after": 2,
                }
            )
            return True

        results, errors = run_in_workers(self.registry, report)
        self.assertEqual(errors, [])
        self.assertEqual(results, [True, True])
        with self.registry.cursor() as cr:
            cr.execute(
                "SELECT count(*) FROM prepaid_meter_event "
                "WHERE meter_id = %s AND state = 'open'",
                [meter_id],
            )
            self.assertEqual(cr.fetchone()[0], 1)

    def test_a_closed_event_does_not_stop_the_next_one(self):
        with self.registry.cursor() as cr:
            Event = api.Environment(cr, SUPERUSER_ID, {})["prepaid.meter.event"]
            first = Event.create(
                {"meter_id": self.ids["meter"], "kind": "cover_opened"}
            )
            first.state = "acknowledged"
            second = Event.create(
                {"meter_id": self.ids["meter"], "kind": "cover_opened"}
            )
            self.assertNotEqual(first, second)
            self.assertEqual(second.state, "open")
