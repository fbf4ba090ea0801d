"""The counter rule of a counted record: write it at most once.

A counted record (a signed amount and its number) moves money on a meter that
keeps the balance itself.  The meter counts the records it applied; the
command saves ``expected`` (the counter before + 1) before the first byte is
written, so that whatever happens afterwards (a lost reply, a dead worker) the
record is settled by reading the counter, never by writing a second record:

- before writing, counter = expected: already applied, done without writing;
  counter = expected - 1: write it; anything else: another record reached the
  meter, an operator must look;
- after writing, the counter must have moved by exactly one.  If it did not
  move, the meter either refused the record (an exception reply that will not
  change on a retry: failed for good) or the write got lost (tried again later,
  by the same rule); any other value is for an operator.

Plain Python: no Odoo import.
"""

import enum
from dataclasses import dataclass

#: Modbus exception codes that refuse the record itself (illegal function,
#: address, value): the meter answers the same on every retry.  Other
#: exceptions (device failure, busy) are retried; the counter keeps a retry
#: from writing twice.
REFUSAL_CODES = frozenset({0x01, 0x02, 0x03})


class Verdict(enum.Enum):
    """What the counter says about a counted record."""

    ALREADY_APPLIED = "already_applied"
    WRITE = "write"
    APPLIED = "applied"
    NOT_APPLIED = "not_applied"
    REFUSED = "refused"
    CONFLICT = "conflict"

    @property
    def done(self):
        """The meter holds the record."""
        return self in (Verdict.ALREADY_APPLIED, Verdict.APPLIED)

    @property
    def final(self):
        """A failure no retry can mend."""
        return self in (Verdict.REFUSED, Verdict.CONFLICT)


@dataclass(frozen=True, slots=True)
class Decision:
    """A verdict with the counter it was read from."""

    verdict: Verdict
    counter: int
    expected: int


def expected_after(counter):
    """The counter once the next record is applied (saved before writing)."""
    return int(counter) + 1


def before_write(counter, expected):
    """Decide from the counter read before writing."""
    counter = int(counter)
    if counter == expected:
        verdict = Verdict.ALREADY_APPLIED
    elif counter == expected - 1:
        verdict = Verdict.WRITE
    else:
        verdict = Verdict.CONFLICT
    return Decision(verdict, counter, expected)


def after_write(counter, expected, exception_code=None):
    """Decide from the counter read back after writing.

    :param exception_code: the Modbus exception the meter answered the write
        with, ``None`` when it accepted it (or did not answer)
    """
    counter = int(counter)
    if counter == expected:
        verdict = Verdict.APPLIED
    elif counter == expected - 1:
        verdict = (
            Verdict.REFUSED if exception_code in REFUSAL_CODES else Verdict.NOT_APPLIED
        )
    else:
        verdict = Verdict.CONFLICT
    return Decision(verdict, counter, expected)
