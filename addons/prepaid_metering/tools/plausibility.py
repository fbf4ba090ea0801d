"""Is a new counter value money, or suspect?

The largest credible delta since the last accepted reading is the meter's
rated maximum demand (kW, or m³/h for water) x the hours elapsed x a margin,
never less than what one minute at that demand allows plus a rounding floor
(two readings a second apart must not be flagged by the last digit).

A value above it, a drop that is no clean rollover (or a rollover whose delta
is itself above it), a negative value, NaN/+-Inf or an absurdly large value is
*suspect*.  While a suspect reading is pending, each new value is compared with
both the last accepted value and the pending suspect one: it clears the
suspect when it continues from the accepted value (the spike came back down),
and is suspect too when it continues from the suspect value (a permanent jump:
someone must accept it).  "Continues" means a credible step; when both are
credible, the smaller step wins.

Plain Python: no Odoo import; cheap enough to run on every reading.
"""

from datetime import datetime
from functools import lru_cache, partial
from typing import NamedTuple

from .counters import DROP, JUMP, NORMAL, PLAUSIBLE, ROLLOVER, classify

INVALID = "invalid"
CONTINUED = "continued"
SUSPECT_KINDS = frozenset({JUMP, DROP, INVALID, CONTINUED})
__all__ = [
    "CONTINUED",
    "DROP",
    "INVALID",
    "JUMP",
    "NORMAL",
    "ROLLOVER",
    "SUSPECT_KINDS",
    "Reference",
    "Rule",
    "Verdict",
    "assess",
    "rule_for",
    "storable",
]

# Shortest interval the limit is computed for, in hours (one minute).
MIN_HOURS = 1 / 60
# Added to every limit, in the counter's unit: the last digit of a register.
FLOOR = 0.01
# Counter values at or above this are garbage (and would not display).
MAX_VALUE = 1e12


class Reference(NamedTuple):
    """A counter value and when it was read."""

    value: float
    at: datetime


class Rule(NamedTuple):
    """How a meter's counter is judged."""

    rate: float  # rated maximum demand, counter units per hour
    margin: float  # x the rate, e.g. 1.5
    wrap: float | None = None  # where the register wraps to zero

    def limit(self, since, at):
        """Largest credible delta between ``since`` and ``at``."""
        hours = (at - since).total_seconds() / 3600.0
        return (
            self.rate * self.margin * (hours if hours > MIN_HOURS else MIN_HOURS)
            + FLOOR
        )


# A meter's Rule, built once per (rate, margin, wrap) instead of per reading.
rule_for = lru_cache(maxsize=1024)(Rule)


class Verdict(NamedTuple):
    """Outcome of :func:`assess`.

    ``delta`` is counted from the last accepted value (meaningful when the
    kind is not suspect); ``limit`` is the credible maximum it was held to
    (the one-minute minimum when the delta is below it).
    """

    kind: str
    delta: float
    limit: float

    @property
    def suspect(self):
        return self.kind in SUSPECT_KINDS


FIRST = Verdict(NORMAL, 0.0, 0.0)
# tuple.__new__ with the class: a Verdict without NamedTuple's Python-level
# constructor (this runs for every reading)
_verdict = partial(tuple.__new__, Verdict)
BAD_VALUE = Verdict(INVALID, 0.0, 0.0)


def storable(value):
    """True for a finite, non-negative value below ``MAX_VALUE``
    (False for NaN: every comparison with it is False)."""
    return 0.0 <= value < MAX_VALUE


def assess(current, at, previous, since, rule, pending=None):
    """Judge the counter value ``current`` read at ``at``.

    :param previous: last accepted value (``None``: first reading)
    :param since: when ``previous`` was read
    :param rule: the meter's :class:`Rule`
    :param pending: latest pending suspect :class:`Reference`, or ``None``
    :returns: a :class:`Verdict`
    """
    if not 0.0 <= current < MAX_VALUE:
        return BAD_VALUE
    if previous is None:
        return FIRST
    if pending is None and current >= previous:
        # The usual case, without the calls of the general one: a rise within
        # the one-minute minimum needs no clock.
        delta = round(current - previous, 4)
        limit = rule.rate * rule.margin * MIN_HOURS + FLOOR
        if delta > limit:
            limit = rule.limit(since, at)
        return _verdict((NORMAL if delta <= limit else JUMP, delta, limit))
    limit = rule.limit(since, at)
    step = classify(previous, current, limit, rule.wrap)
    if pending is not None:
        from_pending = classify(
            pending.value, current, rule.limit(pending.at, at), rule.wrap
        )
        if from_pending.kind in PLAUSIBLE and (
            step.kind not in PLAUSIBLE or from_pending.delta < step.delta
        ):
            return Verdict(CONTINUED, step.delta, limit)
    return Verdict(step.kind, step.delta, limit)
