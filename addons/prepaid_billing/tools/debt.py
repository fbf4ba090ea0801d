"""Debt recovery and emergency credit arithmetic (plain Python, no Odoo import).

A debt is money a tenant owes outside the wallet. It is recovered a little at
a time: a share of each top-up (with a minimum and a maximum per top-up)
and/or a fixed amount per local calendar day. The wallet never goes negative
because of a recovery: a top-up first fills the hole of a negative balance
(emergency credit or allowed credit), and only what is left of it is the base
of the share; a daily recovery takes at most the positive balance.

Every amount is a ``Decimal`` rounded half up to the currency's step.
"""

from datetime import date, timedelta
from typing import NamedTuple

from .money import ZERO, rounder, to_decimal

HUNDRED = to_decimal(100)


class RecoveryRule(NamedTuple):
    """How an account's debt is recovered (the account's own or its
    company's): ``percent`` of each top-up between ``minimum`` and
    ``maximum`` (0: no maximum), and ``daily`` per local day (0: none)."""

    percent: object
    minimum: object
    maximum: object
    daily: object


class TopUpSplit(NamedTuple):
    """What a top-up of ``amount`` does: ``hole`` fills a negative balance
    (the emergency credit used, repaid first), ``recovery`` goes to the
    debt, the rest stays in the wallet."""

    amount: object
    hole: object
    recovery: object


def check_rule(rule):
    """Refuse a rule that makes no sense; returns it with ``Decimal`` fields.

    :raises ValueError: a percentage outside 0-100, a negative amount, or a
        maximum below the minimum
    """
    percent, minimum, maximum, daily = (to_decimal(value) for value in rule)
    if not ZERO <= percent <= HUNDRED:
        raise ValueError("percent")
    if minimum < ZERO or maximum < ZERO or daily < ZERO:
        raise ValueError("negative")
    if maximum and maximum < minimum:
        raise ValueError("maximum")
    return RecoveryRule(percent, minimum, maximum, daily)


def top_up_split(amount, balance_before, debt, rule, rounding):
    """:class:`TopUpSplit` of a top-up of ``amount`` credited to a wallet at
    ``balance_before`` while ``debt`` is owed.

    The share is ``percent`` of what is left after the hole, raised to the
    ``minimum`` and lowered to the ``maximum``, and never more than the debt
    or than what is left (a top-up never lowers the wallet).
    """
    round_ = rounder(to_decimal(rounding))
    amount = to_decimal(amount)
    debt = max(to_decimal(debt), ZERO)
    rule = check_rule(rule)
    hole = min(max(-to_decimal(balance_before), ZERO), amount)
    left = amount - hole
    recovery = ZERO
    if debt > ZERO and left > ZERO and (rule.percent or rule.minimum):
        recovery = round_(left * rule.percent / HUNDRED)
        recovery = max(recovery, rule.minimum)
        if rule.maximum:
            recovery = min(recovery, rule.maximum)
        recovery = min(recovery, debt, left)
    return TopUpSplit(amount, hole, round_(recovery))


def daily_recoveries(last_day, today, balance, debt, rule, rounding):
    """``[(day, amount)]``: the daily recoveries due from the day after
    ``last_day`` up to ``today`` (local calendar days, inclusive), each at
    most the fixed amount, what is left of the debt and of the positive
    balance. Days with nothing to take are left out; the list stops when the
    debt is paid or the wallet is empty."""
    rule = check_rule(rule)
    round_ = rounder(to_decimal(rounding))
    balance = to_decimal(balance)
    debt = to_decimal(debt)
    if not rule.daily or not isinstance(today, date):
        return []
    day = last_day + timedelta(days=1) if last_day else today
    result = []
    while day <= today and debt > ZERO and balance > ZERO:
        amount = round_(min(rule.daily, debt, balance))
        if amount <= ZERO:
            break
        result.append((day, amount))
        debt -= amount
        balance -= amount
        day += timedelta(days=1)
    return result


def next_top_up_recovery(amount, balance, debt, rule, rounding):
    """What a top-up of ``amount`` would recover now (for the portal and the
    alarm messages): the ``recovery`` of :func:`top_up_split`."""
    return top_up_split(amount, balance, debt, rule, rounding).recovery
