from datetime import timedelta

from odoo import SUPERUSER_ID, Command, api, fields
from odoo.tests import tagged

from .common import MeteringCase, electric, run_in_workers


@tagged("post_install", "-at_install")
class TestConcurrentSweeps(MeteringCase):
    """Two cron workers on real, separate transactions never share a bus."""

    GATEWAYS = 6
    METERS = 5

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.fleet = cls.start_fleet(
            [
                ("socket", [electric(d) for d in range(1, cls.METERS + 1)])
                for _g in range(cls.GATEWAYS)
            ]
        )

    def setUp(self):
        super().setUp()
        # The workers use their own cursors, so the data must be committed;
        # it is removed again in cleanup.
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            parked = env["prepaid.gateway"].search([])
            self.parked = {g.id: g.next_poll_at for g in parked}
            parked.write({"next_poll_at": fields.Datetime.now() + timedelta(days=9)})
            # Batches of one gateway make the two workers interleave claims.
            icp = env["ir.config_parameter"]
            self.batch_param = icp.get_param("prepaid_metering.poll_batch_gateways")
            icp.set_param("prepaid_metering.poll_batch_gateways", 1)
            site = env["prepaid.site"].create({"name": "Concurrency site"})
            profiles = env.ref("prepaid_metering.profile_acrel_ddsy1352") | env.ref(
                "prepaid_metering.profile_px_prepaid_v1"
            )
            gateways = env["prepaid.gateway"].create(
                [
                    {
                        "name": f"C{i}",
                        "site_id": site.id,
                        "protocol": "modbus_tcp",
                        "host": "127.0.0.1",
                        "port": gw.port,
                        "timeout_s": 1.0,
                    }
                    for i, gw in enumerate(self.fleet.gateways)
                ]
            )
            env["prepaid.meter"].create(
                [
                    {
                        "name": f"C{g.id}-{d}",
                        "gateway_id": g.id,
                        "device_id": d,
                        "profile_ids": [Command.set(profiles.ids)],
                    }
                    for g in gateways
                    for d in range(1, self.METERS + 1)
                ]
            )
            self.site_id, self.gateway_ids = site.id, gateways.ids
        self.addCleanup(self._remove_committed_data)

    def _remove_committed_data(self):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            gateways = env["prepaid.gateway"].browse(self.gateway_ids)
            gateways.meter_ids.unlink()
            gateways.unlink()
            env["prepaid.site"].browse(self.site_id).unlink()
            env["ir.config_parameter"].set_param(
                "prepaid_metering.poll_batch_gateways", self.batch_param or 20
            )
            for gateway_id, next_poll in self.parked.items():
                env["prepaid.gateway"].browse(gateway_id).next_poll_at = next_poll

    def test_two_workers_poll_every_gateway_exactly_once(self):
        requests_before = [gw.requests for gw in self.fleet.gateways]
        done, errors = run_in_workers(
            self.registry, lambda env: env["prepaid.gateway"]._cron_poll(commit=True)
        )
        self.assertFalse(errors)
        self.assertEqual(sum(done), self.GATEWAYS)
        with self.registry.cursor() as cr:
            cr.execute(
                """SELECT m.gateway_id, count(r.id) FROM prepaid_meter m
                   JOIN prepaid_reading r ON r.meter_id = m.id
                   WHERE m.gateway_id = ANY(%s) GROUP BY m.gateway_id""",
                [self.gateway_ids],
            )
            per_gateway = dict(cr.fetchall())
        self.assertEqual(
            per_gateway,
            {g: self.METERS for g in self.gateway_ids},
            "one reading per meter: no bus was swept twice",
        )
        # Two reads per meter (acrel block and px block), once.
        self.assertEqual(
            [
                gw.requests - before
                for gw, before in zip(self.fleet.gateways, requests_before, strict=True)
            ],
            [2 * self.METERS] * self.GATEWAYS,
        )
