"""Figures of the comprehensive monthly report: one row per shop and month,
compared with the previous month and the same month a year before.

Plain Python (no Odoo import): the model sums the daily aggregates, the
month's charge items, apportioned shares and postpaid bills; this module puts
them side by side and computes the changes.
"""

from dataclasses import dataclass, field
from datetime import date

from .tariff import BANDS


def month_start(day):
    return date(day.year, day.month, 1)


def add_months(day, months):
    """First day of the month ``months`` after ``day``'s month."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def change_pct(current, previous):
    """Percent change from ``previous``; None when there is nothing to
    compare with (no figure, or zero, that month)."""
    if not previous:
        return None
    return round((current - previous) * 100.0 / previous, 1)


@dataclass(slots=True)
class Usage:
    """What one shop used and paid in one month."""

    kwh: float = 0.0
    m3: float = 0.0
    band_kwh: dict = field(default_factory=lambda: dict.fromkeys(BANDS, 0.0))
    band_cost: dict = field(default_factory=lambda: dict.fromkeys(BANDS, 0.0))
    energy_amount: float = 0.0
    water_amount: float = 0.0

    @property
    def amount(self):
        return self.energy_amount + self.water_amount


@dataclass(slots=True)
class ShopMonth:
    """One row of the report (``room_id`` None: money of no room)."""

    room_id: int | None
    partner_id: int | None
    usage: Usage
    charges: float = 0.0
    share: float = 0.0
    previous: Usage | None = None
    last_year: Usage | None = None

    @property
    def total(self):
        return self.usage.amount + self.charges + self.share

    @property
    def kwh_vs_previous(self):
        return change_pct(self.usage.kwh, self.previous and self.previous.kwh)

    @property
    def kwh_vs_last_year(self):
        return change_pct(self.usage.kwh, self.last_year and self.last_year.kwh)


#: The figures of the month summed from the daily aggregates, in the order of
#: the report's statement: electricity kWh, water m³, their amounts, then the
#: kWh and the cost of each band.
SUMS = (
    "kwh",
    "m3",
    "energy_amount",
    "water_amount",
    *(f"{band}_kwh" for band in BANDS),
    *(f"{band}_cost" for band in BANDS),
)
#: What the previous month and the same month a year before are compared by
#: (the first sums: no bands).
COMPARED = SUMS[:4]
#: Periods of the report, in the order of its statement.
PERIODS = ("current", "previous", "last_year")


def usage_of(values):
    """A :class:`Usage` from the sums of one period (``SUMS`` order, or only
    the ``COMPARED`` ones; None read as 0)."""
    kwh, m3, energy, water, *bands = (value or 0.0 for value in values)
    if not bands:
        return Usage(kwh=kwh, m3=m3, energy_amount=energy, water_amount=water)
    count = len(BANDS)
    return Usage(
        kwh=kwh,
        m3=m3,
        band_kwh=dict(zip(BANDS, bands[:count], strict=True)),
        band_cost=dict(zip(BANDS, bands[count:], strict=True)),
        energy_amount=energy,
        water_amount=water,
    )


def shop_rows(usage_rows, charges, shares, billed=None):
    """The report's rows (unsorted) from the statement's rows and the
    month's charge items and shares (``{room_id: amount}``) and the usage
    billed on postpaid bills (``{room_id: (energy amount, water amount)}``).

    A usage row is ``(room_id, partner_id, days_current, days_previous,
    days_last_year, *sums_current, *sums_previous, *sums_last_year)``: the
    month's sums in ``SUMS`` order, the two others in ``COMPARED`` order. A
    period without a day has no usage (None), so that no change is computed
    against it. A room with neither use, charge, share nor bill this month
    has no row. ``room_id`` None is the row of the money no room holds.
    """
    billed = billed or {}
    periods, width, compared = len(PERIODS), len(SUMS), len(COMPARED)
    money_rooms = charges.keys() | shares.keys() | billed.keys()
    rows = {}
    for room_id, partner_id, *rest in usage_rows:
        days = rest[:periods]
        if not days[0] and room_id not in money_rooms:
            continue  # nothing this month: not a row of the report
        start = periods + width
        rows[room_id] = ShopMonth(
            room_id,
            partner_id if days[0] else None,
            usage_of(rest[periods:start]) if days[0] else Usage(),
            previous=usage_of(rest[start : start + compared]) if days[1] else None,
            last_year=usage_of(rest[start + compared :]) if days[2] else None,
        )
    for room_id in money_rooms - rows.keys():
        rows[room_id] = ShopMonth(room_id, None, Usage())
    for room_id, row in rows.items():
        row.charges = charges.get(room_id, 0.0)
        row.share = shares.get(room_id, 0.0)
        # Postpaid use is money on the bill, not in the wallet's deductions.
        energy, water = billed.get(room_id, (0.0, 0.0))
        row.usage.energy_amount += energy
        row.usage.water_amount += water
    return list(rows.values())
