"""Money helpers of prepaid_billing: Decimal conversion, rounding, splitting."""

import random
from decimal import Decimal as D
from fractions import Fraction

import pytest
from prepaid_billing_tools import money


def test_floats_convert_through_their_text_not_their_binary_value():
    assert money.to_decimal(0.1) == D("0.1")
    assert money.to_decimal(" 1.20 ") == D("1.20")
    assert money.to_decimal(3) == D(3)


@pytest.mark.parametrize("bad", ["abc", "", float("nan"), float("inf"), "NaN"])
def test_non_numbers_are_rejected(bad):
    with pytest.raises(ValueError):
        money.to_decimal(bad)


@pytest.mark.parametrize("bad", [True, None, [1]])
def test_non_number_types_are_rejected(bad):
    with pytest.raises(TypeError):
        money.to_decimal(bad)


@pytest.mark.parametrize(
    "amount, expected",
    [
        # float 2.675 is 2.67499999... in binary; via its text it is a true tie.
        (2.675, D("2.68")),
        ("0.125", D("0.13")),
        ("0.124999", D("0.12")),
        # Ties go away from zero for credits too.
        ("-0.005", D("-0.01")),
        ("7", D("7.00")),
    ],
)
def test_round_money_rounds_half_up_to_the_cent(amount, expected):
    result = money.round_money(amount)
    assert result == expected
    assert str(result) == str(expected)


@pytest.mark.parametrize(
    "amount, step, expected",
    [
        # 1.025 / 0.05 = 20.5 -> 21 steps -> 1.05
        ("1.025", "0.05", D("1.05")),
        # 1.024 / 0.05 = 20.48 -> 20 steps -> 1.00
        ("1.024", "0.05", D("1.00")),
        ("1.075", "0.05", D("1.10")),
        ("2.5", "1", D("3")),
        ("1234.5", "10", D("1230")),
        ("1235", "10", D("1240")),
    ],
)
def test_round_money_accepts_cash_rounding_steps(amount, step, expected):
    assert money.round_money(amount, D(step)) == expected


def test_round_money_rejects_a_step_that_is_not_positive():
    with pytest.raises(ValueError):
        money.round_money("1", D(0))


def test_split_evenly_gives_the_leftover_cent_to_the_lowest_index_on_ties():
    # 100.00 / 3 = 33.333...: all remainders equal, index 0 gets the cent.
    assert money.split_evenly(D("100.00"), [1, 1, 1]) == [
        D("33.34"),
        D("33.33"),
        D("33.33"),
    ]


def test_split_evenly_follows_weights_and_gives_zero_weight_nothing():
    # 10.00 × 1/3 = 3.333 -> 3.33; 10.00 × 2/3 = 6.666 -> 6.66 + leftover 0.01
    assert money.split_evenly(D("10.00"), [0, 1, 2]) == [D("0"), D("3.33"), D("6.67")]


def test_split_evenly_splits_credits_like_charges():
    assert money.split_evenly(D("-1.00"), [1, 1, 1]) == [
        D("-0.34"),
        D("-0.33"),
        D("-0.33"),
    ]


def test_split_evenly_with_cash_rounding_hands_out_whole_steps():
    # 1.00 = 20 steps of 0.05; 20 / 3 = 6.67 steps -> 7, 7, 6
    parts = money.split_evenly(D("1.00"), [1, 1, 1], D("0.05"))
    assert parts == [D("0.35"), D("0.35"), D("0.30")]


@pytest.mark.parametrize(
    "total, weights",
    [
        ("10.005", [1, 1]),  # not a multiple of the cent
        ("10.00", [1, -1, 2]),  # negative weight
        ("10.00", [0, 0]),  # nothing to split by
        ("10.00", []),
    ],
)
def test_split_evenly_rejects_impossible_splits(total, weights):
    with pytest.raises(ValueError):
        money.split_evenly(D(total), weights)


def test_split_evenly_always_sums_exactly_and_stays_within_a_step():
    rng = random.Random(20240518)
    for _case in range(500):
        step = rng.choice([D("0.01"), D("0.05"), D("1")])
        total = step * rng.randint(-100_000, 1_000_000)
        count = rng.randint(1, 30)
        weights = [
            rng.choice([0, rng.randint(1, 500), D(rng.randint(1, 99_999)) / 1000])
            for _weight in range(count)
        ]
        if not any(weights):
            weights[0] = 1
        parts = money.split_evenly(total, weights, step)
        assert sum(parts) == total
        weight_sum = sum(Fraction(w) for w in weights)
        for part, weight in zip(parts, weights, strict=True):
            assert part % step == 0
            exact = Fraction(total) * Fraction(weight) / weight_sum
            assert abs(Fraction(part) - exact) < Fraction(step)
            if not weight:
                assert part == 0


def test_round_parts_shows_cents_that_add_up_to_the_rounded_sum():
    # 1.005 + 2.005 + 3.005 = 6.015: rounding each gives 1.01 + 2.01 + 3.01 = 6.03
    parts = money.round_parts([1.005, 2.005, 3.005])
    assert sum(parts) == D("6.02")
    assert all(
        abs(part - D(str(value))) < D("0.01")
        for part, value in zip(parts, [1.005, 2.005, 3.005], strict=True)
    )
    assert money.round_parts([0, 0.0]) == [D("0.00"), D("0.00")]
    assert money.round_parts([1.234, 0]) == [D("1.23"), D("0.00")]


def test_balance_decisions_for_a_batch_of_accounts():
    from prepaid_billing_tools import balance

    def row(account_id, amount, level=0, supply="on", credit="0"):
        return balance.AccountRow(
            account_id, amount, level, credit, supply, "50", "20", "5", "0.01"
        )

    decided = balance.decide(
        [
            row(1, "60.00"),  # nothing to do
            row(2, "50.004"),  # rounds to 50.00: level 1 reached
            row(3, "19.99", level=1),  # level 2
            row(4, "30.00", level=3, supply="cut_off"),  # recharged: reset, restore
            row(5, "0.004"),  # rounds to zero: exhausted, cut
            row(6, "-3.00", level=3, credit="5"),  # within the allowed credit
            row(7, "-0.50", level=3, supply="cut_pending"),  # still nothing left
        ]
    )
    assert decided.raise_events == [(2, "alarm1"), (3, "alarm2"), (5, "alarm3")]
    assert decided.resets == [(4, 1)]
    assert decided.by_level == {1: [2, 4], 2: [3], 3: [5]}
    assert decided.to_cut == [5]
    assert decided.to_restore == [4]
    assert balance.alarm_level("5.00", ("50", "20", "5"), "0.01") == 3
    assert balance.compare("1.004", "1", "0.01") == 0
    assert balance.compare("1.006", "1", "0.01") == 1


def test_topup_to_restore_brings_the_balance_above_zero():
    from decimal import Decimal

    from prepaid_billing_tools import balance

    # restored above zero: -83.87 needs 83.88, an empty wallet one cent
    assert balance.topup_to_restore("-83.87", "0.01") == Decimal("83.88")
    assert balance.topup_to_restore(0.0, "0.01") == Decimal("0.01")
    assert balance.topup_to_restore("-0.004", "0.01") == Decimal("0.01")
    assert balance.topup_to_restore("12.50", "0.01") == 0
    for owed in ("-83.87", "0", "-1234.56"):
        top_up = balance.topup_to_restore(owed, "0.01")
        assert balance.restores(Decimal(owed) + top_up, "0.01")
        assert not balance.restores(Decimal(owed) + top_up - Decimal("0.01"), "0.01")
