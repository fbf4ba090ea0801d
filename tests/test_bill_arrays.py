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
        {"id": "int4", "name": "varchar", "n": "numeric"},
        [{"id": None, "name": "a", "n": 1}, {"name": 'b"', "n": 1.0}],
        7,
        id_sequence="t_id_seq",
        suffix="RETURNING id",
    )
    [(query, params)] = cr.calls
    # id: the same value in every row, one parameter; 1 and 1.0 are not
    # the same value (their types differ): an array
    assert query == (
        "INSERT INTO t (id, name, n, create_uid, write_uid, create_date, "
        "write_date) SELECT COALESCE(%s::int4, nextval('t_id_seq')), u.name, "
        "u.n, %s, %s, now() at time zone 'UTC', now() at time zone 'UTC' "
        "FROM unnest(%s::varchar[], %s::numeric[]) AS u(name, n) RETURNING id"
    )
    assert params == [None, 7, 7, '{"a","b\\""}', "{1,1.0}"]


def test_insert_rows_of_one_row_unnests_its_first_column():
    cr = _Cursor()
    insert_rows(cr, "t", {"id": "int4", "name": "varchar"}, [{"id": 3, "name": "a"}], 7)
    [(query, params)] = cr.calls
    assert "SELECT u.id, %s::varchar, %s, %s," in query
    assert "FROM unnest(%s::int4[]) AS u(id)" in query
    assert params == ["a", 7, 7, "{3}"]


def test_insert_rows_refuses_booleans_for_other_types():
    cr = _Cursor()
    for rows in ([{"a": False}, {"a": False}], [{"a": False}, {"a": 2}]):
        with pytest.raises(TypeError):
            insert_rows(cr, "t", {"a": "int4", "b": "int4"}, rows, 7)
    assert cr.calls == []


def test_insert_rows_of_nothing_runs_nothing():
    cr = _Cursor()
    insert_rows(cr, "t", {"name": "varchar"}, [], 7)
    assert cr.calls == []
