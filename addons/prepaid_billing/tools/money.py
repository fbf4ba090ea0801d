"""Money arithmetic on :class:`decimal.Decimal`.

Binary floats cannot hold 0.10 exactly, and a ledger that adds thousands of
small charges would drift; every amount here is therefore a ``Decimal`` and
floats are converted through their shortest text form (``0.1`` becomes
``Decimal("0.1")``, not ``0.1000000000000000055...``).

Rounding is *half up* in :mod:`decimal`'s sense (``ROUND_HALF_UP``): a tie goes
away from zero, so ``0.005`` becomes ``0.01`` and ``-0.005`` becomes ``-0.01``.
That is what tenants and accountants expect from a receipt, unlike the banker's
rounding of Python's ``round``.
"""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from fractions import Fraction
from functools import lru_cache

ZERO = Decimal(0)
ONE = Decimal(1)
CENT = Decimal("0.01")


def to_decimal(value):
    """Return ``value`` as a finite ``Decimal``.

    Floats go through ``repr`` (their shortest round-trip text) so that
    ``to_decimal(0.1) == Decimal("0.1")``; ints and numeric strings are exact.

    :raises TypeError: for anything that is not a number or a string
        (``bool`` included: ``True`` is almost always a bug, not 1 kWh)
    :raises ValueError: for text that is not a number, NaN or infinity
    """
    kind = type(value)  # the exact types first: no isinstance chain
    if kind is Decimal:
        result = value
    elif kind is float:
        result = Decimal(repr(value))
    elif kind is int:
        result = Decimal(value)
    elif isinstance(value, Decimal):
        result = value
    elif isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"Expected a number, got {value!r}")
    elif isinstance(value, int):
        result = Decimal(value)
    else:
        text = repr(value) if isinstance(value, float) else value.strip()
        try:
            result = Decimal(text)
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a number") from None
    if not result.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    return result


def _check_step(rounding):
    step = to_decimal(rounding)
    if step <= ZERO:
        raise ValueError(f"The rounding step must be positive, got {rounding!r}")
    return step


@lru_cache(maxsize=64)
def rounder(rounding=CENT):
    """Return a function that rounds a ``Decimal`` half up to ``rounding``.

    The step may be a power of ten (``0.01``, ``1``) or a cash-rounding step
    such as ``0.05``.  The returned function takes a ``Decimal`` and does no
    conversion, which keeps it cheap on hot paths (pricing a reading).
    """
    step = _check_step(rounding)
    exact_step = step.normalize()
    _sign, digits, exponent = exact_step.as_tuple()
    # quantize() is the cheap path but only rounds to 10**-n (n >= 0); steps
    # like 0.05 or 10 are rounded as a count of steps instead.
    if digits == (1,) and exponent <= 0:
        return lambda amount: amount.quantize(exact_step, ROUND_HALF_UP)
    return lambda amount: (amount / step).quantize(ONE, ROUND_HALF_UP) * step


def round_money(amount, rounding=CENT):
    """Round ``amount`` half up (ties away from zero) to a multiple of ``rounding``.

    ``round_money("2.675") == Decimal("2.68")``;
    ``round_money("1.025", Decimal("0.05")) == Decimal("1.05")``.
    """
    return rounder(rounding)(to_decimal(amount))


def round_parts(values, rounding=CENT):
    """Round each of ``values`` to ``rounding`` so that the rounded parts add up
    to their rounded sum: the cents a table shows add up to its total.

    Each part moves by less than one step from its exact value (largest
    remainder); parts of mixed signs are rounded one by one (no total to keep).
    """
    exact = [to_decimal(value) for value in values]
    if not any(exact) or any(value < 0 for value in exact):
        return [round_money(value, rounding) for value in exact]
    return split_evenly(round_money(sum(exact, ZERO), rounding), exact, rounding)


def split_evenly(total, weights, rounding=CENT):
    """Split ``total`` in proportion to ``weights``; the parts sum exactly to it.

    Each part is first floored to the rounding step; the steps still missing go
    one each to the parts with the largest remainders (largest-remainder
    method), ties going to the lower index so the result is reproducible.  A
    zero weight always gets zero.  The arithmetic uses fractions, so weights
    like 1/3 do not lose a cent to Decimal division.

    :param total: amount to split, already a multiple of ``rounding``
        (round it first: a sub-step remainder could not be given to anyone);
        negative totals (credits) are split like positive ones
    :param weights: non-negative numbers, at least one of them positive
    :param rounding: the smallest unit handed out (``0.01``, or ``0.05``...)
    :returns: list of ``Decimal``, one per weight, in the same order
    :raises ValueError: if the total is not a multiple of the step, a weight
        is negative or no weight is positive
    """
    total = to_decimal(total)
    step = _check_step(rounding)
    units, leftover = divmod(total, step)
    if leftover:
        raise ValueError(
            f"Cannot split {total} exactly in steps of {step}; round it first."
        )
    fractions = [Fraction(to_decimal(weight)) for weight in weights]
    if any(weight < 0 for weight in fractions):
        raise ValueError("Weights must not be negative.")
    weight_sum = sum(fractions)
    if weight_sum == 0:
        raise ValueError("At least one weight must be positive.")
    sign = -1 if units < 0 else 1
    units = abs(int(units))
    shares = []
    remainders = []
    for index, weight in enumerate(fractions):
        exact = units * weight / weight_sum
        floor = exact.numerator // exact.denominator
        shares.append(floor)
        remainders.append((exact - floor, index))
    missing = units - sum(shares)
    remainders.sort(key=lambda item: (-item[0], item[1]))
    for _remainder, index in remainders[:missing]:
        shares[index] += 1
    return [step * (sign * share) for share in shares]
