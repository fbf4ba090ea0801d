"""Tamper and theft signals: the simulator's faults and the plain judgement."""

import pytest
from prepaid_metering_tools import tamper

from simulator import ElectricMeter, SimClock, WaterMeter
from simulator.meters import TAMPER_COUNT, TAMPER_START


def make_clock():
    return SimClock(speed=0, start="2025-03-01T12:00:00")


def tamper_regs(meter):
    return meter.read_registers(TAMPER_START, TAMPER_COUNT)


def decode(meter):
    """The decoded values a poll of acrel + px_tamper_v1 gives (no CT)."""
    acrel = meter.read_registers(0x0000, 17)
    regs = tamper_regs(meter)
    return {
        "energy_total": ((acrel[0] << 16) | acrel[1]) / 100,
        "voltage": acrel[0x0B] / 10,
        "current": acrel[0x0C] / 100,
        "energy_reverse": ((regs[0] << 16) | regs[1]) / 100,
        "voltage_b": regs[2] / 10,
        "voltage_c": regs[3] / 10,
        "current_b": regs[4] / 100,
        "current_c": regs[5] / 100,
        "cover_open_count": regs[6],
        "terminal_cover_open_count": regs[7],
        "clear_count": regs[8],
    }


def test_healthy_three_phase_meter_reads_three_live_phases_and_no_signal():
    clock = make_clock()
    meter = ElectricMeter(
        1, balance=1000.0, kind="electric_3p", clock=clock, load_kw=6.9
    )
    old = decode(meter)
    clock.advance(3600)
    new = decode(meter)
    assert new["voltage"] == new["voltage_b"] == new["voltage_c"] == 230.0
    # 6.9 kW / (230 V x 0.95 x 3) = 10.53 A a phase
    assert new["current"] == new["current_b"] == new["current_c"] == 10.53
    assert new["energy_reverse"] == 0.0
    assert tamper.signals("electric_3p", old, new) == []


def test_reverse_energy_fault_grows_the_reverse_register():
    clock = make_clock()
    meter = ElectricMeter(1, balance=1000.0, clock=clock)
    meter.inject("reverse_energy", kw=0.6)
    old = decode(meter)
    clock.advance(1800)
    new = decode(meter)
    assert new["energy_reverse"] == 0.3
    (signal,) = tamper.signals("electric_1p", old, new, old_at="t0", new_at="t1")
    assert signal.kind == "reverse_energy"
    assert signal.evidence["before_energy_reverse"] == 0.0
    assert signal.evidence["after_energy_reverse"] == 0.3
    assert signal.evidence["before_at"] == "t0"
    # a CT ratio of 10 multiplies it; a threshold above the rise stays silent
    assert (
        tamper.signals(
            "electric_1p", old, new, thresholds=tamper.Thresholds(reverse_kwh=0.31)
        )
        == []
    )
    assert tamper.signals(
        "electric_1p",
        old,
        new,
        multiplier=10,
        thresholds=tamper.Thresholds(reverse_kwh=2.9),
    )[0].evidence["grown_kwh"] == pytest.approx(3.0)


def test_no_voltage_fault_keeps_current_and_stops_the_energy():
    clock = make_clock()
    meter = ElectricMeter(1, balance=1000.0, clock=clock, load_kw=1.0, energy_kwh=10.0)
    meter.inject("ct_bypass")
    clock.advance(3600)
    new = decode(meter)
    assert (new["voltage"], new["energy_total"]) == (0.0, 10.0)
    assert new["current"] == pytest.approx(4.58, abs=0.01)
    kinds = [s.kind for s in tamper.signals("electric_1p", new, new)]
    assert kinds == ["current_without_voltage"]


def test_phase_loss_fault_on_three_phase_meter():
    clock = make_clock()
    meter = ElectricMeter(
        1, balance=1000.0, kind="electric_3p", clock=clock, load_kw=3.0
    )
    meter.inject("phase_loss", phase="b")
    new = decode(meter)
    assert (new["voltage_b"], new["current_b"]) == (0.0, 0.0)
    assert new["voltage"] == new["voltage_c"] == 230.0
    (signal,) = tamper.signals("electric_3p", new, new)
    assert (signal.kind, signal.evidence["phases"]) == ("phase_loss", "b")
    # a single-phase meter has no phases B and C to lose
    single = ElectricMeter(2, balance=1000.0, clock=clock)
    values = decode(single)
    assert tamper.signals("electric_1p", values, values) == []


def test_counter_faults_count_once_each():
    clock = make_clock()
    meter = ElectricMeter(1, balance=1000.0, clock=clock, energy_kwh=50.0)
    old = decode(meter)
    meter.inject("cover_open")
    meter.inject("terminal_cover_open")
    meter.inject("meter_clear", reset_energy=True)
    new = decode(meter)
    signals = tamper.signals("electric_1p", old, new)
    assert [(s.kind, s.count_before, s.count_after) for s in signals] == [
        ("cover_opened", 0, 1),
        ("terminal_cover_opened", 0, 1),
        ("meter_cleared", 0, 1),
    ]
    assert new["energy_total"] == 0.0
    assert tamper.signals("electric_1p", new, decode(meter)) == []


def test_valve_leak_flows_through_a_closed_valve_only_with_the_fault():
    clock = make_clock()
    meter = WaterMeter(1, clock=clock, volume_m3=5.0, flow_m3h=0.1, valve_open=False)
    clock.advance(3600)
    assert meter.volume == 5.0
    meter.inject("valve_leak", flow_m3h=0.02)
    clock.advance(3600)
    assert meter.volume == pytest.approx(5.02)
    old = {"volume_total": 5.0, "valve": 2}
    new = {"volume_total": 5.02, "valve": 2}
    (signal,) = tamper.signals("water", old, new, closed_before=True, closed_after=True)
    assert signal.kind == "flow_while_closed"
    assert signal.evidence["flowed_m3"] == pytest.approx(0.02)
    # closed only now (the valve closed between the reads): no signal
    assert tamper.signals("water", old, new, closed_after=True) == []


def test_theft_load_adds_to_the_master_meter():
    clock = make_clock()
    meter = ElectricMeter(1, balance=1000.0, clock=clock, load_kw=1.0)
    meter.inject("theft_load", kw=2.0)
    clock.advance(3600)
    assert meter.energy_total == pytest.approx(3.0)


def test_master_loss_threshold():
    assert tamper.master_loss(100.0, {1: 40.0, 2: 45.0}, 10.0, 1.0) == 15.0
    assert tamper.master_loss(100.0, {1: 40.0, 2: 55.0}, 10.0, 1.0) is None
    assert tamper.master_loss(0.5, {}, 10.0, 1.0) is None


def test_pg_array_literals():
    assert tamper.pg_array([1, 2.5, None]) == "{1, 2.5, NULL}"
    assert tamper.pg_array([True, False]) == "{true, false}"
    assert tamper.pg_array(["electric_1p", None]) == '{"electric_1p", NULL}'
    assert tamper.pg_array([float("nan"), float("inf")]) == "{NaN, Infinity}"
    assert tamper.pg_array([]) == "{}"
