"""Local days of bill usage: the fixed UTC offset of a period (plain Python)."""

from datetime import datetime

from prepaid_billing_tools import bill_pricing


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
