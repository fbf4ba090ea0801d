"""Driver against the project's meter-fleet simulator (skipped if it is absent)."""

import logging
import socket

import pytest
from prepaid_metering_drivers import codec
from prepaid_metering_drivers.codec import Register
from prepaid_metering_drivers.modbus import (
    Endpoint,
    MeterPoll,
    WriteJob,
    execute_write,
    iter_writes,
    run_sweep,
)

simulator = pytest.importorskip("simulator")

ACREL = [
    Register("energy_total", 0x0000, "uint32", scale=0.01),
    Register("voltage", 0x000B, "uint16", scale=0.1),
    Register("power_factor", 0x0010, "int16", scale=0.001),
]
PX = [
    Register("relay_state", 0x4000),
    Register("balance", 0x4002, "int32", scale=0.01),
    Register("purchase_count", 0x4004, "uint32"),
]
BLOCKS = codec.plan_reads(ACREL + PX)


@pytest.fixture(scope="module")
def fleet():
    with simulator.Fleet.build(
        gateways=2, meters_per_gateway=4, framer=["socket", "rtu"], speed=0
    ) as running:
        yield running


def endpoint(gateway):
    protocol = "tcp" if gateway.framer == "socket" else "rtu_over_tcp"
    return Endpoint(protocol, host=gateway.host, port=gateway.port, timeout=0.3)


def test_sweep_reads_simulated_fleet_and_survives_faults(fleet, caplog):
    faulty = fleet.meter(0, 2)
    silent = fleet.meter(1, 2)
    faulty.inject("exception", code=0x04)
    silent.inject("timeout")
    try:
        jobs = [
            (
                endpoint(gw),
                [MeterPoll((gw.index, d), d, BLOCKS) for d in sorted(gw.meters)],
            )
            for gw in fleet.gateways
        ]
        sweep = run_sweep(jobs)
    finally:
        faulty.clear_faults()
        silent.clear_faults()
    assert [[r.error_kind for r in bus] for bus in sweep] == [
        [None, "exception", None, None],
        [None, "timeout", None, None],
    ]
    assert sweep[0][1].exception_code == 0x04
    for bus, gw in zip(sweep, fleet.gateways, strict=True):
        for result in bus:
            if result.ok:
                meter = gw.meter(result.device_id)
                assert result.values["energy_total"] == pytest.approx(
                    meter.energy_total, abs=0.01
                )
                assert result.values["relay_state"] == float(meter.relay_open)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_trip_command_is_verified_on_simulated_meter(fleet):
    gw = fleet.gateways[0]
    result = execute_write(
        endpoint(gw),
        3,
        address=0x57,
        words=[1, 1],
        verify=PX[0],
        mask=1,
        expected=1,
        settle_timeout=2.0,
        poll_interval=0.05,
    )
    try:
        assert result.ok, result.error
        assert gw.meter(3).relay_open
    finally:
        execute_write(endpoint(gw), 3, address=0x57, words=[1, 0])


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _trip(key, device_id, on):
    return WriteJob(
        key,
        device_id,
        address=0x57,
        words=[1, 1 if on else 0],
        verify=PX[0],
        mask=1,
        expected=1 if on else 0,
        settle_timeout=1.0,
    )


def test_writes_on_many_buses_one_result_per_write(fleet):
    """Every bus at once, each bus in order; a silent meter fails alone and
    the next one on its bus is still switched; a dead gateway fails all its
    writes with the reason; a write the driver refuses fails alone."""
    silent = fleet.meter(1, 2)
    silent.inject("timeout")
    dead = Endpoint("tcp", port=_free_port(), timeout=0.3)
    buses = [
        (endpoint(gw), [_trip((gw.index, d), d, True) for d in (1, 2, 3)])
        for gw in fleet.gateways
    ]
    bad = WriteJob((0, "bad"), 4, address=0x57, words=[0x1FFFF])
    buses[0][1].append(bad)
    buses.append((dead, [_trip(("dead", 1), 1, True), _trip(("dead", 2), 2, True)]))
    try:
        batches = list(iter_writes(buses))
        results = {job.key: result for batch in batches for job, result in batch}
        assert len(results) == sum(len(jobs) for _e, jobs in buses)
        for gw in fleet.gateways:
            for device_id in (1, 2, 3):
                result = results[(gw.index, device_id)]
                if (gw.index, device_id) == (1, 2):
                    assert not result.ok and result.error_kind == "timeout"
                    assert not gw.meter(device_id).relay_open
                else:
                    assert result.ok, result.error
                    assert gw.meter(device_id).relay_open
        assert "invalid write" in results[(0, "bad")].error
        for device_id in (1, 2):
            dead_result = results[("dead", device_id)]
            assert dead_result.error_kind == "connection"
            assert "cannot connect" in dead_result.error
        # Each bus's results come back in the order of its writes.
        order = [job.key for batch in batches for job, _r in batch]
        first_bus = [key for key in order if key[0] == 0]
        assert first_bus == [(0, 1), (0, 2), (0, 3), (0, "bad")]
    finally:
        silent.clear_faults()
        off = [
            (endpoint(gw), [_trip(None, d, False) for d in (1, 2, 3)])
            for gw in fleet.gateways
        ]
        for batch in iter_writes(off):
            assert all(result.ok for _job, result in batch)
