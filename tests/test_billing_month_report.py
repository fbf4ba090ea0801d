"""Monthly report maths: month arithmetic and changes."""

from datetime import date

from prepaid_billing_tools.month_report import (
    COMPARED,
    SUMS,
    ShopMonth,
    Usage,
    add_months,
    change_pct,
    shop_rows,
)


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


def _sums(kwh=0.0, m3=0.0, energy=0.0, water=0.0, bands=None):
    """The sums of one period: the month's (with ``bands``) or a compared
    one's."""
    return (kwh, m3, energy, water, *(bands or ()))


def test_shop_rows_put_three_months_side_by_side():
    current = _sums(120.0, 2.5, 90.0, 10.0, (1, 2, 3, 4, 0.5, 1.5, 2.5, 3.5))
    previous = _sums(100.0, 1.0, 70.0, 8.0)
    last_year = [None] * len(COMPARED)
    usage_rows = [(7, 3, 30, 31, 0, *current, *previous, *last_year)]
    (row,) = shop_rows(usage_rows, {7: 30.0}, {})
    assert (row.room_id, row.partner_id) == (7, 3)
    assert row.usage.band_kwh == {"sharp": 1, "peak": 2, "flat": 3, "valley": 4}
    assert row.usage.band_cost["valley"] == 3.5
    assert row.total == 130.0
    assert row.kwh_vs_previous == 20.0
    assert (row.previous.m3, row.previous.amount) == (1.0, 78.0)
    assert row.last_year is None, "no day a year before: nothing to compare with"


def test_shop_rows_keep_only_shops_of_the_month():
    month, compared = [None] * len(SUMS), [None] * len(COMPARED)
    usage_rows = [
        (1, 9, 0, 30, 0, *month, *_sums(50.0), *compared),  # only last month
        (2, 9, 0, 30, 0, *month, *_sums(40.0), *compared),  # + a charge item
    ]
    rows = {row.room_id: row for row in shop_rows(usage_rows, {2: 5.0}, {3: 1.5})}
    assert set(rows) == {2, 3}
    assert rows[2].partner_id is None and rows[2].usage.kwh == 0.0
    assert rows[2].previous.kwh == 40.0 and rows[2].total == 5.0
    assert rows[3].share == 1.5 and rows[3].previous is None


def test_shop_rows_add_postpaid_bills_and_keep_money_of_no_room():
    month = _sums(100.0, bands=(0,) * 8)
    compared = [None] * len(COMPARED)
    usage_rows = [(1, 9, 31, 0, 0, *month, *compared, *compared)]
    rows = {
        row.room_id: row
        for row in shop_rows(usage_rows, {None: 20.0}, {}, {1: (80.0, 4.0)})
    }
    assert (rows[1].usage.energy_amount, rows[1].usage.water_amount) == (80.0, 4.0)
    assert rows[1].total == 84.0
    assert rows[None].total == 20.0 and rows[None].partner_id is None
