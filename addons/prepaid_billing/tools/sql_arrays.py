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


#: Types whose values need no check nor quoting in an array literal.
_NUMBER_TYPES = frozenset((int, float, Decimal, type(None)))
_TIME_TYPES = frozenset((date, datetime, type(None)))


def column_literal(values):
    """:func:`array_literal` of ``values``, made by built-ins
    (:func:`plain_array_literal`) when they are all numbers, or all dates and
    times (NULLs allowed): one pass over their types instead of a check per
    value."""
    kinds = set(map(type, values))
    if kinds <= _NUMBER_TYPES:
        return plain_array_literal(values)
    if kinds <= _TIME_TYPES:
        return plain_array_literal(values, repeated=True)
    return array_literal(values)


def insert_rows(cr, table, columns, rows, uid, *, id_sequence=None, suffix=""):
    """Insert ``rows`` (mappings) into ``table`` with one statement: see
    :func:`insert_columns` (a key missing from a row is NULL)."""
    if not rows:
        return
    insert_columns(
        cr,
        table,
        columns,
        {name: [row.get(name) for row in rows] for name in columns},
        uid,
        id_sequence=id_sequence,
        suffix=suffix,
    )


def insert_columns(cr, table, columns, data, uid, *, id_sequence=None, suffix=""):
    """Insert the rows whose values are the lists of ``data`` (``{column:
    values}``, the same length each) into ``table`` with one statement, with
    the ORM's create/write stamps for user ``uid``.

    ``columns``: ``{name: PostgreSQL type}`` of the columns to write. A
    column whose values vary travels as one array literal, unnested with
    the others; one whose rows all hold the same value (the company, the
    line type of a billing batch) as that one value.

    :param id_sequence: the sequence an empty ``id`` column is taken from
    :param suffix: SQL after the insert (``ON CONFLICT ...``, ``RETURNING ...``)
    """
    names = list(columns)
    count = len(data[names[0]])
    if not count:
        return
    constant = {
        name: data[name].count(data[name][0]) == count
        and len(set(map(type, data[name]))) == 1
        for name in names
    }
    for name in names:
        if constant[name] and type(data[name][0]) is bool:
            # as array_literal: False is Odoo's "no value" as often as a boolean
            raise TypeError(f"no value for {name} from {data[name][0]!r}")
    if all(constant.values()):
        constant[names[0]] = False  # unnest needs an array: one row
    arrays = [name for name in names if not constant[name]]
    values = [
        f"%s::{columns[name]}" if constant[name] else f"u.{name}" for name in names
    ]
    if id_sequence:
        index = names.index("id")
        values[index] = f"COALESCE({values[index]}, nextval('{id_sequence}'))"
    unnest = ", ".join(f"%s::{columns[name]}[]" for name in arrays)
    cr.execute(
        f"""
        INSERT INTO {table} ({", ".join(names)},
            create_uid, write_uid, create_date, write_date)
        SELECT {", ".join(values)}, %s, %s,
               now() at time zone 'UTC', now() at time zone 'UTC'
          FROM unnest({unnest}) AS u({", ".join(arrays)})
        {suffix}
        """,  # noqa: S608 - table and column names are the callers' constants
        [
            *(data[name][0] for name in names if constant[name]),
            uid,
            uid,
            *(column_literal(data[name]) for name in arrays),
        ],
    )
