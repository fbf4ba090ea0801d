"""Transaction helpers for the claim-and-work crons."""

from contextlib import contextmanager


def start_read_committed(cr):
    """Commit, then run the next transaction in READ COMMITTED.

    Odoo transactions are REPEATABLE READ: there, ``SELECT ... FOR UPDATE SKIP
    LOCKED`` fails with a serialization error on a row that another worker
    updated and committed after our snapshot. In READ COMMITTED the row is
    re-checked against its newest version instead (a gateway whose next poll
    was just pushed is simply no longer due), which is what several workers
    claiming work from one table need.
    """
    # Only called by crons that commit between their batches anyway.
    cr.commit()  # pylint: disable=invalid-commit
    # A test cursor (the registry's test mode: Send Now in an HTTP test) runs
    # inside the test's transaction, its commit a savepoint: no new
    # transaction to set.
    if type(cr).__name__ != "TestCursor":
        cr.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")


@contextmanager
def local_settings(cr, **settings):
    """Run the statements of the block with these PostgreSQL settings
    (``SET LOCAL``), then put the transaction's own values back.

    For one big statement that the server's defaults serve badly: a batch
    read sorting a hundred thousand rows (``work_mem``), a plan whose cost
    estimate triggers JIT compilation that costs more than it saves
    (``jit``).
    """
    names = list(settings)
    current = ", ".join("current_setting(%s)" for _name in names)
    cr.execute(f"SELECT {current}", names)  # noqa: S608 - placeholders only
    before = cr.fetchone()
    change = ", ".join("set_config(%s, %s, true)" for _name in names)
    cr.execute(
        f"SELECT {change}",  # noqa: S608 - placeholders only
        [item for name in names for item in (name, str(settings[name]))],
    )
    try:
        yield
    finally:
        cr.execute(
            f"SELECT {change}",  # noqa: S608 - placeholders only
            [
                item
                for name, value in zip(names, before, strict=True)
                for item in (name, value)
            ],
        )


#: The longest a step in a transaction of its own waits for a row lock.
OWN_CURSOR_LOCK_TIMEOUT = "10s"


@contextmanager
def own_cursor(registry, lock_timeout=OWN_CURSOR_LOCK_TIMEOUT, read_committed=False):
    """``registry.cursor()`` whose every transaction waits at most
    ``lock_timeout`` for a lock, then fails with
    ``psycopg2.errors.LockNotAvailable``; its first transaction runs in READ
    COMMITTED when ``read_committed`` (outside the registry's test mode).

    A step run in a cursor of its own while the caller's transaction stays
    open (the outbox, Send Now) cannot wait for that caller: PostgreSQL sees
    two sessions, not one waiting for itself, and would let it wait for ever.
    The setting is the session's (the step commits several times) and is
    reset before the connection goes back to the pool.
    """
    with registry.cursor() as cr:
        if read_committed and not registry.in_test_mode():
            cr.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
        cr.execute("SELECT set_config('lock_timeout', %s, false)", [lock_timeout])
        try:
            yield cr
        except BaseException:
            cr.rollback()
            cr.execute("RESET lock_timeout")
            cr.commit()  # pylint: disable=invalid-commit
            raise
        cr.execute("RESET lock_timeout")
