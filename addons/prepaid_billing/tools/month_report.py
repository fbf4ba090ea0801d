"""Figures of the comprehensive monthly report: one row per shop and month,
compared with the previous month and the same month a year before.

Plain Python (no Odoo import): the model sums the daily aggregates and the
month's charge items and apportioned shares; this module puts them side by
side and computes the changes.
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
    """One row of the report."""

    room_id: int
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

    @property
    def amount_vs_last_year(self):
        return change_pct(self.usage.amount, self.last_year and self.last_year.amount)
