"""Shift this Python process's clock by PREPAID_CLOCK_OFFSET_H hours, ticking.

Used to run the suite "in the daytime" when the real clock is in the night:
freezegun (what the tests themselves use) started before anything else, with
tick=True so that time moves; the tests' own freeze_time blocks nest inside.
(Debian's libfaketime 0.9.10 cannot be used with Python 3.11: time.sleep fails
with EINVAL when the monotonic clock is not faked, and Event.wait hangs when
it is.)
"""

import datetime
import os

_offset = os.environ.get("PREPAID_CLOCK_OFFSET_H")
if _offset:
    from freezegun import freeze_time

    _start = datetime.datetime.now(datetime.timezone.utc).replace(
        tzinfo=None
    ) + datetime.timedelta(hours=float(_offset))
    _shift = freeze_time(_start, tick=True)
    # Every thread sees the shifted clock (freezegun's default ignore list
    # would give threads started by ``threading`` the real one); a test's own
    # freeze_time blocks keep their usual list.
    _shift.ignore = ()
    _shift.start()
    # Log lines in the shifted time too (a plain function as a class
    # attribute would be bound to the formatter).
    import logging
    import time

    logging.Formatter.converter = staticmethod(time.localtime)
