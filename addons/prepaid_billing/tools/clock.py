"""UTC to local wall-clock time, fast enough to call once per reading.

``pytz``'s ``localize(...).astimezone(...)`` costs a few microseconds and two
datetime objects per call; billing a million readings spends seconds there.
A :class:`LocalClock` remembers the offset of the last transition window it
saw (for Asia/Shanghai: since 1991, for a DST zone: half a year) and turns a
naive UTC datetime into naive local time with one comparison and one addition.
"""

import bisect
from datetime import datetime, timedelta

import pytz

_EPOCH_MIN = datetime.min
_EPOCH_MAX = datetime.max


class LocalClock:
    """Naive UTC -> naive local time of one IANA zone (``"Asia/Shanghai"``)."""

    __slots__ = ("zone", "_transitions", "_infos", "_low", "_high", "_offset")

    def __init__(self, tzname):
        self.zone = pytz.timezone(tzname or "UTC")
        # DstTzInfo zones list their transitions (naive UTC) and the offset
        # that starts at each; static zones (UTC, fixed offsets) have none.
        self._transitions = getattr(self.zone, "_utc_transition_times", None)
        self._infos = getattr(self.zone, "_transition_info", None)
        self._low = _EPOCH_MAX
        self._high = _EPOCH_MIN
        self._offset = timedelta(0)

    def _window(self, utc):
        if not self._transitions:
            self._low, self._high = _EPOCH_MIN, _EPOCH_MAX
            self._offset = self.zone.utcoffset(utc) or timedelta(0)
            return
        index = bisect.bisect_right(self._transitions, utc) - 1
        self._offset = self._infos[max(index, 0)][0]
        self._low = self._transitions[index] if index >= 0 else _EPOCH_MIN
        self._high = (
            self._transitions[index + 1]
            if index + 1 < len(self._transitions)
            else _EPOCH_MAX
        )

    def local(self, utc):
        """Local wall-clock time of the naive UTC datetime ``utc``."""
        if not self._low <= utc < self._high:
            self._window(utc)
        return utc + self._offset

    def offset_over(self, first, last):
        """The UTC offset of local time from ``first`` to ``last`` (naive
        UTC, ``first <= last``) when one offset applies to all of it (no
        transition in between), else None."""
        if not self._low <= first < self._high:
            self._window(first)
        return self._offset if last < self._high else None
