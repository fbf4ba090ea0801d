"""Many rows to PostgreSQL in a few parameters.

A sweep writes thousands of rows of a few dozen columns. Handed to psycopg2
as one Python list per column, every item is adapted on its own and the
statement carries an ``ARRAY[...]`` expression of thousands of constants
that PostgreSQL parses and evaluates one by one: most of a second per
10,000 rows. Here each column travels as one array literal (``'{1.5,NULL}'``,
one string made mostly by the C JSON encoder), which PostgreSQL reads with
its array input function, and ``unnest`` turns the columns back into rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence

#: Types whose items are written as JSON numbers / booleans.
NUMERIC_TYPES = frozenset(("int4", "int8", "float8", "numeric", "bool"))
#: Types whose items are dates and times (quoted, never escaped).
PLAIN_TYPES = frozenset(("timestamp", "date"))


def _quote(value) -> str:
    text = str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def array_literal(values: Sequence, pg_type: str) -> str:
    """The PostgreSQL array literal of ``values`` (``None`` is NULL).

    Numbers and booleans go through ``json.dumps`` (NaN and infinities come
    out as PostgreSQL spells them: ``NaN``, ``Infinity``); anything else
    (text, JSON text, dates and times) is quoted item by item, with its
    backslashes and double quotes escaped, so that any text survives.
    """
    if pg_type in NUMERIC_TYPES:
        text = json.dumps(list(values))
        return "{" + text[1:-1].replace("null", "NULL") + "}"
    if pg_type in PLAIN_TYPES:
        # str() of a date or a datetime has no quote nor backslash
        return (
            "{"
            + ",".join("NULL" if value is None else f'"{value}"' for value in values)
            + "}"
        )
    return (
        "{"
        + ",".join("NULL" if value is None else _quote(value) for value in values)
        + "}"
    )


def unnest_rows(
    rows: Iterable[Mapping],
    columns: Sequence[str],
    types: Mapping[str, str],
    default: str = "float8",
) -> tuple[str, list[str]]:
    """``(from_item, params)`` for a statement reading ``rows``: the FROM item
    ``unnest(%s::t1[], ...) AS u(c1, ...)`` and one array literal per column.
    ``columns`` and ``types`` are constants of the caller, never user input.
    """
    rows = list(rows)
    kinds = [types.get(c, default) for c in columns]
    params = [
        array_literal([row[c] for row in rows], kind)
        for c, kind in zip(columns, kinds, strict=True)
    ]
    spec = ", ".join(f"%s::{kind}[]" for kind in kinds)
    return f"unnest({spec}) AS u({', '.join(columns)})", params
