"""Fleet import: reading CSV/XLSX and checking every row (plain Python)."""

import io

import openpyxl
from prepaid_metering_tools import fleet_import as fi

CHOICES = {
    "protocol": {"modbus_tcp", "rtu_over_tcp"},
    "room_type": {"shop", "office"},
    "meter_type": {"electric_1p", "water"},
    "tz": {"Asia/Shanghai", "UTC"},
}
HEADER = "type,ref,parent,name,host,port,device_id,profiles,room,area_m2,tz\n"
GOOD = (
    "site,S1,,Plaza,,,,,,,Asia/Shanghai\n"
    "building,B1,S1,Tower A,,,,,,,\n"
    "floor,F1,B1,1F,,,,,,,\n"
    "room,R1,F1,101,,,,,,12.5,\n"
    "gateway,G1,S1,gw1,10.0.0.5,502,,,,,\n"
    "meter,M1,G1,M-101,,,1,acrel px,R1,,\n"
    "meter,M2,G1,M-102,,,2,acrel,,,\n"
)
NOTHING = fi.Known(refs={}, profiles={"acrel", "px"}, addresses={})


def plan_of(body, known=NOTHING, header=HEADER):
    table = fi.read_table((header + body).encode(), "fleet.csv")
    plan = fi.parse(table, CHOICES)
    if plan.ok:
        plan.check_links(known)
    return plan


def codes(plan):
    return [(issue.line, issue.code) for issue in plan.issues]


def test_good_file_has_no_issue_and_parents_come_first():
    plan = plan_of(GOOD)
    assert plan.ok
    assert [r.kind for r in plan.rows] == [
        "site",
        "building",
        "gateway",
        "floor",
        "room",
        "meter",
        "meter",
    ]
    meter = plan.rows[-2]
    assert meter.values == {
        "name": "M-101",
        "device_id": 1,
        "profiles": ["acrel", "px"],
        "room": "R1",
    }
    assert plan.rows[3 + 1].values["area_m2"] == 12.5


def test_every_bad_row_is_reported_with_its_line():
    body = GOOD + (
        "meter,M3,G1,M-103,,,1,acrel,,,\n"  # line 9: address of M1
        "meter,M4,G1,M-104,,,300,acrel,,,\n"  # line 10: out of range
        "meter,M5,G9,M-105,,,5,acrel,,,\n"  # line 11: parent unknown
        "meter,M6,G1,M-106,,,6,brandx,,,\n"  # line 12: unknown profile
        "room,R2,F1,102,,,,,,lots,\n"  # line 13: bad number
        "lamp,L1,F1,x,,,,,,,\n"  # line 14: unknown kind
        "room,R1,F1,dup,,,,,,,\n"  # line 15: duplicate ref
        "meter,M7,G1,M-107,,,7,acrel,R404,,\n"  # line 16: unknown room
    )
    plan = fi.read_table((HEADER + body).encode(), "fleet.csv")
    plan = fi.parse(plan, CHOICES)
    plan.check_links(NOTHING)
    assert codes(plan) == [
        (9, fi.DUPLICATE_ADDRESS),
        (10, fi.DEVICE_ID_RANGE),
        (11, fi.MISSING_PARENT),
        (12, fi.UNKNOWN_PROFILE),
        (13, fi.BAD_NUMBER),
        (14, fi.UNKNOWN_KIND),
        (15, fi.DUPLICATE_REF),
        (16, fi.MISSING_PARENT),
    ]
    dup = plan.issues[0].params
    assert dup == {"gateway": "G1", "device_id": 1, "other": "M1", "other_line": 7}
    assert plan.issues[2].params == {"column": "parent", "ref": "G9", "kind": "gateway"}
    assert plan.issues[-1].params["column"] == "room"


def test_parent_of_the_wrong_kind_is_a_missing_parent():
    plan = plan_of(GOOD + "room,R2,B1,102,,,,,,,\n")
    assert codes(plan) == [(9, fi.MISSING_PARENT)]


def test_parents_and_addresses_in_the_database_count():
    known = fi.Known(
        refs={"G7": ("gateway", 70), "F7": ("floor", 71)},
        profiles={"acrel"},
        addresses={"G7": {3: (900, "Old meter")}},
    )
    body = (
        "room,R9,F7,901,,,,,,,\n"
        "meter,M9,G7,M-9,,,4,acrel,R9,,\n"
        "meter,M10,G7,M-10,,,3,acrel,,,\n"
    )
    plan = plan_of(body, known)
    assert codes(plan) == [(4, fi.DUPLICATE_ADDRESS)]
    assert plan.issues[0].params["other"] == "Old meter"


def test_rows_imported_before_are_marked_and_not_refused():
    known = fi.Known(
        refs={"S1": ("site", 1), "M1": ("meter", 5), "G1": ("gateway", 4)},
        profiles={"acrel", "px"},
        addresses={"G1": {1: (5, "M-101")}},
    )
    plan = plan_of(GOOD, known)
    assert plan.ok
    assert {r.ref for r in plan.rows if r.existing} == {"S1", "M1", "G1"}


def test_ref_used_by_another_kind_is_refused():
    known = fi.Known(refs={"R1": ("site", 3)}, profiles={"acrel", "px"}, addresses={})
    assert codes(plan_of(GOOD, known)) == [(5, fi.REF_TAKEN)]


def test_missing_columns_and_values():
    plan = fi.parse(fi.read_table(b"type,name\nsite,x\n", "f.csv"), CHOICES)
    assert codes(plan) == [(1, fi.MISSING_COLUMN), (1, fi.MISSING_COLUMN)]
    plan = plan_of("gateway,G1,S1,gw,,,,,,,\nsite,S1,,,,,,,,,\n")
    assert codes(plan) == [(2, fi.MISSING_VALUE), (3, fi.MISSING_VALUE)]
    assert plan.issues[0].params == {"column": "host"}


def test_bad_choices_and_time_zone():
    header = "type,ref,parent,name,tz,room_type\n"
    plan = plan_of("site,S1,,x,Mars/Base,\nroom,R1,S1,x,,palace\n", header=header)
    assert codes(plan) == [(2, fi.BAD_CHOICE), (3, fi.BAD_CHOICE)]


def test_empty_file_is_an_issue():
    assert codes(plan_of("")) == [(1, fi.NO_ROWS)]


def test_semicolon_csv_with_bom_and_quoted_newline():
    data = (
        '\ufefftype;ref;parent;name\nsite;S1;;"Plaza\nEast"\nbuilding;B1;S1;A\n'
    ).encode()
    plan = fi.parse(fi.read_table(data, "f.csv"), CHOICES)
    assert plan.ok
    assert [(r.line, r.ref) for r in plan.rows] == [(2, "S1"), (4, "B1")]


def test_xlsx_rows_with_numbers_as_cells():
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Type", "Ref", "Parent", "Name", "Device_ID", "Profiles", "Host"])
    sheet.append(["gateway", "G1", "S1", "gw", None, None, "h"])
    sheet.append(["meter", "M1", "G1", "m", 7, "acrel", None])
    sheet.append([None] * 7)
    sheet.append(["meter", "M2", "G1", "m", 7.5, "acrel", None])
    buffer = io.BytesIO()
    book.save(buffer)
    plan = fi.parse(fi.read_table(buffer.getvalue(), "fleet.XLSX"), CHOICES)
    assert codes(plan) == [(5, fi.BAD_NUMBER)]
    assert plan.rows[-1].values["device_id"] == 7


def test_unreadable_files():
    try:
        fi.read_table(b"not a zip", "f.xlsx")
    except fi.BadValue as exc:
        assert exc.code == fi.UNREADABLE
    else:
        raise AssertionError("a broken workbook must be refused")
    try:
        fi.read_table(b"\xff\xfe\x00bad", "f.csv")
    except fi.BadValue as exc:
        assert exc.code == fi.UNREADABLE
    else:
        raise AssertionError("a non-UTF-8 file must be refused")


def test_pieces_never_mix_kinds():
    plan = plan_of(GOOD)
    sizes = [[r.kind for r in piece] for piece in plan.pieces(1000)]
    assert sizes == [
        ["site"],
        ["building"],
        ["gateway"],
        ["floor"],
        ["room"],
        ["meter", "meter"],
    ]
    assert [len(p) for p in plan.pieces(1)] == [1, 1, 1, 1, 1, 1, 1]


def test_one_bad_row_in_a_hundred_thousand():
    lines = [HEADER, "site,S1,,P,,,,,,,UTC\n", "gateway,G1,S1,g,h,502,,,,,\n"]
    lines += [f"meter,M{i},G1,m,,,{i % 247 + 1},acrel,,,\n" for i in range(1)]
    lines += [f"floor,F{i},B0,f,,,,,,,\n" for i in range(100_000)]
    lines.insert(50_000, "floor,BAD,,f,,,,,,,\n")
    data = "".join(lines).encode()
    known = fi.Known(refs={"B0": ("building", 1)}, profiles={"acrel"}, addresses={})
    plan = fi.parse(fi.read_table(data, "big.csv"), CHOICES)
    plan.check_links(known)
    assert codes(plan) == [(50_001, fi.MISSING_VALUE)]


def test_children_of_a_refused_row_get_no_second_issue():
    plan = plan_of(GOOD.replace("room,R1,F1,101,,,,,,12.5,", "room,R1,F1,101,,,,,,-1,"))
    assert codes(plan) == [(5, fi.BAD_NUMBER)]


def test_a_ref_column_may_hold_several_refs():
    kinds = dict(fi.KINDS)
    kinds["group"] = fi.Kind(
        "group", 9, None, ("members",), {"members": fi.words}, refs={"members": "meter"}
    )
    data = (HEADER.rstrip("\n") + ",members\n" + GOOD.replace("\n", ",\n")).encode()
    data += b"group,X1,,,,,,,,,,M1 M2 M9\n"
    plan = fi.parse(fi.read_table(data, "f.csv"), CHOICES, kinds)
    assert "M9" in plan.outside_refs()
    plan.check_links(NOTHING)
    assert codes(plan) == [(9, fi.MISSING_PARENT)]
    assert plan.issues[0].params == {"column": "members", "ref": "M9", "kind": "meter"}
