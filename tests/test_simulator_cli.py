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
