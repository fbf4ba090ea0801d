"""``tools.transactions.local_settings`` on a real PostgreSQL connection."""

import psycopg2
import pytest
from prepaid_metering_tools.transactions import local_settings


@pytest.fixture
def cr():
    try:
        conn = psycopg2.connect(dbname="postgres")
    except psycopg2.OperationalError:  # pragma: no cover - CI has PostgreSQL
        pytest.skip("no PostgreSQL")
    try:
        yield conn.cursor()
    finally:
        conn.rollback()
        conn.close()


def settings(cr):
    cr.execute("SELECT current_setting('jit'), current_setting('work_mem')")
    return cr.fetchone()


def test_settings_hold_inside_the_block_and_come_back_after(cr):
    cr.execute("SET LOCAL work_mem = '8MB'")
    before = settings(cr)
    with local_settings(cr, jit="off", work_mem="64MB"):
        assert settings(cr) == ("off", "64MB")
    assert settings(cr) == before


def test_settings_come_back_when_the_block_raises(cr):
    before = settings(cr)
    with pytest.raises(ZeroDivisionError), local_settings(cr, work_mem="32MB"):
        assert settings(cr)[1] == "32MB"
        raise ZeroDivisionError
    assert settings(cr) == before


def test_settings_last_only_for_the_transaction(cr):
    with local_settings(cr, work_mem="48MB"):
        cr.connection.commit()
        # the transaction that set it is over: the server's default is back
        assert settings(cr)[1] != "48MB"
