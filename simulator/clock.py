"""Accelerated simulation clock shared by all meters of a fleet."""

from __future__ import annotations

import threading
import time
from datetime import datetime

#: Simulated time is naive local time counted in seconds from this instant,
#: which keeps hour-of-day arithmetic free of time zones.
EPOCH = datetime(2000, 1, 1)


class SimClock:
    """Simulated wall clock running ``speed`` simulated seconds per real second.

    ``speed=0`` freezes the clock, so tests get exactly the same values on every
    read; :meth:`advance` then moves time explicitly.
    """

    def __init__(self, speed: float = 1.0, start: datetime | str | None = None) -> None:
        """Create a clock at ``start`` (naive datetime or ISO string; default now)."""
        if start is None:
            start = datetime.now().replace(microsecond=0)
        elif isinstance(start, str):
            start = datetime.fromisoformat(start)
        self._lock = threading.Lock()
        self._speed = float(speed)
        self._anchor_real = time.monotonic()
        self._anchor_sim = (start - EPOCH).total_seconds()

    @property
    def speed(self) -> float:
        """Simulated seconds per real second."""
        return self._speed

    def at(self, real: float) -> float:
        """Return simulated seconds (since :data:`EPOCH`) at monotonic time ``real``."""
        return self._anchor_sim + (real - self._anchor_real) * self._speed

    def now(self) -> float:
        """Return the current simulated time in seconds since :data:`EPOCH`."""
        return self.at(time.monotonic())

    def advance(self, seconds: float) -> None:
        """Move simulated time forward by ``seconds`` (works at any speed)."""
        with self._lock:
            self._anchor_sim += seconds


def hour_of(sim_seconds: float) -> int:
    """Return the hour of day (0..23) of a simulated time."""
    return int(sim_seconds // 3600) % 24
