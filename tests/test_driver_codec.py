"""Codec: data types, byte orders, scaling, overlap checks and read planning."""

import math
import random
import struct

import pytest
from prepaid_metering_drivers import codec
from prepaid_metering_drivers.codec import ReadBlock, Register

SAMPLES = {
    "uint16": [0, 1, 0x1234, 0xFFFF],
    "int16": [-0x8000, -1, 0, 0x7FFF],
    "uint32": [0, 0x12345678, 0xFFFF_FFFF],
    "int32": [-0x8000_0000, -123456, 0, 0x7FFF_FFFF],
    "float32": [0.0, 1.5, -2.25, 3.0e38],
    "uint64": [0, 0x0102_0304_0506_0708, 0xFFFF_FFFF_FFFF_FFFF],
    "int64": [-0x8000_0000_0000_0000, -1, 0x7FFF_FFFF_FFFF_FFFF],
    "float64": [0.0, math.pi, -1e300],
}

ACREL = [
    Register("energy_total", 0x0000, "uint32", scale=0.01, unit="kWh"),
    Register("energy_sharp", 0x0002, "uint32", scale=0.01, unit="kWh"),
    Register("energy_peak", 0x0004, "uint32", scale=0.01, unit="kWh"),
    Register("energy_flat", 0x0006, "uint32", scale=0.01, unit="kWh"),
    Register("energy_valley", 0x0008, "uint32", scale=0.01, unit="kWh"),
    Register("voltage", 0x000B, "uint16", scale=0.1, unit="V"),
    Register("current", 0x000C, "uint16", scale=0.01, unit="A"),
    Register("active_power", 0x000D, "int16", scale=0.001, unit="kW"),
    Register("power_factor", 0x0010, "int16", scale=0.001),
]
PX_PREPAID = [
    Register("relay_state", 0x4000),
    Register("status_bits", 0x4001),
    Register("balance", 0x4002, "int32", scale=0.01),
    Register("purchase_count", 0x4004, "uint32"),
    Register("unit_price", 0x4006, "uint32", scale=0.0001, access="rw"),
    Register("alarm1_amount", 0x4008, "uint32", scale=0.01, access="rw"),
    Register("alarm2_amount", 0x400A, "uint32", scale=0.01, access="rw"),
    Register("overdraft_limit", 0x400C, "uint32", scale=0.01, access="rw"),
    Register("recharge_amount", 0x4010, "int32", scale=0.01, access="w"),
    Register("recharge_count", 0x4012, "uint32", access="w"),
]
WATER = [
    Register("volume_total", 0x0001, "float32", "DCBA", unit="m3"),
    Register("valve", 0x001C, "uint16", access="rw"),
]


@pytest.mark.parametrize("order", codec.BYTE_ORDERS)
@pytest.mark.parametrize("dtype", list(codec.DTYPES))
def test_every_dtype_and_order_round_trips(dtype, order):
    for value in SAMPLES[dtype]:
        words = codec.encode(value, dtype, order)
        assert len(words) == codec.register_count(dtype)
        assert all(0 <= w <= 0xFFFF for w in words)
        decoded = codec.decode(words, dtype, order)
        if dtype == "float32":
            assert decoded == struct.unpack(">f", struct.pack(">f", value))[0]
        else:
            assert decoded == value


@pytest.mark.parametrize(
    "order, words",
    [
        ("ABCD", [0x1234, 0x5678]),
        ("CDAB", [0x5678, 0x1234]),
        ("BADC", [0x3412, 0x7856]),
        ("DCBA", [0x7856, 0x3412]),
    ],
)
def test_uint32_0x12345678_in_each_order(order, words):
    assert codec.encode(0x12345678, "uint32", order) == words
    assert codec.decode(words, "uint32", order) == 0x12345678


def test_float32_1_5_in_dcba():
    # 1.5 is 0x3FC00000: bytes A=3F B=C0 C=00 D=00 -> R0 = D C, R1 = B A
    assert codec.encode(1.5, "float32", "DCBA") == [0x0000, 0xC03F]
    assert codec.decode([0x0000, 0xC03F], "float32", "DCBA") == 1.5
    assert codec.decode([0x3FC0, 0x0000], "float32", "ABCD") == 1.5


def test_uint64_word_and_byte_order():
    value = 0x0102_0304_0506_0708
    assert codec.encode(value, "uint64") == [0x0102, 0x0304, 0x0506, 0x0708]
    assert codec.encode(value, "uint64", "CDAB") == [0x0708, 0x0506, 0x0304, 0x0102]
    assert codec.encode(value, "uint64", "BADC") == [0x0201, 0x0403, 0x0605, 0x0807]
    assert codec.encode(value, "uint64", "DCBA") == [0x0807, 0x0605, 0x0403, 0x0201]


def test_16_bit_orders_only_swap_bytes():
    assert codec.decode([0x1234], "uint16", "CDAB") == 0x1234
    assert codec.decode([0x1234], "uint16", "BADC") == 0x3412
    assert codec.decode([0x1234], "uint16", "DCBA") == 0x3412


def test_negative_integers():
    assert codec.decode([0xFFFF], "int16") == -1
    assert codec.encode(-1, "int16") == [0xFFFF]
    assert codec.encode(-2, "int32") == [0xFFFF, 0xFFFE]
    assert codec.decode([0xFFFE, 0xFFFF], "int32", "CDAB") == -2


@pytest.mark.parametrize(
    "value, dtype",
    [
        (-1, "uint16"),
        (0x10000, "uint16"),
        (0x8000, "int16"),
        (0x1_0000_0000, "uint32"),
        (-0x8000_0001, "int32"),
        (1.5, "uint32"),
        (1e39, "float32"),
        (float("nan"), "float32"),
        ("12", "uint16"),
        (True, "uint16"),
    ],
)
def test_encode_out_of_range_raises_value_error(value, dtype):
    with pytest.raises(ValueError, match=dtype.rstrip("0123456789") or dtype):
        codec.encode(value, dtype)


def test_unknown_dtype_order_or_word_count_raise():
    with pytest.raises(ValueError, match="unknown data type"):
        codec.decode([1], "uint8")
    with pytest.raises(ValueError, match="unknown byte order"):
        codec.decode([1, 2], "uint32", "ABDC")
    with pytest.raises(ValueError, match="needs 2 register"):
        codec.decode([1], "uint32")
    with pytest.raises(ValueError, match="out of range"):
        codec.decode([0x10000], "uint16")
    with pytest.raises(ValueError, match="unknown data type"):
        codec.register_count("string")


def test_register_rejects_bad_definitions():
    with pytest.raises(ValueError):
        Register("x", 0, "uint128")
    with pytest.raises(ValueError):
        Register("x", 0, byte_order="XYZW")
    with pytest.raises(ValueError, match="access"):
        Register("x", 0, access="x")
    with pytest.raises(ValueError, match="address"):
        Register("x", 0xFFFF, "uint32")
    with pytest.raises(ValueError, match="scale"):
        Register("x", 0, scale=0)


def test_register_count_and_end():
    reg = Register("energy", 0x10, "float64")
    assert (reg.count, reg.end) == (4, 0x14)


def test_decode_scaled_rounds_to_scale_decimals():
    reg = Register("energy_total", 0, "uint32", scale=0.01)
    assert reg.decode_scaled([0, 30]) == 0.3
    assert reg.decode_scaled(codec.encode(12345, "uint32")) == 123.45
    assert Register("p", 0, "int16", scale=0.001).decode_scaled([0xFFFF]) == -0.001
    assert Register("v", 0, scale=0.1).decode_scaled([2301]) == 230.1
    assert Register("big", 0, scale=10).decode_scaled([7]) == 70.0
    assert isinstance(Register("n", 0).decode_scaled([7]), float)


def test_decode_scaled_float32_drops_single_precision_noise():
    reg = Register("volume_total", 0, "float32", "DCBA")
    assert reg.decode_scaled(codec.encode(1234.567, "float32", "DCBA")) == 1234.567
    assert reg.decode_scaled(codec.encode(1.1, "float32", "DCBA")) == 1.1


def test_encode_scaled_refuses_values_finer_than_scale():
    reg = Register("recharge_amount", 0x4010, "int32", scale=0.01, access="w")
    assert reg.encode_scaled(-12.34) == codec.encode(-1234, "int32")
    assert reg.encode_scaled(0.1 + 0.2) == [0, 30]
    with pytest.raises(ValueError, match="multiple of the scale"):
        reg.encode_scaled(10.005)
    with pytest.raises(ValueError, match="recharge_amount"):
        reg.encode_scaled(3e7)
    price = Register("unit_price", 0x4006, "uint32", scale=0.0001)
    assert codec.decode(price.encode_scaled(0.6543), "uint32") == 6543


def test_encode_record_concatenates_contiguous_registers():
    amount, count = PX_PREPAID[-2], PX_PREPAID[-1]
    start, words = codec.encode_record([(count, 8), (amount, 50.0)])
    assert start == 0x4010
    assert words == [0, 5000, 0, 8]
    with pytest.raises(ValueError, match="contiguous"):
        codec.encode_record([(PX_PREPAID[0], 1), (amount, 1.0)])


def test_check_overlaps_finds_every_overlapping_pair():
    a = Register("a", 0, "uint32")
    b = Register("b", 1)
    c = Register("c", 2, "float64")
    d = Register("d", 5)
    e = Register("e", 5)
    pairs = {
        frozenset((x.name, y.name)) for x, y in codec.check_overlaps([e, d, c, b, a])
    }
    assert pairs == {frozenset(p) for p in ("ab", "cd", "ce", "de")}
    assert codec.check_overlaps(ACREL + PX_PREPAID + WATER[1:]) == []


def test_plan_reads_acrel_is_one_read_of_17():
    blocks = codec.plan_reads(ACREL)
    assert [(b.start, b.count) for b in blocks] == [(0x0000, 17)]
    assert blocks[0].registers == tuple(ACREL)


def test_plan_reads_px_prepaid_skips_write_only_registers():
    blocks = codec.plan_reads(PX_PREPAID)
    assert [(b.start, b.count) for b in blocks] == [(0x4000, 14)]
    assert "recharge_amount" not in {r.name for r in blocks[0].registers}


def test_plan_reads_water_splits_a_gap_larger_than_max_gap():
    assert [(b.start, b.count) for b in codec.plan_reads(WATER)] == [
        (0x0001, 2),
        (0x001C, 1),
    ]
    merged = codec.plan_reads(WATER, max_gap=25)
    assert [(b.start, b.count) for b in merged] == [(0x0001, 28)]


def test_plan_reads_electric_meter_needs_two_reads():
    blocks = codec.plan_reads(PX_PREPAID + ACREL)
    assert [(b.start, b.count) for b in blocks] == [(0x0000, 17), (0x4000, 14)]


def test_plan_reads_respects_max_count_and_zero_gap():
    regs = [Register(f"r{i}", i * 2, "uint32") for i in range(100)]
    blocks = codec.plan_reads(regs)
    assert [(b.start, b.count) for b in blocks] == [(0, 124), (124, 76)]
    sparse = [Register("a", 0), Register("b", 2)]
    assert len(codec.plan_reads(sparse, max_gap=0)) == 2
    assert len(codec.plan_reads(sparse, max_gap=1)) == 1
    with pytest.raises(ValueError):
        codec.plan_reads(regs, max_count=126)
    assert codec.plan_reads([]) == []


def test_decode_blocks_scales_by_name_and_skips_missing_blocks():
    blocks = codec.plan_reads(PX_PREPAID + ACREL)
    acrel_words = [0] * 17
    acrel_words[0:2] = codec.encode(4294967295, "uint32")
    acrel_words[0x0B] = 2301
    acrel_words[0x0D] = codec.encode(-1500, "int16")[0]
    values = codec.decode_blocks(blocks, {0: acrel_words})
    assert values["energy_total"] == 42949672.95
    assert values["voltage"] == 230.1
    assert values["active_power"] == -1.5
    assert "balance" not in values
    with pytest.raises(ValueError, match="expects 17"):
        codec.decode_blocks(blocks, {0: acrel_words[:-1]})


def test_read_block_end():
    assert ReadBlock(0x4000, 14, ()).end == 0x400E


def test_block_decoding_matches_each_register_decoded_alone():
    """decode_blocks unpacks a whole block at once (ABCD registers) and
    sends the other byte orders through decode_scaled: same values."""
    rng = random.Random(22)
    registers, address = [], 0
    for i, (dtype, order) in enumerate(
        (d, o)
        for d in codec.DTYPES
        for o in codec.BYTE_ORDERS
        if not (codec.DTYPES[d] == 1 and o in ("CDAB", "DCBA"))
    ):
        scale = [1.0, 0.01, 0.1, 10.0, 0.001][i % 5]
        registers.append(Register(f"r{i}", address, dtype, order, scale=scale))
        address += codec.DTYPES[dtype] + (i % 2)  # holes too
    (block,) = codec.plan_reads(registers, max_gap=1)
    for _ in range(200):
        words = [rng.randrange(0x10000) for _ in range(block.count)]
        got = codec.decode_blocks([block], {block.start: words})
        for reg in registers:
            offset = reg.address - block.start
            expected = reg.decode_scaled(words[offset : offset + reg.count])
            assert got[reg.name] == expected or (
                math.isnan(got[reg.name]) and math.isnan(expected)
            ), reg


def test_block_decoding_refuses_a_word_out_of_range():
    reg = Register("energy", 0, "uint32", scale=0.01)
    (block,) = codec.plan_reads([reg])
    with pytest.raises(ValueError, match="out of range"):
        codec.decode_blocks([block], {0: [0x10000, 1]})
