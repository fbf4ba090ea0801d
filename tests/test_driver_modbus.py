"""Modbus driver against real pymodbus servers on 127.0.0.1.

The servers run in a background thread with their own event loop, so the tests
exercise both the async API and the synchronous wrappers Odoo calls.
"""

import asyncio
import logging
import socket
import threading
import time

import pytest
from prepaid_metering_drivers import codec
from prepaid_metering_drivers.codec import Register
from prepaid_metering_drivers.modbus import (
    Endpoint,
    MeterPoll,
    check_connection,
    execute_write,
    poll_bus,
    poll_many,
    read_now,
    run_sweep,
    write_and_verify,
)
from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerType
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

TIMEOUT = 0.3
HEALTHY = (1, 2, 3, 4, 5)
FAULTY = 7  # answers every request with exception 0x04
SILENT = 8  # answers 0.45 s late, after the client gave up
SLUGGISH = 12  # answers in 0.2 s, within the timeout
NO_PX = 9  # has no px_prepaid block: reading it gives exception 0x02
RELAY = 10  # relay follows a trip command 0.3 s later
STUCK = 11  # accepts relay commands, relay never moves
WATER = 20  # battery valve meter, valve moves 0.4 s after the command

ACREL = [
    Register("energy_total", 0x0000, "uint32", scale=0.01),
    Register("energy_sharp", 0x0002, "uint32", scale=0.01),
    Register("energy_peak", 0x0004, "uint32", scale=0.01),
    Register("energy_flat", 0x0006, "uint32", scale=0.01),
    Register("energy_valley", 0x0008, "uint32", scale=0.01),
    Register("voltage", 0x000B, "uint16", scale=0.1),
    Register("current", 0x000C, "uint16", scale=0.01),
    Register("active_power", 0x000D, "int16", scale=0.001),
    Register("power_factor", 0x0010, "int16", scale=0.001),
]
PX = [
    Register("relay_state", 0x4000),
    Register("status_bits", 0x4001),
    Register("balance", 0x4002, "int32", scale=0.01),
    Register("purchase_count", 0x4004, "uint32"),
    Register("unit_price", 0x4006, "uint32", scale=0.0001, access="rw"),
]
WATER_REGS = [
    Register("volume_total", 0x0001, "float32", "DCBA"),
    Register("valve", 0x001C, access="rw"),
]
ELECTRIC_BLOCKS = codec.plan_reads(ACREL + PX)
ACREL_BLOCKS = codec.plan_reads(ACREL)
WATER_BLOCKS = codec.plan_reads(WATER_REGS)


def expected_values(device_id):
    """The scaled values every simulated electric meter reports."""
    return {
        "energy_total": device_id * 1000 + 123.45,
        "voltage": 220.0 + device_id / 10,
        "active_power": -1.5,
        "power_factor": 0.987,
        "balance": -device_id * 10.5,
        "unit_price": 0.6543,
    }


def acrel_words(device_id):
    words = [0] * 17
    values = expected_values(device_id)
    for reg in ACREL:
        if reg.name in values:
            words[reg.address : reg.end] = reg.encode_scaled(values[reg.name])
    return words


def px_words(device_id):
    words = [0] * 16
    values = expected_values(device_id)
    for reg in PX:
        if reg.name in values:
            words[reg.address - 0x4000 : reg.end - 0x4000] = reg.encode_scaled(
                values[reg.name]
            )
    return words


def regs(address, values):
    return SimData(address, values=values, datatype=DataType.REGISTERS)


def electric(device_id, action=None, px=True):
    blocks = [regs(0, acrel_words(device_id)), regs(0x57, [0, 0])]
    if px:
        blocks.append(regs(0x4000, px_words(device_id)))
    return SimDevice(id=device_id, simdata=blocks, action=action)


async def always_fails(*_args):
    return ExcCodes.DEVICE_FAILURE


def sleeper(delay):
    async def action(*_args):
        await asyncio.sleep(delay)

    return action


def relay_meter(moves):
    async def action(function_code, start, address, _count, registers, values):
        if function_code == 16 and address == 0x57 and values and moves:
            state = values[1]
            asyncio.get_running_loop().call_later(
                0.3, registers.__setitem__, 0x4000 - start, state
            )

    return action


async def valve_action(function_code, start, address, _count, registers, values):
    if function_code == 6 and address == 0x1C and values:
        command = values[0]
        # the register keeps showing the old state until the valve has moved
        values[0] = registers[0x1C - start]
        status = {1: 0b01, 2: 0b10}.get(command, 0b100)
        asyncio.get_running_loop().call_later(
            0.4, registers.__setitem__, 0x1C - start, status
        )


def devices():
    water = codec.encode(1234.567, "float32", "DCBA")
    return [
        *(electric(i) for i in HEALTHY),
        electric(FAULTY, always_fails),
        electric(SILENT, sleeper(0.45)),
        electric(SLUGGISH, sleeper(0.2)),
        electric(NO_PX, px=False),
        electric(RELAY, relay_meter(True)),
        electric(STUCK, relay_meter(False)),
        SimDevice(
            id=WATER,
            simdata=[regs(0x0001, water), regs(0x001C, [0b10])],
            action=valve_action,
        ),
    ]


class ServerThread:
    """pymodbus servers on ephemeral loopback ports, served from one thread."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.servers = []
        self.raw_servers = []

    def start(self, framer, device_list=None) -> int:
        return asyncio.run_coroutine_threadsafe(
            self._start(framer, device_list or devices()), self.loop
        ).result(5)

    async def _start(self, framer, device_list):
        server = ModbusTcpServer(device_list, address=("127.0.0.1", 0), framer=framer)
        await server.serve_forever(background=True)
        self.servers.append(server)
        return server.transport.sockets[0].getsockname()[1]

    def start_hang_up(self) -> int:
        """A gateway that accepts TCP connections and closes them at once."""

        async def hang_up(_reader, writer):
            writer.close()

        async def start():
            server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
            self.raw_servers.append(server)
            return server.sockets[0].getsockname()[1]

        return asyncio.run_coroutine_threadsafe(start(), self.loop).result(5)

    def stop(self):
        for server in self.raw_servers:
            self.loop.call_soon_threadsafe(server.close)
        for server in self.servers:
            asyncio.run_coroutine_threadsafe(server.shutdown(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture(scope="module")
def gateways():
    runner = ServerThread()
    ports = {
        "tcp": runner.start(FramerType.SOCKET),
        "rtu_over_tcp": runner.start(FramerType.RTU),
        "hang_up": runner.start_hang_up(),
    }
    yield ports
    runner.stop()


@pytest.fixture(params=["tcp", "rtu_over_tcp"])
def endpoint(request, gateways):
    protocol = request.param
    return Endpoint(
        protocol, port=gateways[protocol], timeout=TIMEOUT, key=f"gw-{protocol}"
    )


@pytest.fixture
def no_warnings(caplog):
    """Fail the test if any logger emitted WARNING or worse (the Odoo rule)."""
    caplog.set_level(logging.DEBUG, logger="prepaid_metering_drivers")
    yield caplog
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not loud, [f"{r.name}: {r.getMessage()}" for r in loud]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def polls(*device_ids, blocks=ELECTRIC_BLOCKS):
    return [MeterPoll(key=f"m{d}", device_id=d, blocks=blocks) for d in device_ids]


def assert_reads_own_values(result, device_id):
    assert result.ok, result.error
    assert result.device_id == device_id
    for name, value in expected_values(device_id).items():
        assert result.values[name] == pytest.approx(value), name


def test_sweep_decodes_every_meter(endpoint, no_warnings):
    results = asyncio.run(poll_bus(endpoint, polls(*HEALTHY)))
    assert [r.key for r in results] == [f"m{d}" for d in HEALTHY]
    for result, device_id in zip(results, HEALTHY, strict=True):
        assert_reads_own_values(result, device_id)
        assert sorted(result.raw) == [0x0000, 0x4000]
        assert result.raw[0] == acrel_words(device_id)
        assert result.error is None and result.error_kind is None
        assert result.duration_ms > 0
        assert result.at.tzinfo is None
    assert results[0].values["energy_total"] == 1123.45


def test_exception_reply_is_a_per_meter_fault(endpoint, no_warnings):
    results = asyncio.run(poll_bus(endpoint, polls(1, FAULTY, 2)))
    assert results[1].ok is False
    assert results[1].error_kind == "exception"
    assert results[1].exception_code == 0x04
    assert "0x04 device_failure" in results[1].error
    assert_reads_own_values(results[0], 1)
    assert_reads_own_values(results[2], 2)


def test_missing_block_fails_meter_but_keeps_partial_values(endpoint, no_warnings):
    (result,) = asyncio.run(poll_bus(endpoint, polls(NO_PX)))
    assert (result.ok, result.error_kind, result.exception_code) == (
        False,
        "exception",
        0x02,
    )
    assert "0x4000" in result.error
    assert result.values["energy_total"] == NO_PX * 1000 + 123.45
    assert "balance" not in result.values
    assert list(result.raw) == [0]


def test_timeout_does_not_desync_the_next_meters(endpoint, no_warnings):
    # SILENT's late answer lands while SLUGGISH's request is outstanding; on the
    # old connection it would be taken for SLUGGISH's answer.
    started = time.monotonic()
    results = asyncio.run(poll_bus(endpoint, polls(SILENT, SLUGGISH, 1, SILENT, 2)))
    elapsed = time.monotonic() - started
    assert [r.error_kind for r in results] == [
        "timeout",
        None,
        None,
        "timeout",
        None,
    ]
    assert results[0].values == {} and results[0].raw == {}
    assert "no reply" in results[0].error
    assert_reads_own_values(results[1], SLUGGISH)
    assert_reads_own_values(results[2], 1)
    assert_reads_own_values(results[4], 2)
    assert elapsed < 2 * TIMEOUT + 1.0


def test_unreachable_gateway_fails_every_meter_with_reason(no_warnings):
    endpoint = Endpoint("tcp", port=free_port(), timeout=TIMEOUT)
    results = asyncio.run(poll_bus(endpoint, polls(1, 2, 3)))
    assert [r.error_kind for r in results] == ["connection"] * 3
    assert all(not r.ok for r in results)
    assert "cannot connect to tcp 127.0.0.1" in results[0].error
    assert "refused" in results[0].error.lower()


def test_bad_endpoint_and_missing_serial_port_are_connection_faults(no_warnings):
    (bad,) = asyncio.run(poll_bus(Endpoint("udp"), polls(1)))
    assert bad.error_kind == "connection" and "unknown protocol" in bad.error
    serial = Endpoint("serial", serial_port="/dev/does-not-exist", timeout=TIMEOUT)
    (result,) = asyncio.run(poll_bus(serial, polls(1)))
    assert result.error_kind == "connection"
    assert "/dev/does-not-exist" in result.error


def test_gateways_are_polled_in_parallel_in_job_order(gateways, no_warnings):
    jobs = [
        (
            Endpoint("rtu_over_tcp", port=gateways["rtu_over_tcp"], timeout=TIMEOUT),
            polls(SILENT, 3),
        ),
        (Endpoint("tcp", port=free_port(), timeout=TIMEOUT), polls(4)),
        (Endpoint("tcp", port=gateways["tcp"], timeout=TIMEOUT), polls(SILENT, 1, 2)),
    ]
    started = time.monotonic()
    sweep = run_sweep(jobs)
    elapsed = time.monotonic() - started
    assert [[r.key for r in bus] for bus in sweep] == [
        ["m8", "m3"],
        ["m4"],
        ["m8", "m1", "m2"],
    ]
    assert [r.error_kind for r in sweep[0]] == ["timeout", None]
    assert sweep[1][0].error_kind == "connection"
    assert [r.error_kind for r in sweep[2]] == ["timeout", None, None]
    assert_reads_own_values(sweep[0][1], 3)
    assert_reads_own_values(sweep[2][2], 2)
    assert elapsed < 2 * TIMEOUT  # two timeouts, overlapped


def test_poll_many_returns_empty_list_per_empty_job(endpoint):
    assert asyncio.run(poll_many([(endpoint, [])])) == [[]]


def test_read_now_reads_one_meter(endpoint, no_warnings):
    result = read_now(endpoint, 3, ACREL_BLOCKS)
    assert result.ok and result.key == endpoint.key
    assert result.values["energy_total"] == 3123.45


def test_water_meter_float32_dcba(endpoint, no_warnings):
    result = read_now(endpoint, WATER, WATER_BLOCKS)
    assert result.ok, result.error
    assert result.values == {"volume_total": 1234.567, "valve": 2.0}
    assert sorted(result.raw) == [0x0001, 0x001C]


def test_relay_trip_is_verified_by_read_back(endpoint, no_warnings):
    result = execute_write(
        endpoint,
        RELAY,
        address=0x57,
        words=[1, 1],
        verify=PX[0],
        mask=1,
        expected=1,
        settle_timeout=2.0,
        poll_interval=0.05,
    )
    assert result.ok, result.error
    assert result.readback == {"relay_state": 1.0}
    assert result.attempts > 2  # the relay took a few read-backs to move
    closed = execute_write(
        endpoint,
        RELAY,
        address=0x57,
        words=[1, 0],
        verify=PX[0],
        mask=1,
        expected=0,
        settle_timeout=2.0,
        poll_interval=0.05,
    )
    assert closed.ok and closed.readback == {"relay_state": 0.0}


def test_relay_that_never_moves_fails_with_clear_reason(endpoint, no_warnings):
    started = time.monotonic()
    result = execute_write(
        endpoint,
        STUCK,
        address=0x57,
        words=[1, 1],
        verify=PX[0],
        mask=1,
        expected=1,
        settle_timeout=0.5,
        poll_interval=0.1,
    )
    assert time.monotonic() - started < 1.5
    assert result.ok is False
    assert result.error_kind == "verify"
    assert result.error == (
        "relay_state did not change as commanded: read 0x0 (mask 0x1, expected 0x1)"
        " after 0.5 s"
    )
    assert result.readback == {"relay_state": 0.0}


def test_valve_command_fc06_waits_for_battery_meter(endpoint, no_warnings):
    result = execute_write(
        endpoint,
        WATER,
        address=0x1C,
        words=[1],
        function=6,
        verify=WATER_REGS[1],
        mask=0b11,
        expected=0b01,
        settle_timeout=3.0,
        poll_interval=0.1,
    )
    assert result.ok, result.error
    assert result.readback == {"valve": 1.0}


def test_write_refused_by_meter_reports_exception_code(endpoint, no_warnings):
    result = execute_write(endpoint, FAULTY, address=0x57, words=[1, 1], verify=PX[0])
    assert (result.ok, result.error_kind, result.exception_code) == (
        False,
        "exception",
        0x04,
    )
    assert result.error.startswith("exception 0x04 device_failure to write FC16")


def test_write_without_verify_and_write_to_unreachable_gateway(endpoint, no_warnings):
    assert execute_write(endpoint, 5, address=0x57, words=[0, 0]).ok
    down = Endpoint("tcp", port=free_port(), timeout=TIMEOUT)
    result = execute_write(down, 5, address=0x57, words=[0, 0])
    assert result.error_kind == "connection" and "cannot connect" in result.error


def test_write_timeout_is_reported(endpoint, no_warnings):
    result = asyncio.run(write_and_verify(endpoint, SILENT, address=0x57, words=[1, 1]))
    assert (result.ok, result.error_kind) == (False, "timeout")
    assert "no reply to write FC16 0x0057" in result.error


def test_write_arguments_are_checked():
    endpoint = Endpoint("tcp")
    with pytest.raises(ValueError, match="FC06"):
        execute_write(endpoint, 1, address=0x1C, words=[1, 2], function=6)
    with pytest.raises(ValueError, match="function"):
        execute_write(endpoint, 1, address=0x1C, words=[1], function=5)
    with pytest.raises(ValueError, match="out of range"):
        execute_write(endpoint, 1, address=0x1C, words=[0x10000])


def test_check_connection_reports_success_and_reason(gateways, no_warnings):
    ok, message = check_connection(Endpoint("tcp", port=gateways["tcp"]))
    assert ok and message.startswith("connected to tcp 127.0.0.1:")
    ok, message = check_connection(Endpoint("tcp", port=free_port(), timeout=TIMEOUT))
    assert not ok and "Connection refused" in message
    ok, message = check_connection(Endpoint("modbus-udp"))
    assert not ok and "unknown protocol" in message


@pytest.mark.parametrize("protocol", ["tcp", "rtu_over_tcp"])
def test_gateway_that_hangs_up_faults_meters_without_raising(
    gateways, protocol, no_warnings
):
    endpoint = Endpoint(protocol, port=gateways["hang_up"], timeout=TIMEOUT)
    results = asyncio.run(poll_bus(endpoint, polls(1, 2, 3)))
    assert [r.ok for r in results] == [False] * 3
    assert {r.error_kind for r in results} <= {"connection", "timeout"}
    result = execute_write(
        endpoint, 1, address=0x57, words=[1, 1], verify=PX[0], settle_timeout=0.5
    )
    assert result.error_kind in {"connection", "timeout"}
