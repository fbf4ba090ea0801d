from psycopg2 import IntegrityError

from odoo.exceptions import ValidationError
from odoo.tests import tagged
from odoo.tools import mute_logger

from .common import MeteringCase


@tagged("post_install", "-at_install")
class TestValidation(MeteringCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.gateway = cls.make_gateway(port=15999, name="Bus A")

    def test_room_inherits_building_site_and_company(self):
        self.assertEqual(self.room.building_id, self.building)
        self.assertEqual(self.room.site_id, self.site)
        self.assertEqual(self.room.company_id, self.company)
        self.assertEqual(self.room.monitor_state, "no_meter")

    def test_device_id_outside_1_247_is_refused(self):
        Meter = self.env["prepaid.meter"]
        for bad in (0, 248, -3):
            with self.subTest(device_id=bad), self.assertRaises(ValidationError):
                with self.env.cr.savepoint():
                    self.make_meter(self.gateway, bad)
        self.assertFalse(Meter.search([("gateway_id", "=", self.gateway.id)]))

    def test_duplicate_device_id_on_a_gateway_is_refused(self):
        self.make_meter(self.gateway, 7)
        with self.assertRaises(ValidationError) as err:
            with self.env.cr.savepoint():
                self.make_meter(self.gateway, 7)
        self.assertIn("already used", str(err.exception))
        self.assertEqual(
            self.env["prepaid.meter"].search_count(
                [("gateway_id", "=", self.gateway.id)]
            ),
            1,
        )
        other = self.make_gateway(port=15998, name="Bus B")
        self.assertTrue(self.make_meter(other, 7), "same id on another bus is fine")

    @mute_logger("odoo.sql_db")
    def test_database_refuses_duplicate_device_even_without_orm_checks(self):
        self.make_meter(self.gateway, 9)
        with self.assertRaises(IntegrityError), self.env.cr.savepoint():
            self.env.cr.execute(
                """INSERT INTO prepaid_meter (name, meter_type, gateway_id,
                   device_id, state, switch_state, multiplier)
                   VALUES ('twin', 'water', %s, 9, 'new', 'unknown', 1)""",
                (self.gateway.id,),
            )

    def test_port_outside_range_is_refused(self):
        for port in (0, 65536, -1):
            with self.subTest(port=port), self.assertRaises(ValidationError):
                with self.env.cr.savepoint():
                    self.make_gateway(port=port, name=f"bad {port}")
        self.assertFalse(self.env["prepaid.gateway"].search([("name", "like", "bad ")]))

    def test_gateway_needs_host_or_serial_device(self):
        with self.assertRaises(ValidationError), self.env.cr.savepoint():
            self.env["prepaid.gateway"].create(
                {
                    "name": "No host",
                    "site_id": self.site.id,
                    "protocol": "modbus_tcp",
                    "port": 502,
                }
            )
        with self.assertRaises(ValidationError), self.env.cr.savepoint():
            self.env["prepaid.gateway"].create(
                {
                    "name": "No tty",
                    "site_id": self.site.id,
                    "protocol": "serial_rtu",
                }
            )
        serial = self.env["prepaid.gateway"].create(
            {
                "name": "USB bus",
                "site_id": self.site.id,
                "protocol": "serial_rtu",
                "serial_port": "/dev/ttyUSB0",
                "baudrate": 9600,
            }
        )
        self.assertEqual(serial._driver_endpoint().protocol, "serial")

    def test_overlapping_profile_line_is_refused(self):
        profile = self.env["prepaid.register.profile"].create(
            {"name": "Brand X", "code": "brand_x"}
        )
        self.env["prepaid.register"].create(
            {
                "profile_id": profile.id,
                "name": "energy_total",
                "address": 0x10,
                "dtype": "uint32",
                "scale": 0.01,
            }
        )
        with self.assertRaises(ValidationError) as err, self.env.cr.savepoint():
            self.env["prepaid.register"].create(
                {
                    "profile_id": profile.id,
                    "name": "voltage",
                    "address": 0x11,
                    "dtype": "uint16",
                    "scale": 0.1,
                }
            )
        self.assertIn("overlaps", str(err.exception))
        self.assertEqual(len(profile.line_ids), 1)
        self.env["prepaid.register"].create(
            {
                "profile_id": profile.id,
                "name": "voltage",
                "address": 0x12,
                "dtype": "uint16",
                "scale": 0.1,
            }
        )
        self.assertEqual(len(profile.line_ids), 2)

    def test_switch_words_must_parse(self):
        with self.assertRaises(ValidationError), self.env.cr.savepoint():
            self.env["prepaid.register.profile"].create(
                {
                    "name": "Bad relay",
                    "code": "bad_relay",
                    "switch_kind": "relay",
                    "switch_address": 0x57,
                    "switch_off_words": "1,banana",
                    "switch_on_words": "1,0",
                }
            )
        with self.assertRaises(ValidationError), self.env.cr.savepoint():
            self.env["prepaid.register.profile"].create(
                {
                    "name": "Bad valve",
                    "code": "bad_valve",
                    "switch_kind": "valve",
                    "switch_function": "6",
                    "switch_address": 0x1C,
                    "switch_off_words": "2,2",
                    "switch_on_words": "1",
                }
            )

    def test_shipped_profiles_match_the_protocol_document(self):
        acrel = self.profile_acrel
        plan = acrel._read_plan()
        self.assertEqual([(b.start, b.count) for b in plan], [(0, 17)])
        self.assertEqual(
            (self.profile_px._read_plan()[0].start), 0x4000, "px block at 0x4000"
        )
        volume = self.profile_water._find_register("volume_total")
        self.assertEqual(
            (volume.address, volume.dtype, volume.byte_order), (1, "float32", "DCBA")
        )
        self.assertEqual(acrel.switch_address, 0x57)
        self.assertEqual(acrel._parse_words(acrel.switch_off_words), [1, 1])
        self.assertEqual(acrel._parse_words(acrel.switch_on_words), [1, 0])

    def test_read_plan_follows_the_profile_limits(self):
        acrel, px = self.profile_acrel, self.profile_px
        self.assertEqual([(b.start, b.count) for b in acrel._read_plan()], [(0, 17)])
        # a meter that refuses reads across its unmapped registers (0x0A,
        # 0x0E-0x0F)
        acrel.read_max_gap = 0
        strict = [(b.start, b.count) for b in acrel._read_plan()]
        self.assertEqual(strict, [(0x00, 10), (0x0B, 3), (0x10, 1)])
        # one that reads at most 4 registers at a time
        px.read_max_count = 4
        self.assertTrue(all(b.count <= 4 for b in px._read_plan()))
        self.assertEqual(
            sum(b.count for b in px._read_plan()), 14, "still every register"
        )
        # a meter with both profiles: the strictest limits of the two
        both = (acrel | px)._read_plan()
        self.assertTrue(all(b.count <= 4 for b in both))
        self.assertNotIn(0x0A, [a for b in both for a in range(b.start, b.end)])
        for bad in (
            {"read_max_gap": -1},
            {"read_max_count": 0},
            {"read_max_count": 126},
        ):
            with self.assertRaises(ValidationError), self.env.cr.savepoint():
                px.write(bad)

    def test_ct_ratio_must_be_positive(self):
        with self.assertRaises(ValidationError), self.env.cr.savepoint():
            self.make_meter(self.gateway, 30, multiplier=0)
