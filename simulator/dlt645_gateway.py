"""A transparent RS-485-to-TCP gateway with DL/T 645-2007 meters on its line.

One asyncio server per gateway. Every byte a client sends goes "onto the
line"; each meter picks the frames addressed to it (its address, a wildcard
address with AA bytes, or the 99..99 broadcast). One request at a time per
line: without line emulation a request is answered before the next is read;
with ``baud`` set, requests of every connection wait in one queue and each
holds the line for its request and reply frame times at 11 bits per byte (8E1).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterable

from . import dlt645_frame as f
from .bus import BITS_PER_BYTE_8E1, dlt645_frame_time
from .dlt645_meter import DltMeter, Reply
from .faults import GATEWAY_FAULTS

_log = logging.getLogger(__name__)

_BROADCAST = f.address_bytes(f.BROADCAST)
_WILD = 0xAA


class DltGateway:
    """One TCP port, one RS-485 line of :class:`DltMeter`."""

    protocol = "dlt645"
    framer = "dlt645"

    def __init__(
        self,
        meters: Iterable[DltMeter],
        *,
        index: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        baud: int | None = None,
        bits_per_byte: int = BITS_PER_BYTE_8E1,
        preamble: int = 4,
        name: str | None = None,
    ) -> None:
        """Describe the gateway; it listens once its fleet is started."""
        if not 0 <= preamble <= 4:
            raise ValueError("a reply preamble has 0..4 FE bytes")
        self.index = index
        self.name = name or f"gw{index + 1}"
        self.host = host
        self.port = port
        self.baud = baud
        self.bits_per_byte = bits_per_byte
        self.preamble = preamble
        self.meters: dict[int, DltMeter] = {}
        self._by_address: dict[bytes, DltMeter] = {}
        for meter in meters:
            if meter.device_id in self.meters:
                raise ValueError(f"{self.name}: device_id {meter.device_id} used twice")
            if meter.address_raw in self._by_address:
                raise ValueError(f"{self.name}: address {meter.address} used twice")
            self.meters[meter.device_id] = meter
            self._by_address[meter.address_raw] = meter
        self.faults: dict[str, dict] = {}
        self.requests = 0
        self._server: asyncio.AbstractServer | None = None
        self._queue: asyncio.Queue | None = None
        self._worker: asyncio.Task | None = None
        self._rng = random.Random(index)

    def __repr__(self) -> str:
        return f"<DltGateway {self.name} {self.host}:{self.port}>"

    def meter(self, device_id: int) -> DltMeter:
        """Return the meter with ``device_id`` (its index) on this line."""
        return self.meters[device_id]

    def meter_by_address(self, address: str) -> DltMeter:
        """Return the meter with the 12-digit ``address``."""
        return self._by_address[f.address_bytes(address)]

    def inject(self, name: str, **params) -> None:
        """Inject a gateway fault; only "stall" exists (accept TCP, never answer)."""
        if name not in GATEWAY_FAULTS:
            raise ValueError(f"unknown gateway fault {name!r}")
        self.faults[name] = params

    def clear_faults(self) -> None:
        """Remove gateway faults."""
        self.faults.clear()

    def endpoint(self) -> dict:
        """Host, port, protocol, line settings, device ids and addresses."""
        return {
            "name": self.name,
            "host": self.host,
            "port": self.port,
            "protocol": self.protocol,
            "framer": self.framer,
            "baud": self.baud,
            "bits_per_byte": self.bits_per_byte,
            "preamble": self.preamble,
            "device_ids": sorted(self.meters),
            "addresses": [self.meters[d].address for d in sorted(self.meters)],
        }

    # -- server -----------------------------------------------------------------
    async def start(self) -> None:
        """Listen (inside the running loop); fills in :attr:`port` when it was 0."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Line(self), self.host, self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]
        if self.baud:
            self._queue = asyncio.Queue()
            self._worker = loop.create_task(self._line_worker())

    async def stop(self) -> None:
        """Close the listening socket and every connection."""
        if self._worker is not None:
            self._worker.cancel()
            self._worker = None
        if self._server is not None:
            self._server.close()
            if hasattr(self._server, "close_clients"):
                self._server.close_clients()
            await self._server.wait_closed()
            self._server = None

    def _received(self, transport: asyncio.Transport, frame: f.Frame, size: int):
        """A request frame of ``size`` line bytes came in on ``transport``."""
        if "stall" in self.faults:
            return
        if self._queue is not None:
            self._queue.put_nowait((transport, frame, size))
            return
        reply = self.answer(frame)
        if reply and not transport.is_closing():
            transport.write(reply)

    async def _line_worker(self) -> None:
        loop = asyncio.get_running_loop()
        queue = self._queue
        free_at = loop.time()
        while True:
            transport, frame, size = await queue.get()
            # the request is on the line once it has been sent whole
            free_at = max(free_at, loop.time())
            free_at += dlt645_frame_time(size, self.baud, self.bits_per_byte)
            await _sleep_until(loop, free_at)
            reply = self.answer(frame)
            if not reply:
                continue
            free_at += dlt645_frame_time(len(reply), self.baud, self.bits_per_byte)
            await _sleep_until(loop, free_at)
            if not transport.is_closing():
                transport.write(reply)

    # -- the line ------------------------------------------------------------------
    def answer(self, frame: f.Frame) -> bytes | None:
        """The bytes the line carries back for one request (None = silence)."""
        self.requests += 1
        address = frame.address
        meter = self._by_address.get(address)
        if meter is not None:
            return self._wire(meter, meter.serve(frame))
        if address == _BROADCAST:
            if frame.control == f.BROADCAST_TIME:
                for each in self.meters.values():
                    each.serve(frame)
            return None
        if _WILD not in address:
            return None
        replies = [
            self._wire(m, m.serve(frame))
            for raw, m in self._by_address.items()
            if all(a in (_WILD, b) for a, b in zip(address, raw, strict=True))
        ]
        replies = [r for r in replies if r]
        if len(replies) <= 1:
            return replies[0] if replies else None
        # several meters talk at once: the line carries their wired-AND
        size = max(len(r) for r in replies)
        mixed = bytearray(b"\xff" * size)
        for reply in replies:
            for i, byte in enumerate(reply):
                mixed[i] &= byte
        return bytes(mixed)

    def _wire(self, meter: DltMeter, reply: Reply | None) -> bytes | None:
        if reply is None:
            return None
        raw = f.encode(meter.address_raw, reply.control, reply.data, self.preamble)
        mode = meter.corruption() if meter.faults else None
        if mode == "garbage":
            return bytes(self._rng.getrandbits(8) for _ in raw)
        if mode == "bad_crc":
            return raw[:-2] + bytes((raw[-2] ^ 0xFF, raw[-1]))
        return raw


async def _sleep_until(loop: asyncio.AbstractEventLoop, when: float) -> None:
    delay = when - loop.time()
    if delay > 0:
        await asyncio.sleep(delay)


class _Line(asyncio.Protocol):
    """One TCP connection to the gateway: bytes in, frames to the line."""

    def __init__(self, gateway: DltGateway) -> None:
        self.gateway = gateway
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        while buf:
            frame, used = f.next_frame(buf)
            if frame is None:
                del buf[:used]
                if len(buf) > 4 * f.MAX_DATA:
                    buf.clear()
                return
            del buf[:used]
            self.gateway._received(self.transport, frame, used)
