"""Meter models and bus helpers of the simulator, without any network."""

import json
import struct

import pytest

from simulator import (
    TOU_SCHEDULE,
    ElectricMeter,
    Fleet,
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
from simulator.meters import PROFILES


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
    gw1, gw2, gw3 = demo_spec()["gateways"]
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
    # the contract with the DL/T 645 driver: gw3, port 15022, six meters
    assert (gw3["port"], gw3["protocol"]) == (15022, "dlt645")
    assert [m["address"] for m in gw3["meters"]] == [
        f"00000000030{n}" for n in range(1, 7)
    ]
    assert [m["kind"] for m in gw3["meters"]] == ["electric_1p"] * 4 + [
        "electric_3p"
    ] * 2
    for meter in gw3["meters"]:
        assert 100 <= meter["energy_kwh"] <= 5000
        assert (meter["password_level"], meter["password"], meter["operator"]) == (
            2,
            "123456",
            "00000001",
        )
        assert meter["unit_price"] == 0.0


def _state_fleet(clock_start="2025-03-01T12:00:00"):
    spec = {
        "speed": 0,
        "start_time": clock_start,
        "gateways": [
            {
                "name": "gw1",
                "meters": [
                    {
                        "device_id": 1,
                        "energy_kwh": 100.0,
                        "load_kw": 2.0,
                        "unit_price": 0.0,
                    },
                    {
                        "device_id": 2,
                        "kind": "water",
                        "volume_m3": 10.0,
                        "flow_m3h": 0.5,
                    },
                ],
            }
        ],
    }
    return Fleet.from_spec(spec)


def test_state_file_resumes_counters_money_relay_and_valve(tmp_path):
    fleet = _state_fleet()
    electric, water = fleet.meter(0, 1), fleet.meter(0, 2)
    fleet.clock.advance(3600)
    electric.recharge(50.0)
    electric.trip()
    water.valve_open = False
    energy, volume = electric.energy_total, water.volume
    path = tmp_path / "state" / "sim.json"
    fleet.save_state(path)

    again = _state_fleet("2025-03-02T08:00:00")
    assert again.load_state(path) == 2
    electric2, water2 = again.meter(0, 1), again.meter(0, 2)
    assert electric2.energy_total == energy
    assert electric2.bands == electric.bands
    assert (electric2.balance, electric2.purchase_count) == (50.0, 1)
    assert electric2.relay_open and not water2.valve_open
    assert water2.volume == volume
    # the counters only grow from there: the relay closed, an hour at 2 kW
    electric2.close()
    again.clock.advance(3600)
    assert electric2.energy_total == pytest.approx(energy + 2.0, abs=0.01)


def test_missing_state_file_keeps_the_spec_values(tmp_path):
    fleet = _state_fleet()
    assert fleet.load_state(tmp_path / "none.json") == 0
    assert fleet.meter(0, 1).energy_total == 100.0


def test_state_of_another_meter_kind_is_refused(tmp_path):
    fleet = _state_fleet()
    state = fleet.state()
    state["meters"]["gw1/1"], state["meters"]["gw1/2"] = (
        state["meters"]["gw1/2"],
        state["meters"]["gw1/1"],
    )
    with pytest.raises(ValueError, match="saved state is a water"):
        _state_fleet().restore(state)


def test_scheduled_jump_fires_once_and_not_again_after_a_restart(tmp_path):
    clock = make_clock()
    meter = ElectricMeter(
        1,
        clock=clock,
        energy_kwh=100.0,
        load_kw=0.0,
        faults=[{"name": "jump", "after_s": 600, "amount": 500.0}],
    )
    clock.advance(599)
    meter.read_registers(0, 2)
    assert meter.energy_total == 100.0
    clock.advance(1)
    meter.read_registers(0, 2)
    assert meter.energy_total == 600.0
    clock.advance(3600)
    meter.read_registers(0, 2)
    assert meter.energy_total == 600.0
    assert meter.fired == ["jump@600"]

    restarted = ElectricMeter(
        1, clock=make_clock(), load_kw=0.0, faults=[{"name": "jump", "after_s": 600}]
    )
    restarted.restore(meter.state())
    restarted.clock.advance(7200)
    restarted.read_registers(0, 2)
    assert restarted.energy_total == 600.0


def test_water_jump_raises_the_volume():
    meter = WaterMeter(13, clock=make_clock(), volume_m3=10.0, flow_m3h=0.0)
    meter.inject("jump", amount=5.0)
    assert meter.volume == 15.0


def test_demo_fleet_has_its_labelled_faults_and_a_speed_within_rated_demand():
    spec = demo_spec()
    faulty = [
        (gw["name"], m["device_id"])
        for gw in spec["gateways"]
        for m in gw["meters"]
        if m.get("faults")
    ]
    assert faulty == [("gw1", 5), ("gw1", 8), ("gw1", 17), ("gw2", 6), ("gw3", 4)]
    # the loads x their daily peak x the speed stay below the default rated
    # demand of prepaid_metering (15 kW single phase, 45 kW three phase,
    # 5 m3/h water), the master meter aside (its Odoo record says 100 kW)
    rated = {"electric_1p": 15.0, "electric_3p": 45.0, "water": 5.0}
    for gw in spec["gateways"]:
        for meter in gw["meters"]:
            if (gw["name"], meter["device_id"]) == ("gw1", 20):
                continue
            rate = meter.get("load_kw", meter.get("flow_m3h"))
            peak = max(PROFILES[meter.get("profile") or "flat"])
            assert rate * peak * spec["speed"] <= rated[meter["kind"]], meter
