"""Apportionment, proration and period pricing of prepaid_billing (plain Python)."""

import random
from datetime import date, datetime
from decimal import Decimal as D

import pytest
from prepaid_billing_tools import apportion, bill_pricing, proration
from prepaid_billing_tools import tariff as core

# -- apportionment ------------------------------------------------------------


def test_ratios_must_sum_to_exactly_one_hundred():
    apportion.check_ratios([D("33.33"), D("33.33"), D("33.34")])
    with pytest.raises(apportion.ApportionError, match="99.99 %, not 100 %"):
        apportion.check_ratios([D("33.33"), D("33.33"), D("33.33")])


def test_a_negative_ratio_is_refused():
    with pytest.raises(apportion.ApportionError, match="negative"):
        apportion.check_ratios([D(110), D(-10)])


@pytest.mark.parametrize("method", ["area", "consumption"])
def test_nothing_to_share_by_is_a_clear_error(method):
    members = [apportion.Member(), apportion.Member()]
    with pytest.raises(apportion.ApportionError, match="nothing to share by"):
        apportion.split(D("10.00"), method, members)


def test_unknown_method_and_no_member_are_refused():
    with pytest.raises(apportion.ApportionError, match="Unknown"):
        apportion.split(D("1.00"), "random", [apportion.Member(ratio=D(100))])
    with pytest.raises(apportion.ApportionError, match="no member"):
        apportion.split(D("1.00"), "area", [])


def test_split_by_area_gives_the_remainder_cent_to_the_largest_remainder():
    members = [apportion.Member(area_m2=D(1)) for _i in range(3)]
    assert apportion.split(D("10.00"), "area", members) == [
        D("3.34"),
        D("3.33"),
        D("3.33"),
    ]


def test_loss_allocation_shares_the_master_minus_the_subs():
    members = [
        apportion.Member(consumption=D("30.5")),
        apportion.Member(consumption=D(20)),
    ]
    assert apportion.shared_quantity(D(100), members, loss_only=True) == D("49.5")
    assert apportion.shared_quantity(D(100), members, loss_only=False) == D(100)


def test_subs_above_the_master_have_no_loss_to_share():
    members = [apportion.Member(consumption=D(120))]
    with pytest.raises(apportion.ApportionError, match="more than the master"):
        apportion.shared_quantity(D(100), members, loss_only=True)


@pytest.mark.parametrize("seed", range(300))
def test_parts_sum_to_the_total_to_the_cent_for_random_inputs(seed):
    rng = random.Random(seed)
    count = rng.randint(1, 40)
    method = rng.choice(apportion.METHODS)
    total = D(rng.randint(-100000, 10000000)) / 100
    if method == "ratio":
        cuts = sorted(rng.sample(range(1, 10000), count - 1))
        bounds = [0, *cuts, 10000]
        ratios = [D(bounds[i + 1] - bounds[i]) / 100 for i in range(count)]
        members = [apportion.Member(ratio=ratio) for ratio in ratios]
    elif method == "area":
        members = [
            apportion.Member(area_m2=D(rng.randint(0, 50000)) / 100)
            for _i in range(count)
        ]
        members[0] = apportion.Member(area_m2=D("12.5"))
    else:
        members = [
            apportion.Member(consumption=D(rng.randint(0, 10**6)) / 1000)
            for _i in range(count)
        ]
        members[-1] = apportion.Member(consumption=D("0.001"))
    parts = apportion.split(total, method, members)
    assert sum(parts) == total
    assert all(part == part.quantize(D("0.01")) for part in parts)
    weights = apportion.weights(method, members)
    exact_sum = sum(weights)
    for part, weight in zip(parts, weights, strict=True):
        # each part is within one cent of its exact share
        assert abs(part - total * weight / exact_sum) < D("0.01")


# -- periods and proration ------------------------------------------------------


def test_monthly_periods_are_due_on_their_day_and_caught_up():
    periods = proration.due_periods(
        "monthly", date(2026, 1, 15), None, date(2026, 3, 31), day_of_period=5
    )
    assert [(p.start, p.end, p.due) for p in periods] == [
        (date(2026, 1, 1), date(2026, 1, 31), date(2026, 1, 5)),
        (date(2026, 2, 1), date(2026, 2, 28), date(2026, 2, 5)),
        (date(2026, 3, 1), date(2026, 3, 31), date(2026, 3, 5)),
    ]
    # the April period is not due before its day
    assert (
        len(
            proration.due_periods(
                "monthly", date(2026, 1, 1), None, date(2026, 4, 4), 5
            )
        )
        == 3
    )


def test_day_31_is_the_last_day_of_short_months():
    (february,) = proration.due_periods(
        "monthly", date(2026, 2, 1), date(2026, 2, 28), date(2026, 12, 31), 31
    )
    assert february.due == date(2026, 2, 28)


def test_quarterly_yearly_and_once():
    quarters = proration.due_periods(
        "quarterly", date(2026, 2, 10), date(2026, 8, 1), date(2027, 1, 1)
    )
    assert [p.start for p in quarters] == [
        date(2026, 1, 1),
        date(2026, 4, 1),
        date(2026, 7, 1),
    ]
    (year,) = proration.due_periods("yearly", date(2026, 5, 1), None, date(2026, 6, 1))
    assert (year.start, year.end) == (date(2026, 1, 1), date(2026, 12, 31))
    assert proration.due_periods("once", date(2026, 5, 3), None, date(2026, 5, 2)) == []
    (once,) = proration.due_periods("once", date(2026, 5, 3), None, date(2026, 5, 3))
    assert once.days == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (("weekly", date(2026, 1, 1), None, date(2026, 2, 1)), "recurrence"),
        (("monthly", date(2026, 1, 1), None, date(2026, 2, 1), 0), "1 to 31"),
        (("monthly", date(2026, 2, 1), date(2026, 1, 1), date(2026, 2, 1)), "before"),
    ],
)
def test_bad_periods_are_refused(args, message):
    with pytest.raises(ValueError, match=message):
        proration.due_periods(*args)


def test_proration_by_days():
    period = proration.Period(date(2026, 4, 1), date(2026, 4, 30), date(2026, 4, 1))
    days = proration.covered_days(period, (date(2026, 4, 11), None), (None, None))
    assert days == 20
    assert proration.prorate(D("300.00"), period, days) == D("200.00")
    assert proration.prorate(D("100.00"), period, 30) == D("100.00")
    assert proration.prorate(D("100.00"), period, 0) == D("0.00")
    # 100 x 1/30 = 3.333.. -> 3.33
    assert proration.prorate(D("100.00"), period, 1) == D("3.33")
    # ended before the period: no day covered
    assert proration.covered_days(period, (None, date(2026, 3, 31))) == 0


# -- period usage pricing -------------------------------------------------------

TOU_DAY = [
    core.Period("valley", 0, 8),
    core.Period("peak", 8, 20),
    core.Period("flat", 20, 24),
]


def _tou(key=1, valid_from=date(2026, 1, 1)):
    return core.TariffVersion(
        key=key,
        valid_from=valid_from,
        kind="tou",
        band_prices={"peak": D("1.10"), "flat": D("0.70"), "valley": D("0.35")},
        seasons=(core.Season.all_year(TOU_DAY),),
    )


def test_band_registers_are_priced_at_their_band_and_the_rest_at_the_time():
    usage = bill_pricing.PeriodUsage([_tou()])
    usage.add(datetime(2026, 3, 1, 9), 10.0, {"peak": 6.0, "valley": 3.0})
    usage.add(datetime(2026, 3, 1, 21), 2.0)
    lines = {line.label: line for line in usage.lines()}
    # 1 kWh missing from the registers goes to the band of 09:00 (peak)
    assert lines["peak"].quantity == D(7)
    assert lines["peak"].amount == D("7.70")
    assert lines["valley"].amount == D("1.05")
    assert lines["flat"].amount == D("1.40")
    assert usage.total() == D("10.15")


def test_tiers_restart_each_month_and_versions_change_on_their_day():
    tiered = core.TariffVersion(
        key="t",
        valid_from=date(2026, 1, 1),
        kind="tiered",
        tiers=(core.Tier(D(100), D("0.50")), core.Tier(None, D("0.80"))),
    )
    flat = core.TariffVersion(
        key="f", valid_from=date(2026, 3, 1), kind="flat", price=D("1.00")
    )
    usage = bill_pricing.PeriodUsage([flat, tiered])
    usage.add(datetime(2026, 1, 20), 150.0)
    usage.add(datetime(2026, 2, 2), 50.0)
    usage.add(datetime(2026, 3, 1), 5.25)
    lines = usage.lines()
    assert [(line.label, line.amount) for line in lines] == [
        ("tier 1 (2026-01)", D("50.00")),
        ("tier 2 (2026-01)", D("40.00")),
        ("tier 1 (2026-02)", D("25.00")),
        ("single price", D("5.25")),
    ]


def test_a_reading_before_the_first_version_is_an_error():
    usage = bill_pricing.PeriodUsage([_tou(valid_from=date(2026, 3, 1))])
    with pytest.raises(bill_pricing.NoVersion, match="2026-02-28"):
        usage.add(datetime(2026, 2, 28, 12), 1.0)


def test_many_small_float_deltas_sum_exactly():
    flat = core.TariffVersion(
        key=1, valid_from=date(2026, 1, 1), kind="flat", price=D("0.8")
    )
    usage = bill_pricing.PeriodUsage([flat])
    for _i in range(1000):
        usage.add(datetime(2026, 1, 5), 0.1)
    (line,) = usage.lines()
    assert line.quantity == D(100)
    assert line.amount == D("80.00")
