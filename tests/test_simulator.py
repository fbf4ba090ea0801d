"""The simulated meter fleet seen by real Modbus clients on 127.0.0.1."""

import asyncio
import math
import struct
import threading
import time
from contextlib import contextmanager

import pytest
from pymodbus.client import AsyncModbusTcpClient, ModbusTcpClient
from pymodbus.exceptions import ModbusIOException
from pymodbus.framer import FramerType

from simulator import Fleet, ProcessFleet, build_spec, bus_time

TIMEOUT = 0.3
START = "2025-03-01T09:30:00"  # peak band, flat profile
WATER = (17, 18, 19, 20)


def _electric(dev, **extra):
    return {
        "device_id": dev,
        "kind": "electric_1p",
        "energy_kwh": 1000.0 + dev,
        "load_kw": 1.15,
        "balance": 200.0,
        "unit_price": 0.8,
        **extra,
    }


def _water(dev, **extra):
    return {
        "device_id": dev,
        "kind": "water",
        "volume_m3": 100.0 + dev,
        "flow_m3h": 0.5,
        "valve_delay": 0.2,
        **extra,
    }


SPEC = {
    "speed": 0,
    "start_time": START,
    "gateways": [
        {
            "framer": "socket",
            "meters": [_electric(d) for d in range(1, 16)]
            + [_electric(16, kind="electric_3p", load_kw=6.9)]
            + [_water(d) for d in WATER],
        },
        {"framer": "rtu", "meters": [_electric(d) for d in (1, 2, 3)] + [_water(4)]},
        {"framer": "socket", "meters": [_electric(1)]},
    ],
}


@pytest.fixture(scope="module")
def fleet():
    with Fleet.from_spec(SPEC) as running:
        yield running


@contextmanager
def client(fleet, gateway=0, timeout=TIMEOUT):
    gw = fleet.gateways[gateway]
    framer = FramerType.RTU if gw.framer == "rtu" else FramerType.SOCKET
    cli = ModbusTcpClient(
        "127.0.0.1", port=gw.port, framer=framer, timeout=timeout, retries=0
    )
    assert cli.connect()
    try:
        yield cli
    finally:
        cli.close()


def read(cli, address, count, dev):
    rr = cli.read_holding_registers(address, count=count, device_id=dev)
    assert not rr.isError(), rr
    return rr.registers


def exception_code(rr):
    assert rr.isError(), rr
    return rr.exception_code


def u32(regs, i):
    return (regs[i] << 16) | regs[i + 1]


def i32(regs, i):
    raw = u32(regs, i)
    return raw - (1 << 32) if raw & 0x80000000 else raw


def volume(regs):
    return struct.unpack("<f", struct.pack(">HH", regs[1], regs[2]))[0]


# -- register maps ---------------------------------------------------------
def test_acrel_block_has_the_documented_encodings(fleet):
    fleet.meter(0, 1).energy_total = 1234.56
    with client(fleet) as cli:
        regs = read(cli, 0x0000, 17, 1)
    assert u32(regs, 0) == 123456
    assert sum(u32(regs, i) for i in (2, 4, 6, 8)) == 123456
    assert regs[0x0A] == regs[0x0E] == regs[0x0F] == 0
    assert regs[0x0B] == 2300  # 230.0 V
    assert regs[0x0C] == round(1150 / (230 * 0.95) * 100)  # A x0.01
    assert regs[0x0D] == 1150  # 1.150 kW x0.001
    assert regs[0x10] == 950


def test_three_phase_meter_reports_phase_a_current(fleet):
    with client(fleet) as cli:
        regs = read(cli, 0x0000, 17, 16)
    assert regs[0x0D] == 6900
    assert regs[0x0C] == round(6900 / (3 * 230 * 0.95) * 100)


def test_prepaid_block_has_the_documented_encodings(fleet):
    meter = fleet.meter(0, 2)
    meter.balance = -12.34
    with client(fleet) as cli:
        regs = read(cli, 0x4000, 18, 2)
    assert regs[0] == 0
    assert i32(regs, 2) == -1234
    assert regs[2:4] == [0xFFFF, (-1234) & 0xFFFF]
    assert u32(regs, 6) == 8000  # 0.8000
    assert regs[1] & 0b1110 == 0b1110  # below alarm1, alarm2, balance <= 0
    meter.balance = 200.0


def test_unmapped_inside_a_block_reads_zero_and_outside_is_illegal_address(fleet):
    with client(fleet) as cli:
        assert read(cli, 0x000E, 2, 3) == [0, 0]
        assert (
            exception_code(cli.read_holding_registers(0x0011, count=1, device_id=3))
            == 2
        )
        assert (
            exception_code(cli.read_holding_registers(0x0010, count=2, device_id=3))
            == 2
        )
        assert (
            exception_code(cli.read_holding_registers(0x3FFF, count=2, device_id=3))
            == 2
        )
        assert (
            exception_code(cli.read_holding_registers(0x0057, count=2, device_id=3))
            == 2
        )


def test_writing_read_only_registers_is_illegal_address(fleet):
    with client(fleet) as cli:
        rr = cli.write_registers(0x4002, [0, 100], device_id=3)
        assert exception_code(rr) == 2
        assert exception_code(cli.write_registers(0x0000, [0, 0], device_id=3)) == 2
    assert fleet.meter(0, 3).balance == 200.0


def test_settings_are_writable_uint32(fleet):
    with client(fleet) as cli:
        assert not cli.write_registers(
            0x4008, [0, 3000, 0, 1000], device_id=4
        ).isError()
        regs = read(cli, 0x4008, 4, 4)
    assert (u32(regs, 0), u32(regs, 2)) == (3000, 1000)
    assert fleet.meter(0, 4).alarm1_amount == 30.0


def test_water_volume_is_float32_dcba(fleet):
    fleet.meter(0, 17).volume = 123.456
    with client(fleet) as cli:
        regs = read(cli, 0x0000, 29, 17)
    assert regs[1:3] == list(struct.unpack(">HH", struct.pack("<f", 123.456)))
    assert volume(regs) == pytest.approx(123.456, abs=1e-4)
    assert regs[0x1C] == 0b01  # open


def test_rtu_over_tcp_gateway_serves_both_meter_kinds(fleet):
    with client(fleet, gateway=1) as cli:
        assert u32(read(cli, 0, 17, 2), 0) == 100200
        assert volume(read(cli, 0, 3, 4)) == pytest.approx(104.0)


# -- relay, valve, prepaid ---------------------------------------------------
def test_relay_trip_opens_supply_and_stops_energy_then_close_restores(fleet):
    meter = fleet.meter(0, 5)
    with client(fleet) as cli:
        assert not cli.write_registers(0x0057, [1, 1], device_id=5).isError()
        assert read(cli, 0x4000, 2, 5) == [1, 0b1 | (read(cli, 0x4001, 1, 5)[0] & ~1)]
        before = read(cli, 0, 17, 5)
        assert before[0x0C] == before[0x0D] == 0
        fleet.clock.advance(3600)
        assert read(cli, 0, 2, 5) == before[0:2]
        assert not cli.write_registers(0x0057, [1, 0], device_id=5).isError()
        assert read(cli, 0x4000, 1, 5) == [0]
        fleet.clock.advance(3600)
        assert u32(read(cli, 0, 2, 5), 0) == u32(before, 0) + 115
    assert not meter.relay_open


def test_unknown_relay_command_is_illegal_value(fleet):
    with client(fleet) as cli:
        assert exception_code(cli.write_registers(0x0057, [2, 1], device_id=5)) == 3


def test_valve_closes_after_its_delay_and_stops_the_volume(fleet):
    meter = fleet.meter(0, 18)
    with client(fleet) as cli:
        rr = cli.write_register(0x001C, 2, device_id=18)
        assert not rr.isError() and rr.registers == [2]
        assert read(cli, 0x001C, 1, 18) == [0b01]  # still moving: reports open
        time.sleep(0.3)
        assert read(cli, 0x001C, 1, 18) == [0b10]
        closed = read(cli, 0, 3, 18)
        fleet.clock.advance(3600)
        assert read(cli, 0, 3, 18) == closed
        assert not cli.write_register(0x001C, 1, device_id=18).isError()
        time.sleep(0.3)
        assert read(cli, 0x001C, 1, 18) == [0b01]
        fleet.clock.advance(3600)
        assert volume(read(cli, 0, 3, 18)) == pytest.approx(volume(closed) + 0.5)
    assert meter.valve_open


def test_recharge_with_next_count_is_accepted_and_a_replay_refused(fleet):
    meter = fleet.meter(0, 6)
    with client(fleet) as cli:
        regs = read(cli, 0x4000, 6, 6)
        count = u32(regs, 4)
        record = [0, 5000, (count + 1) >> 16, (count + 1) & 0xFFFF]
        assert not cli.write_registers(0x4010, record, device_id=6).isError()
        after = read(cli, 0x4000, 6, 6)
        assert i32(after, 2) == i32(regs, 2) + 5000
        assert u32(after, 4) == count + 1
        assert exception_code(cli.write_registers(0x4010, record, device_id=6)) == 3
        assert read(cli, 0x4000, 6, 6) == after
    assert meter.purchase_count == count + 1


def test_refund_leaving_a_negative_balance_is_refused(fleet):
    def refund(cents, count):
        return [*struct.unpack(">HH", struct.pack(">i", -cents)), 0, count]

    with client(fleet) as cli:
        regs = read(cli, 0x4000, 6, 7)
        balance, count = i32(regs, 2), u32(regs, 4)
        rr = cli.write_registers(0x4010, refund(balance + 1, count + 1), device_id=7)
        assert exception_code(rr) == 3
        assert read(cli, 0x4000, 6, 7) == regs
        rr = cli.write_registers(0x4010, refund(balance, count + 1), device_id=7)
        assert not rr.isError()
        assert i32(read(cli, 0x4002, 2, 7), 0) == 0


def test_meter_deducts_opens_relay_by_prepaid_logic_and_recharge_closes(fleet):
    meter = fleet.meter(0, 8)
    meter.balance = 1.0
    meter.unit_price = 1.0
    with client(fleet) as cli:
        start = u32(read(cli, 0, 2, 8), 0)
        fleet.clock.advance(3 * 3600)
        regs = read(cli, 0x4000, 6, 8)
        assert regs[0] == 1
        assert regs[1] & 0b11001 == 0b11001  # relay open, balance <= 0, by prepaid
        assert i32(regs, 2) == -1  # stopped one cent below -overdraft_limit (0)
        assert u32(read(cli, 0, 2, 8), 0) == start + 101
        record = [0, 1000, 0, u32(regs, 4) + 1]
        assert not cli.write_registers(0x4010, record, device_id=8).isError()
        regs = read(cli, 0x4000, 2, 8)
        assert regs[0] == 0 and not regs[1] & 0b10000


# -- faults ----------------------------------------------------------------
def test_timeout_fault_gets_no_reply_until_cleared(fleet):
    meter = fleet.meter(0, 9)
    meter.inject("timeout")
    with client(fleet) as cli:
        with pytest.raises(ModbusIOException):
            cli.read_holding_registers(0, count=2, device_id=9)
        meter.clear_faults()
        assert read(cli, 0, 2, 9)


def test_unknown_device_id_gets_no_reply(fleet):
    with client(fleet) as cli, pytest.raises(ModbusIOException):
        cli.read_holding_registers(0, count=2, device_id=99)


@pytest.mark.parametrize("name,code", [("illegal_address", 2), ("device_failure", 4)])
def test_exception_faults_reply_with_their_code(fleet, name, code):
    meter = fleet.meter(0, 10)
    meter.inject(name)
    with client(fleet) as cli:
        assert (
            exception_code(cli.read_holding_registers(0, count=2, device_id=10)) == code
        )
        meter.clear_faults()
        assert read(cli, 0, 2, 10)


def test_meter_disappears_and_returns(fleet):
    fleet.meter(0, 11).inject("disappear", seconds=0.5)
    with client(fleet) as cli:
        with pytest.raises(ModbusIOException):
            cli.read_holding_registers(0, count=2, device_id=11)
        time.sleep(0.3)
        assert read(cli, 0, 2, 11)


def test_counter_rollover_wraps_uint32(fleet):
    meter = fleet.meter(0, 12)
    meter.inject("rollover", before=0.5)
    with client(fleet) as cli:
        assert u32(read(cli, 0, 2, 12), 0) == (1 << 32) - 50
        meter.consume(1.0)
        assert u32(read(cli, 0, 2, 12), 0) == 50


def test_replacement_restarts_counter_and_step_back_goes_lower(fleet):
    meter = fleet.meter(0, 13)
    with client(fleet) as cli:
        last = u32(read(cli, 0, 2, 13), 0)
        meter.inject("step_back", amount=2.5)
        assert u32(read(cli, 0, 2, 13), 0) == last - 250
        meter.inject("replacement", start=0.3)
        assert u32(read(cli, 0, 2, 13), 0) == 30


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_bad_float_makes_the_water_volume_read_nan_or_infinite(fleet, value):
    meter = fleet.meter(0, 18)
    meter.inject("bad_float", value=value)
    with client(fleet) as cli:
        read_value = volume(read(cli, 0x0000, 29, 18))
        meter.clear_faults()
        back = volume(read(cli, 0x0000, 29, 18))
    if value == "nan":
        assert math.isnan(read_value)
    else:
        assert read_value == float(value)
    assert back == pytest.approx(meter.volume, abs=1e-3)


def test_garbage_and_bad_crc_break_rtu_frames(fleet):
    meter = fleet.meter(1, 3)
    for fault in ("garbage", "bad_crc"):
        meter.inject(fault)
        with client(fleet, gateway=1) as cli:
            rr = None
            with pytest.raises(ModbusIOException):
                rr = cli.read_holding_registers(0, count=17, device_id=3)
                if rr.isError():  # some pymodbus versions return instead of raise
                    raise ModbusIOException(str(rr))
        meter.clear_faults()
    with client(fleet, gateway=1) as cli:
        assert read(cli, 0, 17, 3)


def test_stalled_gateway_accepts_tcp_but_never_answers(fleet):
    gw = fleet.gateways[2]
    gw.inject("stall")
    with client(fleet, gateway=2) as cli:
        with pytest.raises(ModbusIOException):
            cli.read_holding_registers(0, count=2, device_id=1)
        gw.clear_faults()
        assert read(cli, 0, 2, 1)


def test_stuck_relay_acknowledges_commands_but_does_not_move(fleet):
    meter = fleet.meter(0, 14)
    meter.inject("stuck_relay")
    with client(fleet) as cli:
        assert not cli.write_registers(0x0057, [1, 1], device_id=14).isError()
        assert read(cli, 0x4000, 1, 14) == [0]
        meter.clear_faults()
        assert read(cli, 0x4000, 1, 14) == [1]  # freed relay follows the command
        assert not cli.write_registers(0x0057, [1, 0], device_id=14).isError()


def test_stuck_valve_reports_abnormal(fleet):
    meter = fleet.meter(0, 19)
    meter.inject("stuck_valve")
    with client(fleet) as cli:
        assert not cli.write_register(0x001C, 2, device_id=19).isError()
        time.sleep(0.3)
        assert read(cli, 0x001C, 1, 19) == [0b101]  # still open, abnormal
    meter.clear_faults()


# -- clock, speed, scale -----------------------------------------------------
def test_frozen_clock_gives_identical_values(fleet):
    with client(fleet) as cli:
        first = read(cli, 0, 17, 15), read(cli, 0x4000, 18, 15)
        time.sleep(0.2)
        assert (read(cli, 0, 17, 15), read(cli, 0x4000, 18, 15)) == first


def test_accelerated_clock_advances_energy_at_load_times_speed():
    spec = build_spec(
        1,
        1,
        speed=3600,
        start_time=START,
        meter_defaults={"load_kw": 3.6, "energy_kwh": 100.0},
    )
    with Fleet.from_spec(spec) as fleet, client(fleet) as cli:
        t0 = time.monotonic()
        e0 = u32(read(cli, 0, 2, 1), 0)
        time.sleep(0.5)
        e1 = u32(read(cli, 0, 2, 1), 0)
        elapsed = time.monotonic() - t0
    # 3.6 kW for `elapsed` simulated hours, in 0.01 kWh
    assert e1 - e0 == pytest.approx(360 * elapsed, abs=15)


def test_baud_emulation_serialises_the_bus():
    fleet = Fleet.build(1, 4, speed=0, baud=9600)
    per_read = bus_time(8, 39, 9600)

    async def sweep(port):
        async def one(dev):
            cli = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
            await cli.connect()
            for _ in range(2):
                assert not (
                    await cli.read_holding_registers(0, count=17, device_id=dev)
                ).isError()
            cli.close()

        start = time.monotonic()
        await asyncio.gather(*(one(d) for d in (1, 2, 3, 4)))
        return time.monotonic() - start

    with fleet:
        elapsed = asyncio.run(sweep(fleet.gateways[0].port))
    assert elapsed >= 8 * per_read * 0.95  # two connections can not overlap


def test_process_fleet_serves_its_gateways_from_workers():
    spec = build_spec(2, 3, kinds=["electric_3p", "water"], speed=0, start_time=START)
    with ProcessFleet(spec, processes=2) as fleet:
        endpoints = fleet.endpoints()
        assert len(endpoints) == 2
        for ep in endpoints:
            cli = ModbusTcpClient("127.0.0.1", port=ep["port"], timeout=2, retries=0)
            assert cli.connect()
            assert len(read(cli, 0, 17, 1)) == 17
            assert len(read(cli, 0, 3, 2)) == 3
            cli.close()


def test_fleet_lookup_by_port_and_concurrent_state_access(fleet):
    gw = fleet.gateways[1]
    assert fleet.meter(gw.port, 1) is fleet.meter(1, 1)
    meter = fleet.meter(0, 15)
    errors = []

    def poke():
        try:
            for _ in range(200):
                meter.consume(0.01)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=poke)
    thread.start()
    with client(fleet) as cli:
        for _ in range(50):
            read(cli, 0, 17, 15)
    thread.join()
    assert not errors
