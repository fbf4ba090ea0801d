"""The DL/T 645 driver reads a meter nobody here wrote: the meter simulator
of the third-party ``dlt645`` package (Apache-2.0, test-only dependency in
requirements-dev.txt). It has no relay control, so reads only."""

import socket
import time

import pytest
from prepaid_metering_drivers import dlt645
from prepaid_metering_drivers.dlt645 import DataItem
from prepaid_metering_drivers.modbus import Endpoint

peer = pytest.importorskip("dlt645")

ITEMS = [
    DataItem("energy_total", "00010000", "bcd", 4, 2),
    DataItem("voltage", "02010100", "bcd", 2, 1),
    DataItem("current", "02020100", "bcd_signed", 3, 3),
    DataItem("active_power", "02030000", "bcd_signed", 3, 4),
]


@pytest.fixture
def meter():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    service = peer.MeterServerService.new_tcp_server("127.0.0.1", port, 3.0)
    service.set_address(bytearray(dlt645.address_bytes("000000000301")))
    service.set_00(0x00010000, 1234.56)
    service.set_02(0x02010100, 220.1)
    service.set_02(0x02020100, -5.123)
    service.set_02(0x02030000, 1.2345)
    service.start()
    endpoint = Endpoint("dlt645_tcp", port=port, timeout=1.0)
    for _ in range(50):
        if dlt645.check_connection(endpoint)[0]:
            break
        time.sleep(0.05)
    yield endpoint
    service.stop()


def test_values_with_scale_and_sign_read_from_the_third_party_meter(meter):
    result = dlt645.read_now(meter, "000000000301", ITEMS)
    assert result.ok, result.error
    assert result.values == {
        "energy_total": 1234.56,
        "voltage": 220.1,
        "current": -5.123,
        "active_power": 1.2345,
    }


def test_third_party_meter_gives_its_address_to_a_scan(meter):
    assert dlt645.scan(meter) == ("000000000301", "ok")
