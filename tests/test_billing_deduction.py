"""Pricing of a billing batch's readings (prepaid_billing tools/deduction)."""

from datetime import date, datetime
from decimal import Decimal as D

from prepaid_billing_tools import batch as batch_core
from prepaid_billing_tools import deduction, tariff
from prepaid_billing_tools.clock import LocalClock

FLAT_2026 = tariff.compile_tariff(
    tariff.TariffVersion(7, date(2026, 1, 1), "flat", price="0.80")
)
FLAT_2026_04 = tariff.compile_tariff(
    tariff.TariffVersion(8, date(2026, 4, 1), "flat", price="1.00")
)
PRICING = deduction.tariff_versions(
    [(1, date(2026, 1, 1), FLAT_2026), (1, date(2026, 4, 1), FLAT_2026_04)]
)
MIRROR = "Meter balance %(before).2f -> %(after).2f"


def meter_row(meter_id=10, mode="server", **vals):
    values = {
        "id": meter_id,
        "account_id": 1,
        "billing_mode": mode,
        "meter_type": "electric_1p",
        "billed_reading_id": None,
        "bill_band_kwh": None,
        "bill_period_start": None,
        "bill_period_qty": 0.0,
        "bill_carry": 0.0,
        "meter_balance_mirror": None,
        "tariff_id": 1,
        "tz": "Asia/Shanghai",
    }
    values.update(vals)
    return deduction.MeterRow(**values)


def reading(reading_id, at, kwh, meter_id=10, balance=None, bands=(None,) * 4):
    return deduction.ReadingRow(
        reading_id, meter_id, at, kwh, None, "none", *bands, balance, None, None
    )


def price(readings, meters):
    batch = batch_core.ChargeBatch()
    for _step in deduction.price_readings(readings, meters, PRICING, batch, MIRROR):
        pass
    batch.close()
    return batch


def test_meter_state_from_its_row():
    row = meter_row(
        billed_reading_id=99,
        bill_band_kwh={"sharp": 1.0, "peak": 2.0, "flat": 3.0, "valley": 4.0},
        bill_carry=0.004,
    )
    state = deduction.meter_states([row])[10]
    assert (state.server, state.water, state.watermark) == (True, False, 99)
    assert state.bands == (1.0, 2.0, 3.0, 4.0)
    assert state.carry == D("0.004")
    assert state.clock.local(datetime(2026, 3, 2, 2)) == datetime(2026, 3, 2, 10)


def test_meters_of_one_zone_share_a_clock():
    states = deduction.meter_states([meter_row(10), meter_row(11)])
    assert states[10].clock is states[11].clock
    assert isinstance(states[10].clock, LocalClock)


def test_version_window_is_the_version_in_force_until_the_next():
    window = deduction.version_window(PRICING[1], datetime(2026, 3, 31, 23, 59))
    assert window == (datetime(2026, 1, 1), datetime(2026, 4, 1), FLAT_2026)
    window = deduction.version_window(PRICING[1], datetime(2026, 4, 1))
    assert (window.pricer, window.until) == (FLAT_2026_04, datetime.max)
    assert deduction.version_window(PRICING[1], datetime(2025, 12, 31)) is None
    assert deduction.version_window(None, datetime(2026, 3, 1)) is None


def test_band_quantities_are_the_registers_that_moved():
    before = (1.0, 2.0, 3.0, 4.0)
    assert deduction.band_quantities(before, (1.0, 2.5, 3.0, 4.0)) == {"peak": 0.5}
    assert deduction.band_quantities(before, (1.2, 2.0, 3.3, 4.0)) == {
        "sharp": 0.2,
        "flat": 0.3,
    }
    # not moving, going backwards, missing: the registers cannot tell
    assert deduction.band_quantities(before, before) is None
    assert deduction.band_quantities(before, (0.5, 2.0, 3.0, 4.0)) is None
    assert deduction.band_quantities(before, (1.0, None, 3.0, 4.0)) is None
    assert deduction.band_quantities(None, before) is None


def test_readings_are_charged_with_the_carry_and_the_watermark_moves():
    meters = deduction.meter_states([meter_row()])
    readings = [
        reading(1, datetime(2026, 3, 2, 1), 0.01),
        reading(2, datetime(2026, 3, 2, 2), 0.01),
        reading(3, datetime(2026, 3, 2, 3), 0.0),
    ]
    batch = price(readings, meters)
    # 0.008 + 0.008: the first rounds to 0.01, the carry makes the second 0.01
    (group,) = batch.groups
    assert [charge.amount for charge in group.charges] == [D("0.01"), D("0.01")]
    assert meters[10].carry == D("-0.004")
    assert meters[10].watermark == 3
    assert group.version_key == 7


def test_a_month_start_and_a_new_version_start_another_group():
    meters = deduction.meter_states([meter_row()])
    readings = [
        reading(1, datetime(2026, 3, 31, 12), 1.0),
        # 2026-04-01 02:00 in Shanghai: April, and the 1.00 version
        reading(2, datetime(2026, 3, 31, 18), 1.0),
    ]
    batch = price(readings, meters)
    assert [(g.version_key, g.amount) for g in batch.groups] == [
        (7, D("0.80")),
        (8, D("1.00")),
    ]


def test_pricing_stops_at_a_reading_without_a_tariff_in_force():
    meters = deduction.meter_states([meter_row(), meter_row(11, tariff_id=None)])
    readings = [
        reading(1, datetime(2025, 12, 31, 1), 1.0),
        reading(2, datetime(2026, 3, 2, 1), 1.0),
        reading(3, datetime(2026, 3, 2, 1), 1.0, meter_id=11),
    ]
    batch = price(readings, meters)
    assert not batch.groups
    assert (meters[10].stopped, meters[10].watermark) == (True, None)
    assert (meters[11].stopped, meters[11].watermark) == (True, None)
    assert deduction.resume_after(readings, 3, meters) == 11
    assert deduction.resume_after(readings, 4, meters) is None


def test_a_meter_side_meter_is_charged_what_its_balance_fell():
    meters = deduction.meter_states(
        [meter_row(mode="meter", meter_balance_mirror=50.0)]
    )
    readings = [
        reading(1, datetime(2026, 3, 2, 1), 2.0, balance=48.4),
        # a recharge on the meter: nothing charged, the mirror follows
        reading(2, datetime(2026, 3, 2, 2), 1.0, balance=98.0),
        reading(3, datetime(2026, 3, 2, 3), 1.0, balance=None),
    ]
    batch = price(readings, meters)
    (group,) = batch.groups
    assert (group.count, group.amount, group.quantity) == (1, D("1.60"), D("2.0"))
    assert group.charges[0].detail == "Meter balance 50.00 -> 48.40"
    assert (meters[10].mirror, meters[10].watermark) == (98.0, 3)


def test_expected_lines_count_the_meters_with_consumption():
    readings = [
        reading(1, datetime(2026, 3, 2, 1), 1.0),
        reading(2, datetime(2026, 3, 2, 2), 1.0),
        reading(3, datetime(2026, 3, 2, 1), 0.0, meter_id=11),
        reading(4, datetime(2026, 3, 2, 1), 0.0, meter_id=12, balance=10.0),
    ]
    assert deduction.expected_lines(readings) == 2


TOU_2026 = tariff.compile_tariff(
    tariff.TariffVersion(
        9,
        date(2026, 1, 1),
        "tou",
        band_prices={"sharp": "1.30", "peak": "1.10", "flat": "0.70", "valley": "0.35"},
        seasons=(
            tariff.Season.all_year(
                (tariff.Period("valley", 0, 8), tariff.Period("peak", 8, 24))
            ),
        ),
    )
)


def test_a_time_of_use_reading_is_priced_by_the_band_registers_that_moved():
    pricing = deduction.tariff_versions([(2, date(2026, 1, 1), TOU_2026)])
    meters = deduction.meter_states(
        [
            meter_row(
                tariff_id=2,
                bill_band_kwh={"sharp": 10.0, "peak": 20.0, "flat": 30.0, "valley": 40},
            )
        ]
    )
    meters[10].banded = True
    # 12:00 in Shanghai (peak by the clock)
    readings = [
        reading(1, datetime(2026, 3, 2, 4), 1.0, bands=(10.0, 20.5, 30.5, 40.0)),
        reading(2, datetime(2026, 3, 2, 5), 1.0, bands=(10.0, 20.5, 31.5, 40.0)),
    ]
    batch = batch_core.ChargeBatch()
    for _step in deduction.price_readings(readings, meters, pricing, batch, MIRROR):
        pass
    batch.close()
    (group,) = batch.groups
    # 0.5 peak x 1.10 + 0.5 flat x 0.70, then 1 kWh in the flat register
    assert [charge.amount for charge in group.charges] == [D("0.90"), D("0.70")]
    assert meters[10].bands == (10.0, 20.5, 31.5, 40.0)
