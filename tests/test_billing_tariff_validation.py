"""Validation of tariff versions: every mistake gets a clear message."""

from datetime import date
from decimal import Decimal as D

import pytest
from prepaid_billing_tools import tariff

P = tariff.Period

PRICES = {"sharp": "1.30", "peak": "1.10", "flat": "0.70", "valley": "0.35"}
DAY = (
    P("valley", 23, 7),
    P("flat", 7, 8),
    P("peak", 8, 11),
    P("flat", 11, 17),
    P("peak", 17, 19),
    P("sharp", 19, 21),
    P("flat", 21, 23),
)


def tou(seasons=None, band_prices=None, **extra):
    return tariff.TariffVersion(
        "tou",
        date(2024, 1, 1),
        "tou",
        band_prices=PRICES if band_prices is None else band_prices,
        seasons=(tariff.Season.all_year(DAY),) if seasons is None else seasons,
        **extra,
    )


def tiered(*tiers, **extra):
    return tariff.TariffVersion(
        "tiered",
        date(2024, 1, 1),
        "tiered",
        tiers=tuple(tariff.Tier(upto, price) for upto, price in tiers),
        **extra,
    )


def assert_invalid(version, *fragments):
    with pytest.raises(tariff.TariffError) as info:
        tariff.validate(version)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_valid_versions_pass():
    tariff.validate(tou())
    tariff.validate(tiered((200, "0.5"), (None, "0.8")))
    tariff.validate(tariff.TariffVersion("f", date(2024, 1, 1), "flat", price=0))
    # Minutes as fractions of an hour: 07:30 and 07:45.
    tariff.validate(
        tou(
            seasons=(
                tariff.Season.all_year(
                    (
                        P("valley", 19.75, 7.5),
                        P("flat", 7.5, 7.75),
                        P("peak", 7.75, 19.75),
                    )
                ),
            )
        )
    )


def test_gap_in_the_day_is_reported_with_its_times():
    day = (P("valley", 23, 7), P("flat", 7, 8), P("peak", 9, 23))
    assert_invalid(
        tou(seasons=(tariff.Season.all_year(day),)),
        "Season 'all year'",
        "08:00–09:00 is not covered by any period",
    )


def test_overlap_is_reported_with_its_times_and_bands():
    day = (P("valley", 23, 7), P("flat", 6, 8), P("peak", 8, 23))
    assert_invalid(
        tou(seasons=(tariff.Season.all_year(day),)),
        "06:00–07:00 is covered by more than one period (valley, flat)",
    )


def test_gap_at_the_end_of_the_day_is_reported():
    day = (P("valley", 0, 8), P("peak", 8, 23.5))
    assert_invalid(tou(seasons=(tariff.Season.all_year(day),)), "23:30–24:00")


def test_empty_period_is_refused():
    day = (P("valley", 0, 24), P("peak", 8, 8))
    assert_invalid(tou(seasons=(tariff.Season.all_year(day),)), "is empty")


def test_period_off_the_minute_is_refused():
    day = (P("valley", 0, 7.999), P("peak", 7.999, 24))
    assert_invalid(tou(seasons=(tariff.Season.all_year(day),)), "whole minute")


def test_missing_months_are_listed():
    season = tariff.Season("most", frozenset(range(1, 11)), DAY)
    assert_invalid(tou(seasons=(season,)), "Months in no season: 11, 12")


def test_month_in_two_seasons_is_refused():
    seasons = (
        tariff.Season("winter", frozenset({1, 2, 3, 4, 5, 6}), DAY),
        tariff.Season("summer", frozenset(range(6, 13)), DAY),
    )
    assert_invalid(
        tou(seasons=seasons),
        "Month 6 is in more than one season ('winter' and 'summer')",
    )


def test_month_out_of_range_is_refused():
    season = tariff.Season("odd", frozenset(range(0, 13)), DAY)
    assert_invalid(tou(seasons=(season,)), "0 is not a month")


def test_time_of_use_needs_a_season():
    assert_invalid(tou(seasons=()), "at least one season")


def test_unknown_band_in_schedule_is_refused():
    day = (P("valley", 0, 8), P("shoulder", 8, 24))
    assert_invalid(
        tou(seasons=(tariff.Season.all_year(day),)),
        "unknown band 'shoulder'",
        "sharp, peak, flat, valley",
    )


def test_unknown_band_in_prices_is_refused():
    assert_invalid(tou(band_prices={**PRICES, "shoulder": "1"}), "'shoulder'")


def test_band_used_without_price_is_refused():
    prices = {band: price for band, price in PRICES.items() if band != "sharp"}
    assert_invalid(
        tou(band_prices=prices), "No price for band 'sharp'", "season 'all year'"
    )


def test_unused_band_needs_no_price():
    day = (P("valley", 23, 7), P("peak", 7, 23))
    tariff.validate(
        tou(
            seasons=(tariff.Season.all_year(day),),
            band_prices={"peak": "1", "valley": "0.4"},
        )
    )


@pytest.mark.parametrize(
    "version, fragment",
    [
        (
            tou(band_prices={**PRICES, "peak": "-0.1"}),
            "band 'peak' must be zero or more",
        ),
        (
            tariff.TariffVersion("f", date(2024, 1, 1), "flat", price="-1"),
            "The price must be zero or more",
        ),
        (tiered((200, "0.5"), (None, "-0.8")), "tier 2 must be zero or more"),
        (
            tariff.TariffVersion(
                "f", date(2024, 1, 1), "flat", price="1", minimum_monthly="-5"
            ),
            "minimum monthly charge must be zero or more",
        ),
    ],
)
def test_negative_prices_are_refused(version, fragment):
    assert_invalid(version, fragment)


def test_prices_that_are_not_numbers_are_refused_at_once():
    with pytest.raises(tariff.TariffError, match="must be a number"):
        tariff.TariffVersion("f", date(2024, 1, 1), "flat", price="cheap")


def test_tier_limits_must_strictly_increase():
    assert_invalid(
        tiered((200, "0.5"), (200, "0.6"), (None, "0.8")),
        "strictly increase",
        "tier 2 ends at 200",
    )
    assert_invalid(tiered((300, "0.5"), (200, "0.6"), (None, "0.8")), "tier 2")


def test_first_tier_limit_must_be_positive():
    assert_invalid(tiered((0, "0.5"), (None, "0.8")), "strictly increase")


def test_only_the_last_tier_may_be_unlimited():
    assert_invalid(
        tiered((None, "0.5"), (200, "0.6"), (None, "0.8")),
        "Only the last tier may be unlimited",
        "tier 1 of 3",
    )


def test_last_tier_must_be_unlimited():
    assert_invalid(tiered((200, "0.5"), (400, "0.6")), "last tier must be unlimited")


def test_tiered_needs_a_tier_and_a_known_period():
    assert_invalid(tiered(), "at least one tier")
    assert_invalid(tiered((None, "0.5"), tier_period="week"), "'week'")


def test_unknown_kind_is_refused():
    assert_invalid(
        tariff.TariffVersion("x", date(2024, 1, 1), "seasonal"), "Unknown tariff kind"
    )


def test_invalid_version_cannot_price():
    version = tiered((200, "0.5"), (400, "0.6"))
    with pytest.raises(tariff.TariffError):
        tariff.price_delta(version, quantity=D(1))


def test_errors_are_value_errors_for_callers_that_catch_those():
    assert issubclass(tariff.TariffError, ValueError)
