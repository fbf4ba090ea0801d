"""Storage settings of the tables that every poll and billing batch rewrites."""

import re

from psycopg2 import sql

_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def set_fillfactor(cr, table, percent):
    """Fill new pages of ``table`` to ``percent`` % only (once; no-op after).

    Each poll rewrites every meter's row (its last reading), each billing
    batch again (its watermark), and the wallets and daily aggregates the
    same way. With room left on the page, PostgreSQL keeps the new row
    version there (a HOT update) and adds nothing to the table's indexes;
    on a full page every update writes one entry in each index. Pages
    written before keep their fill until the table is rewritten
    (``VACUUM FULL``).
    """
    if not _NAME.match(table) or not 10 <= int(percent) <= 100:
        raise ValueError(f"bad table or fill factor: {table!r}, {percent!r}")
    cr.execute("SELECT reloptions FROM pg_class WHERE oid = %s::regclass", [table])
    option = f"fillfactor={int(percent)}"
    if option not in (cr.fetchone()[0] or []):
        cr.execute(
            sql.SQL("ALTER TABLE {} SET (fillfactor = {})").format(
                sql.Identifier(table), sql.Literal(int(percent))
            )
        )
