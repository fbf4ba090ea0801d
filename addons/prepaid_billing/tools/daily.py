"""Daily use: the sums of one meter's billed readings over one local day.

Every report, chart and portal page reads these sums instead of the raw
readings, so their cost does not grow with years of history. One rule fills
them, fed from two places: the billing engine (the readings and charges of a
batch, still in memory) and a rebuild (the same from the database). Both
feed :meth:`Days.add`, so an aggregate always equals its recomputation.

Band figures come from the pricing lines of each charge (``label: quantity x
price = amount``, see ``tools/batch``): a time-of-use charge names its bands,
a flat or tiered one names none (its use counts in the total only). Band
costs are the exact (unrounded) line amounts; the day's ``amount`` is the
sum of the rounded charges, which is what the wallet paid.

Plain Python (no Odoo import).
"""

import bisect
from datetime import datetime, time, timedelta
from decimal import Decimal
from itertools import islice
from operator import itemgetter, le

from .tariff import BANDS

ZERO = Decimal(0)
ONE_DAY = timedelta(days=1)
_MIDNIGHT = time.min
# COPY's NULL: the detail of a charge that has none (see tools/batch)
NULL_DETAIL = "\\N"
# Where add_billed finds a reading's fields in the billing engine's rows
# (tools/deduction.ReadingRow): id, meter, time, deltas, counters.
_ID, _METER, _AT, _KWH, _M3, _TOTAL, _VOLUME = 0, 1, 2, 3, 4, 11, 12
_BAND_INDEX = {band: index for index, band in enumerate(BANDS)}
_row_id, _row_meter, _row_at = itemgetter(_ID), itemgetter(_METER), itemgetter(_AT)
_row_kwh, _row_m3 = itemgetter(_KWH), itemgetter(_M3)
# A charge of tools/batch: (reading id, quantity, amount, detail)
_charge_reading, _charge_amount, _charge_detail = (itemgetter(i) for i in (0, 2, 3))


class DayUse:
    """The sums of one meter and local day, and its first and last reading
    (``first``/``last``: tuples that hold the reading's time, kWh counter and
    m³ counter at the places :attr:`Days.edge` names).

    ``band_kwh``/``band_cost`` are lists in ``BANDS`` order once a
    time-of-use line was counted, else None (no band: zeros).
    """

    __slots__ = (
        "kwh",
        "m3",
        "amount",
        "charged",
        "band_kwh",
        "band_cost",
        "first",
        "last",
    )

    def __init__(self):
        self.kwh = 0.0
        self.m3 = 0.0
        self.amount = ZERO
        self.charged = 0
        self.band_kwh = self.band_cost = None
        self.first = self.last = None

    def add_band(self, index, quantity, amount):
        """Count a time-of-use line: ``quantity`` kWh for ``amount`` in the
        band of ``index``."""
        if self.band_kwh is None:
            self.band_kwh = [ZERO] * len(BANDS)
            self.band_cost = [ZERO] * len(BANDS)
        self.band_kwh[index] += quantity
        self.band_cost[index] += amount


def band_lines(detail):
    """``(band index, quantity, amount)`` of each time-of-use pricing line of
    a charge's ``detail`` (newline-separated); other lines are skipped."""
    if not detail:
        return []
    found = []
    for line in detail.split("\n"):
        label, _sep, rest = line.partition(": ")
        index = _BAND_INDEX.get(label.split(" ", 1)[0])
        if index is None:
            continue
        quantity, _sep, rest = rest.partition(" x ")
        _price, _sep, amount = rest.partition(" = ")
        if not amount:
            continue
        found.append((index, Decimal(quantity), Decimal(amount)))
    return found


class Days:
    """Sums by ``(meter_id, local day)``, in the order first seen.

    ``edge``: where a day's ``first``/``last`` tuples hold the reading's
    time, kWh counter and m³ counter (``(read_at, kWh, m³)`` for
    :meth:`add`; :func:`add_billed` keeps the engine's rows as they are).
    """

    __slots__ = ("uses", "edge")

    def __init__(self, edge=(0, 1, 2)):
        self.uses = {}
        self.edge = edge

    def __len__(self):
        return len(self.uses)

    def edges(self, use):
        """``((read_at, kWh, m³), (read_at, kWh, m³))``: the first and last
        reading of ``use``."""
        at, kwh, m3 = self.edge
        first, last = use.first, use.last
        return (first[at], first[kwh], first[m3]), (last[at], last[kwh], last[m3])

    def add(self, meter_id, day, reading, kwh, m3, amount=None, detail=None):
        """Count one billed reading: ``reading`` is ``(read_at, kWh counter,
        m³ counter)``, ``kwh``/``m3`` its deltas; its charge if it has one
        (``amount`` a ``Decimal``, ``detail`` its pricing lines or None).

        Readings of a meter come in id order: the first of a day is the
        earliest (the lowest id on a tie), the last the latest (the highest).
        """
        key = (meter_id, day)
        use = self.uses.get(key)
        if use is None:
            use = self.uses[key] = DayUse()
            use.first = use.last = reading
        else:
            read_at = reading[0]
            if read_at < use.first[0]:
                use.first = reading
            if read_at >= use.last[0]:
                use.last = reading
        if kwh:
            use.kwh += kwh
        if m3:
            use.m3 += m3
        if amount is None:
            return
        use.charged += 1
        use.amount += amount
        if detail:
            for index, quantity, line_amount in band_lines(detail):
                use.add_band(index, quantity, line_amount)

    def items(self):
        """``((meter_id, day), DayUse)`` pairs."""
        return self.uses.items()

    def columns(self):
        """These days as :class:`DayColumns`."""
        columns = DayColumns(self.edge)
        for (meter_id, day), use in self.uses.items():
            columns.append(meter_id, day, use)
        return columns


class DayColumns:
    """Days as the columns of the rows they become (``_upsert`` sends
    columns): one entry per meter and day, no object per day.

    ``band_kwh``/``band_cost`` hold a day's band lists (or None), ``first``
    /``last`` its edge tuples, laid out as ``edge`` says (see :class:`Days`).
    """

    # a list per field of DayUse, and the edge layout
    __slots__ = ("meter_id", "date", *DayUse.__slots__, "edge")

    def __init__(self, edge=(0, 1, 2)):
        for name in self.__slots__[:-1]:
            setattr(self, name, [])
        self.edge = edge

    def __len__(self):
        return len(self.meter_id)

    def columns(self):
        return self

    def append(self, meter_id, day, use):
        """Add the day of a :class:`DayUse`."""
        self.meter_id.append(meter_id)
        self.date.append(day)
        self.kwh.append(use.kwh)
        self.m3.append(use.m3)
        self.amount.append(use.amount)
        self.charged.append(use.charged)
        self.band_kwh.append(use.band_kwh)
        self.band_cost.append(use.band_cost)
        self.first.append(use.first)
        self.last.append(use.last)

    def days(self):
        """The same as :class:`Days` (with the same edge layout)."""
        days = Days(self.edge)
        for index, key in enumerate(zip(self.meter_id, self.date, strict=True)):
            use = days.uses[key] = DayUse()
            use.kwh, use.m3 = self.kwh[index], self.m3[index]
            use.amount, use.charged = self.amount[index], self.charged[index]
            use.band_kwh, use.band_cost = self.band_kwh[index], self.band_cost[index]
            use.first, use.last = self.first[index], self.last[index]
        return days


def _count_bands(use, detail):
    """Add the band lines of a charge's (COPY-escaped) ``detail`` to ``use``."""
    if detail:
        for index, quantity, amount in band_lines(detail.replace("\\n", "\n")):
            use.add_band(index, quantity, amount)


def _meter_charges(groups, index, meter_id):
    """``(charges, banded, next index)``: the charges of ``meter_id``'s
    groups found from ``groups[index]`` on (a batch's groups come in meter
    order), in reading order, and whether any of them has time-of-use lines
    (else their details need no reading)."""
    count = len(groups)
    while index < count and groups[index].meter_id < meter_id:
        index += 1
    charges, banded = (), False
    while index < count and groups[index].meter_id == meter_id:
        group = groups[index]
        charges = group.charges if not charges else charges + group.charges
        banded = banded or any(
            label.split(" ", 1)[0] in _BAND_INDEX for label, _price in group.lines
        )
        index += 1
    return charges, banded, index


def _add_charges(use, charges, banded):
    """Count ``charges`` (a batch's :class:`~.batch.Charge` tuples) in
    ``use``; their details only when ``banded``."""
    if not charges:
        return
    use.charged += len(charges)
    use.amount = sum(map(_charge_amount, charges), use.amount)
    if banded:
        for detail in map(_charge_detail, charges):
            if detail != NULL_DETAIL:
                _count_bands(use, detail)


def _add_rows(columns, meter_id, clock, rows, charges, banded):
    """Add one meter's billed ``rows`` (id order) and their ``charges``
    (reading order) to ``columns``, reading by reading: any order of reading
    times, any time zone transition."""
    charge_of = {charge[0]: charge for charge in charges}.get
    local = clock.local
    uses = {}
    use = day_start = day_end = None
    for row in rows:
        at = local(row[_AT])
        if use is None or not day_start <= at < day_end:
            day = at.date()
            day_start = datetime.combine(day, time.min)
            day_end = day_start + ONE_DAY
            use = uses.get(day)
            if use is None:
                use = uses[day] = DayUse()
                use.first = use.last = row
        if row[_AT] < use.first[_AT]:
            use.first = row
        if row[_AT] >= use.last[_AT]:
            use.last = row
        kwh, m3 = row[_KWH], row[_M3]
        if kwh:
            use.kwh += kwh
        if m3:
            use.m3 += m3
        charge = charge_of(row[_ID])
        if charge is not None:
            _add_charges(use, (charge,), banded)
    for day, use in uses.items():
        columns.append(meter_id, day, use)


def _add_day_slices(columns, meter_id, offset, rows, low, times, charges, banded):
    """:func:`_add_rows` for the rows from ``low`` whose naive UTC
    ``times`` never go back and one UTC ``offset`` covers: each local day is
    a slice of them found by bisection, summed by built-ins into
    ``columns`` (no object per day)."""
    start, count, charge_low = 0, len(times), 0
    charge_ids = list(map(_charge_reading, charges))
    to_end = ONE_DAY - offset  # from a local midnight to the UTC end of its day
    while start < count:
        day = (times[start] + offset).date()
        stop = bisect.bisect_left(
            times, datetime.combine(day, _MIDNIGHT) + to_end, start
        )
        day_rows = rows[low + start : low + stop]
        start = stop
        columns.meter_id.append(meter_id)
        columns.date.append(day)
        columns.kwh.append(sum(filter(None, map(_row_kwh, day_rows)), 0.0))
        columns.m3.append(sum(filter(None, map(_row_m3, day_rows)), 0.0))
        columns.first.append(day_rows[0])
        columns.last.append(day_rows[-1])
        charge_high = charge_low
        if charges:
            charge_high = bisect.bisect_right(charge_ids, day_rows[-1][_ID], charge_low)
        if charge_high == charge_low:
            columns.amount.append(ZERO)
            columns.charged.append(0)
            columns.band_kwh.append(None)
            columns.band_cost.append(None)
            continue
        day_charges = charges[charge_low:charge_high]
        charge_low = charge_high
        columns.amount.append(sum(map(_charge_amount, day_charges), ZERO))
        columns.charged.append(len(day_charges))
        bands = None
        if banded:
            bands = DayUse()
            for detail in map(_charge_detail, day_charges):
                if detail != NULL_DETAIL:
                    _count_bands(bands, detail)
        columns.band_kwh.append(bands and bands.band_kwh)
        columns.band_cost.append(bands and bands.band_cost)


class BatchDays:
    """The days of one billing batch, counted as pricing goes: a meter is
    counted once all its rows are priced, while they are still in the
    processor's caches (see :meth:`follow`).

    ``rows`` are the engine's readings (``ReadingRow`` field order) sorted by
    meter and id, ``meters`` its billing states by meter id (``clock`` and
    ``watermark``: readings after the watermark were not billed), ``groups``
    the batch's charge groups (each charge names its reading; the list grows
    as pricing goes).

    The same sums as :meth:`Days.add` per reading, on the hot path of billing.
    A meter's readings usually come in time order with no time zone
    transition among them (every meter of a zone without daylight saving
    time): each of its local days is then a slice of its rows, found by
    bisection and summed by built-ins, with no Python step per reading.
    Other meters are counted reading by reading.
    """

    __slots__ = ("rows", "meters", "groups", "columns", "_low", "_group_index")

    def __init__(self, rows, meters, groups):
        self.rows = rows
        self.meters = meters
        self.groups = groups
        # edges: the engine's rows as they are
        self.columns = DayColumns(edge=(_AT, _TOTAL, _VOLUME))
        self._low = 0  # the first row not counted
        self._group_index = 0  # the first group not read

    def follow(self, pump):
        """``pump`` (``tools/deduction.price_readings``, whose every step
        yields how many rows are priced) passed on, counting the meters each
        step finished."""
        for priced in pump:
            self.count(priced)
            yield priced

    def count(self, priced=None):
        """Count the meters whose rows all lie in the first ``priced`` rows
        (every meter left when None); returns the :class:`DayColumns`."""
        rows = self.rows
        total = len(rows)
        limit = total if priced is None else priced
        low = self._low
        while low < limit:
            meter_id = rows[low][_METER]
            high = bisect.bisect_right(rows, meter_id, low, total, key=_row_meter)
            if high > limit:
                break  # its last rows are not priced yet
            self._count_meter(meter_id, low, high)
            low = high
        self._low = low
        return self.columns

    def _count_meter(self, meter_id, low, high):
        rows, meter = self.rows, self.meters[meter_id]
        charges, banded, self._group_index = _meter_charges(
            self.groups, self._group_index, meter_id
        )
        stop = high
        watermark = meter.watermark or 0
        if rows[high - 1][_ID] > watermark:
            # not billed from there on (no tariff in force)
            stop = bisect.bisect_right(rows, watermark, low, high, key=_row_id)
        if stop == low:
            return
        clock = meter.clock
        times = list(map(_row_at, rows[low:stop]))
        offset = clock.offset_over(times[0], times[-1])
        if offset is not None and all(map(le, times, islice(times, 1, None))):
            _add_day_slices(
                self.columns, meter_id, offset, rows, low, times, charges, banded
            )
        else:
            _add_rows(self.columns, meter_id, clock, rows[low:stop], charges, banded)


def add_billed(rows, meters, groups):
    """The days of one priced billing batch (see :class:`BatchDays`), as
    :class:`DayColumns` whose edges are rows of ``rows``."""
    return BatchDays(rows, meters, groups).count()
