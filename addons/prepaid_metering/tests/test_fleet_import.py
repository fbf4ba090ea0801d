import base64
import io
from datetime import timedelta
from unittest.mock import patch

import openpyxl
from freezegun import freeze_time

from odoo import fields
from odoo.exceptions import UserError, ValidationError
from odoo.tests import TransactionCase, tagged

from ..models import prepaid_fleet_import as fleet_import_model
from ..models.prepaid_fleet_import import PrepaidFleetImport

HEADER = "type,ref,parent,name,host,port,device_id,profiles,room,area_m2,tz,level"


def fleet_csv(tag, gateways=1, meters=3, floors=1):
    """A CSV fleet: a site, a building, ``floors`` floors, ``gateways``
    gateways with ``meters`` meters, one room per meter."""
    lines = [
        HEADER,
        f"site,{tag}S,,Plaza {tag},,,,,,,Asia/Shanghai,",
        f"building,{tag}B,{tag}S,Tower,,,,,,,,",
    ]
    lines += [f"floor,{tag}F{f},{tag}B,{f}F,,,,,,,,{f}" for f in range(floors)]
    for g in range(gateways):
        lines.append(f"gateway,{tag}G{g},{tag}S,gw{g},127.0.0.1,502,,,,,,")
        for d in range(1, meters + 1):
            room = f"{tag}R{g}-{d}"
            lines.append(f"room,{room},{tag}F{g % floors},{g}-{d},,,,,,20,,")
            lines.append(
                f"meter,{tag}M{g}-{d},{tag}G{g},M{g}-{d},,,{d},"
                f"acrel_ddsy1352 px_prepaid_v1,{room},,,"
            )
    return "\n".join(lines) + "\n"


def b64(text):
    return base64.b64encode(text.encode()).decode()


class WorkerKilled(BaseException):
    """The worker dies here; its transaction rolls back to its last commit."""


@tagged("post_install", "-at_install")
class TestFleetImport(TransactionCase):
    def make_job(self, content, filename="fleet.csv"):
        return self.env["prepaid.fleet.import"].create(
            {"file": b64(content), "filename": filename}
        )

    def imported(self, model, tag):
        return (
            self.env[model]
            .search([("name", "!=", False)])
            .filtered(
                lambda r: r.get_external_id()[r.id].startswith(f"__import__.{tag}")
            )
        )

    def test_small_file_is_imported_at_once_with_external_ids(self):
        job = self.make_job(fleet_csv("T1", gateways=2, meters=3, floors=2))
        job.action_import()
        self.assertEqual(job.state, "done")
        self.assertEqual(job.rows_total, 1 + 1 + 2 + 2 + 6 + 6)
        self.assertEqual(job.rows_done, job.rows_total)
        site = self.env.ref("__import__.T1S")
        self.assertEqual(site.tz, "Asia/Shanghai")
        self.assertEqual(site.company_id, self.env.company)
        meter = self.env.ref("__import__.T1M1-2")
        self.assertEqual(meter.gateway_id, self.env.ref("__import__.T1G1"))
        self.assertEqual(meter.device_id, 2)
        self.assertEqual(meter.room_id, self.env.ref("__import__.T1R1-2"))
        self.assertEqual(meter.site_id, site)
        self.assertEqual(
            sorted(meter.profile_ids.mapped("code")),
            ["acrel_ddsy1352", "px_prepaid_v1"],
        )
        room = meter.room_id
        self.assertEqual(room.building_id, self.env.ref("__import__.T1B"))
        self.assertEqual(room.area_m2, 20.0)
        self.assertEqual(room.monitor_state, "new")
        self.assertEqual(self.env.ref("__import__.T1F1").level, 1)

    def test_every_bad_row_is_reported_and_nothing_is_written(self):
        existing = self.env["prepaid.meter"].create(
            {
                "name": "Old",
                "gateway_id": self.env["prepaid.gateway"]
                .create(
                    {
                        "name": "old gw",
                        "site_id": self.env["prepaid.site"].create({"name": "Old"}).id,
                        "host": "127.0.0.1",
                    }
                )
                .id,
                "device_id": 9,
            }
        )
        self.env["ir.model.data"].create(
            {
                "module": "__import__",
                "name": "OLDGW",
                "model": "prepaid.gateway",
                "res_id": existing.gateway_id.id,
            }
        )
        content = fleet_csv("T2") + (
            "meter,T2X1,T2G0,dup,,,1,acrel_ddsy1352,,,,\n"  # line 12
            "meter,T2X2,T2G0,far,,,248,acrel_ddsy1352,,,,\n"  # 13
            "meter,T2X3,NOPE,orphan,,,4,acrel_ddsy1352,,,,\n"  # 14
            "meter,T2X4,T2G0,brand,,,5,brand_x,,,,\n"  # 15
            "room,T2X5,T2F0,r,,,,,,big,,\n"  # 16
            "meter,T2X6,OLDGW,taken,,,9,acrel_ddsy1352,,,,\n"  # 17
        )
        rooms_before = self.env["prepaid.room"].search_count([])
        job = self.make_job(content)
        job.action_import()
        self.assertEqual(job.state, "invalid")
        self.assertEqual(job.issue_count, 6)
        lines = job.issue_text.splitlines()
        self.assertEqual(
            [line.split(":")[0] for line in lines],
            [f"Line {n}" for n in (12, 13, 14, 15, 16, 17)],
        )
        self.assertIn("already used by T2M0-1 (line 7)", lines[0])
        self.assertIn("outside 1-247", lines[1])
        self.assertIn("NOPE", lines[2])
        self.assertIn("brand_x", lines[3])
        self.assertIn("'big'", lines[4])
        self.assertIn("meter Old", lines[5])
        self.assertEqual(self.env["prepaid.room"].search_count([]), rooms_before)
        self.assertFalse(self.env.ref("__import__.T2S", raise_if_not_found=False))

    def test_rpc_method_returns_every_error_or_the_task(self):
        Import = self.env["prepaid.fleet.import"]
        bad = fleet_csv("T3") + "lamp,T3L,T3F0,x,,,,,,,,\n"
        result = Import.import_fleet(b64(bad), "fleet.csv")
        self.assertEqual(result["state"], "invalid")
        self.assertEqual(
            result["errors"],
            [
                {
                    "line": 12,
                    "message": "Unknown type 'lamp': use site, building, floor, "
                    "room, gateway or meter.",
                }
            ],
        )
        result = Import.import_fleet(b64(fleet_csv("T3")), "fleet.csv")
        self.assertEqual(result["state"], "done")
        self.assertEqual(result["errors"], [])
        self.assertEqual(result["rows"], 10)
        self.assertTrue(self.env.ref("__import__.T3M0-3"))

    def test_xlsx_file(self):
        book = openpyxl.Workbook()
        sheet = book.active
        for line in fleet_csv("T4").splitlines():
            sheet.append([cell or None for cell in line.split(",")])
        buffer = io.BytesIO()
        book.save(buffer)
        job = self.env["prepaid.fleet.import"].create(
            {
                "file": base64.b64encode(buffer.getvalue()),
                "filename": "fleet.xlsx",
            }
        )
        job.action_import()
        self.assertEqual(job.state, "done")
        self.assertEqual(self.env.ref("__import__.T4M0-2").device_id, 2)

    def test_the_same_file_twice_creates_nothing_new(self):
        self.make_job(fleet_csv("T5")).action_import()
        meters = self.env["prepaid.meter"].search_count([])
        job = self.make_job(fleet_csv("T5"))
        job.action_import()
        self.assertEqual(job.state, "done")
        self.assertEqual(job.rows_done, job.rows_total)
        self.assertEqual(self.env["prepaid.meter"].search_count([]), meters)

    def test_started_import_cannot_start_again(self):
        job = self.make_job(fleet_csv("T6"))
        job.action_import()
        with self.assertRaises(UserError):
            job.action_import()

    def test_standard_import_still_edits_and_adds_rooms(self):
        self.make_job(fleet_csv("T7")).action_import()
        result = self.env["prepaid.room"].load(
            ["id", "name", "area_m2", "floor_id/id"],
            [
                ["__import__.T7R0-1", "0-1", "33.5", "__import__.T7F0"],
                ["__import__.T7R9", "new room", "12", "__import__.T7F0"],
            ],
        )
        self.assertFalse(result["messages"])
        self.assertEqual(self.env.ref("__import__.T7R0-1").area_m2, 33.5)
        added = self.env.ref("__import__.T7R9")
        self.assertEqual(added.building_id, self.env.ref("__import__.T7B"))


@tagged("post_install", "-at_install")
class TestFleetImportPieces(TransactionCase):
    """A big file runs in the background in committed pieces; a worker killed
    between two pieces leaves whole pieces, and the next run finishes
    without duplicates."""

    def setUp(self):
        super().setUp()
        self.env["ir.config_parameter"].set_param(
            "prepaid_metering.import_piece_rows", 7
        )
        patcher = patch.object(fleet_import_model, "INLINE_ROWS", 10)
        patcher.start()
        self.addCleanup(patcher.stop)
        self.env.flush_all()
        self.registry.enter_test_mode(self.cr)
        self.addCleanup(self.registry.leave_test_mode)

    def run_worker(self, job, die_at_piece=None):
        """Run the job in a transaction of its own; die when the piece
        ``die_at_piece`` (1-based) is about to be created."""
        calls = []
        original = PrepaidFleetImport._create_piece

        def create_piece(self_, *args, **kwargs):
            calls.append(1)
            if len(calls) == die_at_piece:
                raise WorkerKilled
            return original(self_, *args, **kwargs)

        died = False
        with (
            patch.object(PrepaidFleetImport, "_create_piece", create_piece),
            self.registry.cursor() as cr,
        ):
            try:
                self.env(cr=cr)["prepaid.fleet.import"].browse(job.id)._run_queued(
                    commit=True
                )
            except WorkerKilled:
                died = True
        self.env.invalidate_all()
        return died, len(calls)

    def test_killed_between_pieces_resumes_without_duplicates(self):
        job = self.env["prepaid.fleet.import"].create(
            {"file": b64(fleet_csv("P1", gateways=3, meters=6, floors=2))}
        )
        job.action_import()
        self.assertEqual(job.state, "queued")
        total = job.rows_total
        self.assertEqual(total, 2 + 2 + 3 + 18 + 18)
        self.env.flush_all()
        died, _calls = self.run_worker(job, die_at_piece=6)
        self.assertTrue(died)
        # pieces: site, building, gateways, floors, rooms 7 (killed at rooms 2)
        self.assertEqual(job.rows_done, 1 + 1 + 3 + 2 + 7)
        self.assertEqual(
            len(self.env["prepaid.room"].search([("site_id.name", "=", "Plaza P1")])),
            7,
        )
        died, calls = self.run_worker(job)
        self.assertFalse(died)
        self.assertEqual(job.state, "done")
        self.assertEqual(job.rows_done, total)
        site = self.env.ref("__import__.P1S")
        self.assertEqual(
            self.env["prepaid.room"].search_count([("site_id", "=", site.id)]), 18
        )
        self.assertEqual(
            self.env["prepaid.meter"].search_count([("site_id", "=", site.id)]), 18
        )
        # 11 rooms left (7 + 4), then 18 meters (7 + 7 + 4): 5 pieces
        self.assertEqual(calls, 5)

    def test_a_ref_imported_meanwhile_stops_the_piece_and_rolls_it_back(self):
        job = self.env["prepaid.fleet.import"].create(
            {"file": b64(fleet_csv("P4", gateways=2, meters=6))}
        )
        job.action_import()
        self.assertEqual(job.state, "queued")
        self.env.flush_all()
        original = PrepaidFleetImport._create_piece

        def create_piece(self_, kind, model, rows, links):
            if kind == "room":
                # another import takes the second room's ref meanwhile
                self_.env.cr.execute(
                    "INSERT INTO ir_model_data (module, name, model, res_id)"
                    " VALUES ('__import__', %s, 'prepaid.room', 0)",
                    [rows[1].ref],
                )
            return original(self_, kind, model, rows, links)

        with (
            patch.object(PrepaidFleetImport, "_create_piece", create_piece),
            self.registry.cursor() as cr,
        ):
            self.env(cr=cr)["prepaid.fleet.import"].browse(job.id)._run_queued(
                commit=True
            )
        self.env.invalidate_all()
        self.assertEqual(job.state, "failed")
        self.assertIn("P4R0-2 was imported meanwhile", job.failure)
        site = self.env.ref("__import__.P4S")
        self.assertEqual(job.rows_done, 1 + 1 + 2 + 1)
        self.assertFalse(
            self.env["prepaid.room"].search([("site_id", "=", site.id)]),
            "the piece rolled back whole",
        )
        self.env.cr.execute(
            "SELECT count(*) FROM ir_model_data WHERE name LIKE 'P4R%%'"
        )
        self.assertEqual(self.env.cr.fetchone()[0], 0)

    def test_one_bad_row_of_a_big_file_writes_nothing(self):
        content = fleet_csv("P3", gateways=3, meters=6, floors=2)
        lines = content.splitlines()
        # the last meter of the file at an address no bus has
        lines[-1] = lines[-1].replace(",6,acrel", ",248,acrel")
        job = self.env["prepaid.fleet.import"].create(
            {"file": b64("\n".join(lines) + "\n")}
        )
        job.action_import()
        self.assertEqual(job.state, "invalid")
        self.assertEqual(job.issue_count, 1)
        self.assertTrue(job.issue_text.startswith(f"Line {len(lines)}:"))
        self.assertIn("outside 1-247", job.issue_text)
        self.assertEqual(self.env["prepaid.fleet.import"]._cron_run([job.id]), 0)
        self.assertFalse(self.env.ref("__import__.P3S", raise_if_not_found=False))
        self.assertFalse(
            self.env["prepaid.room"].search([("site_id.name", "=", "Plaza P3")])
        )

    def test_cron_claims_with_a_lease_and_skips_a_leased_task(self):
        job = self.env["prepaid.fleet.import"].create(
            {"file": b64(fleet_csv("P2", gateways=2, meters=4))}
        )
        job.action_import()
        self.assertEqual(job.state, "queued")
        Import = self.env["prepaid.fleet.import"]
        claimed = Import._claim_next([job.id])
        self.assertEqual(claimed, job)
        self.assertFalse(Import._claim_next([job.id]), "leased to the first worker")
        with freeze_time(fields.Datetime.now() + timedelta(minutes=11)):
            self.assertEqual(Import._claim_next([job.id]), job)
            self.assertEqual(Import._cron_run(job_ids=[job.id], commit=False), 0)
        job.lease_until = False
        self.assertEqual(Import._cron_run(job_ids=[job.id], commit=False), 1)
        self.assertEqual(job.state, "done")
        self.assertEqual(job.progress, 100.0)


@tagged("post_install", "-at_install")
class TestBusAddressAndBigCreate(TransactionCase):
    def setUp(self):
        super().setUp()
        site = self.env["prepaid.site"].create({"name": "Addr"})
        self.gateway = self.env["prepaid.gateway"].create(
            {"name": "gw", "site_id": site.id, "host": "127.0.0.1"}
        )
        self.building = self.env["prepaid.building"].create(
            {"name": "B", "site_id": site.id}
        )

    def test_two_new_meters_on_one_address_are_refused_clearly(self):
        with self.assertRaisesRegex(ValidationError, "cannot share device address 4"):
            self.env["prepaid.meter"].create(
                [
                    {"name": "A", "gateway_id": self.gateway.id, "device_id": 4},
                    {"name": "B", "gateway_id": self.gateway.id, "device_id": 4},
                ]
            )

    def test_a_batch_meeting_a_taken_address_is_refused_clearly(self):
        self.env["prepaid.meter"].create(
            {"name": "A", "gateway_id": self.gateway.id, "device_id": 4}
        )
        with self.assertRaisesRegex(ValidationError, "already used by meter A"):
            self.env["prepaid.meter"].create(
                [
                    {"name": "B", "gateway_id": self.gateway.id, "device_id": 5},
                    {"name": "C", "gateway_id": self.gateway.id, "device_id": 4},
                ]
            )

    def test_one_create_of_many_rooms_never_rebuilds_inverse_caches(self):
        """The quadratic path: a precomputed related many2one set on new
        records appends each to the cached one2many of its target."""
        floor = self.env["prepaid.floor"].create(
            {"name": "F", "building_id": self.building.id}
        )
        self.building.room_ids  # noqa: B018 - the cache a form would fill
        floor.room_ids  # noqa: B018
        calls = []
        Many2one = type(self.env["prepaid.room"]._fields["building_id"])
        original = Many2one._update_inverses

        def update_inverses(field, records, value):
            corecord = field.convert_to_record(value, records)
            for inverse in records.pool.field_inverses[field]:
                cached = records.env.cache.get(corecord, inverse, None)
                if value and (cached is not None or not corecord.id):
                    calls.append((field.name, inverse.name))
            return original(field, records, value)

        with patch.object(Many2one, "_update_inverses", update_inverses):
            rooms = self.env["prepaid.room"].create(
                [{"name": f"R{i}", "floor_id": floor.id} for i in range(50)]
            )
        self.assertEqual(calls, [])
        self.assertEqual(rooms.building_id, self.building)
        self.assertEqual(len(self.building.room_ids), 50)
        self.assertEqual(len(floor.room_ids), 50)

    def test_a_gateway_silent_last_sweep_is_given_up_early(self):
        self.assertEqual(self.gateway._driver_endpoint().give_up_after, 0)
        self.gateway.invalidate_recordset(["state"])
        self.env.cr.execute(
            "UPDATE prepaid_gateway SET state = 'offline' WHERE id = %s",
            [self.gateway.id],
        )
        self.gateway.invalidate_recordset(["state"])
        self.assertEqual(self.gateway._driver_endpoint().give_up_after, 3)


@tagged("post_install", "-at_install")
class TestBulkCreate(TransactionCase):
    """``prepaid.bulk.create``: one create of many rooms or meters gives what
    creating them one by one gives, without Odoo's per-record preparation."""

    def setUp(self):
        super().setUp()
        self.site = self.env["prepaid.site"].create({"name": "Bulk"})
        self.building = self.env["prepaid.building"].create(
            {"name": "B", "site_id": self.site.id}
        )
        self.floor = self.env["prepaid.floor"].create(
            {"name": "F", "building_id": self.building.id}
        )
        self.gateway = self.env["prepaid.gateway"].create(
            {"name": "gw", "site_id": self.site.id, "host": "127.0.0.1"}
        )

    def count_new(self, model):
        """Count the new (NewId) records Odoo makes on ``model``."""
        calls = []
        cls = type(self.env[model])
        original = cls.new

        def new(self_, *args, **kwargs):
            calls.append(1)
            return original(self_, *args, **kwargs)

        patcher = patch.object(cls, "new", new)
        patcher.start()
        self.addCleanup(patcher.stop)
        return calls

    def test_many_rooms_and_meters_match_one_by_one(self):
        Room, Meter = self.env["prepaid.room"], self.env["prepaid.meter"]
        single_room = Room.create({"name": "S", "floor_id": self.floor.id})
        single = Meter.create(
            {
                "name": "S",
                "gateway_id": self.gateway.id,
                "device_id": 1,
                "room_id": single_room.id,
            }
        )
        new_rooms, new_meters = (
            self.count_new("prepaid.room"),
            self.count_new("prepaid.meter"),
        )
        rooms = Room.create(
            [{"name": f"R{i}", "floor_id": self.floor.id} for i in range(3)]
        )
        self.assertEqual(set(rooms.mapped("monitor_state")), {"no_meter"})
        self.assertEqual(single_room.monitor_state, "new")
        meters = Meter.create(
            [
                {
                    "name": f"M{i}",
                    "gateway_id": self.gateway.id,
                    "device_id": i + 2,
                    "room_id": room.id,
                }
                for i, room in enumerate(rooms)
            ]
            + [
                {
                    "name": "W",
                    "gateway_id": self.gateway.id,
                    "device_id": 9,
                    "meter_type": "water",
                },
            ]
        )
        self.assertEqual((new_rooms, new_meters), ([], []), "no precompute records")
        room_fields = ["building_id", "site_id", "company_id", "room_type", "active"]
        for room in rooms:
            for name in room_fields:
                self.assertEqual(room[name], single_room[name], name)
        self.assertEqual(rooms.building_id, self.building)
        meter_fields = [
            "building_id",
            "floor_id",
            "site_id",
            "company_id",
            "meter_type",
            "state",
            "switch_state",
            "multiplier",
            "rated_power_kw",
            "rated_flow_m3h",
            "dlt_password_level",
            "active",
        ]
        for meter in meters[:3]:
            for name in meter_fields:
                self.assertEqual(meter[name], single[name], name)
        self.assertEqual(meters[:3].room_id, rooms)
        self.assertEqual(meters[:3].floor_id, self.floor)
        water = meters[3]
        self.assertEqual(
            (water.rated_power_kw, water.rated_flow_m3h, water.building_id),
            (0.0, 5.0, self.env["prepaid.building"]),
        )
        self.assertEqual(water.site_id, self.site)
        self.env.flush_all()
        self.env.invalidate_all()
        self.assertEqual(set(rooms.mapped("monitor_state")), {"new"})
        self.assertEqual(single.rated_power_kw, 15.0)

    def test_a_default_that_varies_is_still_given_per_record(self):
        field = self.env["prepaid.room"]._fields["code"]
        counter = iter(range(100))
        with patch.object(field, "default", lambda _rec: f"C{next(counter)}"):
            rooms = self.env["prepaid.room"].create(
                [{"name": f"R{i}", "floor_id": self.floor.id} for i in range(4)]
            )
        self.assertEqual(len(set(rooms.mapped("code"))), 4)
        self.assertEqual(set(rooms.mapped("room_type")), {"shop"})
        offices = (
            self.env["prepaid.room"]
            .with_context(default_room_type="office", default_area_m2=12)
            .create([{"name": f"O{i}", "floor_id": self.floor.id} for i in range(3)])
        )
        self.assertEqual(set(offices.mapped("room_type")), {"office"})
        self.assertEqual(set(offices.mapped("area_m2")), {12.0})

    def test_a_meter_in_a_room_of_another_company_is_refused_as_by_odoo(self):
        other = self.env["res.company"].create({"name": "Other Co"})
        other_site = self.env["prepaid.site"].create(
            {"name": "Other", "company_id": other.id}
        )
        other_floor = self.env["prepaid.floor"].create(
            {
                "name": "OF",
                "building_id": self.env["prepaid.building"]
                .create({"name": "OB", "site_id": other_site.id})
                .id,
            }
        )
        rooms = self.env["prepaid.room"].create(
            [
                {"name": "mine", "floor_id": self.floor.id},
                {"name": "theirs", "floor_id": other_floor.id},
            ]
        )
        self.assertEqual(rooms.company_id, self.env.company | other)
        vals = [
            {"name": f"M{i}", "gateway_id": self.gateway.id, "device_id": i + 1}
            for i in range(3)
        ]
        vals[0]["room_id"] = rooms[0].id
        meters = self.env["prepaid.meter"].create(vals)
        self.assertEqual(meters.company_id, self.env.company)
        vals = [
            {"name": f"N{i}", "gateway_id": self.gateway.id, "device_id": i + 10}
            for i in range(3)
        ]
        vals[2]["room_id"] = rooms[1].id
        with self.assertRaisesRegex(UserError, "Incompatible companies on records"):
            with self.env.cr.savepoint():
                self.env["prepaid.meter"].create(vals)
        self.assertFalse(self.env["prepaid.meter"].search([("name", "=", "N0")]))
