"""Monthly report maths: month arithmetic and changes."""

from datetime import date

from prepaid_billing_tools.month_report import ShopMonth, Usage, add_months, change_pct


def test_add_months_crosses_years():
    assert add_months(date(2026, 1, 15), -1) == date(2025, 12, 1)
    assert add_months(date(2026, 3, 1), -12) == date(2025, 3, 1)
    assert add_months(date(2025, 12, 1), 1) == date(2026, 1, 1)


def test_change_is_none_without_a_figure_to_compare_with():
    assert change_pct(110.0, 100.0) == 10.0
    assert change_pct(50.0, 0.0) is None
    assert change_pct(50.0, None) is None


def test_a_shop_month_sums_usage_charges_and_share():
    usage = Usage(kwh=120.0, energy_amount=90.0, water_amount=10.0)
    row = ShopMonth(1, 2, usage, charges=30.0, share=5.5, previous=Usage(kwh=100.0))
    assert row.total == 135.5
    assert row.kwh_vs_previous == 20.0
    assert row.kwh_vs_last_year is None
