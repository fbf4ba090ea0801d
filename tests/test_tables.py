"""``tools.tables.set_fillfactor`` on a real PostgreSQL."""

import pytest
from prepaid_metering_tools.tables import set_fillfactor


@pytest.fixture
def cr(cr):
    """conftest's cursor, with the table these tests tune."""
    cr.execute("CREATE TEMP TABLE hot_rows (id int, value float8)")
    return cr


def options(cr):
    cr.execute("SELECT reloptions FROM pg_class WHERE oid = 'hot_rows'::regclass")
    return cr.fetchone()[0]


class Recording:
    """The cursor, with the statements sent through it."""

    def __init__(self, cr):
        self.cr, self.statements = cr, []

    def execute(self, query, params=None):
        self.statements.append(query)
        return self.cr.execute(query, params)

    def fetchone(self):
        return self.cr.fetchone()


def test_new_pages_are_left_with_room_and_a_second_call_alters_nothing(cr):
    first = Recording(cr)
    set_fillfactor(first, "hot_rows", 70)
    assert options(cr) == ["fillfactor=70"]
    assert len(first.statements) == 2, "the options read, then the ALTER TABLE"
    again = Recording(cr)
    set_fillfactor(again, "hot_rows", 70)
    assert len(again.statements) == 1, "the options read only"
    assert options(cr) == ["fillfactor=70"]


@pytest.mark.parametrize(
    ("table", "percent"), [("hot_rows; DROP TABLE x", 70), ("hot_rows", 5)]
)
def test_a_bad_table_name_or_fill_factor_is_refused(cr, table, percent):
    with pytest.raises(ValueError):
        set_fillfactor(cr, table, percent)
