"""Debt recovery, emergency credit and limit rules (plain Python)."""

from datetime import date, datetime
from decimal import Decimal as D

import pytest
from prepaid_billing_tools import balance, debt, limits

CENT = "0.01"


def rule(percent=0, minimum=0, maximum=0, daily=0):
    return debt.RecoveryRule(percent, minimum, maximum, daily)


def test_a_quarter_of_three_top_ups_with_min_and_max():
    r = rule(percent=25, minimum=5, maximum=30)
    owed = D("100")
    recovered = []
    # 25 % of 40 = 10; of 10 = 2.50 raised to the minimum 5; of 200 = 50
    # lowered to the maximum 30
    for amount in ("40", "10", "200"):
        split = debt.top_up_split(amount, "0", owed, r, CENT)
        recovered.append(split.recovery)
        owed -= split.recovery
    assert recovered == [D("10.00"), D("5.00"), D("30.00")]
    assert owed == D("55.00")


def test_a_small_top_up_never_wipes_a_large_debt():
    split = debt.top_up_split("10", "0", "500", rule(percent=25), CENT)
    assert split.recovery == D("2.50")


def test_the_last_recovery_is_what_is_left_of_the_debt():
    split = debt.top_up_split("100", "0", "7.35", rule(percent=25, minimum=10), CENT)
    assert split.recovery == D("7.35")


def test_the_minimum_never_takes_more_than_the_top_up():
    split = debt.top_up_split("3", "0", "50", rule(percent=25, minimum=5), CENT)
    assert split.recovery == D("3.00")


def test_a_negative_balance_is_repaid_before_the_debt():
    # emergency credit used down to -30: the top-up of 100 repays it, 25 % of
    # the 70 left goes to the debt
    split = debt.top_up_split("100", "-30", "500", rule(percent=25), CENT)
    assert split.hole == D("30")
    assert split.recovery == D("17.50")
    split = debt.top_up_split("20", "-30", "500", rule(percent=25), CENT)
    assert (split.hole, split.recovery) == (D("20"), D("0"))


def test_daily_recovery_across_a_month_stops_when_paid():
    days = debt.daily_recoveries(
        date(2026, 3, 31), date(2026, 4, 30), "1000", "100", rule(daily=3.5), CENT
    )
    # 28 days of 3.50 = 98.00, then the 2.00 left on 29 April
    assert len(days) == 29
    assert days[0] == (date(2026, 4, 1), D("3.50"))
    assert days[-1] == (date(2026, 4, 29), D("2.00"))
    assert sum(amount for _day, amount in days) == D("100.00")


def test_daily_recovery_never_takes_the_wallet_below_zero():
    days = debt.daily_recoveries(
        date(2026, 4, 1), date(2026, 4, 5), "4", "100", rule(daily=3), CENT
    )
    assert days == [(date(2026, 4, 2), D("3.00")), (date(2026, 4, 3), D("1.00"))]


def test_bad_rules_are_refused():
    for bad in (rule(percent=101), rule(minimum=-1), rule(minimum=10, maximum=5)):
        with pytest.raises(ValueError):
            debt.check_rule(bad)


def row(account_id, amount, supply="on", credit="0", level=3, **extra):
    return balance.AccountRow(
        account_id, amount, level, credit, supply, "50", "20", "5", "0.01", **extra
    )


def test_emergency_credit_moves_the_cut_off_and_is_repaid_above_zero():
    decided = balance.decide(
        [
            row(1, "-10", emergency="20"),  # living on it: no cut
            row(2, "-20", emergency="20", emergency_used=True),  # used up: cut
            row(3, "-15", supply="cut_off", credit="10", emergency="20"),  # restore
            row(4, "3", emergency="20", emergency_used=True),  # repaid
            row(5, "3", emergency="20"),  # taken, not used yet
            row(6, "-15", supply="cut_off", credit="10"),  # no emergency: stays cut
            # used up and cut; a top-up to -5 is not enough: above zero only
            row(7, "-5", supply="cut_off", emergency="20", emergency_used=True),
        ]
    )
    assert decided.to_cut == [2]
    assert decided.to_restore == [3]
    assert decided.emergency_in_use == [1, 3]
    assert decided.emergency_repaid == [4]


def test_a_limit_cut_is_not_restored_by_the_balance():
    decided = balance.decide([row(1, "80", supply="cut_off", level=0, limit_cut=True)])
    assert decided.to_restore == []


def test_power_limit_needs_the_set_number_of_polls():
    assert not limits.power_breached([5.0, 5.0], 3.0, 3)
    assert not limits.power_breached([5.0, 2.0, 5.0], 3.0, 3)
    assert limits.power_breached([5.0, 4.0, 3.5, 1.0], 3.0, 3)
    assert not limits.power_breached([5.0, 5.0, 5.0], 0, 3)


def test_energy_limit_until_local_midnight():
    assert limits.energy_breached(10.5, 10)
    assert not limits.energy_breached(10, 10)
    assert not limits.energy_breached(99, 0)
    # 2026-03-02 local (Shanghai, UTC+8) ends at 2026-03-02 16:00 UTC
    day = limits.local_day(datetime(2026, 3, 2, 3, 0), "Asia/Shanghai")
    assert day == date(2026, 3, 2)
    assert limits.next_local_midnight(day, "Asia/Shanghai") == datetime(
        2026, 3, 2, 16, 0
    )
