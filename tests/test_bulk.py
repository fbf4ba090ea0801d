"""``tools.bulk``: rows to PostgreSQL as one array literal per column, read
back on a real PostgreSQL exactly as they were."""

import json
import math
from datetime import date, datetime

from prepaid_metering_tools.bulk import array_literal, unnest_rows

TYPES = {
    "id": "int4",
    "flag": "bool",
    "note": "varchar",
    "at": "timestamp",
    "day": "date",
    "doc": "jsonb",
}
COLUMNS = ["id", "flag", "value", "note", "at", "day", "doc"]
AWKWARD = [
    None,
    "",
    "NULL",
    "null",
    'say "hi"',
    "back\\slash\\",
    "{braces},commas",
    "new\nline\ttab",
    "电表 ümlaut",
    " spaces ",
]


def rows():
    return [
        {
            "id": i + 1,
            "flag": [True, False, None][i % 3],
            "value": [0.1, -2.5e-7, 1e20, None, 758.38][i % 5],
            "note": note,
            "at": datetime(2026, 1, 2, 3, 4, i),
            "day": date(2026, 2, 1 + i),
            "doc": None if note is None else json.dumps({"note": note, "n": [1, 2.5]}),
        }
        for i, note in enumerate(AWKWARD)
    ]


def test_every_value_comes_back_as_it_went_in_and_in_order(cr):
    data = rows()
    from_rows, params = unnest_rows(data, COLUMNS, TYPES)
    assert len(params) == len(COLUMNS), "one parameter per column"
    cr.execute(f"SELECT {', '.join(COLUMNS)} FROM {from_rows}", params)  # noqa: S608
    back = cr.fetchall()
    assert len(back) == len(data)
    for row, got in zip(data, back, strict=True):
        expected = dict(row, doc=None if row["doc"] is None else json.loads(row["doc"]))
        assert dict(zip(COLUMNS, got, strict=True)) == expected


def test_numbers_keep_their_shortest_decimal_form_in_numeric(cr):
    cr.execute(
        "SELECT x::text FROM unnest(%s::numeric[]) x",
        [array_literal([0.1, 758.38, 2.573, None], "float8")],
    )
    assert [r[0] for r in cr.fetchall()] == ["0.1", "758.38", "2.573", None]


def test_nan_and_infinity_are_spelled_for_postgresql(cr):
    cr.execute(
        "SELECT x FROM unnest(%s::float8[]) x",
        [array_literal([math.nan, math.inf, -math.inf], "float8")],
    )
    got = [r[0] for r in cr.fetchall()]
    assert math.isnan(got[0]) and got[1:] == [math.inf, -math.inf]


def test_empty_columns_give_no_rows(cr):
    from_rows, params = unnest_rows([], ["id", "note"], TYPES)
    cr.execute(f"SELECT count(*) FROM {from_rows}", params)  # noqa: S608
    assert cr.fetchone()[0] == 0
