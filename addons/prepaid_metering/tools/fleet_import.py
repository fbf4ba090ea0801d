"""Fleet import: read a table of sites .. meters and check every row first.

One table (CSV, or the first sheet of an XLSX workbook), one row per record.
The ``type`` column says what the row is (``site``, ``building``, ``floor``,
``room``, ``gateway``, ``meter``; an extension may add kinds), ``ref`` is the
row's import key (unique in the file; it becomes the record's external id, so
a row imported once is never imported twice) and ``parent`` names the row it
belongs to: a ``ref`` of the file, or an external id already in the database.
A meter names its gateway as parent and, optionally, its room in ``room``.

``parse`` checks each row on its own and the file as a whole (duplicate keys,
duplicate bus addresses); ``Plan.check_links`` then checks what needs the
database (parents outside the file, profiles, addresses already taken), from
facts the caller looked up in a few queries. Every problem becomes an
``Issue`` with the row's line number: the caller reports them all and imports
nothing while there is one.

Plain Python: no Odoo import. Issues carry a code and parameters; the caller
turns them into translated sentences.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

# Issue codes (the caller owns the sentences).
NO_ROWS = "no_rows"
MISSING_COLUMN = "missing_column"
UNKNOWN_KIND = "unknown_kind"
MISSING_VALUE = "missing_value"
BAD_REF = "bad_ref"
DUPLICATE_REF = "duplicate_ref"
REF_TAKEN = "ref_taken"
MISSING_PARENT = "missing_parent"
BAD_NUMBER = "bad_number"
BAD_CHOICE = "bad_choice"
UNKNOWN_PROFILE = "unknown_profile"
DEVICE_ID_RANGE = "device_id_range"
DUPLICATE_ADDRESS = "duplicate_address"
UNREADABLE = "unreadable"

REF_PATTERN = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
#: An external id of a record outside the file: ``module.name``.
XMLID_PATTERN = re.compile(r"^[A-Za-z0-9_]+\.[A-Za-z0-9_\-]+$")
DEVICE_ID_MIN, DEVICE_ID_MAX = 1, 247
BASE_COLUMNS = ("type", "ref", "parent")


class BadValue(ValueError):
    """A cell that does not parse; ``code`` says how (number or choice)."""

    def __init__(self, code: str, **params) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


def _blank(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def text(value):
    return str(value).strip()


def integer(value):
    if isinstance(value, bool):
        raise BadValue(BAD_NUMBER)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise BadValue(BAD_NUMBER)
    try:
        return int(str(value).strip())
    except ValueError:
        raise BadValue(BAD_NUMBER) from None


def number(low=None, high=None, low_open=False):
    """A float parser, optionally bounded (``low_open``: strictly above low)."""

    def parse(value):
        if isinstance(value, bool):
            raise BadValue(BAD_NUMBER)
        try:
            result = float(value if not isinstance(value, str) else value.strip())
        except (TypeError, ValueError):
            raise BadValue(BAD_NUMBER) from None
        if not math.isfinite(result):
            raise BadValue(BAD_NUMBER)
        if low is not None and (result < low or (low_open and result == low)):
            raise BadValue(BAD_NUMBER)
        if high is not None and result > high:
            raise BadValue(BAD_NUMBER)
        return result

    return parse


def words(value):
    """A list of codes separated by commas, semicolons or spaces."""
    return [w for w in re.split(r"[,;\s]+", str(value).strip()) if w]


@dataclass(frozen=True)
class Kind:
    """What a ``type`` of row holds.

    ``columns`` maps a column to its parser; ``choices`` names the columns
    whose values must be one of a set the caller gives (selections, time
    zones); ``refs`` names extra columns holding the ref (or refs) of other
    rows and the kind they must be (a meter's room, an account's meters).
    """

    name: str
    level: int
    parent: str | None
    required: tuple[str, ...] = ()
    columns: dict[str, Callable] = field(default_factory=dict)
    choices: tuple[str, ...] = ()
    refs: dict[str, str] = field(default_factory=dict)


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind("site", 0, None, ("name",), {"name": text, "code": text, "tz": text}),
        Kind(
            "building",
            1,
            "site",
            ("name",),
            {"name": text, "sequence": integer},
        ),
        Kind("floor", 2, "building", ("name",), {"name": text, "level": integer}),
        Kind(
            "gateway",
            1,
            "site",
            ("name", "host"),
            {
                "name": text,
                "protocol": text,
                "host": text,
                "port": integer,
                "timeout_s": number(0, 60, low_open=True),
                "retries": integer,
            },
            choices=("protocol",),
        ),
        Kind(
            "room",
            3,
            "floor",
            ("name",),
            {
                "name": text,
                "code": text,
                "room_type": text,
                "area_m2": number(0),
            },
            choices=("room_type",),
        ),
        Kind(
            "meter",
            4,
            "gateway",
            ("name", "device_id", "profiles"),
            {
                "name": text,
                "meter_type": text,
                "device_id": integer,
                "profiles": words,
                "room": text,
                "serial_number": text,
                "multiplier": number(0, low_open=True),
            },
            choices=("meter_type",),
            refs={"room": "room"},
        ),
    )
}


def _as_list(value) -> list:
    """A ref column's refs: none, one, or a list (``words``)."""
    if not value:
        return []
    return value if isinstance(value, list) else [value]


class Issue(NamedTuple):
    """One problem: the file line (1 = header), a code, its parameters."""

    line: int
    code: str
    params: dict


@dataclass(slots=True)
class Row:
    line: int
    kind: str
    ref: str
    parent: str
    values: dict
    #: Already in the database under this ref (imported earlier): skipped.
    existing: bool = False


class Known(NamedTuple):
    """What the database holds, for the refs and codes the plan names.

    ``refs``: ref -> (kind, id) of records with that external id (a bare ref
    is looked up as ``__import__.<ref>``); ``profiles``: the profile codes;
    ``addresses``: gateway ref -> {device id: (meter id, meter name)} for the
    gateways of ``refs``.
    """

    refs: dict[str, tuple[str, int]]
    profiles: set[str]
    addresses: dict[str, dict[int, tuple[int, str]]]


@dataclass
class Plan:
    """The parsed rows, in import order (parents before children), and every
    issue found so far."""

    kinds: dict[str, Kind]
    rows: list[Row]
    issues: list[Issue]
    #: Refs of rows refused on their own: no second issue for their children.
    refused: set[str] = field(default_factory=set)
    #: What ``check_links`` was given (the import reuses its ids).
    known: Known | None = None

    @property
    def ok(self) -> bool:
        return not self.issues

    def defined(self) -> dict[str, Row]:
        return {row.ref: row for row in self.rows}

    def outside_refs(self) -> set[str]:
        """Every ref the database must be asked about: the rows' own (imported
        before?) and the parents and rooms the file does not define."""
        refs = {row.ref for row in self.rows}
        for row in self.rows:
            if row.parent:
                refs.add(row.parent)
            for column in self.kinds[row.kind].refs:
                refs.update(_as_list(row.values.get(column)))
        return refs

    def check_links(self, known: Known) -> None:
        """Parents, rooms, profiles and bus addresses against the file and
        the database; adds issues, marks rows imported before."""
        self.known = known
        defined = self.defined()
        for row in self.rows:
            found = known.refs.get(row.ref)
            if found:
                if found[0] == row.kind:
                    row.existing = True
                else:
                    self.issues.append(
                        Issue(row.line, REF_TAKEN, {"ref": row.ref, "kind": found[0]})
                    )
        for row in self.rows:
            kind = self.kinds[row.kind]
            links = [("parent", row.parent, kind.parent)] if kind.parent else []
            links += [
                (col, ref, k)
                for col, k in kind.refs.items()
                for ref in _as_list(row.values.get(col))
            ]
            for column, ref, wanted in links:
                if not ref or ref in self.refused:
                    continue
                in_file = defined.get(ref)
                found = in_file.kind if in_file else known.refs.get(ref, (None,))[0]
                if found != wanted:
                    self.issues.append(
                        Issue(
                            row.line,
                            MISSING_PARENT,
                            {"column": column, "ref": ref, "kind": wanted},
                        )
                    )
            unknown = [
                code
                for code in row.values.get("profiles") or ()
                if code not in known.profiles
            ]
            for code in unknown:
                self.issues.append(Issue(row.line, UNKNOWN_PROFILE, {"code": code}))
        self._check_taken_addresses(known)
        self.issues.sort(key=lambda issue: issue.line)

    def _check_taken_addresses(self, known: Known) -> None:
        for row in self.rows:
            if row.kind != "meter" or row.existing:
                continue
            taken = known.addresses.get(row.parent, {}).get(row.values["device_id"])
            if taken:
                self.issues.append(
                    Issue(
                        row.line,
                        DUPLICATE_ADDRESS,
                        {
                            "gateway": row.parent,
                            "device_id": row.values["device_id"],
                            "other": taken[1],
                            "other_line": None,
                        },
                    )
                )

    def pieces(self, size: int) -> Iterator[list[Row]]:
        """The rows in import order, ``size`` at a time, never mixing kinds
        (one batched create per piece)."""
        piece: list[Row] = []
        for row in self.rows:
            if piece and (len(piece) >= size or piece[-1].kind != row.kind):
                yield piece
                piece = []
            piece.append(row)
        if piece:
            yield piece


# ---------------------------------------------------------------------------
# Reading files
# ---------------------------------------------------------------------------
def read_table(data: bytes, filename: str) -> Iterator[tuple[int, dict]]:
    """Yield (line, {column: value}) for the non-empty rows of a CSV or XLSX
    file; column names are lower-cased. Raises ``BadValue(UNREADABLE)``."""
    if filename.lower().endswith((".xlsx", ".xlsm")):
        return _read_xlsx(data)
    return _read_csv(data)


def _header(cells) -> list[str]:
    return [text(c).lower() if not _blank(c) else "" for c in cells]


def _read_csv(data: bytes) -> Iterator[tuple[int, dict]]:
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadValue(UNREADABLE, reason="not UTF-8 text") from None
    try:
        dialect = csv.Sniffer().sniff(content[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(content, newline=""), dialect)
    header = _header(next(reader, []))

    def rows():
        line = reader.line_num
        for cells in reader:
            if any(not _blank(c) for c in cells):
                yield line + 1, dict(zip(header, cells, strict=False))
            line = reader.line_num

    return _Table(header, rows())


def _read_xlsx(data: bytes) -> Iterator[tuple[int, dict]]:
    import openpyxl

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a bad file
        raise BadValue(UNREADABLE, reason=str(exc)) from None
    sheet = book.worksheets[0]
    values = sheet.iter_rows(values_only=True)
    header = _header(next(values, ()))

    def rows():
        for line, cells in enumerate(values, start=2):
            if any(not _blank(c) for c in cells):
                yield line, dict(zip(header, cells, strict=False))
        book.close()

    return _Table(header, rows())


class _Table:
    """The rows plus the header, so that a missing column is one issue."""

    def __init__(self, header, rows):
        self.header = header
        self.rows = rows

    def __iter__(self):
        return iter(self.rows)


# ---------------------------------------------------------------------------
# Checking rows
# ---------------------------------------------------------------------------
def parse(
    table: Iterable[tuple[int, dict]],
    choices: dict[str, set[str]],
    kinds: dict[str, Kind] = KINDS,
) -> Plan:
    """Check every row on its own and the file as a whole.

    ``choices``: column -> allowed values (``protocol``, ``room_type``,
    ``meter_type``, ``tz``). Rows come out sorted by kind level, then line.
    """
    issues: list[Issue] = []
    header = getattr(table, "header", None)
    if header is not None:
        missing = [c for c in BASE_COLUMNS if c not in header]
        for column in missing:
            issues.append(Issue(1, MISSING_COLUMN, {"column": column}))
        if missing:
            return Plan(kinds, [], issues)
    rows: list[Row] = []
    refused: set[str] = set()
    first_line: dict[str, int] = {}
    for line, cells in table:
        row = _parse_row(line, cells, choices, kinds, issues)
        if row is None:
            refused.add(text(cells.get("ref") or ""))
            continue
        if row.ref in first_line:
            issues.append(
                Issue(
                    line, DUPLICATE_REF, {"ref": row.ref, "first": first_line[row.ref]}
                )
            )
            continue
        first_line[row.ref] = line
        rows.append(row)
    if not rows and not issues:
        issues.append(Issue(1, NO_ROWS, {}))
    _check_file_addresses(rows, issues)
    rows.sort(key=lambda r: (kinds[r.kind].level, r.line))
    issues.sort(key=lambda issue: issue.line)
    return Plan(kinds, rows, issues, refused)


def _parse_row(line, cells, choices, kinds, issues) -> Row | None:
    kind_name = text(cells.get("type") or "").lower()
    kind = kinds.get(kind_name)
    if kind is None:
        issues.append(Issue(line, UNKNOWN_KIND, {"value": kind_name}))
        return None
    count = len(issues)
    ref = text(cells.get("ref") or "")
    if not ref:
        issues.append(Issue(line, MISSING_VALUE, {"column": "ref"}))
    elif not REF_PATTERN.match(ref):
        issues.append(Issue(line, BAD_REF, {"ref": ref}))
    parent = text(cells.get("parent") or "")
    if kind.parent and not parent:
        issues.append(Issue(line, MISSING_VALUE, {"column": "parent"}))
    values = _parse_values(line, cells, kind, choices, issues)
    tz = values.get("tz")
    if tz and "tz" in choices and tz not in choices["tz"]:
        issues.append(Issue(line, BAD_CHOICE, {"column": "tz", "value": tz}))
    device_id = values.get("device_id")
    if device_id is not None and not DEVICE_ID_MIN <= device_id <= DEVICE_ID_MAX:
        issues.append(Issue(line, DEVICE_ID_RANGE, {"value": device_id}))
    if len(issues) > count or not ref:
        return None
    return Row(line, kind.name, ref, parent, values)


def _parse_values(line, cells, kind, choices, issues) -> dict:
    values = {}
    for column, parser in kind.columns.items():
        raw = cells.get(column)
        if _blank(raw):
            if column in kind.required:
                issues.append(Issue(line, MISSING_VALUE, {"column": column}))
            continue
        try:
            value = parser(raw)
        except BadValue as exc:
            issues.append(Issue(line, exc.code, {"column": column, "value": text(raw)}))
            continue
        allowed = choices.get(column)
        if column in kind.choices and allowed is not None and value not in allowed:
            issues.append(
                Issue(
                    line,
                    BAD_CHOICE,
                    {"column": column, "value": value, "allowed": sorted(allowed)},
                )
            )
            continue
        values[column] = value
    return values


def _check_file_addresses(rows: list[Row], issues: list[Issue]) -> None:
    seen: dict[tuple[str, int], Row] = {}
    for row in rows:
        if row.kind != "meter":
            continue
        key = (row.parent, row.values["device_id"])
        first = seen.setdefault(key, row)
        if first is not row:
            issues.append(
                Issue(
                    row.line,
                    DUPLICATE_ADDRESS,
                    {
                        "gateway": row.parent,
                        "device_id": key[1],
                        "other": first.ref,
                        "other_line": first.line,
                    },
                )
            )
