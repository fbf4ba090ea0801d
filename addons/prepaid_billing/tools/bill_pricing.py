"""Usage of a whole period priced with the tariff core, for bills.

Prepaid wallets are charged reading by reading (the engine); a postpaid bill
and a common-area apportionment price a period's usage at once: every reading
delta goes to a bucket (tariff version and band, or version and tier period),
and each bucket is priced once with the version's :class:`tariff.Pricer`.
Time of use uses the meter's band registers when they moved, else the band of
the reading's time. Tiers count the meter's use in the tier period, like the
prepaid pricing: a bill starting inside a tier period (a monthly bill under
yearly tiers, the second half of a month) continues from the use before it
(:func:`tier_carry_windows` says which days count, the caller sums them), and
a tariff version changing inside a tier period continues from the previous
version's use.
"""

import bisect
from datetime import timedelta
from decimal import Decimal
from typing import NamedTuple

import pytz

from .money import CENT, ZERO, rounder
from .tariff import SINGLE_PRICE, TariffError, compile_tariff, period_start


def fixed_utc_offset(tzname, start, stop):
    """Seconds the local time of zone ``tzname`` is ahead of UTC from
    ``start`` to ``stop`` (naive UTC, ``stop`` excluded), or None when the
    zone changes its offset in between (daylight saving time). The offsets
    are pytz's, like :class:`clock.LocalClock`."""
    zone = pytz.timezone(tzname or "UTC")
    transitions = getattr(zone, "_utc_transition_times", None)
    if not transitions:
        return int((zone.utcoffset(start) or timedelta(0)).total_seconds())
    index = bisect.bisect_right(transitions, start) - 1
    if index + 1 < len(transitions) and transitions[index + 1] < stop:
        return None
    return int(zone._transition_info[max(index, 0)][0].total_seconds())


class UsageLine(NamedTuple):
    """``quantity`` × ``unit_price`` = ``amount`` (rounded to the cent)."""

    version_key: object
    label: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal


class NoVersion(TariffError):
    """A reading falls before the first version of the tariff."""

    def __init__(self, when):
        super().__init__(f"No tariff version is in force on {when.date()}.")
        self.when = when


def _quantity(value):
    # Readings carry at most a few decimals: the float sums are exact once
    # rounded well below them.
    return Decimal(repr(round(value, 6)))


def _period_label(start, tier_period):
    return f"{start:%Y}" if tier_period == "year" else f"{start:%Y-%m}"


def tier_carry_windows(versions, date_from, date_to):
    """The tier periods that a bill from ``date_from`` to ``date_to`` (local
    days, included) enters after their start, and the days before the bill
    whose use counts towards them.

    Tiers count the use priced by a tiered version since the start of the
    tier period (the prepaid engine's ``period_qty``), so only the days a
    tiered version of the tariff was in force count.

    :param versions: the tariff's :class:`tariff.TariffVersion` list
    :returns: ``{period start: [(first day, day after the last), ...]}``,
        only for periods with such days; empty when every tier period of the
        bill starts inside it (a monthly bill under monthly tiers)
    """
    ordered = sorted(versions, key=lambda version: version.valid_from)
    spans = []  # (version, first day, day after the last or None)
    for index, version in enumerate(ordered):
        until = ordered[index + 1].valid_from if index + 1 < len(ordered) else None
        spans.append((version, version.valid_from, until))
    stop = date_to + timedelta(days=1)
    starts = set()
    for version, begin, until in spans:
        if version.kind != "tiered" or begin >= stop:
            continue
        if until is not None and until <= date_from:
            continue
        start = period_start(max(begin, date_from), version.tier_period)
        if start < date_from:
            starts.add(start)
    windows = {}
    for start in sorted(starts):
        days = []
        for version, begin, until in spans:
            first = max(begin, start)
            end = date_from if until is None else min(until, date_from)
            if version.kind == "tiered" and first < end:
                days.append((first, end))
        if days:
            windows[start] = days
    return windows


class PeriodUsage:
    """Collects the reading deltas of one meter and prices them.

    :param versions: the tariff's :class:`tariff.TariffVersion` list (any
        order); each reading is priced by the one in force on its local day
    :param used_before: ``{tier period start: quantity}``, the meter's use in
        those tier periods before the first reading added (see
        :func:`tier_carry_windows`); the tiers continue from it
    """

    __slots__ = ("_dates", "_pricers", "_buckets", "_window", "_used_before")

    def __init__(self, versions, used_before=None):
        ordered = sorted(versions, key=lambda version: version.valid_from)
        self._dates = [version.valid_from for version in ordered]
        self._pricers = [compile_tariff(version) for version in ordered]
        self._buckets = {}
        self._window = None
        self._used_before = {
            start: _quantity(quantity)
            for start, quantity in (used_before or {}).items()
            if quantity
        }

    def _pricer_at(self, local):
        window = self._window
        day = local.date()
        if window is None or not window[0] <= day < window[1]:
            index = bisect.bisect_right(self._dates, day) - 1
            if index < 0:
                raise NoVersion(local)
            until = self._dates[index + 1] if index + 1 < len(self._dates) else None
            window = self._window = (
                self._dates[index],
                until or day.replace(year=9999),
                self._pricers[index],
            )
        return window[2]

    def add(self, local, quantity, band_quantities=None):
        """Count one reading delta taken at local time ``local``.

        ``band_quantities`` (``{band: kWh}``, time of use only) are the band
        registers' deltas; what they miss of ``quantity`` goes to the band of
        ``local``.
        """
        if not quantity or quantity <= 0:
            return
        pricer = self._pricer_at(local)
        version = pricer.version
        buckets = self._buckets
        if version.kind == "tiered":
            key = (pricer.key, period_start(local, version.tier_period))
            buckets[key] = buckets.get(key, 0.0) + quantity
        elif version.kind == "tou":
            rest = quantity
            if band_quantities:
                for band, band_quantity in band_quantities.items():
                    key = (pricer.key, band)
                    buckets[key] = buckets.get(key, 0.0) + band_quantity
                    rest -= band_quantity
            if abs(rest) > 1e-9:
                key = (pricer.key, pricer.band_at(local))
                buckets[key] = buckets.get(key, 0.0) + rest
        else:
            key = (pricer.key, SINGLE_PRICE)
            buckets[key] = buckets.get(key, 0.0) + quantity

    def lines(self, rounding=CENT):
        """The priced lines, in the order the buckets were first used (the
        order of the readings: a tier period's buckets continue one from the
        other)."""
        pricers = {pricer.key: pricer for pricer in self._pricers}
        to_money = rounder(rounding)
        used = dict(self._used_before)
        result = []
        for (version_key, label), total in self._buckets.items():
            quantity = _quantity(total)
            if not quantity:
                continue
            pricer = pricers[version_key]
            if pricer.version.kind == "tiered":
                before = used.get(label, ZERO)
                used[label] = before + quantity
                charge = pricer.price(
                    quantity, period_used_before=before, rounding=rounding
                )
                period = _period_label(label, pricer.version.tier_period)
                for line in charge.lines:
                    result.append(
                        UsageLine(
                            version_key,
                            f"{line.label} ({period})",
                            line.quantity,
                            line.unit_price,
                            to_money(line.amount),
                        )
                    )
                continue
            if label == SINGLE_PRICE:
                price = pricer.version.price
            else:
                price = pricer.band_price(label)
            result.append(
                UsageLine(
                    version_key, label, quantity, price, to_money(quantity * price)
                )
            )
        return result

    def total(self, rounding=CENT):
        """The sum of the rounded lines (what a bill shows)."""
        return sum((line.amount for line in self.lines(rounding)), ZERO)
