"""Transaction helpers for the claim-and-work crons."""


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
    cr.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
