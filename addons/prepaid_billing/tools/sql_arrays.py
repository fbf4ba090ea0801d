"""PostgreSQL array literals for bulk statements.

psycopg2 sends a Python list as ``ARRAY[v1, v2, ...]``: the server parses
and plans one constant per element, which for the tens of thousands of values
of a billing batch costs more than the statement's own work. One text
literal per column (``'{v1,v2,...}'``, cast in the statement) is parsed by
the array type's input function in one go.

Plain Python (no Odoo import).
"""

from datetime import date, datetime
from decimal import Decimal

_PLAIN = (int, float, Decimal, date, datetime)


def array_literal(values):
    """The text literal of ``values`` (numbers, dates, datetimes, strings or
    None) for a ``%s::<type>[]`` parameter.

    Strings are always quoted (``"NULL"`` stays the text NULL), with their
    backslashes and double quotes escaped. Booleans are refused: ``False``
    is Odoo's "no value" as often as it is a boolean.
    """
    parts = []
    append = parts.append
    for value in values:
        kind = type(value)
        # the exact types of a billing batch's columns first: no isinstance
        # chain per value (``type(True) is bool``, never ``int``)
        if kind is float or kind is int or kind is Decimal:
            append(str(value))
        elif value is None:
            append("NULL")
        elif isinstance(value, str):
            append('"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"')
        elif isinstance(value, _PLAIN) and not isinstance(value, bool):
            append(str(value))
        else:
            raise TypeError(f"no array literal for {value!r}")
    return "{" + ",".join(parts) + "}"


class _Texts(dict):
    """``str`` of values, each made once (a batch's dates and reading times
    repeat: a fleet is read at the same hours)."""

    def __missing__(self, value):
        text = self[value] = str(value)
        return text


def plain_array_literal(values, repeated=False):
    """:func:`array_literal` of numbers, dates and datetimes (None for
    NULL) only, made by built-ins for the large arrays of a billing batch:
    the values are not checked (no string, no boolean). ``repeated``: the
    values repeat (dates, times), each one's text is made once."""
    texts = map(_Texts().__getitem__ if repeated else str, values)
    return "{" + ",".join(texts).replace("None", "NULL") + "}"


def insert_rows(cr, table, columns, rows, uid, *, id_sequence=None, suffix=""):
    """Insert ``rows`` (mappings) into ``table`` with one statement: one array
    literal per column of ``columns`` (``{name: PostgreSQL type}``),
    unnested, with the ORM's create/write stamps for user ``uid``.

    :param id_sequence: the sequence an empty ``id`` column is taken from
    :param suffix: SQL after the insert (``ON CONFLICT ...``, ``RETURNING ...``)
    """
    if not rows:
        return
    names = list(columns)
    unnest = ", ".join(f"%s::{columns[c]}[]" for c in names)
    values = [f"u.{c}" for c in names]
    if id_sequence:
        values[names.index("id")] = f"COALESCE(u.id, nextval('{id_sequence}'))"
    params = [array_literal([row.get(c) for row in rows]) for c in names]
    cr.execute(
        f"""
        INSERT INTO {table} ({", ".join(names)},
            create_uid, write_uid, create_date, write_date)
        SELECT {", ".join(values)}, %s, %s,
               now() at time zone 'UTC', now() at time zone 'UTC'
          FROM unnest({unnest}) AS u({", ".join(names)})
        {suffix}
        """,  # noqa: S608 - table and column names are the callers' constants
        [uid, uid, *params],
    )
