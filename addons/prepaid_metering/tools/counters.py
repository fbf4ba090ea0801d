"""Compare a new cumulative counter value with a previous one.

Meters count energy (or volume) in a register of fixed width.  A value lower
than the last one is never consumption by itself: it is a counter that wrapped
around (believed only when it is clean, see ``WRAP_BAND``) or something to
look at (a meter swapped without telling anyone, a wrong byte order, bus
noise).  A rise larger than ``limit`` is not believed either.
"""

from typing import NamedTuple

NORMAL = "normal"
ROLLOVER = "rollover"
JUMP = "jump"
DROP = "drop"
# The kinds that are consumption.
PLAUSIBLE = frozenset({NORMAL, ROLLOVER})

# A wrap is only believed when the previous value was in the top tenth of the
# register's range and the new one in the bottom tenth: anything else that goes
# down is a drop.
WRAP_BAND = 0.1


class CounterStep(NamedTuple):
    """Outcome of comparing two counter values.

    ``delta`` is what the step would count: across the wrap for a rollover,
    the rise for a jump (not credible, but kept to say by how much), the
    (negative) difference for a drop.
    """

    kind: str
    delta: float


def classify(previous, current, limit, wrap=None, digits=4):
    """Return the step from ``previous`` to ``current`` and its kind.

    :param previous: last accepted value
    :param current: new value
    :param limit: largest credible delta (``float("inf")``: no limit)
    :param wrap: value at which the counter wraps to zero (``None``: never)
    :param digits: rounding of the delta, to keep float noise out of sums
    """
    if current >= previous:
        delta = round(current - previous, digits)
        return CounterStep(NORMAL if delta <= limit else JUMP, delta)
    if wrap and previous >= wrap * (1 - WRAP_BAND) and current <= wrap * WRAP_BAND:
        delta = round(wrap - previous + current, digits)
        return CounterStep(ROLLOVER if delta <= limit else JUMP, delta)
    return CounterStep(DROP, round(current - previous, digits))
