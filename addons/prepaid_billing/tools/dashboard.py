"""Shaping of the energy dashboard's figures (plain Python, no Odoo import).

The model sums the daily aggregates, the states of meters and accounts and the
wallet lines with a few grouped queries; this module turns local months into
bounds, the grouped rows into what the client draws, and compares the months.
"""

from datetime import date, datetime, time, timedelta
from typing import NamedTuple

import pytz


class Months(NamedTuple):
    """First days of last month, this month and next month (local dates)."""

    last: date
    this: date
    next: date


def months_of(today):
    """The months around ``today`` (see ``same_days_end`` for what of last
    month this month is compared with)."""
    this = date(today.year, today.month, 1)
    index = today.year * 12 + today.month - 1
    last = date((index - 1) // 12, (index - 1) % 12 + 1, 1)
    following = date((index + 1) // 12, (index + 1) % 12 + 1, 1)
    return Months(last, this, following)


def same_days_end(today):
    """The end (exclusive) of the days of last month that match this month so
    far: on 6 December, 1 to 6 November; on 31 March, all of February. The
    dashboard compares like with like, never a part month with a whole one."""
    months = months_of(today)
    return min(months.last + timedelta(days=today.day), months.this)


def utc_start(day, tzname):
    """Naive UTC datetime of local midnight starting ``day`` in ``tzname``."""
    zone = pytz.timezone(tzname or "UTC")
    local = zone.localize(datetime.combine(day, time.min), is_dst=False)
    return local.astimezone(pytz.utc).replace(tzinfo=None)


def change_pct(current, previous):
    """Percent change from ``previous``; None when there is nothing to compare
    with (no figure, or zero, last month)."""
    if not previous:
        return None
    return round((current - previous) * 100.0 / previous, 1)


class Use(NamedTuple):
    """What a place used and cost over a period."""

    kwh: float = 0.0
    m3: float = 0.0
    amount: float = 0.0


def period(this, last):
    """Figures of this month and last month, with their changes in percent."""
    return {
        "this": this._asdict(),
        "last": last._asdict(),
        "change": {
            key: change_pct(getattr(this, key), getattr(last, key))
            for key in Use._fields
        },
    }


def by_location(rows, no_building, no_floor):
    """Consumption by building and by floor from ``rows`` of
    ``(building_id, building_name, floor_id, floor_name, Use)``.

    Buildings and floors come out largest kWh first; a floor's label names its
    building (floors of two buildings are often both called "F1").
    """
    buildings = {}
    floors = []
    for building_id, building_name, floor_id, floor_name, use in rows:
        building = buildings.setdefault(
            building_id,
            {
                "id": building_id or False,
                "name": building_name or no_building,
                "kwh": 0.0,
                "m3": 0.0,
                "amount": 0.0,
            },
        )
        for key in Use._fields:
            building[key] += getattr(use, key)
        floors.append(
            {
                "id": floor_id or False,
                "building_id": building_id or False,
                "name": f"{building['name']} / {floor_name or no_floor}",
                **use._asdict(),
            }
        )
    order = lambda item: (-item["kwh"], -item["m3"], item["name"])  # noqa: E731
    return {
        "buildings": sorted(buildings.values(), key=order),
        "floors": sorted(floors, key=order),
    }


def counts(selection, grouped):
    """One entry per state of ``selection`` (value, label pairs) in its order,
    with the count from ``grouped`` (state -> count), zero when missing."""
    return [
        {"state": state, "label": label, "count": grouped.get(state, 0)}
        for state, label in selection
    ]
