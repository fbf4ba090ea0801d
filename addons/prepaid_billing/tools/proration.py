"""Billing periods of recurring charges and proration by days.

A recurring charge item is due once per period (month, quarter, year) on a
day of that period; a one-off item once, on its start date.  When the item
starts or ends inside a period, or the tenant arrives or leaves inside it,
the amount is prorated by the days covered (both days included).
"""

from datetime import date, timedelta
from typing import NamedTuple

from dateutil.relativedelta import relativedelta

from .money import CENT, rounder, to_decimal

RECURRENCES = ("monthly", "quarterly", "yearly", "once")
_MONTHS = {"monthly": 1, "quarterly": 3, "yearly": 12}


class Period(NamedTuple):
    """A billing period, first and last day included; due on ``due``."""

    start: date
    end: date
    due: date

    @property
    def days(self):
        return (self.end - self.start).days + 1

    @property
    def key(self):
        """Stable text naming the period in idempotency keys."""
        return self.start.isoformat()


def _period_start(day, months):
    """First day of the month/quarter/year holding ``day``."""
    month0 = (day.month - 1) // months * months
    return date(day.year, month0 + 1, 1)


def due_periods(recurrence, start, end, upto, day_of_period=1):
    """Periods of a charge item due on or before ``upto``.

    :param recurrence: ``monthly``, ``quarterly``, ``yearly`` or ``once``
    :param start: first day the item applies (a period starting before it
        is still generated, prorated by the caller)
    :param end: last day the item applies, or None
    :param upto: the day the generation runs; a period is due when its due
        day (``day_of_period``-th day of the period, capped to its length)
        has come
    :param day_of_period: 1..31; the 31st of a 30-day month is its last day
    :returns: list of :class:`Period`, oldest first
    :raises ValueError: an unknown recurrence, a day outside 1..31, or an end
        before the start
    """
    if recurrence not in RECURRENCES:
        raise ValueError(f"Unknown recurrence {recurrence!r}.")
    if not 1 <= day_of_period <= 31:
        raise ValueError(f"The day of the period must be 1 to 31, got {day_of_period}.")
    if end is not None and end < start:
        raise ValueError(f"The end {end} is before the start {start}.")
    if recurrence == "once":
        return [Period(start, start, start)] if start <= upto else []
    months = _MONTHS[recurrence]
    periods = []
    first = _period_start(start, months)
    while True:
        following = first + relativedelta(months=months)
        last = following - timedelta(days=1)
        if end is not None and first > end:
            break
        due = min(first + timedelta(days=day_of_period - 1), last)
        if due > upto:
            break
        periods.append(Period(first, last, due))
        first = following
    return periods


def covered_days(period, *windows):
    """Days of ``period`` inside every ``(first, last)`` window (None: open)."""
    first, last = period.start, period.end
    for low, high in windows:
        if low is not None and low > first:
            first = low
        if high is not None and high < last:
            last = high
    return max((last - first).days + 1, 0)


def prorate(amount, period, days, rounding=CENT):
    """``amount`` × ``days`` / days of ``period``, rounded half up.

    The whole period returns ``amount`` itself, no day returns zero.
    """
    amount = to_decimal(amount)
    days = min(max(days, 0), period.days)
    return rounder(rounding)(amount * days / period.days)
