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
