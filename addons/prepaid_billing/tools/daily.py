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

from datetime import datetime, time, timedelta
from decimal import Decimal

from .tariff import BANDS

ZERO = Decimal(0)
ONE_DAY = timedelta(days=1)
# COPY's NULL: the detail of a charge that has none (see tools/batch)
NULL_DETAIL = "\\N"
# Where add_billed finds a reading's fields in the billing engine's rows
# (tools/deduction.ReadingRow): id, meter, time, deltas, counters.
_ID, _METER, _AT, _KWH, _M3, _TOTAL, _VOLUME = 0, 1, 2, 3, 4, 11, 12
_BAND_INDEX = {band: index for index, band in enumerate(BANDS)}


class DayUse:
    """The sums of one meter and local day, and its first and last reading
    (time and counters, ``first``/``last`` as ``(read_at, kWh, m³)``)."""

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
        self.band_kwh = [ZERO] * len(BANDS)
        self.band_cost = [ZERO] * len(BANDS)
        self.first = self.last = None


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
    """Sums by ``(meter_id, local day)``, in the order first seen."""

    __slots__ = ("uses",)

    def __init__(self):
        self.uses = {}

    def __len__(self):
        return len(self.uses)

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
                use.band_kwh[index] += quantity
                use.band_cost[index] += line_amount

    def items(self):
        """``((meter_id, day), DayUse)`` pairs."""
        return self.uses.items()


def _day_of(uses, meter_id, at, row):
    """``(DayUse, local start, local end)`` of the local day of ``at`` (made
    with ``row`` as its first and last reading when new)."""
    day = at.date()
    start = datetime.combine(day, time.min)
    key = (meter_id, day)
    use = uses.get(key)
    if use is None:
        use = uses[key] = DayUse()
        use.first = use.last = row
    return use, start, start + ONE_DAY


def _count_bands(use, detail):
    """Add the band lines of a charge's (COPY-escaped) ``detail`` to ``use``."""
    if detail:
        for index, quantity, amount in band_lines(detail.replace("\\n", "\n")):
            use.band_kwh[index] += quantity
            use.band_cost[index] += amount


def add_billed(rows, meters, groups):
    """The days of one billing batch: a new :class:`Days`.

    ``rows`` are the engine's readings (``ReadingRow`` field order) sorted by
    meter and id, ``meters`` its billing states by meter id (``clock`` and
    ``watermark``: readings after the watermark were not billed), ``groups``
    the batch's charge groups (each charge names its reading).

    The same sums as :meth:`Days.add` per reading, on the hot path of billing:
    a reading of the same meter and local day as the one before costs one
    comparison of its local time with the day's bounds and a few additions
    (no key, no tuple, no call per reading).
    """
    days = Days()
    uses = days.uses
    charge_of = {
        charge.reading_id: charge for group in groups for charge in group.charges
    }.get
    meter_id_seen, use = None, None
    local, watermark = None, 0
    day_start = day_end = None
    for row in rows:
        reading_id, meter_id = row[_ID], row[_METER]
        if meter_id != meter_id_seen:
            meter_id_seen, meter = meter_id, meters[meter_id]
            local, watermark, use = meter.clock.local, meter.watermark or 0, None
        if reading_id > watermark:
            continue  # not billed (no tariff in force from there on)
        at = local(row[_AT])
        if use is None or not day_start <= at < day_end:
            use, day_start, day_end = _day_of(uses, meter_id, at, row)
        if row[_AT] < use.first[_AT]:
            use.first = row
        if row[_AT] >= use.last[_AT]:
            use.last = row
        kwh, m3 = row[_KWH], row[_M3]
        if kwh:
            use.kwh += kwh
        if m3:
            use.m3 += m3
        charge = charge_of(reading_id)
        if charge is not None:
            use.charged += 1
            use.amount += charge.amount
            if charge.detail != NULL_DETAIL:
                _count_bands(use, charge.detail)
    for use in uses.values():
        # the edges as Days.add keeps them: (time, kWh counter, m³ counter)
        first, last = use.first, use.last
        use.first = (first[_AT], first[_TOTAL], first[_VOLUME])
        use.last = (last[_AT], last[_TOTAL], last[_VOLUME])
    return days
