"""Common-area apportionment: what to share and who pays which part.

A master meter measures a common area (corridors, lifts); its consumption,
optionally minus what the sub-meters measured themselves (loss allocation),
is priced and the amount is split over the members by a fixed ratio, their
room area or their own consumption in the period.  The split uses the
largest-remainder method (:func:`money.split_evenly`), so the parts add up to
the total to the cent.
"""

from decimal import Decimal
from typing import NamedTuple

from .money import CENT, ZERO, split_evenly, to_decimal

METHODS = ("ratio", "area", "consumption")
HUNDRED = Decimal(100)


class ApportionError(ValueError):
    """An apportionment that cannot be computed as configured."""


class Member(NamedTuple):
    """One payer of a common area: ``ratio`` in percent (ratio method),
    ``area_m2`` (area method), ``consumption`` in the period (consumption
    method and loss allocation)."""

    ratio: Decimal = ZERO
    area_m2: Decimal = ZERO
    consumption: Decimal = ZERO


def check_ratios(ratios):
    """Raise :class:`ApportionError` unless the percentages sum to 100 exactly
    and none is negative."""
    values = [to_decimal(ratio) for ratio in ratios]
    if any(value < ZERO for value in values):
        raise ApportionError("A ratio cannot be negative.")
    total = sum(values, ZERO)
    if total != HUNDRED:
        raise ApportionError(
            f"The ratios add up to {total.normalize():f} %, not 100 %; correct "
            "them so that the whole common area is paid for."
        )


def weights(method, members):
    """The weight of each member for ``method``."""
    if method not in METHODS:
        raise ApportionError(f"Unknown apportionment method {method!r}.")
    if not members:
        raise ApportionError("The apportionment has no member to share with.")
    if method == "ratio":
        check_ratios([member.ratio for member in members])
        return [to_decimal(member.ratio) for member in members]
    values = [
        to_decimal(member.area_m2 if method == "area" else member.consumption)
        for member in members
    ]
    if any(value < ZERO for value in values):
        raise ApportionError(f"A member's {_WHAT[method]} cannot be negative.")
    if not any(values):
        raise ApportionError(
            f"No member has any {_WHAT[method]}: there is nothing to share by."
        )
    return values


_WHAT = {"area": "room area", "consumption": "consumption in the period"}


def shared_quantity(master, members, loss_only):
    """The quantity to share: the master's consumption, or (loss allocation)
    what it measured beyond the members' own meters."""
    master = to_decimal(master)
    if master < ZERO:
        raise ApportionError("The master meter's consumption cannot be negative.")
    if not loss_only:
        return master
    subs = sum((to_decimal(member.consumption) for member in members), ZERO)
    if subs > master:
        raise ApportionError(
            f"The sub-meters used {subs.normalize():f}, more than the master meter's "
            f"{master.normalize():f}: there is no loss to share; check the "
            "meters or turn loss allocation off."
        )
    return master - subs


def split(total, method, members, rounding=CENT):
    """Split the money ``total`` over ``members``; the parts sum to ``total``.

    :returns: list of ``Decimal``, one per member, in order
    """
    return split_evenly(total, weights(method, members), rounding)
