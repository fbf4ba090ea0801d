"""RS-485 bus timing: frame sizes and the time a transaction occupies the bus.

The benchmark uses these helpers to compute the theoretical bus limit, and the
simulator uses them to emulate a slow serial line behind a gateway.
"""

from __future__ import annotations

#: 8N1 serial framing: start bit + 8 data bits + stop bit.
BITS_PER_BYTE_8N1 = 10
#: 8E1 (DL/T 645 lines): start bit + 8 data bits + even parity + stop bit.
BITS_PER_BYTE_8E1 = 11
#: DL/T 645 frame bytes besides the data: 68, address (6), 68, C, L, CS, 16.
DLT645_OVERHEAD = 12

#: Above 19,200 baud the Modbus spec fixes the inter-frame gap at 1.75 ms
#: instead of 3.5 character times.
_FAST_BAUD = 19200
_FAST_GAP_S = 0.00175


def rtu_request_size(function_code: int, count: int = 1) -> int:
    """Return the RTU request frame size in bytes (address, PDU and CRC).

    FC03/FC04 read = 8; FC06 = 8; FC16 = 9 + 2 * count.
    """
    if function_code in (3, 4, 6):
        return 8
    if function_code == 16:
        return 9 + 2 * count
    raise ValueError(f"unsupported function code {function_code}")


def rtu_response_size(
    function_code: int, count: int = 1, exception: bool = False
) -> int:
    """Return the RTU response frame size in bytes.

    FC03/FC04 read = 5 + 2 * count; FC06 and FC16 = 8; an exception reply = 5.
    """
    if exception:
        return 5
    if function_code in (3, 4):
        return 5 + 2 * count
    if function_code in (6, 16):
        return 8
    raise ValueError(f"unsupported function code {function_code}")


def silent_interval(baud: int, bits_per_byte: int = BITS_PER_BYTE_8N1) -> float:
    """Return the inter-frame silence (t3.5) in seconds for ``baud``."""
    if baud > _FAST_BAUD:
        return _FAST_GAP_S
    return 3.5 * bits_per_byte / baud


def frame_time(
    frame_bytes: int, baud: int, bits_per_byte: int = BITS_PER_BYTE_8N1
) -> float:
    """Return seconds one frame occupies the bus, including its t3.5 silence."""
    return frame_bytes * bits_per_byte / baud + silent_interval(baud, bits_per_byte)


def bus_time(
    request_bytes: int,
    response_bytes: int,
    baud: int,
    bits_per_byte: int = BITS_PER_BYTE_8N1,
) -> float:
    """Return seconds a request/response transaction occupies a half-duplex bus.

    Each frame costs ``bytes * bits_per_byte / baud`` plus one 3.5-character
    silent interval (1.75 ms above 19,200 baud). 8N1 is 10 bits per byte.
    Example: reading 17 registers at 9,600 baud is ``bus_time(8, 39, 9600)``,
    about 56 ms.
    """
    return frame_time(request_bytes, baud, bits_per_byte) + frame_time(
        response_bytes, baud, bits_per_byte
    )


def transaction_time(
    function_code: int, count: int, baud: int, exception: bool = False
) -> float:
    """Return the bus time of one RTU transaction given function code and count."""
    return bus_time(
        rtu_request_size(function_code, count),
        rtu_response_size(function_code, count, exception),
        baud,
    )


def dlt645_frame_size(data_bytes: int, preamble: int = 4) -> int:
    """Return a DL/T 645 frame's size on the line: FE preamble + 12 + data.

    A read request (0x11, one data identifier) is ``dlt645_frame_size(4)`` =
    20 bytes; its reply with an n-byte value ``dlt645_frame_size(4 + n, p)``
    for a meter that sends ``p`` FE bytes first.
    """
    return preamble + DLT645_OVERHEAD + data_bytes


def dlt645_frame_time(
    frame_bytes: int, baud: int, bits_per_byte: int = BITS_PER_BYTE_8E1
) -> float:
    """Return seconds a DL/T 645 frame occupies the line (no silent interval:
    the standard delimits frames by their length, not by gaps)."""
    return frame_bytes * bits_per_byte / baud


def dlt645_bus_time(
    request_bytes: int,
    response_bytes: int,
    baud: int,
    bits_per_byte: int = BITS_PER_BYTE_8E1,
) -> float:
    """Return seconds one DL/T 645 request/reply occupies the line (8E1).

    Example: reading a 4-byte energy value at 2,400 baud, 4 FE each way, is
    ``dlt645_bus_time(20, 24, 2400)`` = 44 x 11 / 2400, about 0.20 s.
    """
    return dlt645_frame_time(request_bytes + response_bytes, baud, bits_per_byte)
