"""Register types, byte orders, scaling and read planning for Modbus meters.

Pure Python, no pymodbus and no Odoo: a register profile is data, and this module
turns that data into words on the wire and back.

Byte orders name the bytes of a 32-bit value A (most significant) .. D as they
appear in registers R0, R1 (each register big-endian on the wire):

* ``ABCD`` R0 high word (Modbus default), ``CDAB`` R1 high word,
* ``BADC`` R0 high word with the bytes of each word swapped,
* ``DCBA`` R1 high word with the bytes of each word swapped.

64-bit values follow the same two rules (word order reversed for CDAB/DCBA, bytes
swapped inside each word for BADC/DCBA); 16-bit values only know the byte swap.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

DTYPES: dict[str, int] = {
    "uint16": 1,
    "int16": 1,
    "uint32": 2,
    "int32": 2,
    "float32": 2,
    "uint64": 4,
    "int64": 4,
    "float64": 4,
}
BYTE_ORDERS = ("ABCD", "CDAB", "BADC", "DCBA")
ACCESS_MODES = ("r", "w", "rw")
MAX_READ_COUNT = 125  # FC03 protocol limit

_FORMATS = {
    "uint16": "H",
    "int16": "h",
    "uint32": "I",
    "int32": "i",
    "float32": "f",
    "uint64": "Q",
    "int64": "q",
    "float64": "d",
}
_VALUE_STRUCT = {name: struct.Struct(">" + fmt) for name, fmt in _FORMATS.items()}
_WORDS_STRUCT = {n: struct.Struct(f">{n}H") for n in set(DTYPES.values())}
_INT_RANGES = {
    "uint16": (0, 0xFFFF),
    "int16": (-0x8000, 0x7FFF),
    "uint32": (0, 0xFFFF_FFFF),
    "int32": (-0x8000_0000, 0x7FFF_FFFF),
    "uint64": (0, 0xFFFF_FFFF_FFFF_FFFF),
    "int64": (-0x8000_0000_0000_0000, 0x7FFF_FFFF_FFFF_FFFF),
}
_WORD_SWAP = frozenset(("CDAB", "DCBA"))
_BYTE_SWAP = frozenset(("BADC", "DCBA"))


def register_count(dtype: str) -> int:
    """Return how many 16-bit registers a value of ``dtype`` occupies."""
    try:
        return DTYPES[dtype]
    except KeyError:
        raise ValueError(
            f"unknown data type {dtype!r}; expected one of {', '.join(DTYPES)}"
        ) from None


def _check_order(byte_order: str) -> None:
    if byte_order not in BYTE_ORDERS:
        raise ValueError(
            f"unknown byte order {byte_order!r}; expected one of "
            f"{', '.join(BYTE_ORDERS)}"
        )


def _to_wire(words: Sequence[int], byte_order: str) -> Sequence[int]:
    """Reorder words between the device order and ABCD (the map is its own
    inverse, so encode and decode share it)."""
    if byte_order in _WORD_SWAP:
        words = words[::-1]
    if byte_order in _BYTE_SWAP:
        words = [((w & 0xFF) << 8) | (w >> 8) for w in words]
    return words


def decode(words: Sequence[int], dtype: str, byte_order: str = "ABCD") -> int | float:
    """Decode raw register ``words`` into an unscaled int or float.

    Raises ValueError for an unknown dtype or byte order, a wrong number of words
    or a word outside 0..0xFFFF.
    """
    count = register_count(dtype)
    _check_order(byte_order)
    if len(words) != count:
        raise ValueError(
            f"{dtype} needs {count} register(s), got {len(words)}: {list(words)}"
        )
    try:
        packed = _WORDS_STRUCT[count].pack(*_to_wire(words, byte_order))
    except struct.error as exc:
        raise ValueError(f"register words out of range 0..0xFFFF: {words}") from exc
    return _VALUE_STRUCT[dtype].unpack(packed)[0]


def encode(value: int | float, dtype: str, byte_order: str = "ABCD") -> list[int]:
    """Encode an unscaled ``value`` into register words in ``byte_order``.

    Integers are range-checked against ``dtype``; a float for an integer type must
    be integral; floats must be finite and fit float32 when asked for.
    """
    count = register_count(dtype)
    _check_order(byte_order)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"cannot encode {value!r} as {dtype}: not a number")
    if dtype in _INT_RANGES:
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError(f"cannot encode {value!r} as {dtype}: not integral")
            value = int(value)
        low, high = _INT_RANGES[dtype]
        if not low <= value <= high:
            raise ValueError(f"value {value} out of range for {dtype} ({low}..{high})")
    elif not math.isfinite(value):
        raise ValueError(f"cannot encode {value!r} as {dtype}: not finite")
    try:
        packed = _VALUE_STRUCT[dtype].pack(value)
    except (OverflowError, struct.error) as exc:
        raise ValueError(f"value {value!r} out of range for {dtype}") from exc
    return list(_to_wire(_WORDS_STRUCT[count].unpack(packed), byte_order))


def _scale_decimals(scale: float) -> int:
    """Decimals a scale implies: 0.01 -> 2, 0.5 -> 1, 10 -> 0."""
    exponent = Decimal(repr(scale)).normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


@dataclass(frozen=True)
class Register:
    """One line of a register profile: where a value lives and how to read it."""

    name: str
    address: int
    dtype: str = "uint16"
    byte_order: str = "ABCD"
    scale: float = 1.0
    unit: str = ""
    access: str = "r"
    _decimals: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self):
        count = register_count(self.dtype)
        _check_order(self.byte_order)
        if self.access not in ACCESS_MODES:
            raise ValueError(
                f"register {self.name!r}: access must be one of "
                f"{', '.join(ACCESS_MODES)}, got {self.access!r}"
            )
        if not 0 <= self.address <= 0xFFFF - count + 1:
            raise ValueError(
                f"register {self.name!r}: address {self.address} outside 0..65535"
            )
        if not self.scale or not math.isfinite(self.scale):
            raise ValueError(f"register {self.name!r}: scale must be finite, not 0")
        # frozen dataclass: cache derived data once instead of per decode
        object.__setattr__(self, "_decimals", _scale_decimals(self.scale))

    @property
    def count(self) -> int:
        """Number of registers occupied."""
        return DTYPES[self.dtype]

    @property
    def end(self) -> int:
        """First address after this register (exclusive end)."""
        return self.address + DTYPES[self.dtype]

    @property
    def readable(self) -> bool:
        """True when the register may be read."""
        return "r" in self.access

    def decode_scaled(self, words: Sequence[int]) -> float:
        """Decode ``words`` and apply the scale.

        Integer types are rounded to the decimals the scale implies, so 0.1 + 0.2
        noise never reaches a reading. float32 values are first cut to the 7
        significant digits the type carries, so 1.1 reads as 1.1.
        """
        return self._scaled(decode(words, self.dtype, self.byte_order))

    def _scaled(self, raw: int | float) -> float:
        """The scaled value of a decoded ``raw`` (see :meth:`decode_scaled`)."""
        if self.dtype == "float32":
            raw = float(f"{raw:.7g}")
        if self.scale == 1:
            return float(raw)
        if isinstance(raw, float):
            return float(f"{raw * self.scale:.15g}")
        return float(round(raw * self.scale, self._decimals))

    def encode_scaled(self, value: float) -> list[int]:
        """Divide ``value`` by the scale and encode it.

        For integer types the value must be a multiple of the scale (a money amount
        with more decimals than the meter keeps is refused, not silently rounded).
        """
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"register {self.name!r}: {value!r} is not a number")
        raw = value / self.scale if self.scale != 1 else value
        if self.dtype in _INT_RANGES and isinstance(raw, float):
            nearest = round(raw)
            if abs(raw - nearest) > 1e-6 + 1e-12 * abs(raw):
                raise ValueError(
                    f"register {self.name!r}: {value} is not a multiple of the "
                    f"scale {self.scale}"
                )
            raw = nearest
        try:
            return encode(raw, self.dtype, self.byte_order)
        except ValueError as exc:
            raise ValueError(f"register {self.name!r}: {exc}") from None


def check_overlaps(registers: Iterable[Register]) -> list[tuple[Register, Register]]:
    """Return every pair of registers whose address ranges overlap."""
    ordered = sorted(registers, key=lambda r: (r.address, r.end))
    pairs = []
    for i, first in enumerate(ordered):
        for second in ordered[i + 1 :]:
            if second.address >= first.end:
                break
            pairs.append((first, second))
    return pairs


@dataclass(frozen=True)
class ReadBlock:
    """One FC03 request: ``count`` registers from ``start``, with the registers
    it carries."""

    start: int
    count: int
    registers: tuple[Register, ...]
    #: (words struct, [(register, byte offset, value struct or None)]), made
    #: on the first decode (see decode_blocks)
    _decoder: tuple | None = field(default=None, init=False, repr=False, compare=False)

    def decoder(self) -> tuple:
        """How :func:`decode_blocks` decodes this block's words: the block
        packed to bytes once, each big-endian (ABCD) register unpacked at its
        offset; other byte orders go through :meth:`Register.decode_scaled`."""
        if self._decoder is None:
            items = [
                (
                    reg,
                    (reg.address - self.start) * 2,
                    _VALUE_STRUCT[reg.dtype] if reg.byte_order == "ABCD" else None,
                )
                for reg in self.registers
            ]
            object.__setattr__(
                self, "_decoder", (struct.Struct(f">{self.count}H"), items)
            )
        return self._decoder

    @property
    def end(self) -> int:
        """First address after the block."""
        return self.start + self.count


def plan_reads(
    registers: Iterable[Register],
    max_count: int = MAX_READ_COUNT,
    max_gap: int = 16,
) -> list[ReadBlock]:
    """Merge the readable registers into as few FC03 reads as possible.

    Registers are merged when the hole between them is at most ``max_gap``
    registers and the block stays within ``max_count``. The default gap of 16 is
    where reading the hole costs about as much as a new transaction at 9,600 baud
    (32 bytes ≈ 33 ms against request, response header and turnaround). Meters
    that answer "illegal address" for unmapped holes need ``max_gap=0``.
    """
    if not 1 <= max_count <= MAX_READ_COUNT:
        raise ValueError(f"max_count must be 1..{MAX_READ_COUNT}, got {max_count}")
    if max_gap < 0:
        raise ValueError(f"max_gap must be >= 0, got {max_gap}")
    readable = sorted(
        (r for r in registers if r.readable), key=lambda r: (r.address, r.end)
    )
    blocks: list[ReadBlock] = []
    current: list[Register] = []
    start = end = 0
    for reg in readable:
        if current:
            new_end = max(end, reg.end)
            if reg.address - end <= max_gap and new_end - start <= max_count:
                current.append(reg)
                end = new_end
                continue
            blocks.append(ReadBlock(start, end - start, tuple(current)))
        current, start, end = [reg], reg.address, reg.end
    if current:
        blocks.append(ReadBlock(start, end - start, tuple(current)))
    return blocks


def decode_blocks(
    blocks: Iterable[ReadBlock], words_by_start: Mapping[int, Sequence[int]]
) -> dict[str, float]:
    """Decode the words read per block into scaled values by register name.

    Blocks missing from ``words_by_start`` are skipped, so a meter that failed its
    second read still yields the values of the first. A block with the wrong
    number of words raises ValueError.
    """
    values: dict[str, float] = {}
    for block in blocks:
        words = words_by_start.get(block.start)
        if words is None:
            continue
        if len(words) != block.count:
            raise ValueError(
                f"block at 0x{block.start:04X} expects {block.count} registers, "
                f"got {len(words)}"
            )
        words_struct, items = block.decoder()
        try:
            packed = words_struct.pack(*words)
        except struct.error:
            packed = None  # a word out of range: decode_scaled says which
        for reg, offset, value_struct in items:
            if packed is not None and value_struct is not None:
                values[reg.name] = reg._scaled(
                    value_struct.unpack_from(packed, offset)[0]
                )
            else:
                start = offset // 2
                values[reg.name] = reg.decode_scaled(words[start : start + reg.count])
    return values


def encode_record(
    items: Iterable[tuple[Register, float]],
) -> tuple[int, list[int]]:
    """Encode several contiguous registers written in one FC16 request.

    Returns ``(start_address, words)``; the registers must follow each other
    without holes (e.g. px_prepaid_v1 recharge amount + count at 0x4010).
    """
    ordered = sorted(items, key=lambda item: item[0].address)
    if not ordered:
        raise ValueError("nothing to encode")
    start = ordered[0][0].address
    words: list[int] = []
    for reg, value in ordered:
        if reg.address != start + len(words):
            raise ValueError(
                f"register {reg.name!r} at 0x{reg.address:04X} does not follow "
                f"0x{start + len(words) - 1:04X}: a record must be contiguous"
            )
        words.extend(reg.encode_scaled(value))
    return start, words
