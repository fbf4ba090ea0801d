"""DL/T 645-2007 side of the meter driver: codec, parser and transport.

Plain Python, no Odoo. The shape follows :mod:`.modbus` so that the models use
one set of calls (:mod:`.bus` picks the driver by the endpoint's protocol):
``Endpoint`` (shared), ``MeterPoll``/``PollResult`` for sweeps,
``CommandResult`` for relay control, ``iter_sweep``/``read_now``/``probe``/
``iter_writes``/``execute_job``.

Frame (the standard, section 4): ``[FE x 0..4] 68 A0..A5 68 C L DATA CS 16``.
The address is 6 BCD bytes, least significant first; every DATA byte goes
out +0x33; CS is the byte sum from the first 68 to the end of DATA. The
parser is driven by L, never by searching for 16 (that byte may sit in the
address, the data or the checksum), and it resynchronises on noise.

Per-meter faults (no reply, an error reply, garbage) are results, never
exceptions: one meter's bad frame cannot fail the gateway's sweep.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from .modbus import (
    CONNECTION,
    DECODE,
    EXCEPTION,
    PROTOCOL,
    TIMEOUT,
    VERIFY,
    CommandResult,
    Endpoint,
    PollResult,
    _failed_all,
    _failed_writes,
    _iter_in_thread,
    _utcnow,
    timed_connect,
)

_logger = logging.getLogger(__name__)

#: Endpoint protocols this driver serves.
PROTOCOLS = ("dlt645_tcp", "dlt645_serial")

PREAMBLE = b"\xfe\xfe\xfe\xfe"
WILDCARD = "AAAAAAAAAAAA"
BROADCAST = "999999999999"
START = 0x68
END = 0x16
OFFSET = 0x33
HEADER = 10  # 68 A0..A5 68 C L
MAX_DATA = 200  # DL/T 645-2007: L <= 200 in a reply

# Control codes (master -> meter).
READ = 0x11
READ_NEXT = 0x12
READ_ADDRESS = 0x13
WRITE = 0x14
TIME_SYNC = 0x08
RELAY = 0x1C

# 0x1C N1 operations.
TRIP = 0x1A
CLOSE_ALLOWED = 0x1B
CLOSE_DIRECT = 0x1C
ALARM_ON = 0x2A
ALARM_OFF = 0x2B
KEEP_POWER_ON = 0x3A
KEEP_POWER_OFF = 0x3B
RELAY_OPERATIONS = frozenset(
    (TRIP, CLOSE_ALLOWED, CLOSE_DIRECT, ALARM_ON, ALARM_OFF, KEEP_POWER_ON)
) | {KEEP_POWER_OFF}

#: Bits of the error byte of 0xD1 / 0xD4 (and of a one-byte 0xDC).
ERROR_BITS = (
    (0x01, "other error"),
    (0x02, "no data requested"),
    (0x04, "password wrong or unauthorised"),
    (0x08, "baud rate cannot be changed"),
    (0x10, "year time zones exceeded"),
    (0x20, "day periods exceeded"),
    (0x40, "tariff count exceeded"),
)
#: Bits of the two-byte error word of 0xDC from State Grid cost-control
#: meters (ESAM; not supported, named so that the reason is readable).
RELAY_ERROR_BITS = (
    (0x0001, "other error (suspended)"),
    (0x0002, "MAC error"),
    (0x0004, "password wrong or unauthorised"),
    (0x0008, "authentication timed out"),
    (0x0010, "execution time invalid"),
    (0x0020, "trip refused under keep-power"),
)

#: Value formats of a data identifier.
FORMATS = ("bcd", "bcd_signed", "date", "time", "hex")


class FrameError(ValueError):
    """A frame that cannot be built or decoded."""


class ReplyError(Exception):
    """The meter answered with an error frame (0xD1, 0xD2, 0xD4, 0xDC)."""

    def __init__(self, control: int, code: int, reason: str):
        super().__init__(reason)
        self.control = control
        self.code = code
        self.reason = reason


# ----------------------------------------------------------------------
# Codec
# ----------------------------------------------------------------------
def check_address(address: str) -> str:
    """Return ``address`` (12 digits, or the AA.../99... wildcards) or raise."""
    text = str(address or "").strip().upper()
    if text in (WILDCARD, BROADCAST):
        return text
    if len(text) != 12 or not text.isdigit():
        raise FrameError(f"a DL/T 645 address has 12 digits, got {address!r}")
    return text


def address_bytes(address: str) -> bytes:
    """The 6 address bytes on the wire, least significant first:
    ``000000001234`` -> ``34 12 00 00 00 00``."""
    text = check_address(address)
    return bytes(int(text[i : i + 2], 16) for i in range(10, -1, -2))


def address_text(raw: bytes) -> str:
    """The 12 characters of 6 address bytes (least significant first)."""
    return "".join(f"{b:02X}" for b in reversed(raw))


def checksum(body: bytes) -> int:
    """Sum of ``body`` mod 256 (from the first 68 to the last data byte)."""
    return sum(body) & 0xFF


def encode_frame(address: str, control: int, data: bytes = b"", preamble=True):
    """A complete request frame; ``data`` is given plain (not +0x33)."""
    if not 0 <= control <= 0xFF:
        raise FrameError(f"control code 0x{control:X} is not a byte")
    if len(data) > MAX_DATA:
        raise FrameError(f"{len(data)} data bytes; a frame carries {MAX_DATA} at most")
    body = (
        bytes((START,))
        + address_bytes(address)
        + bytes((START, control, len(data)))
        + bytes((b + OFFSET) & 0xFF for b in data)
    )
    frame = body + bytes((checksum(body), END))
    return PREAMBLE + frame if preamble else frame


@dataclass(frozen=True)
class Frame:
    """A decoded frame: ``data`` with the 0x33 removed."""

    address: str
    control: int
    data: bytes

    @property
    def is_reply(self) -> bool:
        """Bit 7 of C: sent by a meter."""
        return bool(self.control & 0x80)

    @property
    def is_error(self) -> bool:
        """Bit 6 of C: an error reply."""
        return bool(self.control & 0x40)

    @property
    def has_more(self) -> bool:
        """Bit 5 of C: a follow-up frame carries the rest."""
        return bool(self.control & 0x20)

    @property
    def function(self) -> int:
        """The function code (bits 0..4 of C)."""
        return self.control & 0x1F


def parse(buffer: bytes | bytearray) -> tuple[Frame | None, int, str | None]:
    """Find the first valid frame in ``buffer``.

    Returns ``(frame, consumed, error)``: ``frame`` is None when no complete
    valid frame is in the buffer yet; ``consumed`` is how many leading bytes
    can be dropped (noise, and the frame itself when found); ``error`` names
    the last broken candidate seen (a bad checksum, a missing end byte), or
    ``"truncated frame"`` when a frame has started but is not complete.
    A 68 that does not start a frame (noise, a doubled 68) is skipped; the
    search goes on from the next 68.
    """
    error = None
    start = 0
    size = len(buffer)
    while True:
        start = buffer.find(START, start)
        if start < 0:
            return None, size, error
        if size - start < HEADER:
            # may still become a frame: keep it
            if size - start >= 8 and buffer[start + 7] != START:
                start += 1
                continue
            return None, start, error or "truncated frame"
        if buffer[start + 7] != START:
            start += 1
            continue
        length = buffer[start + 9]
        total = HEADER + length + 2
        if length > MAX_DATA:
            error = f"data length {length} exceeds {MAX_DATA}"
            start += 1
            continue
        if size - start < total:
            # a frame has begun; a later 68 may still start the real one
            later, later_used, later_error = parse(buffer[start + 1 :])
            if later is not None:
                return later, start + 1 + later_used, later_error
            return None, start, "truncated frame"
        body = bytes(buffer[start : start + HEADER + length])
        cs, end = buffer[start + total - 2], buffer[start + total - 1]
        if cs != checksum(body):
            error = f"bad checksum 0x{cs:02X} (expected 0x{checksum(body):02X})"
            start += 1
            continue
        if end != END:
            error = f"frame does not end with 16 (0x{end:02X})"
            start += 1
            continue
        frame = Frame(
            address=address_text(body[1:7]),
            control=body[8],
            data=bytes((b - OFFSET) & 0xFF for b in body[HEADER:]),
        )
        return frame, start + total, None


def di_bytes(di: str | int) -> bytes:
    """A data identifier (``"00010000"`` or 0x00010000) as sent: DI0 first."""
    if isinstance(di, str):
        text = di.strip()
        if len(text) != 8:
            raise FrameError(f"a data identifier has 8 hex digits, got {di!r}")
        try:
            value = int(text, 16)
        except ValueError:
            raise FrameError(f"data identifier {di!r} is not hexadecimal") from None
    else:
        value = di
    if not 0 <= value <= 0xFFFFFFFF:
        raise FrameError(f"data identifier {di!r} out of range")
    return value.to_bytes(4, "little")


def di_text(raw: bytes) -> str:
    """The 8 hex digits of a DI sent DI0 first."""
    return f"{int.from_bytes(raw[:4], 'little'):08X}"


def bcd_to_int(raw: bytes) -> int:
    """Unsigned BCD, least significant byte first."""
    value = 0
    for byte in reversed(raw):
        high, low = byte >> 4, byte & 0x0F
        if high > 9 or low > 9:
            raise FrameError(f"0x{byte:02X} is not a BCD byte in {raw.hex(' ')}")
        value = value * 100 + high * 10 + low
    return value


def int_to_bcd(value: int, size: int) -> bytes:
    """``value`` as ``size`` BCD bytes, least significant first."""
    if value < 0 or value >= 100**size:
        raise FrameError(f"{value} does not fit {size} BCD bytes")
    out = bytearray()
    for _ in range(size):
        value, pair = divmod(value, 100)
        out.append((pair // 10) << 4 | pair % 10)
    return bytes(out)


def decode_value(raw: bytes, fmt: str, decimals: int = 0) -> float:
    """Decode a value of one data identifier.

    ``bcd`` unsigned BCD with ``decimals``; ``bcd_signed`` the same with the
    sign in bit 7 of the most significant (last) byte (current, power);
    ``date`` YYMMDDWW read as the number YYMMDD; ``time`` hhmmss as the number
    hhmmss; ``hex`` an unsigned little-endian integer (status words).
    """
    if not raw:
        raise FrameError("no value bytes")
    if fmt == "hex":
        return float(int.from_bytes(raw, "little"))
    if fmt == "bcd_signed":
        negative = bool(raw[-1] & 0x80)
        value = bcd_to_int(raw[:-1] + bytes((raw[-1] & 0x7F,)))
        value = -value if negative else value
    elif fmt == "bcd":
        value = bcd_to_int(raw)
    elif fmt == "date":
        if len(raw) != 4:
            raise FrameError(f"a date is 4 bytes YYMMDDWW, got {len(raw)}")
        return float(bcd_to_int(raw[1:]))
    elif fmt == "time":
        if len(raw) != 3:
            raise FrameError(f"a time is 3 bytes hhmmss, got {len(raw)}")
        return float(bcd_to_int(raw))
    else:
        raise FrameError(f"unknown value format {fmt!r}")
    if decimals:
        return round(value / 10**decimals, decimals)
    return float(value)


def error_reason(control: int, data: bytes) -> tuple[int, str]:
    """``(code, named reasons)`` of an error reply's data."""
    if not data:
        return 0, "error reply without an error code"
    if len(data) >= 2 and (control & 0x1F) == RELAY:
        code = int.from_bytes(data[:2], "little")
        table = RELAY_ERROR_BITS
    else:
        code = data[0]
        table = ERROR_BITS
    names = [name for bit, name in table if code & bit]
    width = 4 if table is RELAY_ERROR_BITS else 2
    text = ", ".join(names) or "unknown error"
    return code, f"error 0x{code:0{width}X}: {text}"


def time_sync_data(local: datetime) -> bytes:
    """0x08 data: ss mm hh DD MM YY (BCD) of the meter's local time."""
    return b"".join(
        int_to_bcd(v, 1)
        for v in (
            local.second,
            local.minute,
            local.hour,
            local.day,
            local.month,
            local.year % 100,
        )
    )


def password_bytes(level: int, password: str) -> bytes:
    """The 4 password bytes: level PA, then the 6 digits BCD P0 P1 P2
    (least significant first)."""
    text = str(password or "")
    if len(text) != 6 or not text.isdigit():
        raise FrameError("the meter password has 6 digits")
    if not 0 <= int(level) <= 9:
        raise FrameError(f"password level {level} is outside 0-9")
    return bytes((int(level),)) + int_to_bcd(int(text), 3)


def operator_bytes(operator: str) -> bytes:
    """The 4 operator-code bytes C0..C3 (8 digits, least significant first)."""
    text = str(operator or "")
    if len(text) != 8 or not text.isdigit():
        raise FrameError("the operator code has 8 digits")
    return int_to_bcd(int(text), 4)


def relay_data(
    level: int, password: str, operator: str, operation: int, valid_until: datetime
) -> bytes:
    """0x1C data: password, operator, N1, N2 (reserved) and the deadline
    N3..N8 (ss mm hh DD MM YY, the meter's local time)."""
    if operation not in RELAY_OPERATIONS:
        raise FrameError(f"0x{operation:02X} is not a relay operation")
    return (
        password_bytes(level, password)
        + operator_bytes(operator)
        + bytes((operation, 0))
        + time_sync_data(valid_until)
    )


def write_data(
    di: str, level: int, password: str, operator: str, value: bytes
) -> bytes:
    """0x14 data: DI, password, operator code, then the value bytes."""
    secret = password_bytes(level, password) + operator_bytes(operator)
    return di_bytes(di) + secret + value


# ----------------------------------------------------------------------
# What to read
# ----------------------------------------------------------------------
@dataclass(frozen=True)
class DataItem:
    """One data identifier of a profile: how its value is decoded."""

    name: str
    di: str
    fmt: str = "bcd"
    size: int = 4
    decimals: int = 0
    #: where the value starts in the reply (a block identifier such as
    #: 0001FF00 carries several values one after the other)
    offset: int = 0

    def __post_init__(self):
        di_bytes(self.di)
        if not 0 <= self.offset <= MAX_DATA:
            raise FrameError(f"item {self.name!r}: offset must be 0-{MAX_DATA}")
        if self.fmt not in FORMATS:
            raise FrameError(
                f"item {self.name!r}: format must be one of {', '.join(FORMATS)}"
            )
        if not 1 <= self.size <= 16:
            raise FrameError(f"item {self.name!r}: size must be 1-16 bytes")

    def decode(self, raw: bytes) -> float:
        """The scaled value of this item's bytes in a reply (after the DI)."""
        end = self.offset + self.size
        if len(raw) < end:
            raise FrameError(
                f"{self.name} ({self.di}): {len(raw)} value bytes, expected {end}"
            )
        return decode_value(raw[self.offset : end], self.fmt, self.decimals)


@dataclass
class MeterPoll:
    """One meter to read on a line: its address and the items to read."""

    key: object
    address: str
    items: list[DataItem]

    @property
    def device_id(self):
        """The meter's handle in log lines (the address)."""
        return self.address


@dataclass
class RelayJob:
    """One 0x1C relay command for a meter and how to read it back.

    ``verify`` is the status item (status word 3); the read-back waits until
    ``(raw & mask) == expected``. ``key`` is the caller's handle.
    """

    key: object
    address: str
    operation: int
    level: int
    password: str = field(repr=False)
    operator: str = field(repr=False)
    valid_until: datetime | None = None
    verify: DataItem | None = None
    mask: int = 0
    expected: int = 0
    settle_timeout: float = 5.0


# ----------------------------------------------------------------------
# Transport: one outstanding request per line
# ----------------------------------------------------------------------
try:  # pragma: no cover - depends on the installation
    import serial_asyncio
except ImportError:  # pragma: no cover
    serial_asyncio = None


class Line:
    """A byte pipe to one RS-485 line (TCP transparent gateway or serial).

    One request at a time: :meth:`transact` clears what is pending, sends
    the request and reads until a frame that answers it (same address,
    reply to the same function, same DI) arrives or time is up. Frames of
    other meters (late replies) are dropped, never taken as the answer.
    """

    def __init__(self, endpoint: Endpoint):
        self.endpoint = endpoint
        self.reader: asyncio.StreamReader | None = None
        self.writer = None
        self.requests = 0

    @property
    def connected(self) -> bool:
        """True while the byte pipe is open."""
        return self.writer is not None and not self.writer.is_closing()

    async def connect(self) -> str | None:
        """Open the pipe; return None or the reason it failed."""
        ep = self.endpoint
        try:
            if ep.protocol == "dlt645_serial":
                if serial_asyncio is None:
                    return "pyserial-asyncio is not installed"
                if not ep.serial_port:
                    return "serial line without a device"
                self.reader, self.writer = await asyncio.wait_for(
                    serial_asyncio.open_serial_connection(
                        url=ep.serial_port,
                        baudrate=ep.baudrate,
                        bytesize=ep.bytesize,
                        parity=ep.parity,
                        stopbits=ep.stopbits,
                    ),
                    ep.timeout,
                )
            else:
                self.reader, self.writer = await asyncio.wait_for(
                    asyncio.open_connection(ep.host, ep.port), ep.timeout
                )
        except TimeoutError:
            return f"cannot connect to {ep.label}: no answer within {ep.timeout:g} s"
        except (OSError, ValueError) as exc:
            return f"cannot connect to {ep.label}: {exc}"
        except Exception as exc:  # noqa: BLE001 - serial errors, any library
            return f"cannot open {ep.label}: {exc}"
        return None

    def close(self):
        """Close the pipe (idempotent)."""
        if self.writer is not None:
            self.writer.close()
        self.writer = self.reader = None

    def _discard_pending(self):
        # what a late reply left in the buffer is no answer to the next request
        reader = self.reader
        if reader is not None and getattr(reader, "_buffer", None):
            reader._buffer.clear()

    async def send(self, frame: bytes):
        """Write ``frame`` (no reply expected, e.g. a broadcast)."""
        self._discard_pending()
        self.writer.write(frame)
        await self.writer.drain()
        self.requests += 1

    async def transact(self, request: bytes, match) -> Frame:
        """Send ``request`` and return the first frame ``match`` accepts.

        Raises TimeoutError (nothing usable arrived), FrameError (bytes came
        but no valid frame: bad checksum, truncated, garbage) or
        ConnectionError.
        """
        await self.send(request)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.endpoint.timeout
        buffer = bytearray()
        error = None
        received = 0
        foreign = False
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                chunk = await asyncio.wait_for(self.reader.read(512), remaining)
            except TimeoutError:
                break
            if not chunk:
                raise ConnectionError(f"{self.endpoint.label} closed the connection")
            buffer += chunk
            received += len(chunk)
            while True:
                frame, used, error = parse(buffer)
                del buffer[:used]
                if frame is None:
                    break
                if match(frame):
                    return frame
                foreign = True
            if error and error != "truncated frame" and not buffer:
                # a whole frame came broken and nothing else is pending
                raise FrameError(error)
        if error:
            raise FrameError(error)
        if received and not foreign:
            raise FrameError(f"{received} bytes without a valid frame")
        raise TimeoutError


def _answers(address: str, function: int, di: bytes | None = None):
    """A matcher of replies to ``function`` from ``address``."""

    def match(frame: Frame) -> bool:
        if not frame.is_reply or frame.function != function:
            return False
        if address != WILDCARD and frame.address != address:
            return False
        if di is not None and not frame.is_error and frame.data[:4] != di:
            return False
        return True

    return match


async def read_payload(line: Line, address: str, di: str) -> bytes:
    """Read one data identifier (following 0xB1 with 0x12): the value bytes
    after the DI."""
    raw_di = di_bytes(di)
    frame = await line.transact(
        encode_frame(address, READ, raw_di), _answers(address, READ, raw_di)
    )
    payload = bytearray()
    seq = 0
    while True:
        if frame.is_error:
            code, reason = error_reason(frame.control, frame.data)
            raise ReplyError(frame.control, code, reason)
        if frame.function == READ_NEXT:
            payload += frame.data[4:-1]  # DI ... SEQ
        else:
            payload += frame.data[4:]
        if not frame.has_more:
            break
        seq += 1
        if seq > 255:
            raise FrameError("more than 255 follow-up frames")
        frame = await line.transact(
            encode_frame(address, READ_NEXT, raw_di + bytes((seq,))),
            _answers(address, READ_NEXT, raw_di),
        )
    return bytes(payload)


async def read_item(line: Line, address: str, item: DataItem) -> float:
    """Read one item's data identifier and decode its value."""
    return item.decode(await read_payload(line, address, item.di))


def _fault(exc: BaseException, what: str) -> tuple[str, str, int | None]:
    """(kind, error, code) of an exception from one request."""
    if isinstance(exc, ReplyError):
        return EXCEPTION, f"{what}: {exc.reason}", exc.code
    if isinstance(exc, TimeoutError):
        return TIMEOUT, f"no reply to {what}", None
    if isinstance(exc, FrameError):
        return DECODE, f"bad reply to {what}: {exc}", None
    return CONNECTION, f"connection lost during {what}: {exc}", None


async def _read_meter(line: Line, poll: MeterPoll) -> PollResult:
    at = _utcnow()
    started = time.perf_counter()
    values: dict[str, float] = {}
    raw: dict[str, str] = {}
    kind = error = None
    # items of one block identifier (same DI, their offsets) share a request
    by_di: dict[str, list[DataItem]] = {}
    for item in poll.items:
        by_di.setdefault(item.di.upper(), []).append(item)
    for di, items in by_di.items():
        what = f"read {di}"
        try:
            payload = await read_payload(line, poll.address, di)
            raw[di] = payload.hex(" ")
            for item in items:
                values[item.name] = item.decode(payload)
            continue
        except (ReplyError, TimeoutError, FrameError, ConnectionError, OSError) as exc:
            i_kind, i_error, _code = _fault(exc, what)
        if kind is None:
            kind, error = i_kind, i_error
        if i_kind != EXCEPTION:
            # a silent or garbling meter: the other items would only add
            # timeouts
            break
    return PollResult(
        key=poll.key,
        device_id=poll.address,
        ok=kind is None,
        values=values,
        raw=raw,
        error=error,
        error_kind=kind,
        # the code is named in ``error``; the reading store words
        # ``exception_code`` as a Modbus exception
        exception_code=None,
        duration_ms=(time.perf_counter() - started) * 1000.0,
        at=at,
    )


async def poll_bus(
    endpoint: Endpoint, polls: Sequence[MeterPoll], *, line: Line | None = None
) -> list[PollResult]:
    """Read every meter of one line in sequence; one result per poll, in
    order. A lost connection is reopened before the next meter; when it
    cannot be, the meters not yet read fail with kind "connection"."""
    own = line is None
    line = line or Line(endpoint)
    results: list[PollResult] = []
    try:
        reason = None if line.connected else await line.connect()
        if reason:
            _logger.info("%s", reason)
            return _failed_all(polls, CONNECTION, reason)
        for index, poll in enumerate(polls):
            if not line.connected:
                reason = await line.connect()
                if reason:
                    _logger.info("%s", reason)
                    results.extend(_failed_all(polls[index:], CONNECTION, reason))
                    break
            result = await _read_meter(line, poll)
            results.append(result)
            if result.error_kind == CONNECTION:
                line.close()
    finally:
        if own:
            line.close()
    return results


async def _poll_bus_safe(endpoint, polls):
    try:
        return await poll_bus(endpoint, polls)
    except Exception as exc:  # noqa: BLE001 - isolate one bus from the others
        _logger.error("polling %s failed", endpoint.label, exc_info=exc)
        return _failed_all(
            polls, PROTOCOL, f"driver error on {endpoint.label}: {exc!r}"
        )


def iter_sweep(
    jobs: Sequence[tuple[Endpoint, Sequence[MeterPoll]]],
) -> Iterator[tuple[int, list[PollResult]]]:
    """Poll all lines in parallel; yield ``(job index, results)`` as each
    line finishes (the loop runs in a helper thread, as for Modbus)."""

    def one(index, endpoint, polls):
        async def bus(put):
            put((index, await _poll_bus_safe(endpoint, polls)))

        return bus

    for items in _iter_in_thread([one(i, e, p) for i, (e, p) in enumerate(jobs)]):
        yield from items


def read_now(endpoint: Endpoint, address: str, items: Sequence[DataItem]):
    """Read one meter now over its own connection."""
    poll = MeterPoll(key=endpoint.key, address=address, items=list(items))
    return asyncio.run(poll_bus(endpoint, [poll]))[0]


async def probe(endpoint: Endpoint) -> tuple[bool, str]:
    """Open and close the line; return ``(ok, message)``."""
    line = Line(endpoint)
    return await timed_connect(endpoint.label, line.connect, line.close)


def check_connection(endpoint: Endpoint) -> tuple[bool, str]:
    """Synchronous :func:`probe`."""
    return asyncio.run(probe(endpoint))


async def read_address(endpoint: Endpoint) -> tuple[str | None, str]:
    """0x13 to AA...AA: the address of the one meter on the line.

    Returns ``(address, message)``; address is None when no meter (or more
    than one: their replies collide) answered.
    """
    line = Line(endpoint)
    reason = await line.connect()
    if reason:
        return None, reason
    try:
        frame = await line.transact(
            encode_frame(WILDCARD, READ_ADDRESS), _answers(WILDCARD, READ_ADDRESS)
        )
    except TimeoutError:
        return None, f"no meter answered on {endpoint.label}"
    except FrameError as exc:
        return None, (
            f"garbled answer on {endpoint.label} ({exc}); is more than one "
            "meter on the line?"
        )
    except (ConnectionError, OSError) as exc:
        return None, f"connection lost on {endpoint.label}: {exc}"
    finally:
        line.close()
    if frame.is_error or len(frame.data) < 6:
        return None, f"the meter refused to give its address on {endpoint.label}"
    return address_text(frame.data[:6]), "ok"


def scan(endpoint: Endpoint) -> tuple[str | None, str]:
    """Synchronous :func:`read_address`."""
    return asyncio.run(read_address(endpoint))


async def broadcast_time(endpoint: Endpoint, local: datetime) -> tuple[bool, str]:
    """0x08 to 99...99 with the meters' local time; no meter replies."""
    line = Line(endpoint)
    reason = await line.connect()
    if reason:
        return False, reason
    try:
        await line.send(encode_frame(BROADCAST, TIME_SYNC, time_sync_data(local)))
    except (ConnectionError, OSError) as exc:
        return False, f"connection lost on {endpoint.label}: {exc}"
    finally:
        line.close()
    return True, f"time {local:%Y-%m-%d %H:%M:%S} sent to {endpoint.label}"


def sync_time(endpoint: Endpoint, local: datetime) -> tuple[bool, str]:
    """Synchronous :func:`broadcast_time`."""
    return asyncio.run(broadcast_time(endpoint, local))


async def _settle(line: Line, job: RelayJob) -> CommandResult:
    """Read the status item back until ``(raw & mask) == expected``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + job.settle_timeout
    attempts = 0
    last = None
    fault = (None, None, None)
    verify = job.verify
    while True:
        attempts += 1
        try:
            last = await read_item(line, job.address, verify)
            if int(last) & job.mask == job.expected:
                return CommandResult(
                    ok=True, readback={verify.name: last}, attempts=attempts
                )
        except (ReplyError, TimeoutError, FrameError, ConnectionError, OSError) as exc:
            fault = _fault(exc, f"read-back of {verify.name} ({verify.di})")
            if fault[0] == CONNECTION:
                break
        if loop.time() + 0.2 > deadline:
            break
        await asyncio.sleep(0.2)
    if last is not None:
        return CommandResult(
            ok=False,
            error=(
                f"{verify.name} did not change as commanded: read 0x{int(last):X} "
                f"(mask 0x{job.mask:X}, expected 0x{job.expected:X}) after "
                f"{job.settle_timeout:g} s"
            ),
            error_kind=VERIFY,
            readback={verify.name: last},
            attempts=attempts,
        )
    kind, error, code = fault
    return CommandResult(
        ok=False, error=error, error_kind=kind, exception_code=code, attempts=attempts
    )


async def relay_job(endpoint: Endpoint, job: RelayJob, *, line=None) -> CommandResult:
    """Send one 0x1C and read the relay state back.

    If the command gets no reply the meter may still have switched, so the
    read-back decides. An error reply (0xDC) is final and named.
    Bad arguments (password, operator code) raise FrameError.
    """
    data = relay_data(
        job.level,
        job.password,
        job.operator,
        job.operation,
        job.valid_until or datetime.now(),
    )
    own = line is None
    line = line or Line(endpoint)
    try:
        reason = None if line.connected else await line.connect()
        if reason:
            return CommandResult(ok=False, error=reason, error_kind=CONNECTION)
        what = f"relay control 0x{job.operation:02X}"
        try:
            frame = await line.transact(
                encode_frame(job.address, RELAY, data), _answers(job.address, RELAY)
            )
            fault = None
            if frame.is_error:
                code, text = error_reason(frame.control, frame.data)
                return CommandResult(
                    ok=False,
                    error=f"{what} refused: {text}",
                    error_kind=EXCEPTION,
                    exception_code=code,
                )
        except (TimeoutError, FrameError, ConnectionError, OSError) as exc:
            fault = _fault(exc, what)
            if fault[0] == CONNECTION or job.verify is None:
                return CommandResult(ok=False, error=fault[1], error_kind=fault[0])
        if job.verify is None:
            return CommandResult(ok=True)
        result = await _settle(line, job)
        result.attempts += 1
        return result
    finally:
        if own:
            line.close()


def execute_job(endpoint: Endpoint, job: RelayJob) -> CommandResult:
    """Synchronous :func:`relay_job` with its own connection."""
    return asyncio.run(relay_job(endpoint, job))


async def write_bus(endpoint: Endpoint, jobs: Sequence[RelayJob], put) -> None:
    """Send the relay jobs of one line in sequence, ``put((job, result))`` as
    each ends (the contract of :func:`.modbus.write_bus`)."""
    line = Line(endpoint)
    done = 0
    try:
        reason = await line.connect()
        if reason:
            for item in _failed_writes(jobs, CONNECTION, reason):
                put(item)
            return
        for job in jobs:
            if not line.connected:
                reason = await line.connect()
                if reason:
                    for item in _failed_writes(jobs[done:], CONNECTION, reason):
                        put(item)
                    return
            try:
                result = await relay_job(endpoint, job, line=line)
            except FrameError as exc:
                result = CommandResult(
                    ok=False, error=f"invalid command: {exc}", error_kind=PROTOCOL
                )
            put((job, result))
            done += 1
            if result.error_kind == CONNECTION:
                line.close()
    except Exception as exc:  # noqa: BLE001 - isolate one bus from the others
        _logger.error("writing on %s failed", endpoint.label, exc_info=exc)
        reason = f"driver error on {endpoint.label}: {exc!r}"
        for item in _failed_writes(jobs[done:], PROTOCOL, reason):
            put(item)
    finally:
        line.close()
