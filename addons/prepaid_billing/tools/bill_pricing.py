"""Usage of a whole period priced with the tariff core, for bills.

Prepaid wallets are charged reading by reading (the engine); a postpaid bill
and a common-area apportionment price a period's usage at once: every reading
delta goes to a bucket (tariff version and band, or version and tier period),
and each bucket is priced once with the version's :class:`tariff.Pricer`.
Time of use uses the meter's band registers when they moved, else the band of
the reading's time; tiers start from zero at each tier period, like the
prepaid pricing.
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


class PeriodUsage:
    """Collects the reading deltas of one meter and prices them.

    :param versions: the tariff's :class:`tariff.TariffVersion` list (any
        order); each reading is priced by the one in force on its local day
    """

    __slots__ = ("_dates", "_pricers", "_buckets", "_window")

    def __init__(self, versions):
        ordered = sorted(versions, key=lambda version: version.valid_from)
        self._dates = [version.valid_from for version in ordered]
        self._pricers = [compile_tariff(version) for version in ordered]
        self._buckets = {}
        self._window = None

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
        """The priced lines, in the order the buckets were first used."""
        pricers = {pricer.key: pricer for pricer in self._pricers}
        to_money = rounder(rounding)
        result = []
        for (version_key, label), total in self._buckets.items():
            quantity = _quantity(total)
            if not quantity:
                continue
            pricer = pricers[version_key]
            if pricer.version.kind == "tiered":
                charge = pricer.price(quantity, rounding=rounding)
                for line in charge.lines:
                    result.append(
                        UsageLine(
                            version_key,
                            f"{line.label} ({label:%Y-%m})",
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
