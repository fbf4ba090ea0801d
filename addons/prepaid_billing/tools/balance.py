"""What a batch of balance changes calls for: alarm levels, cut-offs and
restores (plain Python, no Odoo import).

The billing engine reads the accounts it touched in one statement
(:class:`AccountRow`) and :func:`decide` says, for all of them at once, which
alarm notices to raise or reset, which levels to write, which accounts to cut
off and which to restore. Amounts are compared after rounding their
difference to the currency's step, like Odoo's ``compare_amounts``.
"""

from typing import NamedTuple

from .money import ZERO, rounder, to_decimal

CUT_STATES = frozenset({"cut_off", "cut_pending", "cut_failed"})


class AccountRow(NamedTuple):
    id: int
    balance: object  # Decimal, float or numeric text
    alarm_level: int
    credit_limit: object
    supply_state: str
    # the three alarm thresholds in force (the account's or its company's)
    alarm1: object
    alarm2: object
    alarm3: object
    rounding: object  # the currency's rounding step
    # emergency credit taken and not yet repaid: usable below zero on top of
    # the allowed credit
    emergency: object = 0
    # the balance went below zero since the emergency credit was taken
    emergency_used: bool = False
    # cut off for a power or energy limit: only the limit's own restore
    # switches it on again, never a balance
    limit_cut: bool = False


class Decisions(NamedTuple):
    raise_events: list  # (account id, "alarm<n>")
    resets: list  # (account id, new level)
    by_level: dict  # new level -> [account ids]
    to_cut: list  # account ids
    to_restore: list  # account ids
    emergency_in_use: list  # account ids now living on their emergency credit
    emergency_repaid: list  # account ids whose emergency credit is repaid


def thresholds(override, own, company):
    """The three alarm thresholds in force for an account: its ``own`` when
    it overrides them (``override``), else its ``company``'s."""
    return tuple(own if override else company)


def compare(first, second, rounding):
    """-1, 0 or 1: ``first`` against ``second``, equal when their difference
    rounds to zero at ``rounding``."""
    difference = rounder(to_decimal(rounding))(to_decimal(first) - to_decimal(second))
    return (difference > ZERO) - (difference < ZERO)


def alarm_level(balance, thresholds, rounding):
    """The alarm level (0-3) ``balance`` reaches: the number of the last
    threshold it is at or below."""
    level = 0
    for number, threshold in enumerate(thresholds, start=1):
        if compare(balance, threshold, rounding) <= 0:
            level = number
    return level


def restores(balance, rounding):
    """Whether a cut supply comes back at ``balance``: above zero, whatever
    credit was allowed before the cut."""
    return compare(balance, 0, rounding) > 0


def topup_to_restore(balance, rounding):
    """The smallest top-up (a ``Decimal`` at ``rounding``) after which
    :func:`restores` holds; zero when it already does."""
    step = to_decimal(rounding)
    if restores(balance, rounding):
        return ZERO
    return rounder(step)(step - to_decimal(balance))


def restores_with(balance, emergency, credit_limit, rounding):
    """Whether a cut supply comes back at ``balance``: above zero (see
    :func:`restores`), or, with emergency credit taken and not used yet,
    above the credit it gives (taken after a cut-off, it switches the supply
    on again; once used up, only a balance above zero restores)."""
    if restores(balance, rounding):
        return True
    emergency = to_decimal(emergency)
    if emergency <= ZERO:
        return False
    floor = -(to_decimal(credit_limit) + emergency)
    return compare(balance, floor, rounding) > 0


def _sign(value):
    return (value > ZERO) - (value < ZERO)


class _Amounts(dict):
    """``to_decimal`` of the amounts that repeat over a batch's accounts
    (thresholds, credit limits, rounding steps), each converted once."""

    def __missing__(self, value):
        amount = self[value] = to_decimal(value)
        return amount


def decide(rows):
    """:class:`Decisions` for the :class:`AccountRow` ``rows``.

    The same rules as :func:`alarm_level`, :func:`restores_with` and
    :func:`compare`, with each amount of a row converted once (a steady
    billing batch decides for ten thousand accounts).
    """
    decisions = Decisions([], [], {}, [], [], [], [])
    rounders = {}
    amounts = _Amounts()
    for row in rows:
        round_ = rounders.get(row.rounding)
        if round_ is None:
            round_ = rounders[row.rounding] = rounder(to_decimal(row.rounding))
        balance = to_decimal(row.balance)
        level = _level(row, balance, round_, amounts)
        if level > row.alarm_level:
            decisions.raise_events.append((row.id, f"alarm{level}"))
        elif level < row.alarm_level:
            decisions.resets.append((row.id, level))
        if level != row.alarm_level:
            decisions.by_level.setdefault(level, []).append(row.id)
        emergency = amounts[row.emergency or 0]
        credit_limit = amounts[row.credit_limit]
        exhausted = _sign(round_(balance + credit_limit + emergency)) <= 0
        if emergency > ZERO:
            below = _sign(round_(balance)) < 0
            if below and not row.emergency_used:
                decisions.emergency_in_use.append(row.id)
            elif not below and row.emergency_used:
                decisions.emergency_repaid.append(row.id)
        if exhausted and row.supply_state == "on":
            decisions.to_cut.append(row.id)
        elif (
            row.supply_state in CUT_STATES
            and not row.limit_cut
            and _restores(row, balance, credit_limit, emergency, round_)
        ):
            decisions.to_restore.append(row.id)
    return decisions


def _level(row, balance, round_, amounts):
    """:func:`alarm_level` of ``row`` at ``balance`` (converted)."""
    level = 0
    for number, threshold in enumerate((row.alarm1, row.alarm2, row.alarm3), 1):
        if _sign(round_(balance - amounts[threshold])) <= 0:
            level = number
    return level


def _restores(row, balance, credit_limit, emergency, round_):
    """:func:`restores_with` of ``row`` (amounts converted): above zero, or
    above the emergency credit taken and not used yet."""
    if _sign(round_(balance)) > 0:
        return True
    usable = ZERO if row.emergency_used else emergency
    return usable > ZERO and _sign(round_(balance + credit_limit + usable)) > 0
