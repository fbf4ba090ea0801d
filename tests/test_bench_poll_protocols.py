"""bench/poll_protocols.py: the pieces of the DL/T 645 benchmark that need no
database (site layout, bus limit from frame sizes, the bare sweep)."""

import asyncio
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from simulator import Fleet, build_spec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import poll_protocols  # noqa: E402


@pytest.mark.parametrize("kind", ["modbus", "dlt645", "mixed"])
def test_bench_site_and_simulator_agree_on_each_gateway_protocol(kind):
    spec = build_spec(5, 1, protocol=list(poll_protocols.KINDS[kind]))
    assert poll_protocols.gateway_protocols(kind, 5) == [
        gw.get("protocol", "modbus") for gw in spec["gateways"]
    ]


def test_reply_sizes_come_from_the_frames():
    # 4 FE + 68 A0..A5 68 C L (10) + DI (4) + value + CS 16 (2)
    assert poll_protocols.reply_size("00010000") == 4 + 12 + 4 + 4
    assert poll_protocols.reply_size("02010100") == 4 + 12 + 4 + 2
    assert poll_protocols.reply_size("02020100") == 4 + 12 + 4 + 3
    assert poll_protocols.reply_size("04000503") == 4 + 12 + 4 + 2


def test_bus_limit_is_the_slowest_line_at_11_bits_per_byte():
    energy = SimpleNamespace(di="00010000")
    volts = SimpleNamespace(di="02010100")
    meter = SimpleNamespace(items=[energy, volts])
    jobs = [(None, [meter, meter]), (None, [meter])]
    limit, request, sizes = poll_protocols.dlt_bus_limit([(jobs, None)], 2400)
    assert request == 20 and sizes == [22, 24]
    assert limit == pytest.approx(2 * ((20 + 24) + (20 + 22)) * 11 / 2400)


def test_requests_are_counted_per_protocol():
    modbus = SimpleNamespace(blocks=[(0, 17), (0x4000, 14)])
    items = [SimpleNamespace(di=di) for di in ("00010000", "0001FF00", "0001ff00")]
    dlt = SimpleNamespace(items=items)
    jobs = [(None, [modbus, modbus]), (None, [dlt])]
    assert poll_protocols.requests_of([(jobs, None)]) == {
        "modbus": (4, 2),
        "dlt645": (2, 1),  # two items share the block identifier 0001FF00
    }


def test_bare_sweep_reads_every_meter_and_counts_a_silent_one():
    spec = build_spec(1, 3, protocol="dlt645", speed=0)
    with Fleet.from_spec(spec) as fleet:
        endpoint = fleet.endpoints()[0]
        dis = [0x00010000, 0x02010100]
        ok = asyncio.run(poll_protocols._bare_dlt_bus(endpoint, dis, 0.5))
        assert ok == (3, 0)
        fleet.meter(0, 2).inject("timeout")
        fleet.meter(0, 3).inject("dlt_error", di="02010100")
        ok = asyncio.run(poll_protocols._bare_dlt_bus(endpoint, dis, 0.3))
        assert ok == (1, 2)
