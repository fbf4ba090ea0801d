"""How long raw readings are kept: the retention boundary of a site.

Readings are kept for a number of whole months counted in the site's local
calendar: on 10 March (local) with 25 months, the readings read before
10 February two years earlier, local midnight, may go. The boundary is a
local midnight, turned into the naive UTC time readings are stored in.
"""

from datetime import datetime, time

import pytz
from dateutil.relativedelta import relativedelta

#: The retention when the setting is missing or unreadable.
DEFAULT_MONTHS = 25


def months_setting(value):
    """The retention in months from a setting's text: ``DEFAULT_MONTHS``
    when empty, ``None`` when it is not a whole number of at least one month
    (nothing is removed then)."""
    if value in (None, False, ""):
        return DEFAULT_MONTHS
    try:
        months = int(str(value).strip())
    except ValueError:
        return None
    return months if months >= 1 else None


def first_kept_day(now_utc, tz, months):
    """The first local day whose readings are kept at ``now_utc`` (naive
    UTC) in the time zone ``tz``: the local date ``months`` months ago (the
    last day of the month when that month is shorter)."""
    zone = pytz.timezone(tz or "UTC")
    local_today = pytz.utc.localize(now_utc).astimezone(zone).date()
    return local_today - relativedelta(months=months)


def cutoff(now_utc, tz, months):
    """Naive UTC datetime before which readings are older than ``months``
    whole months at ``now_utc`` in ``tz``: local midnight of
    :func:`first_kept_day`."""
    zone = pytz.timezone(tz or "UTC")
    first_kept = first_kept_day(now_utc, tz, months)
    local_midnight = zone.localize(datetime.combine(first_kept, time.min))
    return local_midnight.astimezone(pytz.utc).replace(tzinfo=None)


def cutoffs(now_utc, zones, months):
    """``{tz: cutoff}`` for each time zone of ``zones``."""
    return {tz: cutoff(now_utc, tz, months) for tz in set(zones)}
