"""Pricing of a billing batch's readings into charges (no Odoo import).

The deduction engine (``prepaid.billing.deduction``) claims meters, fetches
their billing state as :class:`MeterRow` and their unbilled readings as rows
in :class:`ReadingRow`'s field order, and hands them to
:func:`price_readings`, which prices
every reading into a :class:`~.batch.ChargeBatch` meter after meter:

- a server-side meter's reading is priced by the tariff version in force at
  its local time (:func:`charge_reading`): one unit price for the whole delta
  when it can (flat, or a time-of-use delta inside one band), else the pricing
  core's general path (tiers, several bands);
- a meter-side meter's reading follows the balance the meter keeps
  (:func:`mirror_reading`).

Pricing moves each meter's :class:`MeterBilling` (watermark, sub-cent carry,
use in the tier period, band registers, mirrored balance); the engine stores
it afterwards. This loop runs once per reading: it allocates nothing per
reading beyond what the charge itself needs.
"""

import bisect
import logging
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import NamedTuple

from . import money
from . import tariff as core
from .batch import Where
from .clock import LocalClock

_logger = logging.getLogger(__name__)

BANDS = core.BANDS
# The Where of each reading is built with ``tuple.__new__`` from a plain
# tuple: the generated ``Where(...)`` costs three times as much (a
# Python-level call).
_new_tuple = tuple.__new__


class ReadingRow(NamedTuple):
    """One unbilled reading: the columns of the engine's query, in order.

    The engine keeps the fetched rows as plain tuples and the loops that run
    once per reading (:func:`price_readings`, the daily aggregates) unpack
    each row in this order: a ``ReadingRow`` made per reading costs a tenth
    of the pricing loop, and 100,000 of them kept for a batch (a tuple
    subclass stays tracked by the garbage collector) set off full
    collections of the whole process.
    """

    id: int
    meter_id: int
    read_at: datetime  # naive UTC
    delta_kwh: float | None
    delta_m3: float | None
    anomaly: str
    # Band registers: fetched for the meters of time-of-use tariffs only.
    sharp_kwh: float | None
    peak_kwh: float | None
    flat_kwh: float | None
    valley_kwh: float | None
    # The balance a meter-side meter reported (None for server-side meters).
    balance: float | None
    # The counters read (the daily aggregates keep a day's first and last).
    total_kwh: float | None
    total_m3: float | None


class MeterRow(NamedTuple):
    """A claimed meter's billing state, as the engine's query returns it."""

    id: int
    account_id: int
    billing_mode: str
    meter_type: str
    billed_reading_id: int | None
    bill_band_kwh: dict | None
    bill_period_start: date | None
    bill_period_qty: float | None
    bill_carry: float | None
    meter_balance_mirror: float | None
    tariff_id: int | None
    tz: str


class VersionWindow(NamedTuple):
    """The local time span of one tariff version and its compiled pricer."""

    start: datetime
    until: datetime
    pricer: core.Pricer


class TariffVersions(NamedTuple):
    """The versions of one tariff, sorted by date: their start dates and
    compiled pricers, and whether any of them is time of use."""

    dates: list
    pricers: list
    tou: bool


@dataclass(slots=True)
class MeterBilling:
    """Where billing stands on one meter; pricing moves it, the engine
    stores it at the end of the batch."""

    id: int
    account_id: int
    server: bool  # server-side pricing (else the meter keeps the balance)
    water: bool
    watermark: int | None  # last reading billed
    bands: tuple | None  # band registers at the last reading priced
    period_start: date | None  # tier period of ``period_qty``
    period_qty: Decimal
    carry: Decimal  # sub-cent remainder of the rounded charges
    mirror: float | None  # meter-side: the balance at the last reading
    tariff_id: int | None
    clock: LocalClock
    window: VersionWindow | None = None  # of the version last used
    stopped: bool = False  # no tariff in force: the rest waits
    # Band registers come with every reading (a time-of-use tariff); the
    # other meters take those of their last billed reading afterwards.
    banded: bool = False

    @classmethod
    def from_row(cls, row, clock):
        """The state of the meter of ``row`` (a :class:`MeterRow`)."""
        bands = row.bill_band_kwh
        return cls(
            id=row.id,
            account_id=row.account_id,
            server=row.billing_mode == "server",
            water=row.meter_type == "water",
            watermark=row.billed_reading_id,
            bands=tuple(bands.get(band) for band in BANDS) if bands else None,
            period_start=row.bill_period_start,
            period_qty=money.to_decimal(row.bill_period_qty or 0.0),
            carry=money.to_decimal(row.bill_carry or 0.0),
            mirror=row.meter_balance_mirror,
            tariff_id=row.tariff_id,
            clock=clock,
        )


def meter_states(rows):
    """``{meter id: MeterBilling}`` of ``rows`` (:class:`MeterRow`), one
    clock per time zone."""
    clocks = {}
    states = {}
    for row in rows:
        clock = clocks.get(row.tz)
        if clock is None:
            clock = clocks[row.tz] = LocalClock(row.tz)
        states[row.id] = MeterBilling.from_row(row, clock)
    return states


def tariff_versions(versions):
    """``{tariff id: TariffVersions}`` of ``versions``: ``(tariff id,
    date_from, pricer)`` triples sorted by tariff and date."""
    by_tariff = {}
    for tariff_id, date_from, pricer in versions:
        dates, pricers, tou = by_tariff.get(tariff_id) or ([], [], False)
        dates.append(date_from)
        pricers.append(pricer)
        by_tariff[tariff_id] = TariffVersions(
            dates, pricers, tou or pricer.version.kind == "tou"
        )
    return by_tariff


def version_window(versions, local):
    """The :class:`VersionWindow` of ``versions`` (:class:`TariffVersions`)
    in force at local time ``local``, or None."""
    if not versions:
        return None
    dates = versions.dates
    index = bisect.bisect_right(dates, local.date()) - 1
    if index < 0:
        return None
    return VersionWindow(
        datetime.combine(dates[index], time.min),
        datetime.combine(dates[index + 1], time.min)
        if index + 1 < len(dates)
        else datetime.max,
        versions.pricers[index],
    )


def band_quantities(previous, current):
    """``{band: kWh}`` used in each time-of-use band register since
    ``previous`` (the bands that moved), or None when the registers cannot
    tell (missing, going backwards, not moving).

    ``previous`` and ``current`` are the (sharp, peak, flat, valley)
    registers.
    """
    if not previous or None in current or None in previous:
        return None
    moved = {}
    # Unrolled over the four bands: this runs for every reading of a
    # time-of-use meter, and usually one register moved.
    sharp, peak, flat, valley = current
    if sharp != previous[0]:
        moved["sharp"] = round(sharp - previous[0], 4)
    if peak != previous[1]:
        moved["peak"] = round(peak - previous[1], 4)
    if flat != previous[2]:
        moved["flat"] = round(flat - previous[2], 4)
    if valley != previous[3]:
        moved["valley"] = round(valley - previous[3], 4)
    if not moved:
        return None
    for delta in moved.values():
        if delta < 0:
            return None
    return {band: delta for band, delta in moved.items() if delta} or None


def unit_price(pricer, local, quantity, quantities):
    """``(label, price)`` when one price applies to the whole delta, else
    None; ``quantities`` are the delta's :func:`band_quantities`."""
    if quantities is None:
        return None if pricer.version.kind == "tiered" else pricer.unit_price(local)
    if len(quantities) == 1:
        # The whole delta in one band register (a reading every few
        # minutes, or an hour inside one band): one price too.
        ((band, band_quantity),) = quantities.items()
        if band_quantity == quantity:
            return band, pricer.band_price(band)
    return None


def charge_reading(
    meter, reading_id, read_at, quantity, anomaly, bands, pricing, batch
):
    """Price one reading of a server-side meter into ``batch``.

    :param meter: the meter's :class:`MeterBilling` (moved)
    :param quantity: the reading's kWh (m³ for water) since the previous one
    :param anomaly: the reading's anomaly (``"none"``, ``"rollover"``...)
    :param bands: the reading's (sharp, peak, flat, valley) registers for a
        banded meter, else None
    :param pricing: ``{tariff id: TariffVersions}``
    """
    if not quantity or quantity <= 0:
        if bands is not None:
            meter.bands = bands
        return
    local = meter.clock.local(read_at)
    window = meter.window
    if window is None or not window.start <= local < window.until:
        window = meter.window = version_window(pricing.get(meter.tariff_id), local)
        if window is None:
            _logger.info(
                "meter %s: no tariff in force on %s, reading %s left unbilled",
                meter.id,
                local.date(),
                reading_id,
            )
            meter.stopped = True
            return
    pricer = window.pricer
    quantities = None
    if bands is not None:
        if pricer.version.kind == "tou" and anomaly == "none":
            quantities = band_quantities(meter.bands, bands)
        meter.bands = bands
    where = _new_tuple(
        Where,
        (
            meter.account_id,
            meter.id,
            pricer.key,
            "m³" if meter.water else "kWh",
            local.year * 12 + local.month,
            reading_id,
            read_at,
        ),
    )
    single = unit_price(pricer, local, quantity, quantities)
    if single is not None:
        # One price for the whole delta: the fast path.
        label, price = single
        quantity = Decimal(repr(quantity))
        amount, exact, meter.carry = pricer.price_at(quantity, price, meter.carry)
        batch.add_single(where, quantity, amount, label, price, exact)
        return
    _charge_priced_lines(meter, pricer, local, quantity, quantities, where, batch)


def _charge_priced_lines(meter, pricer, local, quantity, quantities, where, batch):
    """:func:`charge_reading` of a delta that takes several prices (tiers,
    several bands): the pricing core's general path."""
    tiered = pricer.version.kind == "tiered"
    used_before = money.ZERO
    if tiered:
        start = core.period_start(local.date(), pricer.version.tier_period)
        if meter.period_start != start:
            meter.period_start, meter.period_qty = start, money.ZERO
        used_before = meter.period_qty
    if quantities is not None:
        quantities = {band: Decimal(repr(kwh)) for band, kwh in quantities.items()}
    charge = pricer.price(
        Decimal(repr(quantity)) if quantities is None else None,
        local,
        quantities,
        used_before,
        money.CENT,
        meter.carry,
    )
    meter.carry = charge.carry
    if tiered:
        meter.period_qty = used_before + charge.quantity
    batch.add(where, charge.quantity, charge.amount, charge.lines)


def mirror_reading(meter, reading_id, read_at, delta_kwh, balance, batch, detail):
    """Meter-side mode: the wallet follows the balance the meter keeps.

    :param balance: the balance the meter reported with the reading
    :param detail: the evidence text, a ``%`` template of ``before`` and
        ``after`` (the balances)
    """
    if balance is None:
        return
    previous, meter.mirror = meter.mirror, balance
    used = round((previous or 0.0) - balance, 2)
    if previous is None or used <= 0:
        return
    local = meter.clock.local(read_at)
    batch.add(
        Where(
            meter.account_id,
            meter.id,
            None,
            "kWh",
            local.year * 12 + local.month,
            reading_id,
            read_at,
        ),
        money.to_decimal(delta_kwh or 0.0),
        money.round_money(used),
        detail=detail % {"before": previous, "after": balance},
    )


def price_readings(rows, meters, pricing, batch, mirror_detail, step=2000):
    """Price the readings of ``rows`` (in meter order) into ``batch``,
    pausing every ``step`` readings (a generator: the COPY stream drives it;
    each pause yields how many rows are priced).

    A meter's watermark follows the readings priced; it stops before the
    first reading without a tariff in force.

    :param rows: fetched rows in :class:`ReadingRow`'s field order
    :param meters: ``{meter id: MeterBilling}``
    :param pricing: ``{tariff id: TariffVersions}``
    :param mirror_detail: see :func:`mirror_reading`
    """
    for start in range(0, len(rows), step):
        # Each row is unpacked once, in ReadingRow's field order.
        for (
            reading_id,
            meter_id,
            read_at,
            delta_kwh,
            delta_m3,
            anomaly,
            sharp_kwh,
            peak_kwh,
            flat_kwh,
            valley_kwh,
            balance,
            _total_kwh,
            _total_m3,
        ) in rows[start : start + step]:
            meter = meters[meter_id]
            if meter.stopped:
                continue
            if meter.server:
                charge_reading(
                    meter,
                    reading_id,
                    read_at,
                    delta_m3 if meter.water else delta_kwh,
                    anomaly,
                    (sharp_kwh, peak_kwh, flat_kwh, valley_kwh)
                    if meter.banded
                    else None,
                    pricing,
                    batch,
                )
            else:
                mirror_reading(
                    meter, reading_id, read_at, delta_kwh, balance, batch, mirror_detail
                )
            if not meter.stopped:
                meter.watermark = reading_id
        yield min(start + step, len(rows))


def expected_lines(rows):
    """How many wallet lines the readings of ``rows`` usually make: one per
    meter with consumption (more when a backlog spans a month end)."""
    # Unpacked in ReadingRow's field order: no ReadingRow made for a count.
    return len(
        {
            meter_id
            for _id, meter_id, _at, kwh, m3, _a, _s, _p, _f, _v, balance, *_c in rows
            if kwh or m3 or balance is not None
        }
    )


def resume_after(rows, limit, meters):
    """Where the next batch starts when ``limit`` cut the readings of
    ``rows``: at the meter of the last reading taken (it may have more),
    unless pricing stopped there (no tariff in force: it would not move).
    None when every reading was taken."""
    if not limit or len(rows) < limit:
        return None
    meter_id = ReadingRow._make(rows[-1]).meter_id
    return meter_id if meters[meter_id].stopped else meter_id - 1
