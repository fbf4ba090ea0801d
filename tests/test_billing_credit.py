"""Days of credit left at the last 7 days' use."""

from prepaid_billing_tools import credit


def test_days_left_from_the_last_seven_days_average():
    # 14 charged in 7 days: 2 a day; 106 lasts 53 whole days
    assert credit.days_left(106, 14) == 53
    assert credit.days_left("5.99", "7") == 5


def test_no_recent_use_gives_no_forecast():
    assert credit.days_left(100, 0) is None


def test_an_empty_wallet_has_no_day_left():
    assert credit.days_left(0, 14) == 0
    assert credit.days_left(-3, 14) == 0


def test_days_left_over_a_part_of_the_window():
    # 8 charged in the 1.5 days an account has been open: 5.33 a day
    assert credit.days_left(52, 8, 1.5) == 9
