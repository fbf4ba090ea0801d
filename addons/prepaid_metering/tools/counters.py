"""Classify a new cumulative counter value against the previous one.

Meters count energy (or volume) in a register of fixed width.  A value lower
than the last one is never consumption by itself: it is a counter that wrapped
around, a meter that was replaced (counter restarted near zero) or an error.
"""

from dataclasses import dataclass

NORMAL = "normal"
ROLLOVER = "rollover"
REPLACEMENT = "replacement"
LOWER = "lower"

# A wrap is only believed when the previous value was in the top tenth of the
# register's range and the new one in the bottom tenth: anything else that goes
# down is a replacement (restart near zero) or an error.
WRAP_BAND = 0.1


@dataclass(frozen=True)
class CounterStep:
    """Outcome of comparing two counter values."""

    kind: str
    delta: float


def classify(previous, current, wrap=None, replacement_max=10.0, digits=4):
    """Return the consumption between two cumulative values and its kind.

    :param previous: last accepted value (``None`` for the first reading)
    :param current: new value
    :param wrap: value at which the counter wraps to zero (``None``: never)
    :param replacement_max: a value at or below this, after a drop, is taken
        as a new meter counting from zero
    :param digits: rounding of the delta, to keep float noise out of sums
    """
    if previous is None:
        return CounterStep(NORMAL, 0.0)
    if current >= previous:
        return CounterStep(NORMAL, round(current - previous, digits))
    if wrap and previous >= wrap * (1 - WRAP_BAND) and current <= wrap * WRAP_BAND:
        return CounterStep(ROLLOVER, round(wrap - previous + current, digits))
    if current <= replacement_max:
        return CounterStep(REPLACEMENT, round(current, digits))
    return CounterStep(LOWER, 0.0)
