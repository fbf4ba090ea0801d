"""The final settlement of a tenancy, in plain Python.

At move-out everything the tenant and the landlord owe each other becomes one
figure: the wallet balance (negative: arrears) plus the deposit held, less
the part of the deposit retained (damages, cleaning), the invoices still
unpaid and the debt owed (the account's debt ledger). A positive result is
paid back to the tenant, a negative one is owed by the tenant (an invoice).
Nothing is left behind: the wallet, the deposit and the debt all end at
zero.
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
    debt: Decimal = Decimal(0)  # the debt owed outside the wallet
    retained: Decimal = Decimal(0)  # the part of the deposit kept

    @property
    def credit(self):
        """The wallet's money, when it has some."""
        return max(self.wallet, Decimal(0))

    @property
    def arrears(self):
        """What the wallet is overdrawn by."""
        return max(-self.wallet, Decimal(0))

    @property
    def returned(self):
        """The deposit that goes back to the tenant's side (into the wallet)."""
        return self.deposit - self.retained

    @property
    def net(self):
        """Refund (positive) or amount owed (negative)."""
        return self.refund - self.owed


def settle(wallet, deposit, unpaid, rounding=CENT, debt=0, retained=0):
    """The settlement of a wallet, a deposit held, unpaid invoices, a debt
    owed and the part of the deposit ``retained``.

    :raises ValueError: a negative deposit, unpaid amount, debt or retention
        (``"negative"``), or a retention above the deposit held
        (``"retained_above_deposit"``)
    """
    wallet = to_money(wallet, rounding)
    deposit = to_money(deposit, rounding)
    unpaid = to_money(unpaid, rounding)
    debt = to_money(debt, rounding)
    retained = to_money(retained, rounding)
    if min(deposit, unpaid, debt, retained) < 0:
        raise ValueError("negative")
    if retained > deposit:
        raise ValueError("retained_above_deposit")
    net = wallet + deposit - retained - unpaid - debt
    zero = Decimal(0)
    return Settlement(
        wallet, deposit, unpaid, max(net, zero), max(-net, zero), debt, retained
    )


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
