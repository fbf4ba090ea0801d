"""Tariffs: validation, version selection and pricing of consumption.

A tariff is a series of :class:`TariffVersion`; each takes effect from its
``valid_from`` date and every :class:`Charge` records the ``key`` of the
version that priced it.  Kinds:

``flat``
    one price per kWh or m³ (water is priced like electricity, per m³).
``tou``
    time of use: prices per band (sharp, peak, flat, valley); each
    :class:`Season` (a set of months) has a day schedule of :class:`Period`.
``tiered``
    price steps by cumulative consumption in the month or the year
    (``tier_period``), restarting from zero at the period start.

Times are local wall-clock times: the caller converts UTC timestamps to the
site's time zone first (an aware datetime is read by its own wall clock).
Schedules have minute resolution; a reading at 07:59:59 is still in the
period that ends at 08:00, and one at exactly 08:00:00 is in the period that
starts at 08:00.

Pricing is per reading delta: :func:`price_delta` prices one delta and
:func:`compile_tariff` prepares a version once (minute tables, tier bounds)
so that millions of readings can be priced quickly.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import NamedTuple

from .money import CENT, ZERO, rounder, to_decimal

BANDS = ("sharp", "peak", "flat", "valley")
KINDS = ("flat", "tou", "tiered")
TIER_PERIODS = ("month", "year")
ALL_MONTHS = frozenset(range(1, 13))
_BAND_SET = frozenset(BANDS)
MINUTES_PER_DAY = 24 * 60

# Evidence label of the single line of a flat tariff; "flat" alone would be
# confused with the flat time-of-use band in reports.
SINGLE_PRICE = "single price"


class TariffError(ValueError):
    """A tariff that cannot be used as configured, or a delta it cannot price."""


def _decimal_field(value, what):
    try:
        return to_decimal(value)
    except (TypeError, ValueError):
        raise TariffError(f"{what} must be a number, got {value!r}.") from None


@dataclass(frozen=True)
class Period:
    """A band from ``start`` to ``end`` (hours, end exclusive).

    Hours may carry minutes as fractions (7.5 is 07:30); 24 is the midnight
    that ends the day.  A period whose start is after its end runs over
    midnight: ``Period("valley", 23, 7)`` is 23:00–24:00 plus 00:00–07:00.
    """

    band: str
    start: float
    end: float


@dataclass(frozen=True)
class Season:
    """A day schedule used in the given months (1 = January)."""

    name: str
    months: frozenset[int]
    periods: tuple[Period, ...]

    def __post_init__(self):
        # Accept lists and sets from callers but keep the value hashable.
        object.__setattr__(self, "months", frozenset(self.months))
        object.__setattr__(self, "periods", tuple(self.periods))

    @classmethod
    def all_year(cls, periods, name="all year"):
        """Return a season covering the twelve months."""
        return cls(name, ALL_MONTHS, tuple(periods))


@dataclass(frozen=True)
class Tier:
    """A price step that ends at cumulative quantity ``upto`` (None: no end)."""

    upto: Decimal | None
    price: Decimal

    def __post_init__(self):
        if self.upto is not None:
            object.__setattr__(self, "upto", _decimal_field(self.upto, "Tier limit"))
        object.__setattr__(self, "price", _decimal_field(self.price, "Tier price"))


@dataclass(frozen=True)
class TariffVersion:
    """The prices of a tariff from ``valid_from`` on.

    Amounts given as floats or strings are converted to ``Decimal``.  Treat
    instances as immutable: :func:`compile_tariff` caches its work on them.
    """

    key: object
    valid_from: date
    kind: str
    price: Decimal = ZERO
    # A dict cannot be hashed; leaving it out of the hash keeps versions
    # hashable while equality still compares the prices.
    band_prices: Mapping[str, Decimal] = field(default_factory=dict, hash=False)
    seasons: tuple[Season, ...] = ()
    tiers: tuple[Tier, ...] = ()
    tier_period: str = "month"
    minimum_monthly: Decimal = ZERO

    def __post_init__(self):
        setter = object.__setattr__
        if isinstance(self.valid_from, datetime):
            setter(self, "valid_from", self.valid_from.date())
        setter(self, "price", _decimal_field(self.price, "The price"))
        setter(
            self,
            "minimum_monthly",
            _decimal_field(self.minimum_monthly, "The minimum monthly charge"),
        )
        setter(
            self,
            "band_prices",
            {
                band: _decimal_field(price, f"The price of band '{band}'")
                for band, price in self.band_prices.items()
            },
        )
        setter(self, "seasons", tuple(self.seasons))
        setter(self, "tiers", tuple(self.tiers))


class Line(NamedTuple):
    """One line of a charge's evidence: ``quantity × unit_price = amount``."""

    label: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal


@dataclass(slots=True)
class Charge:
    """The price of one reading delta.

    ``exact`` is the unrounded price of this delta alone; ``amount`` is
    ``exact`` plus the incoming carry, rounded to the money step; ``carry`` is
    what rounding left over (``exact + carry_in - amount``, under half a
    step).  Feeding ``carry`` into the next reading of the same meter keeps
    the sum of the rounded amounts equal to the rounded sum of the exact ones,
    however small each reading is.
    """

    amount: Decimal
    exact: Decimal
    quantity: Decimal
    lines: list[Line]
    carry: Decimal = ZERO
    version_key: object = None


# -- validation ---------------------------------------------------------------


def _hhmm(minutes):
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _check_price(value, what):
    if value < ZERO:
        raise TariffError(f"{what} must be zero or more, got {value}.")


def _to_minutes(hours, season, what):
    if isinstance(hours, bool) or not isinstance(hours, int | float | Decimal):
        raise TariffError(f"Season '{season}': {what} must be an hour, got {hours!r}.")
    minutes = round(float(hours) * 60)
    if abs(float(hours) * 60 - minutes) > 1e-6 or not 0 <= minutes <= MINUTES_PER_DAY:
        raise TariffError(
            f"Season '{season}': {what} {hours!r} is not a whole minute between "
            "0 and 24."
        )
    return minutes


def _period_minutes(period, season):
    """Return the minute ranges ``[(start, end), ...]`` a period covers."""
    if period.band not in BANDS:
        raise TariffError(
            f"Season '{season}': unknown band '{period.band}'; use one of "
            f"{', '.join(BANDS)}."
        )
    start = _to_minutes(period.start, season, "start")
    end = _to_minutes(period.end, season, "end")
    if start == MINUTES_PER_DAY:
        start = 0
    if start == end or (start == 0 and end == 0):
        raise TariffError(
            f"Season '{season}': the {period.band} period from {_hhmm(start)} to "
            f"{_hhmm(end)} is empty; for the whole day use 0 to 24."
        )
    if start < end:
        return [(start, end)]
    return [(start, MINUTES_PER_DAY), (0, end)]


def _schedule_table(season):
    """Return the band of every minute of the day, or raise on gaps/overlaps."""
    owners = [[] for _minute in range(MINUTES_PER_DAY)]
    for period in season.periods:
        for start, end in _period_minutes(period, season.name):
            for minute in range(start, end):
                owners[minute].append(period.band)
    problems = []
    run_start = 0
    for minute in range(1, MINUTES_PER_DAY + 1):
        if minute < MINUTES_PER_DAY and owners[minute] == owners[run_start]:
            continue
        bands = owners[run_start]
        span = f"{_hhmm(run_start)}–{_hhmm(minute)}"
        if not bands:
            problems.append(f"{span} is not covered by any period")
        elif len(bands) > 1:
            problems.append(
                f"{span} is covered by more than one period ({', '.join(bands)})"
            )
        run_start = minute
    if problems:
        raise TariffError(
            f"Season '{season.name}': {'; '.join(problems)}. Every minute of the "
            "day needs exactly one band."
        )
    return tuple(bands[0] for bands in owners)


def _check_months(seasons):
    seen = {}
    for season in seasons:
        for month in season.months:
            if isinstance(month, bool) or month not in ALL_MONTHS:
                raise TariffError(
                    f"Season '{season.name}': {month!r} is not a month (1 to 12)."
                )
            if month in seen:
                raise TariffError(
                    f"Month {month} is in more than one season ('{seen[month]}' and "
                    f"'{season.name}'); each month needs exactly one season."
                )
            seen[month] = season.name
    missing = sorted(ALL_MONTHS - seen.keys())
    if missing:
        raise TariffError(
            f"Months in no season: {', '.join(map(str, missing))}. Each month "
            "needs exactly one season."
        )


def _validate_tou(version):
    if not version.seasons:
        raise TariffError("A time-of-use tariff needs at least one season.")
    for band, price in version.band_prices.items():
        if band not in BANDS:
            raise TariffError(
                f"Unknown band '{band}' in the band prices; use one of "
                f"{', '.join(BANDS)}."
            )
        _check_price(price, f"The price of band '{band}'")
    _check_months(version.seasons)
    tables = {}
    for season in version.seasons:
        table = _schedule_table(season)
        for band in sorted(set(table), key=BANDS.index):
            if band not in version.band_prices:
                raise TariffError(
                    f"No price for band '{band}', which season '{season.name}' uses."
                )
        tables[season.name] = table
    return tables


def _validate_tiers(version):
    tiers = version.tiers
    if not tiers:
        raise TariffError("A tiered tariff needs at least one tier.")
    if version.tier_period not in TIER_PERIODS:
        raise TariffError(
            f"Unknown tier period '{version.tier_period}'; use 'month' or 'year'."
        )
    previous = ZERO
    for number, tier in enumerate(tiers, start=1):
        _check_price(tier.price, f"The price of tier {number}")
        last = number == len(tiers)
        if tier.upto is None:
            if not last:
                raise TariffError(
                    f"Only the last tier may be unlimited, but tier {number} of "
                    f"{len(tiers)} has no upper limit."
                )
            continue
        if last:
            raise TariffError(
                "The last tier must be unlimited (no upper limit) so that any "
                "consumption has a price."
            )
        if tier.upto <= previous:
            raise TariffError(
                f"Tier limits must strictly increase: tier {number} ends at "
                f"{tier.upto}, which is not above {previous}."
            )
        previous = tier.upto


def validate(version):
    """Raise :class:`TariffError` with a clear message if ``version`` is unusable.

    Checked: the kind; prices and the monthly minimum are zero or more;
    time of use: known band names, a price for every band the schedules use,
    seasons whose months are disjoint and cover January to December, and day
    schedules that cover 00:00–24:00 exactly once (gaps and overlaps are
    reported as ranges such as ``07:00–08:00``); tiered: limits strictly
    increasing and only the last tier unlimited.  The last tier *must* be
    unlimited: silently reusing the last price above the last limit would hide
    a configuration mistake.
    """
    _validate(version)


def _validate(version):
    """Validate and return the minute tables of a time-of-use version."""
    if version.kind not in KINDS:
        raise TariffError(
            f"Unknown tariff kind '{version.kind}'; use one of {', '.join(KINDS)}."
        )
    _check_price(version.minimum_monthly, "The minimum monthly charge")
    if version.kind == "flat":
        _check_price(version.price, "The price")
    elif version.kind == "tiered":
        _validate_tiers(version)
    else:
        return _validate_tou(version)
    return {}


# -- versions and periods -----------------------------------------------------


def select_version(versions, when):
    """Return the version in force on ``when`` (a date or datetime).

    That is the one with the latest ``valid_from`` on or before the day: a
    change effective from 1 March prices readings of 1 March 00:00 on.

    :raises TariffError: if no version has started yet, or two versions start
        on the same day (which one wins would be arbitrary)
    """
    day = when.date() if isinstance(when, datetime) else when
    candidates = [version for version in versions if version.valid_from <= day]
    if not candidates:
        raise TariffError(f"No tariff version is in force on {day.isoformat()}.")
    best = max(candidates, key=lambda version: version.valid_from)
    if sum(version.valid_from == best.valid_from for version in candidates) > 1:
        raise TariffError(
            f"More than one tariff version starts on {best.valid_from.isoformat()}; "
            "keep one per date."
        )
    return best


def period_start(when, tier_period):
    """Return the first day of the tier period (month or year) holding ``when``."""
    day = when.date() if isinstance(when, datetime) else when
    if tier_period == "month":
        return day.replace(day=1)
    if tier_period == "year":
        return day.replace(month=1, day=1)
    raise TariffError(f"Unknown tier period '{tier_period}'; use 'month' or 'year'.")


def minimum_charge_due(version, month_total):
    """Return the top-up that brings ``month_total`` to the monthly minimum.

    Zero when the month's charges already reach the minimum (or there is none).
    """
    shortfall = version.minimum_monthly - to_decimal(month_total)
    return shortfall if shortfall > ZERO else ZERO


# -- pricing ------------------------------------------------------------------


def _negative(quantity):
    return TariffError(
        f"A consumption delta cannot be negative (got {quantity}); handle meter "
        "resets and replacements before pricing."
    )


def _as_decimal(value):
    # An exact type test is the cheapest check on the hot path; anything else
    # (float, int, str, a Decimal subclass) goes through to_decimal.
    return value if type(value) is Decimal else to_decimal(value)


class Pricer:
    """A validated tariff version prepared for fast pricing.

    Built by :func:`compile_tariff`; holds the band of every minute of the day
    for each month (time of use) and the tier bounds (tiered).
    """

    __slots__ = (
        "version",
        "key",
        "_compute",
        "_price",
        "_band_prices",
        "_month_tables",
        "_tiers",
    )

    def __init__(self, version):
        tables = _validate(version)
        self.version = version
        self.key = version.key
        self._price = version.price
        self._band_prices = dict(version.band_prices)
        # Index 0 is unused so that ``when.month`` indexes directly.
        self._month_tables = [None] * 13
        for season in version.seasons if tables else ():
            for month in season.months:
                self._month_tables[month] = tables[season.name]
        self._tiers = tuple(
            (f"tier {number}", tier.upto, tier.price)
            for number, tier in enumerate(version.tiers, start=1)
        )
        self._compute = {
            "flat": self._compute_flat,
            "tou": self._compute_tou,
            "tiered": self._compute_tiered,
        }[version.kind]

    def band_at(self, when):
        """Return the time-of-use band of local time ``when``."""
        table = self._month_tables[when.month]
        if table is None:
            raise TariffError("Only a time-of-use tariff has bands.")
        return table[when.hour * 60 + when.minute]

    def price(
        self,
        quantity,
        when=None,
        band_quantities=None,
        period_used_before=ZERO,
        rounding=CENT,
        carry=ZERO,
    ):
        """Price one reading delta; see :func:`price_delta`."""
        if quantity is None:
            if band_quantities is None:
                raise TariffError("Give the quantity or the band quantities.")
        elif type(quantity) is not Decimal:
            quantity = to_decimal(quantity)
        quantity, exact, lines = self._compute(
            quantity, when, band_quantities, period_used_before
        )
        if carry:
            total = exact + _as_decimal(carry)
        else:
            total = exact
        if rounding is CENT:
            amount = total.quantize(CENT, ROUND_HALF_UP)
        else:
            amount = rounder(rounding)(total)
        return Charge(amount, exact, quantity, lines, total - amount, self.key)

    def unit_price(self, when=None):
        """``(label, price)`` when one price applies to a whole delta at
        ``when`` (flat, or time of use priced by the reading's band), else
        ``None`` (tiered: the price depends on the period's use)."""
        kind = self.version.kind
        if kind == "flat":
            return SINGLE_PRICE, self._price
        if kind == "tou":
            if when is None:
                raise TariffError("A time-of-use price needs the reading time.")
            band = self.band_at(when)
            return band, self._band_prices[band]
        return None

    def band_price(self, band):
        """The price of time-of-use ``band`` (as :meth:`price` checks it)."""
        price = self._band_prices.get(band)
        if price is None:
            raise TariffError(
                f"The meter reports consumption in band '{band}', which this "
                "tariff has no price for."
            )
        return price

    @staticmethod
    def price_at(quantity, unit_price, carry=ZERO):
        """Price ``quantity`` (a non-negative ``Decimal``) at one unit price,
        rounded to the cent with the incoming ``carry``.

        The fast path of :meth:`price` for the single-line case (see
        :meth:`unit_price`): returns ``(amount, exact, carry)``, the same
        numbers ``price`` puts in its :class:`Charge`.
        """
        exact = quantity * unit_price
        total = exact + carry if carry else exact
        amount = total.quantize(CENT, ROUND_HALF_UP)
        return amount, exact, total - amount

    def _compute_flat(self, quantity, when, band_quantities, used_before):
        if quantity is None:
            quantity = sum(map(_as_decimal, band_quantities.values()), ZERO)
        if quantity < ZERO:
            raise _negative(quantity)
        price = self._price
        amount = quantity * price
        return quantity, amount, [Line(SINGLE_PRICE, quantity, price, amount)]

    def _compute_tou(self, quantity, when, band_quantities, used_before):
        if band_quantities is None:
            if quantity < ZERO:
                raise _negative(quantity)
            if when is None:
                raise TariffError("A time-of-use price needs the reading time.")
            band = self.band_at(when)
            price = self._band_prices[band]
            amount = quantity * price
            return quantity, amount, [Line(band, quantity, price, amount)]
        return self._compute_bands(quantity, when, band_quantities)

    def _compute_bands(self, quantity, when, band_quantities):
        if not band_quantities.keys() <= _BAND_SET:
            unknown = sorted(set(band_quantities) - _BAND_SET)
            raise TariffError(
                f"Unknown band(s) {', '.join(unknown)} in the registers; use "
                f"{', '.join(BANDS)}."
            )
        lines = []
        exact = ZERO
        banded = ZERO
        for band in BANDS:
            band_quantity = band_quantities.get(band)
            if not band_quantity:
                continue
            band_quantity = _as_decimal(band_quantity)
            if band_quantity < ZERO:
                raise _negative(band_quantity)
            price = self.band_price(band)
            amount = band_quantity * price
            lines.append(Line(band, band_quantity, price, amount))
            exact += amount
            banded += band_quantity
        if quantity is None:
            return banded, exact, lines
        if quantity < ZERO:
            raise _negative(quantity)
        difference = quantity - banded
        if difference:
            # Band registers and the total register are rounded separately by
            # the meter, so they rarely agree to the last digit; the total is
            # what is billed and the difference goes to the current band.
            if when is None:
                raise TariffError(
                    "The band registers do not add up to the total; the reading "
                    "time is needed to price the difference."
                )
            band = self.band_at(when)
            price = self._band_prices[band]
            amount = difference * price
            lines.append(
                Line(f"{band} (register difference)", difference, price, amount)
            )
            exact += amount
        return quantity, exact, lines

    def _compute_tiered(self, quantity, when, band_quantities, used_before):
        if quantity is None:
            quantity = sum(map(_as_decimal, band_quantities.values()), ZERO)
        if quantity < ZERO:
            raise _negative(quantity)
        position = _as_decimal(used_before)
        remaining = quantity
        exact = ZERO
        lines = []
        for label, upto, price in self._tiers:
            if not remaining:
                break
            if upto is not None:
                if position >= upto:
                    continue
                take = min(remaining, upto - position)
            else:
                take = remaining
            amount = take * price
            lines.append(Line(label, take, price, amount))
            exact += amount
            position += take
            remaining -= take
        return quantity, exact, lines


def compile_tariff(version):
    """Return the :class:`Pricer` of ``version``, validating it the first time.

    The pricer is cached on the version, so calling this per reading is cheap;
    a :class:`Pricer` passed in is returned as is.
    """
    if type(version) is Pricer:
        return version
    pricer = version.__dict__.get("_pricer")
    if pricer is None:
        pricer = Pricer(version)
        # Frozen dataclass: bypass __setattr__ to cache derived data only.
        object.__setattr__(version, "_pricer", pricer)
    return pricer


def band_at(version, when):
    """Return the band (``"sharp"``, ``"peak"``...) in force at local ``when``.

    Minute resolution: 07:59:59 belongs to the period ending at 08:00, and
    08:00:00 to the one starting at 08:00.
    """
    return compile_tariff(version).band_at(when)


def price_delta(
    version,
    *,
    quantity,
    when=None,
    band_quantities=None,
    period_used_before=ZERO,
    rounding=CENT,
    carry=ZERO,
):
    """Price one reading's consumption delta with ``version``.

    :param version: a :class:`TariffVersion` (or its :class:`Pricer`)
    :param quantity: the delta of the total register (kWh or m³); ``None``
        with ``band_quantities`` means their sum
    :param when: local time of the reading; a time-of-use delta without
        band registers is priced entirely at the band of this moment
    :param band_quantities: ``{band: delta}`` from the meter's time-of-use
        registers; each is priced at its band.  If they do not add up to
        ``quantity``, the difference is priced at the band of ``when`` and
        shown as its own line.  Ignored by flat and tiered tariffs.
    :param period_used_before: tiered only: consumption already priced in the
        current tier period (month or year, see :func:`period_start`); zero
        for the first reading of a period.  The whole delta is counted in the
        period of ``when``.
    :param rounding: money step of ``Charge.amount``
    :param carry: the ``Charge.carry`` of the previous reading of the same
        meter, so that sub-cent remainders are not lost over many readings
    :returns: a :class:`Charge` with evidence lines and the version key
    :raises TariffError: invalid version, negative delta, missing time
    """
    return compile_tariff(version).price(
        quantity, when, band_quantities, period_used_before, rounding, carry
    )
