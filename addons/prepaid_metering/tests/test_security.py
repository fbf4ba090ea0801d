from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import new_test_user, tagged

from .common import MeteringCase


@tagged("post_install", "-at_install")
class TestSecurity(MeteringCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.gateway = cls.make_gateway(port=15997, name="Sec bus")
        cls.meter = cls.make_meter(cls.gateway, 1)
        cls.operator = new_test_user(
            cls.env,
            login="op",
            groups="base.group_user,prepaid_metering.group_metering_user",
        )
        cls.manager = new_test_user(
            cls.env,
            login="mgr",
            groups="base.group_user,prepaid_metering.group_metering_manager",
        )
        cls.employee = new_test_user(cls.env, login="emp", groups="base.group_user")
        cls.company_b = cls.env["res.company"].create({"name": "Company B"})
        cls.site_b = cls.env["prepaid.site"].create(
            {"name": "B Plaza", "company_id": cls.company_b.id}
        )
        cls.gateway_b = cls.env["prepaid.gateway"].create(
            {
                "name": "B bus",
                "site_id": cls.site_b.id,
                "host": "127.0.0.1",
                "port": 15996,
            }
        )
        cls.user_b = new_test_user(
            cls.env,
            login="userb",
            groups="base.group_user,prepaid_metering.group_metering_manager",
            company_id=cls.company_b.id,
            company_ids=[cls.company_b.id],
        )

    def test_operator_reads_and_commands_but_cannot_configure(self):
        meter = self.meter.with_user(self.operator)
        self.assertEqual(meter.name, self.meter.name)
        with self.assertRaises(AccessError):
            meter.write({"device_id": 5})
        with self.assertRaises(AccessError):
            self.gateway.with_user(self.operator).write({"port": 1502})
        with self.assertRaises(AccessError):
            self.profile_acrel.with_user(self.operator).write({"name": "x"})
        meter.action_switch_off(reason="test")
        command = self.env["prepaid.meter.command"].search(
            [("meter_id", "=", self.meter.id)]
        )
        self.assertEqual(command.requested_by, self.operator)
        with self.assertRaises(AccessError):
            command.with_user(self.operator).unlink()

    def test_manager_configures_meters(self):
        meter = self.meter.with_user(self.manager)
        meter.write({"device_id": 6})
        self.assertEqual(self.meter.device_id, 6)

    def test_employee_without_group_sees_nothing(self):
        with self.assertRaises(AccessError):
            self.meter.with_user(self.employee).read(["name"])
        with self.assertRaises(AccessError):
            self.env["prepaid.room"].with_user(self.employee).search([])

    def test_settings_admin_is_metering_manager(self):
        admin = new_test_user(self.env, login="sysadm", groups="base.group_system")
        self.assertTrue(admin.has_group("prepaid_metering.group_metering_manager"))

    def test_companies_do_not_see_each_others_meters(self):
        Meter = self.env["prepaid.meter"]
        self.assertNotIn(self.meter, Meter.with_user(self.user_b).search([]))
        with self.assertRaises(AccessError):
            self.meter.with_user(self.user_b).read(["name"])
        self.assertFalse(
            self.env["prepaid.site"]
            .with_user(self.operator)
            .search([("id", "=", self.site_b.id)])
        )

    def test_meter_cannot_mix_companies(self):
        with self.assertRaises(UserError):
            self.env["prepaid.meter"].create(
                {
                    "name": "Mixed",
                    "gateway_id": self.gateway_b.id,
                    "device_id": 3,
                    "room_id": self.room.id,
                }
            )

    def test_polling_interval_must_be_positive(self):
        Settings = self.env["res.config.settings"]
        for minutes in (0, -5):
            with self.subTest(minutes=minutes), self.assertRaises(ValidationError):
                Settings.create({"prepaid_poll_interval_min": minutes})
        Settings.create({"prepaid_poll_interval_min": 2}).execute()
        self.assertEqual(self.gateway._get_poll_interval(), 2)
        with self.assertRaises(ValidationError):
            self.gateway.poll_interval_min = -1
        self.assertEqual(self.gateway.poll_interval_min, 0, "0 = the Settings' one")

    def test_a_non_positive_interval_set_around_settings_falls_back(self):
        icp = self.env["ir.config_parameter"].sudo()
        for value in ("0", "-3", "soon"):
            with self.subTest(value=value):
                icp.set_param("prepaid_metering.poll_interval_min", value)
                self.assertEqual(self.gateway._get_poll_interval(), 5)
