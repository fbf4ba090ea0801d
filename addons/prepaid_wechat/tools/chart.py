"""The numbers of a portal bar chart: a round top for the value axis, its
ticks, and each bar's height in percent of the top (plain Python)."""

from math import floor, log10

# Round steps of an axis: 1, 2, 2.5 or 5 times a power of ten.
STEPS = (1.0, 2.0, 2.5, 5.0, 10.0)


def nice_step(value, ticks):
    """The smallest round step such that ``ticks`` steps reach ``value``."""
    raw = value / ticks
    power = 10 ** floor(log10(raw))
    return next(step * power for step in STEPS if step * power >= raw * (1 - 1e-9))


def axis(values, ticks=(4, 5, 3)):
    """``(top, tick_values)``: the lowest round top at or above the largest
    value that one of the ``ticks`` counts of round steps reaches, and the
    tick values from 0 to that top; (1.0, [0, 0.25, .., 1]) when nothing is
    above zero."""
    largest = max([v for v in values if v > 0], default=0.0)
    if not largest:
        step, count = 0.25, 4
    else:
        step, count = min(
            ((nice_step(largest, n), n) for n in ticks), key=lambda s: s[0] * s[1]
        )
    return step * count, [round(step * i, 10) for i in range(count + 1)]


def tick_text(value, step):
    """``value`` with as many decimals as the ``step`` of its axis needs."""
    decimals = 0
    while decimals < 3 and abs(step * 10**decimals - round(step * 10**decimals)) > 1e-9:
        decimals += 1
    return f"{value:.{decimals}f}"


def bars(labels, values, label_every=1):
    """The chart of ``values`` (one per label, oldest first): a dict ``top``,
    ``ticks`` (texts from 0 up) and ``points`` (``label``, ``value``,
    ``percent`` of the top, ``show_label``: every ``label_every``-th label,
    counted back from the last one so that the latest period is named)."""
    top, tick_values = axis(values)
    step = tick_values[1]
    last = len(values) - 1
    return {
        "top": top,
        "ticks": [tick_text(v, step) for v in tick_values],
        "points": [
            {
                "label": label,
                "value": value,
                "percent": round(100 * max(value, 0.0) / top, 1),
                "show_label": (last - index) % label_every == 0,
            }
            for index, (label, value) in enumerate(zip(labels, values, strict=True))
        ],
    }
