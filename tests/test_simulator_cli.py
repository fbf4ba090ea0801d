"""The simulator's command line serves Modbus and stops cleanly on signals."""

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from pymodbus.client import ModbusTcpClient

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_cli_serves_then_stops_on_signal(sig):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simulator",
            "--gateways",
            "1",
            "--meters-per-gateway",
            "2",
            "--base-port",
            "0",
            "--json",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        endpoint = json.loads(proc.stdout.readline())["endpoints"][0]
        client = ModbusTcpClient("127.0.0.1", port=endpoint["port"], timeout=2)
        assert client.connect()
        reply = client.read_holding_registers(0, count=17, device_id=1)
        client.close()
        assert not reply.isError()
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _serve_with_state(state):
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simulator",
            "--gateways",
            "1",
            "--meters-per-gateway",
            "1",
            "--base-port",
            "0",
            "--speed",
            "3600",
            "--json",
            "--state",
            str(state),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _energy(proc):
    endpoint = json.loads(proc.stdout.readline())["endpoints"][0]
    client = ModbusTcpClient("127.0.0.1", port=endpoint["port"], timeout=2)
    assert client.connect()
    reply = client.read_holding_registers(0, count=2, device_id=1)
    client.close()
    assert not reply.isError()
    return reply.registers[0] << 16 | reply.registers[1]


def test_cli_state_file_is_written_at_stop_and_resumed(tmp_path):
    state = tmp_path / "sim-state.json"
    proc = _serve_with_state(state)
    try:
        first = _energy(proc)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        saved = json.loads(state.read_text())["meters"]["gw1/1"]
        assert sum(saved["band_pulses"]) >= first
        proc = _serve_with_state(state)
        # an hour a second: the counter went on from the saved value, never
        # back to the spec's
        assert _energy(proc) >= sum(saved["band_pulses"])
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
