"""One billing batch: the charge of each reading, grouped into wallet lines.

Every billed reading gets a *charge* (quantity, amount, how it was priced);
the charges of one meter, account, tariff version and local month that a
batch bills together are summed into one *group*, which becomes one
consumption line of the wallet. A meter polled every few minutes and billed as
often gets one wallet line per reading; a backlog (a meter that was offline, a
first billing run) gets one line per month instead of thousands, while every
reading keeps its own charge as evidence.

Plain Python (no Odoo import). The engine feeds readings in meter order. A
group is *closed* when its meter's next reading starts another group or
another meter starts; its wallet line id is then taken from ids reserved in
advance (``line_ids``), so that its charges can be written at once: the
engine streams them to PostgreSQL with ``COPY`` (:class:`CopyStream`) while it
is still pricing the next meters, and posts the wallet lines, with those ids,
at the end.
"""

from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from .tariff import SINGLE_PRICE

ZERO = Decimal(0)
NULL = "\\N"
# Columns of prepaid_reading_charge, in the order of Group.copy_rows.
COPY_COLUMNS = ("id", "ledger_line_id", "meter_id", "quantity", "amount", "detail")


class Where(NamedTuple):
    """Where a charge belongs (the ``where`` of ``ChargeBatch.add``): its
    wallet line is per account, meter, tariff version and local month."""

    account_id: int
    meter_id: int
    version_key: object
    unit: str
    period: int  # local year * 12 + month
    reading_id: int
    read_at: datetime


class Charge(NamedTuple):
    """The charge of one reading (a row of prepaid_reading_charge)."""

    reading_id: int
    quantity: Decimal
    amount: Decimal
    # how it was priced, COPY-escaped (NULL when single price, nothing to say)
    detail: str


# Made per reading with ``tuple.__new__``: the generated ``Charge(...)`` is a
# Python-level call, three times the cost.
_new_charge = tuple.__new__


def copy_escape(text):
    """``text`` as a field of PostgreSQL's COPY text format."""
    if text is None:
        return NULL
    return (
        text.replace("\\", "\\\\")
        .replace("\t", "\\t")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
    )


class Group:
    """The charges of one future wallet line."""

    __slots__ = (
        "account_id",
        "meter_id",
        "version_key",
        "unit",
        "period",
        "count",
        "quantity",
        "amount",
        "first_reading_id",
        "last_reading_id",
        "last_read_at",
        "lines",
        "line_id",
        "charges",
    )

    def __init__(self, account_id, meter_id, version_key, unit, period):
        self.account_id = account_id
        self.meter_id = meter_id
        self.version_key = version_key
        self.unit = unit
        self.period = period
        self.count = 0
        self.quantity = ZERO
        self.amount = ZERO
        self.first_reading_id = None
        self.last_reading_id = None
        self.last_read_at = None
        # (label, unit price) -> [quantity, amount]: the priced lines summed
        self.lines = {}
        # id of the wallet line (None: nothing to post, less than a cent)
        self.line_id = None
        # Charge of each reading, in reading order
        self.charges = []

    def summary(self):
        """The summed pricing lines: ``[[label, quantity, price, amount], ...]``."""
        return [
            [label, str(quantity), str(price), str(amount)]
            for (label, price), (quantity, amount) in self.lines.items()
        ]

    def copy_rows(self):
        """This group's charges as COPY text rows (see ``COPY_COLUMNS``).

        (``!s``: ``str`` of a ``Decimal``, five times faster than its
        ``format`` with an empty spec, which f-strings call otherwise.)"""
        line_id = NULL if self.line_id is None else self.line_id
        prefix = f"\t{line_id}\t{self.meter_id}\t"
        return "".join(
            f"{reading_id}{prefix}{quantity!s}\t{amount!s}\t{detail}\n"
            for reading_id, quantity, amount, detail in self.charges
        )


class ChargeBatch:
    """Charges of a batch, grouped by meter, account, tariff version and month.

    :param line_ids: ids reserved for the wallet lines, consumed as groups
        close; when they run out (or with none), closed groups wait in
        :attr:`waiting` for :meth:`assign` and their rows for
        :meth:`copy_text`.
    """

    __slots__ = (
        "groups",
        "count",
        "waiting",
        "_ready",
        "_line_ids",
        "_meter_id",
        "_group",
    )

    def __init__(self, line_ids=()):
        self.groups = []
        self.count = 0
        # closed groups without a wallet line id yet
        self.waiting = []
        # COPY text of closed groups that have their id (or need none)
        self._ready = []
        self._line_ids = list(reversed(line_ids))
        self._meter_id = None
        self._group = None

    def __len__(self):
        return self.count

    # -- closing groups ---------------------------------------------------
    def _close(self, group):
        if not group.amount:
            group.line_id = None  # less than a cent in all: carried
        elif self._line_ids:
            group.line_id = self._line_ids.pop()
        else:
            self.waiting.append(group)
            return
        self._ready.append(group.copy_rows())

    def close(self):
        """Close the last open group (call once every reading was added)."""
        if self._group is not None:
            self._close(self._group)
            self._group = None
            self._meter_id = None

    def take_ready(self):
        """The COPY text of the groups closed since the last call."""
        text = "".join(self._ready)
        self._ready.clear()
        return text

    def assign(self, line_ids):
        """Give ids to the waiting groups; returns their COPY text."""
        line_ids = list(line_ids)
        if len(line_ids) < len(self.waiting):
            raise ValueError("Not enough wallet line ids for the waiting groups.")
        text = []
        for group, line_id in zip(self.waiting, line_ids, strict=False):
            group.line_id = line_id
            text.append(group.copy_rows())
        self.waiting.clear()
        return "".join(text)

    def copy_text(self, line_ids=()):
        """Close the batch and return the COPY text of every charge not
        taken yet, giving ``line_ids`` to the groups still without one."""
        self.close()
        ready = self.take_ready()
        return ready + self.assign(line_ids) if self.waiting else ready

    # -- adding charges ---------------------------------------------------
    def _open(self, where):
        account_id, meter_id, version_key, unit, period, reading_id, _at = where
        if self._group is not None:
            self._close(self._group)
        group = Group(account_id, meter_id, version_key, unit, period)
        group.first_reading_id = reading_id
        self.groups.append(group)
        self._group = group
        self._meter_id = meter_id
        return group

    def _count(self, where, quantity, amount):
        """The group of this reading (a new one when it starts another
        group), with the reading counted in its totals."""
        account_id, meter_id, version_key, _unit, period, reading_id, read_at = where
        group = self._group
        if (
            meter_id != self._meter_id
            or group.period != period
            or group.version_key != version_key
            or group.account_id != account_id
        ):
            group = self._open(where)
        group.count += 1
        group.quantity += quantity
        group.amount += amount
        group.last_reading_id = reading_id
        group.last_read_at = read_at
        return group

    def add(self, where, quantity, amount, lines=(), detail=None):
        """Record the charge of one reading.

        Readings come meter after meter (all readings of a meter together).

        :param where: ``(account_id, meter_id, version_key, unit, period,
            reading_id, read_at)``: ``period`` is the local month of the
            reading, as any value that changes with it (a wallet line never
            spans two months, so monthly totals and minimum charges stay
            exact); ``read_at`` is when the reading was taken (the wallet
            line's date)
        :param quantity: ``Decimal`` kWh or m³ of the reading
        :param amount: ``Decimal`` money taken from the wallet (>= 0)
        :param lines: the pricing lines ``(label, quantity, price, amount)``
        :param detail: evidence text when there are no pricing lines
        """
        group = self._count(where, quantity, amount)
        if lines:
            sums = group.lines
            texts = []
            for label, line_quantity, price, line_amount in lines:
                key = (label, price)
                total = sums.get(key)
                if total is None:
                    sums[key] = [line_quantity, line_amount]
                else:
                    total[0] += line_quantity
                    total[1] += line_amount
                texts.append(
                    f"{label}: {line_quantity!s} x {price!s} = {line_amount!s}"
                )
            # Labels and numbers hold no tab, newline or backslash: the COPY
            # escape of the separator is all that is needed.
            detail = "\\n".join(texts)
        else:
            detail = copy_escape(detail)
        group.charges.append(
            _new_charge(Charge, (where.reading_id, quantity, amount, detail))
        )
        self.count += 1

    def add_single(self, where, quantity, amount, label, price, exact):
        """:meth:`add` for a charge priced at one unit price (the hot path).

        A charge at the version's single price stores no detail: its pricing
        is its quantity times the price of its wallet line's tariff version.
        """
        group = self._count(where, quantity, amount)
        key = (label, price)
        total = group.lines.get(key)
        if total is None:
            group.lines[key] = [quantity, exact]
        else:
            total[0] += quantity
            total[1] += exact
        group.charges.append(
            _new_charge(
                Charge,
                (
                    where.reading_id,
                    quantity,
                    amount,
                    NULL
                    if label == SINGLE_PRICE
                    else f"{label}: {quantity!s} x {price!s} = {exact!s}",
                ),
            )
        )
        self.count += 1


class CopyStream:
    """A file-like object for ``cursor.copy_expert``: COPY text produced on
    demand by ``pump`` (an iterator whose every step prices a few readings
    into ``batch``), so that PostgreSQL stores the first rows while the next
    ones are priced.

    ``chunk``: the least text handed over at a time. A chunk the socket
    cannot hold makes the sender wait while PostgreSQL stores most of it,
    and PostgreSQL wait while the next one is priced; 64 KiB keeps both
    busy (billing 1,000,000 readings: 8 % less time than with 1 MiB).
    """

    def __init__(self, batch, pump, chunk=1 << 16):
        self.batch = batch
        self.pump = pump
        self.chunk = chunk
        # what ``pump`` raised: the COPY ends there, the caller raises it
        # (psycopg2 would turn it into a bare QueryCanceled)
        self.error = None
        self._pending = []
        self._size = 0
        self._done = False

    # The file protocol of copy_expert (not an ORM method: no super).
    def read(self, size=-1):  # pylint: disable=method-required-super
        size = max(size, self.chunk)
        batch = self.batch
        while self._size < size and not self._done:
            try:
                next(self.pump)
            except StopIteration:
                self._done = True
                batch.close()
            except Exception as error:  # noqa: BLE001 - raised by the caller
                self.error = error
                self._done = True
                self._pending.clear()
                return ""
            text = batch.take_ready()
            if text:
                self._pending.append(text)
                self._size += len(text)
        data = "".join(self._pending)
        self._pending.clear()
        self._size = 0
        return data


#: Readings a meter may bring to a batch for billing to count as keeping up
#: with the polls (see :func:`next_batch_size`).
STEADY_READINGS_PER_METER = 2


def next_batch_size(batch, steady, meters, charged, complete):
    """Meters to claim for the next batch of a billing run.

    A backlog (many readings a meter) is billed ``batch`` meters at a time:
    its cost is its readings. Once billing keeps up with the polls (the last
    batch took every reading of its ``meters`` and they had at most
    :data:`STEADY_READINGS_PER_METER` each), a batch's cost is its meters (a
    wallet line, a watermark and a balance each) plus a fixed cost per batch
    (its statements): the run goes on with ``steady`` meters a batch.
    """
    if complete and meters and charged <= STEADY_READINGS_PER_METER * meters:
        return steady
    return batch
