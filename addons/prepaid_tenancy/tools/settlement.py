"""The final settlement of a tenancy, in plain Python.

At move-out everything the tenant and the landlord owe each other becomes one
figure: the wallet balance (negative: arrears) plus the deposit held, minus
the invoices still unpaid. A positive result is paid back to the tenant, a
negative one is owed by the tenant (an invoice). Nothing is left behind: the
wallet and the deposit both end at zero.
"""

from decimal import ROUND_HALF_UP, Decimal
from typing import NamedTuple

CENT = Decimal("0.01")


def to_money(value, rounding=CENT):
    """``value`` (float, int, str or Decimal) rounded half up to ``rounding``."""
    if isinstance(value, float):
        value = repr(value)
    step = Decimal(str(rounding))
    return Decimal(value).quantize(step, rounding=ROUND_HALF_UP)


class Settlement(NamedTuple):
    """Every figure of a settlement; ``refund`` and ``owed`` are never both
    positive."""

    wallet: Decimal  # the balance as it stands, negative when overdrawn
    deposit: Decimal  # the deposit held for the tenancy
    unpaid: Decimal  # open invoices of the tenancy (bills, deposit invoice)
    refund: Decimal  # paid back to the tenant
    owed: Decimal  # invoiced to the tenant

    @property
    def credit(self):
        """The wallet's money, when it has some."""
        return max(self.wallet, Decimal(0))

    @property
    def arrears(self):
        """What the wallet is overdrawn by."""
        return max(-self.wallet, Decimal(0))

    @property
    def net(self):
        """Refund (positive) or amount owed (negative)."""
        return self.refund - self.owed


def settle(wallet, deposit, unpaid, rounding=CENT):
    """The settlement of a wallet, a deposit held and unpaid invoices.

    :raises ValueError: a negative deposit or unpaid amount
    """
    wallet = to_money(wallet, rounding)
    deposit = to_money(deposit, rounding)
    unpaid = to_money(unpaid, rounding)
    if deposit < 0:
        raise ValueError(f"A deposit held cannot be negative, got {deposit}.")
    if unpaid < 0:
        raise ValueError(f"Unpaid invoices cannot be negative, got {unpaid}.")
    net = wallet + deposit - unpaid
    zero = Decimal(0)
    return Settlement(wallet, deposit, unpaid, max(net, zero), max(-net, zero))


def check_deposit_refund(amount, held, rounding=CENT):
    """Refuse a deposit refund that is not positive or more than is held.

    :raises ValueError: with the reason
    """
    amount = to_money(amount, rounding)
    held = to_money(held, rounding)
    if amount <= 0:
        raise ValueError("not_positive")
    if amount > held:
        raise ValueError("more_than_held")
    return amount
