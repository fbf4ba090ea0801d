from datetime import timedelta

from odoo import Command, fields
from odoo.tests import new_test_user, tagged

from odoo.addons.prepaid_metering.tests.common import electric

from .common_month import MonthCase


@tagged("post_install", "-at_install")
class TestMasterLoss(MonthCase):
    """A theft load between a master meter and its sub-meters, read over
    Modbus TCP from the simulator, is one meter event on the master."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.loss_gw = cls.make_gateway(port=1, name="Common bus")
        cls.master = cls.make_meter(cls.loss_gw, 1, is_master=True)
        cls.sub1 = cls.make_meter(cls.loss_gw, 2, room=cls.room)
        cls.sub2 = cls.make_meter(cls.loss_gw, 3, room=cls.room2)
        cls.apportionment = cls.env["prepaid.apportionment"].create(
            {
                "name": "Corridors",
                "master_meter_id": cls.master.id,
                "tariff_id": cls.flat.id,
                "product_id": cls.power.id,
                "loss_only": True,
                "line_ids": [
                    Command.create({"meter_id": cls.sub1.id}),
                    Command.create({"meter_id": cls.sub2.id}),
                ],
            }
        )
        cls.operator = new_test_user(
            cls.env,
            login="loss_operator",
            groups="prepaid_metering.group_metering_manager",
            company_id=cls.company.id,
            company_ids=[Command.set(cls.company.ids)],
        )
        icp = cls.env["ir.config_parameter"].sudo()
        for key in ("pct", "window_h", "min_kwh"):
            icp.set_param(f"prepaid_billing.master_loss_{key}", False)

    def setUp(self):
        super().setUp()
        # the master feeds both sub-meters: 2 kW = 1 kW + 1 kW
        self.fleet = self.start_fresh_fleet(
            [
                (
                    "socket",
                    [
                        electric(1, load_kw=2.0, balance=1000.0),
                        electric(2, load_kw=1.0, balance=1000.0),
                        electric(3, load_kw=1.0, balance=1000.0),
                    ],
                )
            ],
            [self.loss_gw],
        )

    def day_of_polls(self, hours=24):
        meters = self.master | self.sub1 | self.sub2
        self.loss_gw._poll_now()
        for _hour in range(hours):
            self.fleet.clock.advance(3600)
            self.age_baselines(meters, hours=1)
            self.loss_gw._poll_now()

    def check(self):
        return self.env["prepaid.apportionment"]._cron_check_master_loss(
            apportionments=self.apportionment,
            now=fields.Datetime.now() + timedelta(seconds=1),
        )

    def events(self):
        return self.env["prepaid.meter.event"].search(
            [("meter_id", "in", (self.master | self.sub1 | self.sub2).ids)]
        )

    def test_no_loss_no_event(self):
        self.day_of_polls()
        self.assertEqual(self.master.month_energy_kwh, 48.0)
        self.assertEqual(self.check(), 0)
        self.assertFalse(self.events())

    def test_theft_load_is_one_event_with_the_figures(self):
        self.fleet.meter(0, 1).inject("theft_load", kw=2.0)
        self.day_of_polls()
        # master 4 kW x 24 h = 96 kWh, sub-meters 24 + 24: 50 % lost
        self.assertEqual(self.check(), 1)
        event = self.events()
        self.assertEqual(
            (event.kind, event.meter_id, event.source),
            ("master_loss", self.master, "analysis"),
        )
        self.assertEqual(event.evidence["master_used"], 96.0)
        self.assertEqual(event.evidence["sub_meters_used"], 48.0)
        self.assertEqual(event.evidence["loss_pct"], 50.0)
        self.assertEqual(event.evidence["threshold_pct"], 20.0)
        self.assertEqual(event.evidence[f"sub {self.sub1.display_name}"], 24.0)
        self.assertIn("50.0 %", event.description)
        self.assertEqual(event.activity_ids.user_id, self.operator)
        # the hourly check again: the same event, one alarm
        self.assertEqual(self.check(), 1)
        self.assertEqual(self.events(), event)
        self.assertEqual(event.seen_count, 2)
        # no money moved: nothing posted for the master
        self.assertFalse(
            self.env["prepaid.ledger.line"].search([("meter_id", "=", self.master.id)])
        )

    def test_threshold_and_minimum_use_are_respected(self):
        icp = self.env["ir.config_parameter"].sudo()
        self.fleet.meter(0, 1).inject("theft_load", kw=0.4)
        self.day_of_polls()
        # master 2.4 kW x 24 h = 57.6 kWh, sub-meters 48: 16.67 % lost
        self.assertEqual(self.check(), 0)
        icp.set_param("prepaid_billing.master_loss_pct", "15")
        icp.set_param("prepaid_billing.master_loss_min_kwh", "60")
        self.assertEqual(self.check(), 0)
        icp.set_param("prepaid_billing.master_loss_min_kwh", "50")
        self.assertEqual(self.check(), 1)
        self.assertEqual(self.events().evidence["loss_pct"], 16.67)
