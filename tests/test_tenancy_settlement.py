from decimal import Decimal

import pytest
from prepaid_tenancy_tools.settlement import check_deposit_refund, settle


def test_wallet_and_deposit_less_unpaid_invoices_are_refunded():
    result = settle(212.35, 500, 80.10)
    assert result.refund == Decimal("632.25")
    assert result.owed == 0
    assert result.net == Decimal("632.25")


def test_arrears_larger_than_the_deposit_are_owed():
    result = settle(-612.40, 500, 0)
    assert result.arrears == Decimal("612.40")
    assert result.credit == 0
    assert result.refund == 0
    assert result.owed == Decimal("112.40")


def test_unpaid_invoices_beyond_wallet_and_deposit_are_owed():
    result = settle(10, 0, 25.555)
    assert result.unpaid == Decimal("25.56")
    assert result.owed == Decimal("15.56")


def test_nothing_either_way_when_everything_is_paid():
    result = settle(0, 0, 0)
    assert result.refund == result.owed == 0


def test_a_negative_deposit_is_refused():
    with pytest.raises(ValueError):
        settle(0, -1, 0)


def test_a_deposit_refund_above_what_is_held_is_refused():
    assert check_deposit_refund("300.00", 300) == Decimal("300.00")
    with pytest.raises(ValueError, match="more_than_held"):
        check_deposit_refund(300.01, 300)
    with pytest.raises(ValueError, match="not_positive"):
        check_deposit_refund(0, 300)


def test_the_debt_owed_is_taken_before_the_refund():
    # 212.35 + 500 - 80.10 - 150.25 debt
    result = settle(212.35, 500, 80.10, debt=150.25)
    assert result.debt == Decimal("150.25")
    assert result.refund == Decimal("482.00")
    assert result.owed == 0


def test_a_debt_beyond_the_money_is_owed():
    result = settle(40, 100, 0, debt=300)
    assert result.refund == 0
    assert result.owed == Decimal("160.00")


def test_a_retained_part_of_the_deposit_is_not_returned():
    result = settle(10, 500, 0, retained=120.455)
    assert result.retained == Decimal("120.46")
    assert result.returned == Decimal("379.54")
    assert result.refund == Decimal("389.54")


def test_a_retention_above_the_deposit_or_negative_is_refused():
    assert settle(0, 500, 0, retained=500).refund == 0
    with pytest.raises(ValueError, match="retained_above_deposit"):
        settle(0, 500, 0, retained=500.01)
    with pytest.raises(ValueError, match="negative"):
        settle(0, 500, 0, retained=-1)
    with pytest.raises(ValueError, match="negative"):
        settle(0, 500, 0, debt=-1)
