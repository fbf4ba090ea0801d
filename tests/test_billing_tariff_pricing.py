"""Pricing of reading deltas by prepaid_billing's tariff core.

Example time-of-use tariff used throughout (prices per kWh):
sharp 1.30, peak 1.10, flat 0.70, valley 0.35.

Normal months (September to May):
    valley 23–07, flat 07–08, peak 08–11, flat 11–17, peak 17–19,
    sharp 19–21, flat 21–23.
Summer (June, July, August):
    flat 22–01, valley 01–07, flat 07–10, peak 10–12, sharp 12–15, peak 15–22.
"""

from datetime import date, datetime
from decimal import Decimal as D

import pytest
from prepaid_billing_tools import tariff

P = tariff.Period

NORMAL = tariff.Season(
    "normal",
    frozenset({1, 2, 3, 4, 5, 9, 10, 11, 12}),
    (
        P("valley", 23, 7),
        P("flat", 7, 8),
        P("peak", 8, 11),
        P("flat", 11, 17),
        P("peak", 17, 19),
        P("sharp", 19, 21),
        P("flat", 21, 23),
    ),
)
SUMMER = tariff.Season(
    "summer",
    frozenset({6, 7, 8}),
    (
        P("flat", 22, 1),
        P("valley", 1, 7),
        P("flat", 7, 10),
        P("peak", 10, 12),
        P("sharp", 12, 15),
        P("peak", 15, 22),
    ),
)
BAND_PRICES = {"sharp": "1.30", "peak": "1.10", "flat": "0.70", "valley": "0.35"}
TOU = tariff.TariffVersion(
    "tou-2024",
    date(2024, 1, 1),
    "tou",
    band_prices=BAND_PRICES,
    seasons=(NORMAL, SUMMER),
)
TIERED_MONTH = tariff.TariffVersion(
    "tiers-month",
    date(2024, 1, 1),
    "tiered",
    tiers=(
        tariff.Tier(200, "0.50"),
        tariff.Tier(400, "0.60"),
        tariff.Tier(None, "0.80"),
    ),
)
TIERED_YEAR = tariff.TariffVersion(
    "tiers-year",
    date(2024, 1, 1),
    "tiered",
    tier_period="year",
    tiers=(
        tariff.Tier(2760, "0.4883"),
        tariff.Tier(4800, "0.5383"),
        tariff.Tier(None, "0.7883"),
    ),
)


def flat_version(price, key="flat", valid_from=date(2024, 1, 1), **extra):
    return tariff.TariffVersion(key, valid_from, "flat", price=price, **extra)


# -- flat -----------------------------------------------------------------------


def test_flat_prices_the_delta_at_the_single_price():
    # 12.5 kWh × 0.62 = 7.75
    charge = tariff.price_delta(flat_version("0.62"), quantity=D("12.5"))
    assert charge.amount == D("7.75")
    assert charge.exact == D("7.750")
    assert charge.quantity == D("12.5")
    assert charge.lines == [("single price", D("12.5"), D("0.62"), D("7.750"))]
    assert charge.version_key == "flat"


def test_flat_rounds_half_up_and_keeps_the_remainder_as_carry():
    # 1.5 kWh × 0.583 = 0.8745 -> 0.87, carry 0.0045
    charge = tariff.price_delta(flat_version("0.583"), quantity=D("1.5"))
    assert charge.amount == D("0.87")
    assert charge.carry == D("0.0045")


def test_float_quantities_are_converted_through_their_text():
    # 0.1 kWh × 0.7 = 0.07 exactly (as binary floats it would be 0.06999...)
    charge = tariff.price_delta(flat_version(0.7), quantity=0.1)
    assert charge.exact == D("0.07")


def test_zero_delta_costs_nothing():
    assert tariff.price_delta(flat_version("0.62"), quantity=D(0)).amount == D(0)


def test_negative_delta_is_refused():
    with pytest.raises(tariff.TariffError, match="cannot be negative"):
        tariff.price_delta(flat_version("0.62"), quantity=D("-1"))


def test_quantity_or_band_quantities_is_required():
    with pytest.raises(tariff.TariffError):
        tariff.price_delta(flat_version("0.62"), quantity=None)


# -- rounding carry ---------------------------------------------------------------


def test_carry_keeps_many_tiny_readings_from_drifting():
    # 1,000 readings of 0.013 kWh at 0.5 = 0.0065 each; in total
    # 13 kWh × 0.5 = 6.50.  Rounding each alone would bill 0.01 × 1000 = 10.00.
    version = flat_version("0.5")
    carry = D(0)
    total = D(0)
    for _reading in range(1000):
        charge = tariff.price_delta(version, quantity=D("0.013"), carry=carry)
        total += charge.amount
        carry = charge.carry
    assert total == D("6.50")
    assert abs(carry) < D("0.005")
    alone = tariff.price_delta(version, quantity=D("0.013"))
    assert alone.amount == D("0.01")


def test_cash_rounding_step_is_honoured():
    # 3 kWh × 0.69 = 2.07 -> nearest 0.05 is 2.05, carry 0.02
    charge = tariff.price_delta(flat_version("0.69"), quantity=D(3), rounding=D("0.05"))
    assert charge.amount == D("2.05")
    assert charge.carry == D("0.02")


# -- time of use by time ---------------------------------------------------------


@pytest.mark.parametrize(
    "when, band",
    [
        (datetime(2024, 5, 8, 0, 0), "valley"),
        (datetime(2024, 5, 8, 6, 59, 59), "valley"),
        (datetime(2024, 5, 8, 7, 0), "flat"),
        (datetime(2024, 5, 8, 7, 59, 59), "flat"),
        (datetime(2024, 5, 8, 8, 0, 0), "peak"),
        (datetime(2024, 5, 8, 10, 59, 59), "peak"),
        (datetime(2024, 5, 8, 11, 0), "flat"),
        (datetime(2024, 5, 8, 19, 0), "sharp"),
        (datetime(2024, 5, 8, 20, 59, 59), "sharp"),
        (datetime(2024, 5, 8, 21, 0), "flat"),
        (datetime(2024, 5, 8, 22, 59, 59), "flat"),
        (datetime(2024, 5, 8, 23, 0), "valley"),
        (datetime(2024, 5, 8, 23, 59, 59), "valley"),
    ],
)
def test_band_edges_belong_to_the_period_that_starts_there(when, band):
    assert tariff.band_at(TOU, when) == band


def test_delta_without_registers_is_priced_at_the_band_of_the_reading_time():
    # 2 kWh read at 07:59:59 is flat: 2 × 0.70 = 1.40;
    # the same at 08:00:00 is peak:   2 × 1.10 = 2.20.
    before = tariff.price_delta(
        TOU, quantity=D(2), when=datetime(2024, 5, 8, 7, 59, 59)
    )
    at = tariff.price_delta(TOU, quantity=D(2), when=datetime(2024, 5, 8, 8))
    assert (before.amount, before.lines[0].label) == (D("1.40"), "flat")
    assert (at.amount, at.lines[0].label) == (D("2.20"), "peak")


def test_time_of_use_without_registers_needs_the_reading_time():
    with pytest.raises(tariff.TariffError, match="reading time"):
        tariff.price_delta(TOU, quantity=D(2))


@pytest.mark.parametrize(
    "when, band, amount",
    [
        # 31 May is a normal month: 23:30 is valley, 1 kWh × 0.35
        (datetime(2024, 5, 31, 23, 30), "valley", D("0.35")),
        # 1 June is summer: 00:30 is in flat 22–01, 1 kWh × 0.70
        (datetime(2024, 6, 1, 0, 30), "flat", D("0.70")),
        # summer noon is sharp, normal noon is flat
        (datetime(2024, 6, 15, 12, 0), "sharp", D("1.30")),
        (datetime(2024, 9, 15, 12, 0), "flat", D("0.70")),
        # 31 August 23:30 still summer (flat), 1 September 00:30 valley again
        (datetime(2024, 8, 31, 23, 30), "flat", D("0.70")),
        (datetime(2024, 9, 1, 0, 30), "valley", D("0.35")),
    ],
)
def test_seasons_switch_schedule_at_the_month_boundary(when, band, amount):
    charge = tariff.price_delta(TOU, quantity=D(1), when=when)
    assert charge.lines[0].label == band
    assert charge.amount == amount


# -- time of use by registers ----------------------------------------------------


def test_band_registers_are_priced_at_their_own_band():
    # sharp  0.4 × 1.30 = 0.520
    # peak   1.2 × 1.10 = 1.320
    # flat   0.3 × 0.70 = 0.210
    # valley 2.5 × 0.35 = 0.875
    # total  4.4 kWh      2.925 -> 2.93 (half up), carry -0.005
    bands = {"valley": D("2.5"), "peak": D("1.2"), "flat": D("0.3"), "sharp": D("0.4")}
    charge = tariff.price_delta(
        TOU, quantity=D("4.4"), when=datetime(2024, 5, 8, 3), band_quantities=bands
    )
    assert charge.exact == D("2.925")
    assert charge.amount == D("2.93")
    assert charge.carry == D("-0.005")
    assert charge.quantity == D("4.4")
    # Lines come in band order whatever the order of the registers.
    assert [line.label for line in charge.lines] == ["sharp", "peak", "flat", "valley"]
    assert charge.lines[1] == ("peak", D("1.2"), D("1.10"), D("1.320"))


def test_register_difference_is_priced_at_the_band_of_the_reading_time():
    # Bands add up to 4.40 but the total register moved 4.41: the 0.01 kWh
    # difference is priced at 19:30 = sharp: 0.01 × 1.30 = 0.013.
    # 2.925 + 0.013 = 2.938 -> 2.94
    bands = {"valley": D("2.5"), "peak": D("1.2"), "flat": D("0.3"), "sharp": D("0.4")}
    charge = tariff.price_delta(
        TOU,
        quantity=D("4.41"),
        when=datetime(2024, 5, 8, 19, 30),
        band_quantities=bands,
    )
    assert charge.exact == D("2.938")
    assert charge.amount == D("2.94")
    assert charge.quantity == D("4.41")
    assert charge.lines[-1] == (
        "sharp (register difference)",
        D("0.01"),
        D("1.30"),
        D("0.013"),
    )


def test_band_registers_alone_bill_their_sum():
    # peak 1 × 1.10 + valley 2 × 0.35 = 1.80 for 3 kWh
    charge = tariff.price_delta(
        TOU, quantity=None, band_quantities={"peak": D(1), "valley": D(2)}
    )
    assert (charge.quantity, charge.amount) == (D(3), D("1.80"))


def test_register_of_an_unknown_band_is_refused():
    with pytest.raises(tariff.TariffError, match="shoulder"):
        tariff.price_delta(
            TOU,
            quantity=D(1),
            when=datetime(2024, 5, 8),
            band_quantities={"shoulder": 1},
        )


def test_register_of_a_band_without_price_is_refused():
    version = tariff.TariffVersion(
        "no-sharp",
        date(2024, 1, 1),
        "tou",
        band_prices={"peak": "1.10", "valley": "0.35"},
        seasons=(tariff.Season.all_year((P("valley", 0, 8), P("peak", 8, 24))),),
    )
    with pytest.raises(tariff.TariffError, match="'sharp'"):
        tariff.price_delta(
            version,
            quantity=D(1),
            when=datetime(2024, 5, 8),
            band_quantities={"sharp": 1},
        )


# -- tiered ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "used_before, quantity, amount, lines",
    [
        # 190 used: 10 × 0.50 + 20 × 0.60 = 5.00 + 12.00 = 17.00
        ("190", "30", "17.00", [("tier 1", "10", "0.50"), ("tier 2", "20", "0.60")]),
        # 150 used: 50 × 0.50 + 200 × 0.60 + 50 × 0.80 = 25 + 120 + 40 = 185.00
        (
            "150",
            "300",
            "185.00",
            [
                ("tier 1", "50", "0.50"),
                ("tier 2", "200", "0.60"),
                ("tier 3", "50", "0.80"),
            ],
        ),
        # exactly at the first limit: the next kWh is tier 2, 1 × 0.60
        ("200", "1", "0.60", [("tier 2", "1", "0.60")]),
        # past every limit: 10 × 0.80 = 8.00
        ("450", "10", "8.00", [("tier 3", "10", "0.80")]),
        # first reading of the period: 0.5 × 0.50 = 0.25
        ("0", "0.5", "0.25", [("tier 1", "0.5", "0.50")]),
    ],
)
def test_tiers_split_the_delta_from_the_period_consumption(
    used_before, quantity, amount, lines
):
    charge = tariff.price_delta(
        TIERED_MONTH, quantity=D(quantity), period_used_before=D(used_before)
    )
    assert charge.amount == D(amount)
    assert [(line.label, line.quantity, line.unit_price) for line in charge.lines] == [
        (label, D(q), D(p)) for label, q, p in lines
    ]
    assert sum(line.amount for line in charge.lines) == charge.exact


def _bill_readings(version, readings):
    """Price readings the way the ledger will: consumption per tier period."""
    used = {}
    amounts = []
    for when, quantity in readings:
        start = tariff.period_start(when, version.tier_period)
        charge = tariff.price_delta(
            version,
            quantity=quantity,
            when=when,
            period_used_before=used.get(start, D(0)),
        )
        used[start] = used.get(start, D(0)) + quantity
        amounts.append(charge.amount)
    return amounts


def test_period_start_for_month_and_year():
    assert tariff.period_start(date(2024, 1, 31), "month") == date(2024, 1, 1)
    assert tariff.period_start(datetime(2024, 2, 1, 0, 0), "month") == date(2024, 2, 1)
    assert tariff.period_start(date(2024, 12, 31), "year") == date(2024, 1, 1)
    assert tariff.period_start(date(2025, 1, 1), "year") == date(2025, 1, 1)
    assert tariff.period_start(date(2024, 2, 1), "year") == date(2024, 1, 1)


def test_monthly_tiers_restart_on_the_first_of_the_month():
    # 31 Jan: 190 kWh, all tier 1           = 190 × 0.50 = 95.00
    # 31 Jan: 30 kWh from 190               = 10 × 0.50 + 20 × 0.60 = 17.00
    # 1 Feb:  30 kWh, new month from 0      = 30 × 0.50 = 15.00
    amounts = _bill_readings(
        TIERED_MONTH,
        [
            (datetime(2024, 1, 31, 12), D(190)),
            (datetime(2024, 1, 31, 23, 59), D(30)),
            (datetime(2024, 2, 1, 0, 1), D(30)),
        ],
    )
    assert amounts == [D("95.00"), D("17.00"), D("15.00")]


def test_yearly_tiers_run_across_months_and_restart_on_1_january():
    # 31 Jan 2024: 2,700 kWh                 = 2700 × 0.4883 = 1318.41
    # 28 Feb 2024: 50 kWh, still the year    = 50 × 0.4883 = 24.415 -> 24.42
    # 31 Dec 2024: 20 kWh from 2,750         = 10 × 0.4883 + 10 × 0.5383
    #                                        = 4.883 + 5.383 = 10.266 -> 10.27
    # 1 Jan 2025:  20 kWh from 0             = 20 × 0.4883 = 9.766 -> 9.77
    amounts = _bill_readings(
        TIERED_YEAR,
        [
            (datetime(2024, 1, 31, 12), D(2700)),
            (datetime(2024, 2, 28, 12), D(50)),
            (datetime(2024, 12, 31, 23), D(20)),
            (datetime(2025, 1, 1, 1), D(20)),
        ],
    )
    assert amounts == [D("1318.41"), D("24.42"), D("10.27"), D("9.77")]


def test_tiered_ignores_band_registers():
    # 5 kWh from 0: 5 × 0.50 = 2.50
    charge = tariff.price_delta(
        TIERED_MONTH, quantity=D(5), band_quantities={"peak": D(5)}
    )
    assert charge.amount == D("2.50")


# -- water ---------------------------------------------------------------------


def test_water_flat_price_per_cubic_metre():
    # 2.345 m³ × 3.50 = 8.2075 -> 8.21
    water = flat_version("3.50", key="water")
    assert tariff.price_delta(water, quantity=D("2.345")).amount == D("8.21")


def test_water_tiered_price_per_cubic_metre():
    # tiers 0–10 m³ 3.00, 10–20 m³ 4.50, above 6.00; 8 m³ used, 5 m³ more:
    # 2 × 3.00 + 3 × 4.50 = 6.00 + 13.50 = 19.50
    water = tariff.TariffVersion(
        "water-tiers",
        date(2024, 1, 1),
        "tiered",
        tiers=(
            tariff.Tier(10, "3.00"),
            tariff.Tier(20, "4.50"),
            tariff.Tier(None, "6"),
        ),
    )
    charge = tariff.price_delta(water, quantity=D(5), period_used_before=D(8))
    assert charge.amount == D("19.50")


# -- minimum monthly charge ------------------------------------------------------


@pytest.mark.parametrize(
    "month_total, due",
    [("12.34", "7.66"), ("20.00", "0"), ("25", "0"), ("0", "20.00")],
)
def test_minimum_monthly_charge_tops_up_the_month(month_total, due):
    # minimum 20.00: 20.00 − 12.34 = 7.66; nothing once it is reached
    version = flat_version("0.5", minimum_monthly="20.00")
    assert tariff.minimum_charge_due(version, D(month_total)) == D(due)


def test_no_minimum_means_no_top_up():
    assert tariff.minimum_charge_due(flat_version("0.5"), D(0)) == D(0)


# -- versions --------------------------------------------------------------------


OLD = flat_version("0.50", key="v1", valid_from=date(2024, 1, 1))
NEW = flat_version("0.60", key="v2", valid_from=date(2024, 3, 1))


@pytest.mark.parametrize(
    "when, key",
    [
        (datetime(2024, 2, 29, 23, 59, 59), "v1"),
        (datetime(2024, 3, 1, 0, 0), "v2"),
        (date(2024, 3, 1), "v2"),
        (datetime(2030, 1, 1), "v2"),
    ],
)
def test_a_change_takes_effect_from_its_date(when, key):
    assert tariff.select_version([NEW, OLD], when).key == key


def test_charge_records_the_version_that_priced_it():
    # 10 kWh: 10 × 0.50 = 5.00 the day before, 10 × 0.60 = 6.00 from 1 March
    for when, key, amount in [
        (datetime(2024, 2, 29, 12), "v1", D("5.00")),
        (datetime(2024, 3, 1, 12), "v2", D("6.00")),
    ]:
        version = tariff.select_version([OLD, NEW], when)
        charge = tariff.price_delta(version, quantity=D(10), when=when)
        assert (charge.version_key, charge.amount) == (key, amount)


def test_no_version_before_the_first_date():
    with pytest.raises(tariff.TariffError, match="2023-12-31"):
        tariff.select_version([OLD, NEW], datetime(2023, 12, 31, 23))


def test_two_versions_on_the_same_date_are_ambiguous():
    twin = flat_version("0.70", key="v3", valid_from=date(2024, 3, 1))
    with pytest.raises(tariff.TariffError, match="More than one"):
        tariff.select_version([OLD, NEW, twin], date(2024, 4, 1))


def test_compiled_pricer_gives_the_same_charge():
    pricer = tariff.compile_tariff(TOU)
    assert tariff.compile_tariff(TOU) is pricer
    assert tariff.compile_tariff(pricer) is pricer
    when = datetime(2024, 5, 8, 8)
    assert pricer.price(D(2), when) == tariff.price_delta(TOU, quantity=D(2), when=when)


@pytest.mark.parametrize("version_name", ["flat", "tou"])
def test_the_single_price_fast_path_gives_the_same_numbers(version_name):
    import random

    version = {
        "flat": tariff.TariffVersion("flat", date(2024, 1, 1), "flat", price="0.83"),
        "tou": TOU,
    }[version_name]
    pricer = tariff.compile_tariff(version)
    rng = random.Random(version_name)
    carry_general = carry_fast = D(0)
    for _i in range(2000):
        quantity = D(rng.randrange(0, 300_000)) / 10_000
        when = datetime(2024, rng.randrange(1, 13), 15, rng.randrange(24), 30)
        charge = pricer.price(quantity, when=when, carry=carry_general)
        label, price = pricer.unit_price(when)
        amount, exact, carry_fast = pricer.price_at(quantity, price, carry_fast)
        assert (amount, exact, carry_fast) == (
            charge.amount,
            charge.exact,
            charge.carry,
        )
        assert [(label, quantity, price, exact)] == [tuple(charge.lines[0])]
        carry_general = charge.carry
    assert tariff.compile_tariff(TIERED_MONTH).unit_price(when) is None
