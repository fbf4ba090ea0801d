"""Protection windows: no cut-off at night, at weekends or on holidays."""

from datetime import date, datetime, timedelta, timezone

import pytest
from prepaid_billing_tools import protection

# Night 22:00–07:00 (wraps midnight), Saturday and Sunday, 1 October 2024.
RULES = protection.ProtectionRules(
    night_start=22,
    night_end=7,
    weekend_days=frozenset({5, 6}),
    holidays=frozenset({date(2024, 10, 1)}),
)


@pytest.mark.parametrize(
    "when, protected",
    [
        (datetime(2024, 5, 8, 12, 0), False),  # Wednesday noon
        (datetime(2024, 5, 8, 21, 59, 59), False),
        (datetime(2024, 5, 8, 22, 0), True),  # night opens
        (datetime(2024, 5, 9, 0, 0), True),  # past midnight
        (datetime(2024, 5, 9, 6, 59, 59), True),
        (datetime(2024, 5, 9, 7, 0), False),  # night closes
        (datetime(2024, 5, 11, 12, 0), True),  # Saturday
        (datetime(2024, 5, 12, 12, 0), True),  # Sunday
        (datetime(2024, 10, 1, 12, 0), True),  # holiday, a Tuesday
        (datetime(2024, 10, 2, 12, 0), False),
    ],
)
def test_is_protected(when, protected):
    assert protection.is_protected(RULES, when) is protected


def test_night_window_without_wrap():
    rules = protection.ProtectionRules(night_start=0, night_end=5.5)
    assert protection.is_protected(rules, datetime(2024, 5, 8, 5, 29))
    assert not protection.is_protected(rules, datetime(2024, 5, 8, 5, 30))
    assert not protection.is_protected(rules, datetime(2024, 5, 8, 23, 0))


def test_night_window_ending_at_midnight():
    rules = protection.ProtectionRules(night_start=20, night_end=24)
    assert protection.is_protected(rules, datetime(2024, 5, 8, 23, 59, 59))
    assert not protection.is_protected(rules, datetime(2024, 5, 9, 0, 0))
    assert protection.next_unprotected(rules, datetime(2024, 5, 8, 21)) == datetime(
        2024, 5, 9
    )


def test_no_rules_protect_nothing():
    rules = protection.ProtectionRules()
    when = datetime(2024, 5, 11, 3, 0)
    assert not protection.is_protected(rules, when)
    assert protection.next_unprotected(rules, when) == when


@pytest.mark.parametrize(
    "when, expected",
    [
        # Not protected: runs at once.
        (datetime(2024, 5, 8, 12, 0), datetime(2024, 5, 8, 12, 0)),
        # Wednesday 23:00 -> end of night, Thursday 07:00.
        (datetime(2024, 5, 8, 23, 0), datetime(2024, 5, 9, 7, 0)),
        # Thursday 03:00 -> same morning 07:00.
        (datetime(2024, 5, 9, 3, 0), datetime(2024, 5, 9, 7, 0)),
        # Friday 23:00 -> Saturday 07:00 is weekend -> Sunday -> Monday 00:00 is
        # night -> Monday 07:00.
        (datetime(2024, 5, 10, 23, 0), datetime(2024, 5, 13, 7, 0)),
        # Monday 30 Sep 23:00 -> Tuesday 1 Oct is a holiday -> Wednesday 07:00.
        (datetime(2024, 9, 30, 23, 0), datetime(2024, 10, 2, 7, 0)),
    ],
)
def test_next_unprotected(when, expected):
    assert protection.next_unprotected(RULES, when) == expected


def test_next_unprotected_keeps_the_time_zone():
    local = timezone(timedelta(hours=8))
    when = datetime(2024, 5, 8, 23, 0, tzinfo=local)
    assert protection.next_unprotected(RULES, when) == datetime(
        2024, 5, 9, 7, 0, tzinfo=local
    )


def test_rules_that_protect_every_day_never_allow_a_cut_off():
    rules = protection.ProtectionRules(weekend_days=frozenset(range(7)))
    with pytest.raises(ValueError):
        protection.next_unprotected(rules, datetime(2024, 5, 8))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"night_start": 22},
        {"night_end": 7},
        {"night_start": 7, "night_end": 7},
        {"night_start": 0, "night_end": 24},
        {"night_start": 25, "night_end": 7},
        {"weekend_days": frozenset({7})},
    ],
)
def test_inconsistent_rules_are_refused(kwargs):
    with pytest.raises(ValueError):
        protection.ProtectionRules(**kwargs)
