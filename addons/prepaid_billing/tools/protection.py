"""Protection windows: times when supply must not be cut off for lack of money.

Sites commonly forbid cutting a tenant off at night, at weekends or on public
holidays (nobody could recharge and get supply back).  A cut-off that falls in
such a window is deferred to :func:`next_unprotected`.  All times are local
wall-clock times of the site.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

SECONDS_PER_DAY = 24 * 3600

# Each step of next_unprotected moves to the next midnight or night end, so a
# year of back-to-back holidays needs fewer than 800 steps; more means rules
# that never leave a gap.
_MAX_STEPS = 1000


def _hour_seconds(hours, what):
    if isinstance(hours, bool) or not isinstance(hours, int | float):
        raise ValueError(f"The {what} must be an hour between 0 and 24.")
    seconds = round(hours * 3600)
    if not 0 <= seconds <= SECONDS_PER_DAY:
        raise ValueError(f"The {what} must be an hour between 0 and 24.")
    return seconds


@dataclass(frozen=True)
class ProtectionRules:
    """When a cut-off must wait.

    :param night_start: hour the night window opens (e.g. 22), or None
    :param night_end: hour it closes, exclusive (e.g. 7); a start after the
        end wraps over midnight (22 → 7 protects 22:00–07:00)
    :param weekend_days: protected weekdays, 0 = Monday … 6 = Sunday
    :param holidays: protected dates (the whole local day)
    """

    night_start: float | None = None
    night_end: float | None = None
    weekend_days: frozenset[int] = frozenset()
    holidays: frozenset[date] = frozenset()

    def __post_init__(self):
        object.__setattr__(self, "weekend_days", frozenset(self.weekend_days))
        object.__setattr__(self, "holidays", frozenset(self.holidays))
        if (self.night_start is None) != (self.night_end is None):
            raise ValueError("Give both the night start and the night end, or none.")
        if self.night_start is not None:
            start = _hour_seconds(self.night_start, "night start") % SECONDS_PER_DAY
            end = _hour_seconds(self.night_end, "night end") % SECONDS_PER_DAY
            if start == end:
                raise ValueError(
                    "The night window starts and ends at the same time; leave "
                    "both empty for no night protection."
                )
        if not self.weekend_days <= frozenset(range(7)):
            raise ValueError("Weekend days are numbers from 0 (Monday) to 6 (Sunday).")


def _night_seconds(rules):
    """Return the night window as (start, end) seconds of the day."""
    return (
        _hour_seconds(rules.night_start, "night start") % SECONDS_PER_DAY,
        _hour_seconds(rules.night_end, "night end"),
    )


def _seconds_of_day(when):
    return when.hour * 3600 + when.minute * 60 + when.second


def _in_night(rules, when):
    if rules.night_start is None:
        return False
    start, end = _night_seconds(rules)
    now = _seconds_of_day(when)
    if start < end:
        return start <= now < end
    return now >= start or now < end


def _day_protected(rules, when):
    return when.weekday() in rules.weekend_days or when.date() in rules.holidays


def is_protected(rules, when_local):
    """Return True if a cut-off must not run at local time ``when_local``."""
    return _day_protected(rules, when_local) or _in_night(rules, when_local)


def next_unprotected(rules, when_local):
    """Return the first moment at or after ``when_local`` when a cut-off may run.

    ``when_local`` itself if it is not protected; otherwise the end of the
    night window or the midnight after a weekend day or holiday, whichever
    comes first and is itself unprotected.

    :raises ValueError: if the rules protect every moment (e.g. all seven
        days are weekend days)
    """
    if len(rules.weekend_days) == 7:
        raise ValueError("Every weekday is protected; a cut-off could never run.")
    moment = when_local
    for _step in range(_MAX_STEPS):
        if not is_protected(rules, moment):
            return moment
        midnight = datetime.combine(moment.date(), time(), tzinfo=moment.tzinfo)
        if _day_protected(rules, moment):
            moment = midnight + timedelta(days=1)
            continue
        _start, end = _night_seconds(rules)
        night_end = midnight + timedelta(seconds=end)
        if night_end <= moment:
            night_end += timedelta(days=1)
        moment = night_end
    raise ValueError("The protection rules leave no time for a cut-off.")
