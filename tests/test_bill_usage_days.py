"""Local days of bill usage: the fixed UTC offset of a period (plain Python)."""

from datetime import date, datetime
from decimal import Decimal

from prepaid_billing_tools import bill_pricing
from prepaid_billing_tools import tariff as core


def test_zones_without_daylight_saving_have_one_offset():
    start, stop = datetime(2025, 12, 31, 16), datetime(2026, 1, 31, 16)
    assert bill_pricing.fixed_utc_offset("Asia/Shanghai", start, stop) == 8 * 3600
    assert bill_pricing.fixed_utc_offset("UTC", start, stop) == 0
    assert bill_pricing.fixed_utc_offset(False, start, stop) == 0


def test_daylight_saving_zones_outside_and_across_a_change():
    winter = (datetime(2025, 12, 31, 23), datetime(2026, 1, 31, 23))
    assert bill_pricing.fixed_utc_offset("Europe/Paris", *winter) == 3600
    summer = (datetime(2026, 5, 31, 22), datetime(2026, 6, 30, 22))
    assert bill_pricing.fixed_utc_offset("Europe/Paris", *summer) == 7200
    # summer time starts on 2026-03-29 01:00 UTC
    spring = (datetime(2026, 2, 28, 23), datetime(2026, 3, 31, 22))
    assert bill_pricing.fixed_utc_offset("Europe/Paris", *spring) is None
    # a change exactly at the end of the period is outside it
    until_change = (datetime(2026, 3, 1), datetime(2026, 3, 29, 1))
    assert bill_pricing.fixed_utc_offset("Europe/Paris", *until_change) == 3600


# -- tiers carried into a bill that starts inside a tier period ---------------

D = Decimal
TIERS = (
    core.Tier(D(100), D("0.50")),
    core.Tier(D(200), D("0.80")),
    core.Tier(None, D("1.20")),
)


def _tiered(key="t", valid_from=date(2025, 1, 1), tier_period="year", tiers=TIERS):
    return core.TariffVersion(
        key=key,
        valid_from=valid_from,
        kind="tiered",
        tiers=tiers,
        tier_period=tier_period,
    )


def test_a_bill_inside_a_yearly_tier_period_counts_the_year_before_it():
    windows = bill_pricing.tier_carry_windows(
        [_tiered()], date(2026, 2, 1), date(2026, 2, 28)
    )
    assert windows == {date(2026, 1, 1): [(date(2026, 1, 1), date(2026, 2, 1))]}


def test_a_bill_starting_with_its_tier_periods_carries_nothing():
    yearly = [_tiered()]
    assert (
        bill_pricing.tier_carry_windows(yearly, date(2026, 1, 1), date(2026, 1, 31))
        == {}
    )
    monthly = [_tiered(tier_period="month")]
    assert (
        bill_pricing.tier_carry_windows(monthly, date(2026, 2, 1), date(2026, 3, 31))
        == {}
    )
    flat = core.TariffVersion(
        key="f", valid_from=date(2025, 1, 1), kind="flat", price=D(1)
    )
    assert (
        bill_pricing.tier_carry_windows([flat], date(2026, 2, 10), date(2026, 2, 20))
        == {}
    )


def test_only_days_priced_by_tiers_count_towards_the_tiers():
    """A flat version from 1 to 14 March, tiered (yearly) before and from
    15 March on: a bill from 20 March counts January, February and 15-19
    March; a version starting after the bill's start still continues its
    tier period."""
    versions = [
        _tiered("a"),
        core.TariffVersion(
            key="f", valid_from=date(2026, 3, 1), kind="flat", price=D(1)
        ),
        _tiered("b", valid_from=date(2026, 3, 15)),
    ]
    assert bill_pricing.tier_carry_windows(
        versions, date(2026, 3, 20), date(2026, 4, 19)
    ) == {
        date(2026, 1, 1): [
            (date(2026, 1, 1), date(2026, 3, 1)),
            (date(2026, 3, 15), date(2026, 3, 20)),
        ]
    }
    assert bill_pricing.tier_carry_windows(
        versions, date(2026, 3, 5), date(2026, 3, 31)
    ) == {date(2026, 1, 1): [(date(2026, 1, 1), date(2026, 3, 1))]}


def test_tiers_continue_from_the_use_before_and_say_their_year():
    usage = bill_pricing.PeriodUsage([_tiered()], {date(2026, 1, 1): 150.0})
    usage.add(datetime(2026, 2, 10), 100.0)
    assert [(line.label, line.quantity, line.amount) for line in usage.lines()] == [
        ("tier 2 (2026)", D(50), D("40.00")),
        ("tier 3 (2026)", D(50), D("60.00")),
    ]
    # the use before another tier period does not move this one
    other = bill_pricing.PeriodUsage([_tiered()], {date(2025, 1, 1): 500.0})
    other.add(datetime(2026, 2, 10), 100.0)
    assert other.total() == D("50.00")


def test_two_half_month_bills_cost_what_the_whole_month_costs():
    monthly = _tiered(tier_period="month")
    readings = [(datetime(2026, 1, day), 13.37) for day in range(1, 32)]
    whole = bill_pricing.PeriodUsage([monthly])
    first, second_readings = bill_pricing.PeriodUsage([monthly]), []
    for when, kwh in readings:
        whole.add(when, kwh)
        if when.day <= 15:
            first.add(when, kwh)
        else:
            second_readings.append((when, kwh))
    before = sum(kwh for when, kwh in readings if when.day <= 15)
    second = bill_pricing.PeriodUsage([monthly], {date(2026, 1, 1): before})
    for when, kwh in second_readings:
        second.add(when, kwh)
    assert first.total() + second.total() == whole.total() == D("387.36")


def test_a_new_version_in_the_tier_period_continues_its_tiers():
    old = _tiered("old", tier_period="month")
    new = _tiered(
        "new",
        valid_from=date(2026, 1, 16),
        tier_period="month",
        tiers=(core.Tier(D(100), D("0.60")), core.Tier(None, D("1.00"))),
    )
    usage = bill_pricing.PeriodUsage([old, new])
    usage.add(datetime(2026, 1, 10), 80.0)
    usage.add(datetime(2026, 1, 20), 50.0)
    assert [(line.version_key, line.label, line.amount) for line in usage.lines()] == [
        ("old", "tier 1 (2026-01)", D("40.00")),
        ("new", "tier 1 (2026-01)", D("12.00")),
        ("new", "tier 2 (2026-01)", D("30.00")),
    ]
