"""DL/T 645-2007 frames as the simulated meter sees them (no Odoo, no sockets).

The simulator's own reading of the standard, written apart from the product's
driver on purpose: the tests check that the two readings agree.

Frame: ``[FE x 0..4] 68 A0..A5 68 C L DATA CS 16``; the address is 6 BCD
bytes least significant first, every DATA byte goes out +0x33, CS is the sum
mod 256 of the bytes from the first 68 to the last data byte.
"""

from __future__ import annotations

from dataclasses import dataclass

PREAMBLE_BYTE = 0xFE
START = 0x68
END = 0x16
#: Frame bytes around the data: 68, 6 address bytes, 68, C, L, CS, 16.
OVERHEAD = 12
MAX_DATA = 200
WILDCARD = "AAAAAAAAAAAA"
BROADCAST = "999999999999"

# control codes (master -> meter)
BROADCAST_TIME = 0x08
READ = 0x11
READ_NEXT = 0x12
READ_ADDRESS = 0x13
WRITE = 0x14
RELAY = 0x1C
#: reply = request | 0x80; error reply = request | 0xC0; 0x20 = more follows
REPLY, ERROR, MORE = 0x80, 0xC0, 0x20

# error byte of 0xD1 / 0xD4 / 0xDC replies
ERR_OTHER = 0x01
ERR_NO_DATA = 0x02
ERR_PASSWORD = 0x04
ERR_BAUD = 0x08
ERR_YEAR_ZONES = 0x10
ERR_DAY_PERIODS = 0x20
ERR_RATES = 0x40

# relay control N1
TRIP = 0x1A
CLOSE_ALLOWED = 0x1B
CLOSE_DIRECT = 0x1C
ALARM_ON, ALARM_OFF = 0x2A, 0x2B
KEEP_POWER_ON, KEEP_POWER_OFF = 0x3A, 0x3B


#: byte -> byte + 0x33 / - 0x33 (mod 256), for bytes.translate
_PLUS = bytes((b + 0x33) & 0xFF for b in range(256))
_MINUS = bytes((b - 0x33) & 0xFF for b in range(256))


class FrameError(ValueError):
    """Bytes that are not a DL/T 645 frame."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame: wire address bytes, control code, plain data."""

    address: bytes
    control: int
    data: bytes

    @property
    def address_digits(self) -> str:
        """The 12-character address as written on the nameplate."""
        return self.address[::-1].hex().upper()


def address_bytes(address: str) -> bytes:
    """``"000000001234"`` -> ``34 12 00 00 00 00`` (also AA / 99 wildcards)."""
    if len(address) != 12:
        raise ValueError(f"a DL/T 645 address has 12 digits, not {address!r}")
    try:
        return bytes.fromhex(address)[::-1]
    except ValueError:
        raise ValueError(f"address {address!r} is not 12 hex digits") from None


def valid_address(address: str) -> str:
    """Return ``address`` when it is 12 decimal digits, else raise ValueError."""
    if not (isinstance(address, str) and len(address) == 12 and address.isdigit()):
        raise ValueError(f"a meter address is 12 decimal digits, not {address!r}")
    return address


def encode(address: bytes, control: int, data: bytes = b"", preamble: int = 4) -> bytes:
    """Build a frame; ``data`` is plain (the +0x33 is added here)."""
    if len(data) > MAX_DATA:
        raise ValueError("data longer than 200 bytes")
    body = b"\xfe" * preamble + b"\x68" + address + bytes((START, control, len(data)))
    body += data.translate(_PLUS)
    return body + bytes((sum(body, -PREAMBLE_BYTE * preamble) & 0xFF, END))


def decode(frame: bytes) -> Frame:
    """Decode exactly one frame (leading FE allowed); raise FrameError."""
    frame = frame.lstrip(bytes((PREAMBLE_BYTE,)))
    found, used = next_frame(frame)
    if found is None or used != len(frame):
        raise FrameError(f"not one whole frame: {frame.hex(' ')}")
    return found


def next_frame(buf: bytes | bytearray) -> tuple[Frame | None, int]:
    """Find the first good frame in ``buf``; return it and the bytes consumed.

    Bytes before a frame are skipped (noise, FE); a 68 that does not start a
    well-formed frame with a right checksum is skipped and the search goes on
    from the next byte. ``(None, n)``: no frame yet, the first ``n`` bytes can
    never start one; keep the rest and wait for more.
    """
    start = 0
    size = len(buf)
    while True:
        start = buf.find(START, start)
        if start < 0:
            return None, size
        if size - start < 10:
            return None, start
        length = buf[start + 9]
        end = start + OVERHEAD + length
        if buf[start + 7] != START or length > MAX_DATA:
            start += 1
            continue
        if size < end:
            return None, start
        body = buf[start : end - 2]
        if buf[end - 1] != END or sum(body) & 0xFF != buf[end - 2]:
            start += 1
            continue
        data = bytes(body[10:]).translate(_MINUS)
        return Frame(bytes(body[1:7]), body[8], data), end


# -- BCD values ----------------------------------------------------------------
def bcd(value: int, size: int) -> bytes:
    """Unsigned BCD, least significant byte first; wraps at 10^(2*size)."""
    digits = f"{value % 10 ** (2 * size):0{2 * size}d}"
    return bytes.fromhex(digits)[::-1]


def bcd_signed(value: int, size: int) -> bytes:
    """BCD with the sign in bit 7 of the most significant byte."""
    raw = bytearray(bcd(abs(value), size))
    if abs(value) >= 10 ** (2 * size - 1) * 8:
        raise ValueError(f"{value} does not fit {size} signed BCD bytes")
    if value < 0:
        raw[-1] |= 0x80
    return bytes(raw)


def from_bcd(raw: bytes) -> int:
    """Unsigned BCD (least significant byte first) -> int; FrameError if not BCD."""
    digits = raw[::-1].hex()
    if not digits.isdigit():
        raise FrameError(f"not BCD: {raw.hex(' ')}")
    return int(digits)


def di_bytes(di: int) -> bytes:
    """Data identifier DI3..DI0 as an int -> wire order DI0 first."""
    return di.to_bytes(4, "little")


def di_of(data: bytes) -> int:
    """The data identifier at the head of plain ``data`` (DI0 first)."""
    return int.from_bytes(data[:4], "little")


def password_bytes(level: int, password: str) -> bytes:
    """Level byte then the 6-digit password as 3 BCD bytes, low byte first."""
    return bytes((level,)) + bcd(int(password), 3)


def operator_bytes(operator: str) -> bytes:
    """8-digit operator code as 4 BCD bytes, low byte first."""
    return bcd(int(operator), 4)
