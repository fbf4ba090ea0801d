"""Meter models and bus helpers of the simulator, without any network."""

import json
import struct

import pytest

from simulator import (
    TOU_SCHEDULE,
    ElectricMeter,
    ModbusError,
    SimClock,
    WaterMeter,
    bus_time,
    dcba_regs_float32,
    demo_spec,
    float32_dcba_regs,
    rtu_request_size,
    rtu_response_size,
    silent_interval,
)
from simulator.demo import DEMO_FLEET_PATH, generate_demo_spec


def make_clock(start="2025-03-01T00:00:00"):
    return SimClock(speed=0, start=start)


def test_rtu_frame_sizes_follow_the_modbus_spec():
    assert rtu_request_size(3, 17) == 8
    assert rtu_response_size(3, 17) == 39
    assert rtu_request_size(16, 4) == 17
    assert rtu_response_size(16, 4) == 8
    assert (rtu_request_size(6), rtu_response_size(6)) == (8, 8)
    assert rtu_response_size(3, 17, exception=True) == 5


def test_bus_time_counts_10_bits_per_byte_and_t35_per_frame():
    t35 = 3.5 * 10 / 9600
    assert silent_interval(9600) == pytest.approx(t35)
    assert bus_time(8, 39, 9600) == pytest.approx(47 * 10 / 9600 + 2 * t35)
    assert silent_interval(115200) == pytest.approx(0.00175)


def test_tou_schedule_covers_every_hour_with_a_band():
    assert len(TOU_SCHEDULE) == 24
    assert TOU_SCHEDULE[3] == TOU_SCHEDULE[23] == 3  # valley
    assert TOU_SCHEDULE[9] == 1  # peak
    assert TOU_SCHEDULE[20] == 0  # sharp
    assert TOU_SCHEDULE[12] == 2  # flat


def test_energy_advances_into_the_band_of_the_simulated_hour():
    clock = make_clock("2025-03-01T06:30:00")
    meter = ElectricMeter(1, clock=clock, energy_kwh=0, load_kw=2.0, unit_price=0)
    clock.advance(3600)  # 06:30 valley -> 07:30 flat
    assert meter.bands == {"sharp": 0.0, "peak": 0.0, "flat": 1.0, "valley": 1.0}
    assert meter.energy_total == 2.0


def test_total_register_is_the_sum_of_the_band_registers():
    meter = ElectricMeter(1, clock=make_clock(), energy_kwh=1234.57)
    regs = meter.read_registers(0, 10)
    words = [(regs[i] << 16) | regs[i + 1] for i in range(0, 10, 2)]
    assert words[0] == 123457 == sum(words[1:])


def test_daily_profile_scales_the_load():
    clock = make_clock("2025-03-01T00:00:00")
    profile = [0.0] * 24
    profile[1] = 2.0
    meter = ElectricMeter(1, clock=clock, load_kw=1.0, profile=profile, unit_price=0)
    clock.advance(3 * 3600)
    assert meter.energy_total == 2.0


def test_deduction_stops_one_cent_below_the_overdraft_limit():
    clock = make_clock()
    meter = ElectricMeter(
        1, clock=clock, load_kw=1.0, balance=1.0, unit_price=1.0, overdraft_limit=0.5
    )
    clock.advance(5 * 3600)
    assert meter.relay_open and meter.prepaid_open
    assert meter.energy_total == pytest.approx(1.51)
    assert round(meter.balance, 2) == -0.51


def test_water_volume_uses_dcba_order():
    regs = float32_dcba_regs(123.456)
    assert regs == list(struct.unpack(">HH", struct.pack("<f", 123.456)))
    assert dcba_regs_float32(*regs) == pytest.approx(123.456, abs=1e-4)


def test_water_valve_with_zero_delay_moves_at_once():
    meter = WaterMeter(1, clock=make_clock(), valve_delay=0)
    meter.write_registers(0x1C, [2])
    assert not meter.valve_open
    assert meter.valve_status() == 0x02


def test_unknown_valve_command_is_illegal_value():
    meter = WaterMeter(1, clock=make_clock())
    with pytest.raises(ModbusError) as err:
        meter.write_registers(0x1C, [3])
    assert err.value.code == 0x03


def test_half_a_uint32_setting_is_refused():
    meter = ElectricMeter(1, clock=make_clock())
    with pytest.raises(ModbusError) as err:
        meter.handle_request(6, 0x4007, 1, [5])
    assert err.value.code == 0x03


def test_demo_fleet_json_matches_its_generator_and_the_brief():
    spec = json.loads(DEMO_FLEET_PATH.read_text())
    assert spec == generate_demo_spec()
    gw1, gw2 = demo_spec()["gateways"]
    assert (gw1["port"], gw1["framer"], gw2["port"], gw2["framer"]) == (
        15020,
        "socket",
        15021,
        "rtu",
    )
    kinds1 = {m["device_id"]: m["kind"] for m in gw1["meters"]}
    kinds2 = {m["device_id"]: m["kind"] for m in gw2["meters"]}
    assert [kinds1[d] for d in range(1, 16)] == ["electric_1p"] * 15
    assert [kinds1[d] for d in range(16, 21)] == ["electric_3p"] * 5
    assert [kinds2[d] for d in range(1, 13)] == ["electric_1p"] * 12
    assert [kinds2[d] for d in range(13, 21)] == ["water"] * 8
    for meter in gw1["meters"] + gw2["meters"][:12]:
        assert 100 <= meter["energy_kwh"] <= 5000
        assert meter["balance"] == 200.0
