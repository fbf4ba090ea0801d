from odoo import Command
from odoo.tests import tagged

from odoo.addons.prepaid_metering.tests.common import Fleet
from odoo.addons.prepaid_metering.tests.test_dlt645 import dlt_meter, dlt_spec

from .common import BillingCase


@tagged("post_install", "-at_install")
class TestDlt645Billing(BillingCase):
    """A DL/T 645 meter is billed through the normal path: polled over its
    line, the reading priced, the wallet charged."""

    def test_polled_dlt645_meter_is_charged_like_a_modbus_one(self):
        line = self.env["prepaid.gateway"].create(
            {
                "name": "DL/T 645 billing line",
                "site_id": self.site.id,
                "protocol": "dlt645_tcp",
                "host": "127.0.0.1",
                "port": 1,
                "timeout_s": 0.3,
            }
        )
        meter = self.env["prepaid.meter"].create(
            {
                "name": "DLT billed",
                "meter_type": "electric_1p",
                "gateway_id": line.id,
                "address": "000000000301",
                "room_id": self.room.id,
                "rated_power_kw": 200.0,
                "profile_ids": [
                    Command.set(self.env.ref("prepaid_metering.profile_dlt645_1p").ids)
                ],
            }
        )
        account = self.make_account(meter, opening=100.0)
        fleet = Fleet.from_spec(dlt_spec([dlt_meter(1, energy_kwh=1000.0)])).start()
        self.addCleanup(fleet.stop)
        line.port = fleet.gateways[0].port
        sim = fleet.gateways[0].meter(1)
        line._poll_now()
        self.assertAlmostEqual(meter.energy_total_kwh, 1000.0, delta=0.02)
        start = meter.energy_total_kwh
        sim.consume(12.5)
        # the 12.5 kWh come at once: an hour's worth of plausible demand
        self.age_baselines(meter, hours=1.0)
        line._poll_now()
        self.assertEqual(self.bill(), 1)
        charge = self.charges(meter)
        quantity = round(meter.energy_total_kwh - start, 2)
        self.assertAlmostEqual(quantity, 12.5, delta=0.02)
        self.assertEqual(charge.quantity, quantity)
        self.assertEqual(charge.amount, round(quantity * 0.8, 2))
        self.assertEqual(account.balance, round(100.0 - charge.amount, 2))
        self.assert_reconciled()
