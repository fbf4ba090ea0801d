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

from decimal import Decimal

from .tariff import BANDS

ZERO = Decimal(0)
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
