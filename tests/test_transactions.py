"""``tools.transactions`` (``local_settings``, ``own_cursor``) on a real PostgreSQL."""

import threading

import psycopg2
import pytest
from prepaid_metering_tools.transactions import local_settings, own_cursor


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


class _Cursor:
    """The part of Odoo's cursor ``own_cursor`` uses, on a real connection."""

    def __init__(self, conn):
        self.conn, self._cr = conn, conn.cursor()

    def execute(self, query, params=None):
        self._cr.execute(query, params)

    def fetchone(self):
        return self._cr.fetchone()

    def commit(self):
        self.conn.commit()

    def rollback(self):
        self.conn.rollback()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.commit()
        self.rollback()


class _Registry:
    """A registry with one pooled connection, as Odoo's pool reuses them."""

    def __init__(self, conn):
        self.conn = conn

    def cursor(self):
        return _Cursor(self.conn)

    def in_test_mode(self):
        return False


@pytest.fixture
def registry():
    try:
        conns = [psycopg2.connect(dbname="postgres") for _i in range(2)]
    except psycopg2.OperationalError:  # pragma: no cover - CI has PostgreSQL
        pytest.skip("no PostgreSQL")
    try:
        yield _Registry(conns[0]), conns[1]
    finally:
        for conn in conns:
            conn.rollback()
            conn.close()


def lock_timeout(cr):
    cr.execute("SELECT current_setting('lock_timeout')")
    return cr.fetchone()[0]


def test_own_cursor_waits_for_a_lock_no_longer_than_its_timeout(registry):
    registry, other = registry
    holder = other.cursor()
    holder.execute("SELECT pg_advisory_xact_lock(72017)")
    # A server that ignored the timeout would fail the test, not hang it.
    guard = threading.Timer(10, registry.conn.cancel)
    guard.start()
    try:
        with (
            pytest.raises(psycopg2.errors.LockNotAvailable),
            own_cursor(registry, lock_timeout="200ms") as cr,
        ):
            cr.commit()  # the setting outlives the commits of the block
            cr.execute("SELECT pg_advisory_xact_lock(72017)")
    finally:
        guard.cancel()
    # back in the pool with the server's default
    assert lock_timeout(registry.cursor()) == "0"


def test_own_cursor_setting_holds_in_the_block_and_is_reset_after(registry):
    registry, _other = registry
    with own_cursor(registry, lock_timeout="3s") as cr:
        assert lock_timeout(cr) == "3s"
        cr.commit()
        assert lock_timeout(cr) == "3s"
    assert lock_timeout(registry.cursor()) == "0"
