"""The retention boundary of raw readings, in the site's local calendar."""

from datetime import date, datetime

from prepaid_metering_tools import retention


def test_boundary_is_local_midnight_turned_into_utc():
    # 12:00 on 10 March 2026 in Shanghai (UTC+8)
    now = datetime(2026, 3, 10, 4, 0)
    assert retention.first_kept_day(now, "Asia/Shanghai", 25) == date(2024, 2, 10)
    assert retention.cutoff(now, "Asia/Shanghai", 25) == datetime(2024, 2, 9, 16, 0)


def test_the_local_date_decides_not_the_utc_date():
    # 20:00 UTC on 9 March is already 10 March in Shanghai
    now = datetime(2026, 3, 9, 20, 0)
    assert retention.first_kept_day(now, "UTC", 1) == date(2026, 2, 9)
    assert retention.first_kept_day(now, "Asia/Shanghai", 1) == date(2026, 2, 10)


def test_a_shorter_month_ends_on_its_last_day():
    now = datetime(2026, 3, 31, 12, 0)
    assert retention.first_kept_day(now, "UTC", 1) == date(2026, 2, 28)
    assert retention.first_kept_day(now, "UTC", 25) == date(2024, 2, 29)


def test_daylight_saving_midnight():
    # Berlin, 31 March 2025 local midnight is after the clocks moved (UTC+2)
    now = datetime(2026, 3, 31, 12, 0)
    assert retention.cutoff(now, "Europe/Berlin", 12) == datetime(2025, 3, 30, 22, 0)
    assert retention.cutoff(now, "Europe/Berlin", 14) == datetime(2025, 1, 30, 23, 0)


def test_setting_text():
    assert retention.months_setting(None) == retention.DEFAULT_MONTHS == 25
    assert retention.months_setting("") == 25
    assert retention.months_setting(" 36 ") == 36
    assert retention.months_setting("0") is None
    assert retention.months_setting("two years") is None


def test_cutoffs_per_zone():
    now = datetime(2026, 3, 10, 4, 0)
    assert retention.cutoffs(now, ["UTC", "Asia/Shanghai", "UTC"], 25) == {
        "UTC": datetime(2024, 2, 10, 0, 0),
        "Asia/Shanghai": datetime(2024, 2, 9, 16, 0),
    }
