"""The driver the models call: picks Modbus or DL/T 645 by the endpoint.

Models never branch on the protocol; they hand endpoints, meters and the
profiles' read plans to these functions, which route each bus to its
driver. Buses of both protocols run in parallel in one sweep.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from . import dlt645, modbus
from .modbus import CommandResult, Endpoint, PollResult


def is_dlt645(endpoint: Endpoint) -> bool:
    """True when ``endpoint`` is a DL/T 645 line."""
    return endpoint.protocol in dlt645.PROTOCOLS


def _driver(endpoint: Endpoint):
    return dlt645 if is_dlt645(endpoint) else modbus


def meter_poll(endpoint: Endpoint, key, device_id: int, address: str, plan):
    """The driver's poll of one meter: its bus address (Modbus device id or
    DL/T 645 address) and the profile's read plan."""
    if is_dlt645(endpoint):
        return dlt645.MeterPoll(key=key, address=address or "", items=list(plan))
    return modbus.MeterPoll(key=key, device_id=device_id, blocks=plan)


class Sweep:
    """All buses of ``jobs`` polled in parallel, whatever their protocol, in a
    helper thread started at once. Iterate to get ``(job index, results)``
    as each bus finishes; meanwhile the caller may store an earlier sweep."""

    def __init__(self, jobs: Sequence[tuple[Endpoint, Sequence]]):
        def one(index, endpoint, polls):
            poll_bus = _driver(endpoint)._poll_bus_safe

            async def bus(put):
                put((index, await poll_bus(endpoint, polls)))

            return bus

        self.jobs = jobs
        self._run = modbus.ThreadRun([one(i, e, p) for i, (e, p) in enumerate(jobs)])

    @property
    def on_wire(self) -> bool:
        """True while a bus is still being read."""
        return self._run.on_wire

    @property
    def wire_seconds(self) -> float | None:
        """Seconds from the start to the last bus read (None before)."""
        return self._run.wire_seconds

    def join(self) -> None:
        """Wait until every bus has been read."""
        self._run.join()

    def __iter__(self) -> Iterator[tuple[int, list]]:
        for items in self._run:
            yield from items


def start_sweep(jobs: Sequence[tuple[Endpoint, Sequence]]) -> Sweep:
    """Start polling all buses now, in parallel (see :class:`Sweep`)."""
    return Sweep(jobs)


def iter_sweep(jobs: Sequence[tuple[Endpoint, Sequence]]) -> Iterator[tuple[int, list]]:
    """Poll all buses in parallel, whatever their protocol; yield
    ``(job index, results)`` as each bus finishes."""
    yield from start_sweep(jobs)


def read_now(endpoint: Endpoint, poll) -> PollResult:
    """Read one meter now (``poll`` from :func:`meter_poll`)."""
    if is_dlt645(endpoint):
        return dlt645.read_now(endpoint, poll.address, poll.items)
    return modbus.read_now(endpoint, poll.device_id, poll.blocks)


def check_connection(endpoint: Endpoint) -> tuple[bool, str]:
    """Open and close a connection to ``endpoint``."""
    return _driver(endpoint).check_connection(endpoint)


def execute_job(endpoint: Endpoint, job) -> CommandResult:
    """Send one switch job (Modbus write or DL/T 645 relay control) and read
    it back, over its own connection."""
    return _driver(endpoint).execute_job(endpoint, job)


def iter_writes(buses: Sequence[tuple[Endpoint, Sequence]]) -> Iterator[list]:
    """Send the switch jobs of all buses, the buses in parallel; yield the
    ``(job, result)`` pairs as they end (see :func:`.modbus.iter_writes`)."""

    def one(endpoint, jobs):
        write_bus = _driver(endpoint).write_bus

        async def bus(put):
            await write_bus(endpoint, jobs, put)

        return bus

    yield from modbus._iter_in_thread([one(e, jobs) for e, jobs in buses if jobs])
