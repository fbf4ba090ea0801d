"""Array literals of the bulk statements (plain Python, tools/sql_arrays)."""

from datetime import date
from decimal import Decimal

import pytest
from prepaid_billing_tools.sql_arrays import array_literal, insert_rows


def test_strings_are_quoted_and_escaped():
    literal = array_literal(
        ["M1 flat", 'say "hi"', "back\\slash", "{a,b}", "", "NULL", None]
    )
    assert literal == (
        '{"M1 flat","say \\"hi\\"","back\\\\slash","{a,b}","","NULL",NULL}'
    )


def test_empty_list_and_booleans():
    assert array_literal([]) == "{}"
    with pytest.raises(TypeError):
        array_literal([False])


def test_numbers_and_dates_are_plain():
    assert array_literal([1, None, 2]) == "{1,NULL,2}"
    assert array_literal([Decimal("1.50"), 0.25]) == "{1.50,0.25}"
    assert array_literal([date(2026, 1, 31)]) == "{2026-01-31}"


class _Cursor:
    def __init__(self):
        self.calls = []

    def execute(self, query, params):
        self.calls.append((" ".join(query.split()), params))


def test_insert_rows_is_one_statement_with_one_array_per_column():
    cr = _Cursor()
    insert_rows(
        cr,
        "t",
        {"id": "int4", "name": "varchar"},
        [{"id": None, "name": "a"}, {"name": 'b"'}],
        7,
        id_sequence="t_id_seq",
        suffix="RETURNING id",
    )
    [(query, params)] = cr.calls
    assert query == (
        "INSERT INTO t (id, name, create_uid, write_uid, create_date, write_date) "
        "SELECT COALESCE(u.id, nextval('t_id_seq')), u.name, %s, %s, "
        "now() at time zone 'UTC', now() at time zone 'UTC' "
        "FROM unnest(%s::int4[], %s::varchar[]) AS u(id, name) RETURNING id"
    )
    assert params == [7, 7, "{NULL,NULL}", '{"a","b\\""}']


def test_insert_rows_of_nothing_runs_nothing():
    cr = _Cursor()
    insert_rows(cr, "t", {"name": "varchar"}, [], 7)
    assert cr.calls == []
