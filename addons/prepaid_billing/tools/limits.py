"""Load and energy limits enforced by the server (plain Python, no Odoo import).

A power limit is broken when the demand of the last ``polls`` readings of a
meter is above it (one high reading is a motor starting, not a breach); the
supply is then cut for a while and restored. A daily energy limit is broken
when the energy of the local calendar day is above it; the supply stays cut
until the next local midnight.
"""

from datetime import datetime, time, timedelta

import pytz


def power_breached(demands_kw, limit_kw, polls):
    """Whether the newest ``polls`` demands (kW, newest first) are all above
    ``limit_kw``; no limit (0) or fewer readings than ``polls`` is no breach."""
    if not limit_kw or limit_kw <= 0 or polls < 1 or len(demands_kw) < polls:
        return False
    return all(
        demand is not None and demand > limit_kw for demand in demands_kw[:polls]
    )


def energy_breached(energy_kwh, limit_kwh):
    """Whether a day's ``energy_kwh`` is above the daily ``limit_kwh`` (0: none)."""
    return bool(limit_kwh and limit_kwh > 0 and energy_kwh > limit_kwh)


def next_local_midnight(local_day, tz_name):
    """The UTC time (naive, like Odoo's datetimes) at which the local calendar
    day after ``local_day`` begins in ``tz_name``."""
    tz = pytz.timezone(tz_name or "UTC")
    midnight = tz.localize(datetime.combine(local_day + timedelta(days=1), time()))
    return midnight.astimezone(pytz.utc).replace(tzinfo=None)


def local_day(utc_naive, tz_name):
    """The local calendar day of the naive UTC time ``utc_naive``."""
    tz = pytz.timezone(tz_name or "UTC")
    return pytz.utc.localize(utc_naive).astimezone(tz).date()
