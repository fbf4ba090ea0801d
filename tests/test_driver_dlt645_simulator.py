"""DL/T 645 driver against the project's simulator (written by another hand
from the same standard) and, where installed, the third-party ``dlt645``
package's meter simulator."""

import asyncio
import logging
from datetime import datetime

import pytest
from prepaid_metering_drivers import bus, dlt645
from prepaid_metering_drivers.dlt645 import DataItem
from prepaid_metering_drivers.modbus import Endpoint

simulator = pytest.importorskip("simulator")

ITEMS = [
    DataItem("energy_total", "00010000", "bcd", 4, 2),
    DataItem("energy_peak", "00010200", "bcd", 4, 2),
    DataItem("voltage", "02010100", "bcd", 2, 1),
    DataItem("current", "02020100", "bcd_signed", 3, 3),
    DataItem("active_power", "02030000", "bcd_signed", 3, 4),
    DataItem("status_word_3", "04000503", "hex", 2),
    DataItem("clock_date", "04000101", "date", 4),
    DataItem("clock_time", "04000102", "time", 3),
    DataItem("events_cover", "03300D00", "bcd", 3),
]
STATUS = ITEMS[5]


@pytest.fixture(scope="module")
def fleet():
    spec = simulator.build_spec(
        2, 3, kinds=["electric_1p", "electric_3p"], protocol="dlt645"
    )
    with simulator.Fleet.from_spec(spec) as running:
        yield running


def endpoint(gw, timeout=0.5):
    return Endpoint("dlt645_tcp", host=gw.host, port=gw.port, timeout=timeout)


def polls(gw):
    return [
        dlt645.MeterPoll((gw.index, d), gw.meter(d).address, ITEMS)
        for d in sorted(gw.meters)
    ]


def test_sweep_reads_every_meter_and_agrees_with_the_simulator(fleet, caplog):
    jobs = [(endpoint(gw), polls(gw)) for gw in fleet.gateways]
    results = dict(bus.iter_sweep(jobs))
    for index, gw in enumerate(fleet.gateways):
        for result in results[index]:
            assert result.ok, result.error
            meter = gw.meter(result.key[1])
            assert result.values["energy_total"] == pytest.approx(
                meter.energy_total, abs=0.02
            )
            assert 200 < result.values["voltage"] < 250
            assert result.values["status_word_3"] == 0  # relay closed
            now = meter.meter_time()
            assert result.values["clock_date"] == float(now.strftime("%y%m%d"))
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_one_meter_in_error_garbage_or_silent_the_others_are_read(fleet):
    gw = fleet.gateways[0]
    no_data, garbled, silent = (gw.meter(d) for d in (1, 2, 3))
    no_data.inject("dlt_error", di="02010100", bits=0x02)
    garbled.inject("garbage")
    try:
        results = asyncio.run(dlt645.poll_bus(endpoint(gw, 0.3), polls(gw)))
        assert results[0].error_kind == "exception"
        assert "no data requested" in results[0].error
        assert results[0].values["energy_total"] > 0  # the other items
        assert results[1].error_kind == "decode"
        assert results[2].ok
        silent.inject("timeout")
        results = asyncio.run(dlt645.poll_bus(endpoint(gw, 0.3), polls(gw)[2:]))
        assert results[0].error_kind == "timeout"
    finally:
        for meter in (no_data, garbled, silent):
            meter.clear_faults()


def _relay(meter, operation, password="123456"):
    return dlt645.RelayJob(
        key=meter.device_id,
        address=meter.address,
        operation=operation,
        level=2,
        password=password,
        operator="00000001",
        valid_until=datetime(2030, 1, 1),
        verify=STATUS,
        mask=0x10,
        expected=0 if operation != dlt645.TRIP else 0x10,
        settle_timeout=2.0,
    )


def test_relay_trip_and_close_are_read_back(fleet):
    gw = fleet.gateways[1]
    meter = gw.meter(2)
    trip = bus.execute_job(endpoint(gw), _relay(meter, dlt645.TRIP))
    assert trip.ok, trip.error
    assert trip.readback == {"status_word_3": float(0x10 | 0x40)}
    assert meter.relay_open
    close = bus.execute_job(endpoint(gw), _relay(meter, dlt645.CLOSE_DIRECT))
    assert close.ok, close.error
    assert not meter.relay_open


def test_wrong_password_is_refused_with_its_name(fleet):
    gw = fleet.gateways[1]
    meter = gw.meter(1)
    result = bus.execute_job(endpoint(gw), _relay(meter, dlt645.TRIP, "654321"))
    assert not result.ok and result.error_kind == "exception"
    assert "password wrong or unauthorised" in result.error
    assert not meter.relay_open


def test_relay_jobs_on_two_lines_one_result_each(fleet):
    buses = [
        (endpoint(gw), [_relay(gw.meter(d), dlt645.TRIP) for d in (1, 3)])
        for gw in fleet.gateways
    ]
    try:
        pairs = [pair for batch in bus.iter_writes(buses) for pair in batch]
        assert len(pairs) == 4 and all(result.ok for _job, result in pairs)
    finally:
        closing = [
            (endpoint(gw), [_relay(gw.meter(d), dlt645.CLOSE_DIRECT) for d in (1, 3)])
            for gw in fleet.gateways
        ]
        list(bus.iter_writes(closing))


def test_time_sync_sets_the_meter_clocks(fleet):
    gw = fleet.gateways[0]
    when = datetime(2026, 12, 5, 8, 0, 0)
    ok, _message = dlt645.sync_time(endpoint(gw), when)
    assert ok
    for _ in range(50):
        if abs((gw.meter(1).meter_time() - when).total_seconds()) < 5:
            break
        asyncio.run(asyncio.sleep(0.02))
    assert abs((gw.meter(1).meter_time() - when).total_seconds()) < 5


def test_scan_finds_the_one_meter_and_refuses_a_crowd():
    spec = simulator.build_spec(1, 1, protocol="dlt645")
    with simulator.Fleet.from_spec(spec) as alone:
        gw = alone.gateways[0]
        assert dlt645.scan(endpoint(gw)) == (gw.meter(1).address, "ok")
    spec = simulator.build_spec(1, 3, protocol="dlt645")
    with simulator.Fleet.from_spec(spec) as crowd:
        address, message = dlt645.scan(endpoint(crowd.gateways[0]))
        assert address is None and "more than one meter" in message
