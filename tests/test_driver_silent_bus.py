"""A bus that answers nothing is given up after a few silent meters, not after
one timeout per meter, and the other buses of the sweep are read meanwhile."""

import time

import pytest
from prepaid_metering_drivers import codec
from prepaid_metering_drivers.codec import Register
from prepaid_metering_drivers.modbus import Endpoint, MeterPoll, run_sweep

simulator = pytest.importorskip("simulator")

BLOCKS = codec.plan_reads([Register("energy_total", 0x0000, "uint32", scale=0.01)])
TIMEOUT = 0.5
METERS = 10


@pytest.fixture(scope="module")
def fleet():
    with simulator.Fleet.build(
        gateways=2, meters_per_gateway=METERS, framer="socket", speed=0
    ) as running:
        yield running


def sweep(fleet, give_up_after):
    jobs = [
        (
            Endpoint(
                "tcp",
                host=gw.host,
                port=gw.port,
                timeout=TIMEOUT,
                give_up_after=give_up_after,
            ),
            [MeterPoll((gw.index, d), d, BLOCKS) for d in sorted(gw.meters)],
        )
        for gw in fleet.gateways
    ]
    started = time.perf_counter()
    results = run_sweep(jobs)
    return results, time.perf_counter() - started


def test_silent_bus_is_given_up_after_three_meters(fleet):
    stalled = fleet.gateways[0]
    stalled.inject("stall")
    try:
        results, elapsed = sweep(fleet, give_up_after=3)
    finally:
        stalled.clear_faults()
    dead, alive = results
    assert [r.error_kind for r in dead] == ["timeout"] * METERS
    assert all("bus silent" in r.error for r in dead[3:])
    assert all("bus silent" not in r.error for r in dead[:3])
    assert all(r.ok for r in alive)
    # three timeouts (plus reconnects), far from one per meter
    assert elapsed < METERS * TIMEOUT


def test_without_the_limit_every_meter_waits_for_its_timeout(fleet):
    stalled = fleet.gateways[0]
    stalled.inject("stall")
    try:
        results, elapsed = sweep(fleet, give_up_after=0)
    finally:
        stalled.clear_faults()
    assert not any("bus silent" in r.error for r in results[0])
    assert elapsed >= METERS * TIMEOUT


def test_one_silent_meter_among_answering_ones_is_not_a_silent_bus(fleet):
    gateway = fleet.gateways[0]
    for device_id in (2, 3, 4, 5):
        gateway.meter(device_id).inject("timeout")
    try:
        results, _elapsed = sweep(fleet, give_up_after=3)
    finally:
        for device_id in (2, 3, 4, 5):
            gateway.meter(device_id).clear_faults()
    kinds = [r.error_kind for r in results[0]]
    assert kinds[0] is None and kinds[5:] == [None] * (METERS - 5)
    assert kinds[1:5] == ["timeout"] * 4
