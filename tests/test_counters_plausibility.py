"""Counter steps and the plausibility rule (plain Python, no Odoo)."""

import math
from datetime import datetime, timedelta

import pytest
from prepaid_metering_tools import counters, plausibility
from prepaid_metering_tools.plausibility import Reference, Rule, assess

T0 = datetime(2026, 3, 2, 10, 0, 0)
WRAP = 42949672.96  # UINT32 at 0.01 kWh
# 10 kW rated, margin 1.5: 15 kWh credible per hour
RULE = Rule(rate=10.0, margin=1.5, wrap=WRAP)


def at(minutes):
    return T0 + timedelta(minutes=minutes)


def judge(value, when, previous, pending=None, rule=RULE, since=T0):
    """``assess`` with the last accepted value read at ``since``."""
    return assess(value, when, previous, since, rule, pending)


# -- counters.classify -------------------------------------------------------


def test_rise_within_the_limit_is_normal():
    step = counters.classify(100.0, 112.5, limit=15.0)
    assert step == counters.CounterStep(counters.NORMAL, 12.5)


def test_rise_above_the_limit_is_a_jump_with_its_size():
    assert counters.classify(100.0, 116.0, limit=15.0) == (counters.JUMP, 16.0)


def test_clean_wrap_is_a_rollover_counted_across_it():
    step = counters.classify(WRAP - 1.0, 2.0, limit=15.0, wrap=WRAP)
    assert step == (counters.ROLLOVER, 3.0)


def test_wrap_larger_than_the_limit_is_a_jump():
    step = counters.classify(WRAP - 10.0, 10.0, limit=15.0, wrap=WRAP)
    assert step == (counters.JUMP, 20.0)


def test_drop_outside_the_wrap_bands_is_a_drop():
    assert counters.classify(1000.0, 990.0, 15.0, WRAP) == (counters.DROP, -10.0)
    # to near zero: no longer taken for a replaced meter
    assert counters.classify(1000.0, 0.5, 15.0, WRAP).kind == counters.DROP
    # no wrap known (float register): every drop is a drop
    assert counters.classify(WRAP - 1.0, 2.0, 15.0).kind == counters.DROP


# -- plausibility.assess -----------------------------------------------------


def test_first_reading_is_normal_without_delta():
    verdict = judge(1234.5, T0, None)
    assert (verdict.kind, verdict.delta, verdict.suspect) == ("normal", 0.0, False)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, -0.01, 1e12])
def test_nan_infinite_negative_and_absurd_values_are_invalid(value):
    verdict = judge(value, at(5), 100.0)
    assert verdict.kind == plausibility.INVALID
    assert verdict.suspect
    # even as a first reading
    assert judge(value, T0, None).suspect


def test_limit_is_rated_demand_times_hours_times_margin():
    # one hour at 10 kW x 1.5 = 15 kWh (+ the 0.01 floor)
    assert not judge(115.0, at(60), 100.0).suspect
    verdict = judge(115.02, at(60), 100.0)
    assert (verdict.kind, verdict.delta) == ("jump", 15.02)
    assert verdict.limit == pytest.approx(15.01)
    # two hours allow twice as much
    assert not judge(130.0, at(120), 100.0).suspect


def test_tiny_intervals_are_not_flagged_by_the_last_digit():
    # a second apart: the limit is one minute's worth (0.25 kWh) + 0.01
    assert not judge(100.01, T0 + timedelta(seconds=1), 100.0).suspect
    assert not judge(100.26, T0, 100.0).suspect
    assert judge(100.27, T0, 100.0).suspect


def test_clean_rollover_is_normal_consumption():
    verdict = judge(2.0, at(60), WRAP - 1.0)
    assert (verdict.kind, verdict.delta) == ("rollover", 3.0)


def test_jump_near_the_top_of_the_range_then_back_is_never_a_rollover():
    spike = judge(WRAP - 5.0, at(5), 100.0)
    assert spike.kind == "jump"
    # the next value continues from the good one: the wrap from the spike
    # would count 105 kWh, the plain step 1 kWh
    back = judge(101.0, at(10), 100.0, Reference(WRAP - 5.0, at(5)))
    assert (back.kind, back.delta) == ("normal", 1.0)


def test_drop_is_suspect_and_smooth_continuation_clears_it():
    assert judge(500.0, at(5), 1000.0).kind == "drop"
    back = judge(1000.5, at(10), 1000.0, Reference(500.0, at(5)))
    assert (back.kind, back.delta, back.suspect) == ("normal", 0.5, False)


def test_value_continuing_from_the_suspect_one_is_suspect():
    pending = Reference(5000.0, at(5))
    verdict = judge(5000.5, at(10), 1000.0, pending)
    assert verdict.kind == plausibility.CONTINUED
    assert verdict.suspect
    # also after the elapsed time would make the jump credible from the good
    # value (a permanent jump waits for an operator)
    late = judge(1100.5, at(600), 1000.0, Reference(1100.0, at(5)))
    assert late.kind == plausibility.CONTINUED
    # continuing from a suspect drop
    low = judge(500.2, at(10), 1000.0, Reference(500.0, at(5)))
    assert low.kind == plausibility.CONTINUED


def test_value_credible_from_neither_is_suspect_against_the_good_one():
    verdict = judge(9000.0, at(10), 1000.0, Reference(5000.0, at(5)))
    assert verdict.kind == "jump"
    assert verdict.delta == 8000.0


def test_water_rate_in_cubic_metres_per_hour():
    water = Rule(rate=5.0, margin=1.5)  # float register: no wrap
    assert not judge(20.0, at(60), 12.5, rule=water).suspect
    assert judge(20.1, at(60), 12.5, rule=water).kind == "jump"
    assert judge(12.4, at(60), 12.5, rule=water).kind == "drop"


def test_storable():
    assert plausibility.storable(0.0)
    assert plausibility.storable(123456789.12)
    for value in (math.nan, math.inf, -1.0, 1e12):
        assert not plausibility.storable(value)
