"""Cut a rebuild of the daily use into calls of bounded size.

A rebuild call (``prepaid.daily.usage._rebuild``) reads every reading of its
meters and days into memory at once; at the default 5-minute polling one
meter-day is 288 readings. A piece holds at most ``meters`` meters and about
``meter_days`` meter-days: the more meters, the fewer days, never less than
one day. Days are independent (a day's sums come from that day's readings
only), so the pieces together rebuild exactly the whole range.

Plain Python (no Odoo import).
"""

from datetime import date, timedelta
from typing import NamedTuple

METERS_PER_PIECE = 500
METER_DAYS_PER_PIECE = 500


class Piece(NamedTuple):
    """One rebuild call: these meters, these local days (inclusive)."""

    meter_ids: list
    date_from: date
    date_to: date


def pieces(
    meter_ids,
    date_from,
    date_to,
    meters=METERS_PER_PIECE,
    meter_days=METER_DAYS_PER_PIECE,
):
    """The :class:`Piece` calls that rebuild ``meter_ids`` over ``date_from``
    .. ``date_to`` (inclusive), meter by meter chunk, oldest days first."""
    if meters < 1 or meter_days < 1:
        raise ValueError("a piece holds at least one meter and one day")
    meter_ids = list(meter_ids)
    for start in range(0, len(meter_ids), meters):
        chunk = meter_ids[start : start + meters]
        span = timedelta(days=max(1, meter_days // len(chunk)) - 1)
        day = date_from
        while day <= date_to:
            end = min(date_to, day + span)
            yield Piece(chunk, day, end)
            day = end + timedelta(days=1)
