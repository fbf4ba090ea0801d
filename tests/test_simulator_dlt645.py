"""The simulated DL/T 645-2007 meters seen by a client on 127.0.0.1.

Request and reply frames are written down byte by byte from the standard
(meter-protocols.md): ``FE FE FE FE 68 A0..A5 68 C L DATA(+0x33) CS 16``;
nothing here uses the simulator's own codec to build what it sends or expects.
Meter 000000000301 goes out as ``01 03 00 00 00 00``.
"""

import socket
import threading
import time
from datetime import datetime

import pytest

from simulator import Fleet, ProcessFleet, build_spec, dlt645_bus_time

START = "2025-03-01T09:30:00"  # a Saturday
ADDR = "01 03 00 00 00 00"  # 000000000301
WAIT = 0.5


def _meter(n, **extra):
    return {
        "address": f"{300 + n:012d}",
        "kind": "electric_1p",
        "energy_kwh": 1234.56,
        "load_kw": 2.185,
        "voltage_v": 230.0,
        "power_factor": 0.95,
        "password_level": 2,
        "password": "123456",
        "operator": "00000001",
        **extra,
    }


def _spec(meters, **gw):
    return {
        "speed": 0,
        "start_time": START,
        "gateways": [{"protocol": "dlt645", "meters": meters, **gw}],
    }


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def cs(frame_hex: str) -> int:
    """The test's own checksum: sum of the bytes from the first 68, mod 256."""
    body = h(frame_hex)
    return sum(body[body.index(0x68) :]) & 0xFF


class Line:
    """A raw TCP client: send bytes, collect whatever comes back."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)

    def send(self, data: bytes, wait: float = WAIT, expect: int | None = None) -> bytes:
        self.sock.sendall(data)
        got = b""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(4096)
            except TimeoutError:
                break
            if not chunk:
                break
            got += chunk
            if expect is not None and len(got) >= expect:
                break
        return got

    def ask(self, request_hex: str, reply_len: int | None = None) -> bytes:
        return self.send(h(request_hex), expect=reply_len or 16)

    def close(self):
        self.sock.close()


@pytest.fixture
def fleet():
    meters = [
        _meter(1),
        _meter(2, kind="electric_3p", load_kw=6.555),
        _meter(3, events={"cover_open": 7}),
    ]
    with Fleet.from_spec(_spec(meters)) as fl:
        yield fl


@pytest.fixture
def line(fleet):
    client = Line(fleet.gateways[0].port)
    yield client
    client.close()


# -- the frames of the standard, by hand
def test_read_forward_active_total_hand_frame(line):
    # 0x11, L=4, DI 00 01 00 00 sent DI0 first (00 00 01 00) +0x33 = 33 33 34 33
    request = f"FE FE FE FE 68 {ADDR} 68 11 04 33 33 34 33 B6 16"
    assert cs(request[12:-6]) == 0xB6
    # 1234.56 kWh = BCD 00 12 34 56, least significant first 56 34 12 00, +0x33
    reply = f"FE FE FE FE 68 {ADDR} 68 91 08 33 33 34 33 89 67 45 33 A2 16"
    assert cs(reply[12:-6]) == 0xA2
    assert line.ask(request, 24) == h(reply)


def test_read_voltage_current_power_scales(line):
    # voltage A 02 01 01 00: XXX.X V in 2 bytes -> 230.0 = 23 00 -> 00 23
    assert line.ask(f"FE FE FE FE 68 {ADDR} 68 11 04 33 34 34 35 B9 16", 22) == h(
        f"FE FE FE FE 68 {ADDR} 68 91 06 33 34 34 35 33 56 C4 16"
    )
    # current A 02 02 01 00: XXX.XXX A, 3 bytes: 2.185 kW / (230 V x 0.95) = 10 A
    request = f"68 {ADDR} 68 11 04 33 34 35 35 BA 16"
    assert cs(request[:-6]) == 0xBA
    reply = line.ask(request, 23)
    # 010.000 A = BCD 01 00 00 -> 00 00 01 -> 33 33 34
    assert reply[-9:-2] == h("33 34 35 35 33 33 34")
    # active power 02 03 00 00: XX.XXXX kW, 3 bytes: 2.1850 = 02 18 50 -> 50 18 02
    reply = line.ask(f"68 {ADDR} 68 11 04 33 33 36 35 BA 16", 23)
    assert reply[-9:-2] == h("33 33 36 35 83 4B 35")
    assert reply[-2] == cs(reply[:-2].hex()) and reply[-1] == 0x16


def test_rates_one_to_four_sum_to_the_total(fleet, line):
    meter = fleet.gateways[0].meter_by_address("000000000301")
    rates = []
    for di1 in range(1, 5):  # 00 01 0n 00 -> wire 00 0n 01 00 -> 33 3n+33 34 33
        body = f"68 {ADDR} 68 11 04 33 {0x33 + di1:02X} 34 33"
        reply = line.ask(f"FE FE FE FE {body} {cs(body):02X} 16", 24)
        assert reply[12:18] == h(f"91 08 33 {0x33 + di1:02X} 34 33")
        raw = bytes((b - 0x33) & 0xFF for b in reply[18:22])
        rates.append(int(raw[::-1].hex()) / 100)
    assert rates == list(meter.bands.values())
    assert round(sum(rates), 2) == 1234.56


def test_single_phase_meter_has_no_phase_b(line):
    # voltage B 02 01 02 00 on a single-phase meter: 0xD1, error bit 1 (no data)
    body = f"68 {ADDR} 68 11 04 33 35 34 35"
    reply = line.ask(f"{body} {cs(body):02X} 16", 17)
    assert reply == h(f"FE FE FE FE 68 {ADDR} 68 D1 01 35 DB 16")


def test_three_phase_meter_answers_each_phase(line):
    addr = "02 03 00 00 00 00"
    volts = []
    for phase in (1, 2, 3):
        body = f"68 {addr} 68 11 04 33 {0x33 + phase:02X} 34 35"
        reply = line.ask(f"{body} {cs(body):02X} 16", 22)
        raw = bytes((b - 0x33) & 0xFF for b in reply[18:20])
        volts.append(int(raw[::-1].hex()) / 10)
    assert volts == [230.0, 229.6, 230.3]


def test_unknown_identifier_is_no_data_requested(line):
    # DI 12 34 56 78 does not exist -> D1 with 0x02 (+0x33 = 35)
    body = f"68 {ADDR} 68 11 04 AB 89 67 45"
    assert line.ask(f"{body} {cs(body):02X} 16", 18) == h(
        f"FE FE FE FE 68 {ADDR} 68 D1 01 35 DB 16"
    )


def test_read_address_alone_on_the_line():
    with Fleet.from_spec(_spec([_meter(1)])) as fl:
        client = Line(fl.gateways[0].port)
        try:
            reply = client.ask("FE FE FE FE 68 AA AA AA AA AA AA 68 13 00 DF 16", 22)
        finally:
            client.close()
    # 0x93, L=6, address 01 03 00 00 00 00 +0x33
    assert reply == h(f"FE FE FE FE 68 {ADDR} 68 93 06 34 36 33 33 33 33 A3 16")


def test_read_address_with_several_meters_collides(line):
    reply = line.ask("FE FE FE FE 68 AA AA AA AA AA AA 68 13 00 DF 16", 22)
    assert reply  # three meters talk at once: no clean frame
    assert reply != h(f"FE FE FE FE 68 {ADDR} 68 93 06 34 36 33 33 33 33 A3 16")


def test_address_identifier_04000401(line):
    body = f"68 {ADDR} 68 11 04 34 37 33 37"
    reply = line.ask(f"{body} {cs(body):02X} 16", 26)
    assert reply[18:24] == h("34 36 33 33 33 33")


def test_broadcast_time_sync_sets_the_clock_without_reply(fleet, line):
    # 99..99, 0x08, ss mm hh DD MM YY = 56 34 12 15 06 25 (+0x33)
    request = "FE FE FE FE 68 99 99 99 99 99 99 68 08 06 89 67 45 48 39 58 82 16"
    assert cs(request[12:-6]) == 0x82
    assert line.send(h(request), wait=0.3) == b""
    for meter in fleet.gateways[0].meters.values():
        assert meter.meter_time() == datetime(2025, 6, 15, 12, 34, 56)
    # 04 00 01 01 date + week YYMMDDWW: 2025-06-15 is a Sunday (WW 00)
    body = f"68 {ADDR} 68 11 04 34 34 33 37"
    reply = line.ask(f"{body} {cs(body):02X} 16", 24)
    assert reply[18:22] == h("33 48 39 58")  # 00 15 06 25
    # 04 00 01 02 time hhmmss -> ss mm hh
    body = f"68 {ADDR} 68 11 04 35 34 33 37"
    reply = line.ask(f"{body} {cs(body):02X} 16", 23)
    assert reply[18:21] == h("89 67 45")


def test_date_and_weekday_follow_the_simulated_clock(line):
    body = f"68 {ADDR} 68 11 04 34 34 33 37"
    reply = line.ask(f"{body} {cs(body):02X} 16", 24)
    assert reply[18:22] == h("39 34 36 58")  # 2025-03-01 Saturday: 06 01 03 25


# -- relay control 0x1C
# password level 02 + 123456 -> 02 56 34 12; operator 00000001 -> 01 00 00 00;
# N1, N2 = 00, deadline ss mm hh DD MM YY = 00 00 00 01 04 25; all +0x33
PWD_OK = "35 89 67 45"
OP_OK = "34 33 33 33"
DEADLINE = "33 33 33 34 37 58"


def relay(n1: int, pwd: str = PWD_OK, op: str = OP_OK) -> str:
    body = f"68 {ADDR} 68 1C 10 {pwd} {op} {n1 + 0x33:02X} 33 {DEADLINE}"
    return f"FE FE FE FE {body} {cs(body):02X} 16"


ACK = h(f"FE FE FE FE 68 {ADDR} 68 9C 00 70 16")
REFUSED_PASSWORD = h(f"FE FE FE FE 68 {ADDR} 68 DC 01 37 E8 16")


def status_word_3(line) -> int:
    body = f"68 {ADDR} 68 11 04 36 38 33 37"  # 04 00 05 03
    reply = line.ask(f"{body} {cs(body):02X} 16", 22)
    raw = bytes((b - 0x33) & 0xFF for b in reply[18:20])
    return int.from_bytes(raw, "little")


def test_trip_and_direct_close_read_back(fleet, line):
    meter = fleet.gateways[0].meter_by_address("000000000301")
    assert status_word_3(line) & 0x10 == 0
    assert line.ask(relay(0x1A), 16) == ACK
    assert meter.relay_open and meter.power_kw() == 0.0
    assert status_word_3(line) & 0x50 == 0x50  # relay off, commanded off
    assert line.ask(relay(0x1C), 16) == ACK
    assert not meter.relay_open
    assert status_word_3(line) & 0x50 == 0


def test_close_allowed_waits_for_the_button(fleet, line):
    meter = fleet.gateways[0].meter_by_address("000000000301")
    line.ask(relay(0x1A), 16)
    assert line.ask(relay(0x1B), 16) == ACK
    assert meter.relay_open
    assert status_word_3(line) & 0x50 == 0x10  # still off, command state "on"
    meter.press_button()
    assert not meter.relay_open


@pytest.mark.parametrize(
    "pwd, op",
    [
        ("35 89 67 46", OP_OK),  # password 133456
        ("37 89 67 45", OP_OK),  # right password, level 4
        (PWD_OK, "35 33 33 33"),  # operator 00000002
    ],
)
def test_wrong_password_or_operator_is_refused(fleet, line, pwd, op):
    meter = fleet.gateways[0].meter_by_address("000000000301")
    assert line.ask(relay(0x1A, pwd, op), 16) == REFUSED_PASSWORD
    assert not meter.relay_open


def test_keep_power_refuses_a_trip(fleet, line):
    meter = fleet.gateways[0].meter_by_address("000000000301")
    assert line.ask(relay(0x3A), 16) == ACK
    assert line.ask(relay(0x1A), 16) == h(f"FE FE FE FE 68 {ADDR} 68 DC 01 34 E5 16")
    assert not meter.relay_open
    assert line.ask(relay(0x3B), 16) == ACK
    assert line.ask(relay(0x1A), 16) == ACK
    assert meter.relay_open


def test_unknown_relay_code_is_refused(line):
    assert line.ask(relay(0x55), 16) == h(f"FE FE FE FE 68 {ADDR} 68 DC 01 34 E5 16")


def test_stuck_relay_acknowledges_and_does_not_move(fleet, line):
    meter = fleet.gateways[0].meter_by_address("000000000301")
    meter.inject("stuck_relay")
    assert line.ask(relay(0x1A), 16) == ACK
    assert not meter.relay_open
    assert status_word_3(line) & 0x50 == 0x40  # commanded off, still on


# -- write 0x14 and event counters
def test_write_time_with_password_counts_a_clock_set(fleet, line):
    meter = fleet.gateways[0].meter_by_address("000000000301")
    # DI 04 00 01 02 (35 34 33 37), password, operator, hhmmss 10:11:12 -> 12 11 10
    body = f"68 {ADDR} 68 14 0F 35 34 33 37 {PWD_OK} {OP_OK} 45 44 43"
    assert line.ask(f"{body} {cs(body):02X} 16", 16) == h(
        f"FE FE FE FE 68 {ADDR} 68 94 00 {0xD4 + 0x94 & 0xFF:02X} 16"
    )
    assert meter.meter_time() == datetime(2025, 3, 1, 10, 11, 12)
    assert meter.events["clock_set"] == 1
    body = f"68 {ADDR} 68 14 0F 35 34 33 37 35 89 67 46 {OP_OK} 45 44 43"
    assert line.ask(f"{body} {cs(body):02X} 16", 17)[12:15] == h("D4 01 37")


def test_event_counters_are_three_byte_bcd(fleet, line):
    meter = fleet.gateways[0].meter_by_address("000000000303")
    addr = "03 03 00 00 00 00"
    body = f"68 {addr} 68 11 04 33 40 63 36"  # 03 30 0D 00 cover opened
    reply = line.ask(f"{body} {cs(body):02X} 16", 23)
    assert reply[14:21] == h("33 40 63 36 3A 33 33")  # 000007
    meter.raise_event("cover_open", 5)
    meter.raise_event("reverse_power")
    reply = line.ask(f"{body} {cs(body):02X} 16", 23)
    assert reply[18:21] == h("45 33 33")  # 000012
    body = f"68 {addr} 68 11 04 33 33 41 36"  # 03 0E 00 00 reverse power
    assert line.ask(f"{body} {cs(body):02X} 16", 23)[18:21] == h("34 33 33")


def test_scheduled_event_fires_once():
    spec = _spec(
        [_meter(1, faults=[{"name": "event", "counter": "cover_open", "after_s": 60}])]
    )
    fl = Fleet.from_spec(spec)
    meter = fl.gateways[0].meter(1)
    meter.fire_due_faults()
    assert meter.events["cover_open"] == 0
    fl.clock.advance(61)
    meter.fire_due_faults()
    meter.fire_due_faults()
    assert meter.events["cover_open"] == 1


# -- faults
READ_TOTAL = f"FE FE FE FE 68 {ADDR} 68 11 04 33 33 34 33 B6 16"
TOTAL_REPLY = h(f"FE FE FE FE 68 {ADDR} 68 91 08 33 33 34 33 89 67 45 33 A2 16")


def test_silent_meter_then_back(fleet, line):
    meter = fleet.gateways[0].meter_by_address("000000000301")
    meter.inject("timeout")
    assert line.send(h(READ_TOTAL), wait=0.3) == b""
    meter.clear_faults()
    assert line.ask(READ_TOTAL, 24) == TOTAL_REPLY


def test_garbled_reply_has_the_frame_length(fleet, line):
    meter = fleet.gateways[0].meter_by_address("000000000301")
    meter.inject("garbage")
    reply = line.ask(READ_TOTAL, 24)
    assert len(reply) == 24 and reply != TOTAL_REPLY


def test_wrong_checksum_reply(fleet, line):
    meter = fleet.gateways[0].meter_by_address("000000000301")
    meter.inject("bad_crc")
    reply = line.ask(READ_TOTAL, 24)
    assert reply[:-2] == TOTAL_REPLY[:-2] and reply[-1] == 0x16
    assert reply[-2] == 0xA2 ^ 0xFF


def test_d1_error_on_one_identifier_only(fleet, line):
    meter = fleet.gateways[0].meter_by_address("000000000301")
    meter.inject("dlt_error", di="02010100")
    body = f"68 {ADDR} 68 11 04 33 34 34 35"
    assert line.ask(f"{body} B9 16", 17) == h(
        f"FE FE FE FE 68 {ADDR} 68 D1 01 35 DB 16"
    )
    assert line.ask(READ_TOTAL, 24) == TOTAL_REPLY
    meter.inject("dlt_error", bits=0x01)  # every identifier, "other"
    assert line.ask(READ_TOTAL, 17) == h(f"FE FE FE FE 68 {ADDR} 68 D1 01 34 DA 16")


def test_stalled_gateway_reads_nothing(fleet, line):
    fleet.gateways[0].inject("stall")
    assert line.send(h(READ_TOTAL), wait=0.3) == b""
    fleet.gateways[0].clear_faults()
    assert line.ask(READ_TOTAL, 24) == TOTAL_REPLY


# -- what the meter hears
def test_noise_split_segments_and_bad_checksum_requests(line):
    # noise and a doubled 68 before the frame, the frame in three TCP segments
    request = h("00 16 68 68 " + READ_TOTAL)
    line.sock.sendall(request[:7])
    time.sleep(0.05)
    line.sock.sendall(request[7:15])
    time.sleep(0.05)
    assert line.send(request[15:], expect=24) == TOTAL_REPLY
    # a request with a wrong checksum gets no reply; the next good one does
    assert line.send(h(READ_TOTAL[:-5] + "B7 16"), wait=0.3) == b""
    assert line.ask(READ_TOTAL[12:], 24) == TOTAL_REPLY  # no preamble works too


def test_other_addresses_and_broadcast_reads_stay_silent(line):
    body = "68 09 03 00 00 00 00 68 11 04 33 33 34 33"
    assert line.send(h(f"{body} {cs(body):02X} 16"), wait=0.3) == b""
    body = "68 99 99 99 99 99 99 68 11 04 33 33 34 33"
    assert line.send(h(f"{body} {cs(body):02X} 16"), wait=0.3) == b""


def test_reply_preamble_is_configurable():
    with Fleet.from_spec(_spec([_meter(1)], preamble=0)) as fl:
        client = Line(fl.gateways[0].port)
        try:
            assert client.ask(READ_TOTAL, 20) == TOTAL_REPLY[4:]
        finally:
            client.close()


# -- the line
def test_line_emulation_2400_baud_8e1_one_request_at_a_time():
    spec = _spec([_meter(1), _meter(2)], baud=2400)
    per_read = dlt645_bus_time(20, 24, 2400)
    assert per_read == pytest.approx(44 * 11 / 2400)
    with Fleet.from_spec(spec) as fl:
        port = fl.gateways[0].port
        clients = [Line(port), Line(port)]
        took = []

        def read(client, addr):
            body = f"68 {addr} 68 11 04 33 33 34 33"
            started = time.monotonic()
            reply = client.send(h(f"FE FE FE FE {body} {cs(body):02X} 16"), 2, 24)
            took.append((time.monotonic() - started, len(reply)))

        threads = [
            threading.Thread(target=read, args=(clients[0], ADDR)),
            threading.Thread(target=read, args=(clients[1], "02 03 00 00 00 00")),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for c in clients:
            c.close()
    took.sort()
    assert [n for _t, n in took] == [24, 24]
    assert took[0][0] >= per_read * 0.95
    # the second request waited for the first: the line carries one at a time
    assert took[1][0] >= 2 * per_read * 0.95
    assert took[1][0] < 2 * per_read + 0.3


# -- fleet, spec, state, processes
def test_build_spec_cycles_protocols_and_gives_addresses():
    spec = build_spec(3, 2, protocol=["modbus", "dlt645"], speed=0)
    assert [g.get("protocol", "modbus") for g in spec["gateways"]] == [
        "modbus",
        "dlt645",
        "modbus",
    ]
    dlt = spec["gateways"][1]["meters"]
    assert [m["address"] for m in dlt] == ["000002000001", "000002000002"]
    assert {m["unit_price"] for m in dlt} == {0.0}
    fl = Fleet.from_spec(spec)
    assert [e["protocol"] for e in fl.endpoints()] == ["modbus", "dlt645", "modbus"]
    assert fl.endpoints()[1]["addresses"] == ["000002000001", "000002000002"]


@pytest.mark.parametrize(
    "meter, message",
    [
        ({"address": "00000000030"}, "12 decimal digits"),
        ({"address": "00000000030A"}, "12 decimal digits"),
        ({"address": "000000000301", "password": "12345"}, "6 digits"),
        ({"address": "000000000301", "operator": "1"}, "8 digits"),
        ({"address": "000000000301", "kind": "water"}, "electric"),
        ({}, "address"),
        ({"address": "000000000301", "events": {"lid": 1}}, "unknown event"),
    ],
)
def test_bad_meter_specs_are_refused(meter, message):
    with pytest.raises(ValueError, match=message):
        Fleet.from_spec(_spec([meter]))


def test_duplicate_address_is_refused():
    with pytest.raises(ValueError, match="used twice"):
        Fleet.from_spec(_spec([_meter(1), {**_meter(1), "device_id": 2}]))


def test_state_keeps_clock_events_and_relay(tmp_path):
    spec = _spec([_meter(1)])
    with Fleet.from_spec(spec) as fl:
        meter = fl.gateways[0].meter(1)
        meter.raise_event("cover_open", 2)
        meter.set_meter_time(datetime(2025, 3, 1, 9, 35))
        meter.relay_open = True
        fl.save_state(tmp_path / "state.json")
    again = Fleet.from_spec(spec)
    assert again.load_state(tmp_path / "state.json") == 1
    meter = again.gateways[0].meter(1)
    assert meter.events["cover_open"] == 2
    assert meter.meter_time() == datetime(2025, 3, 1, 9, 35)
    assert meter.relay_open


def test_process_fleet_serves_dlt645_beside_modbus():
    spec = build_spec(2, 3, protocol=["dlt645", "modbus"], speed=0, start_time=START)
    spec["gateways"][0]["meters"][0]["energy_kwh"] = 1234.56
    spec["gateways"][0]["meters"][0]["address"] = "000000000301"
    with ProcessFleet(spec, processes=2) as pf:
        dlt = next(e for e in pf.endpoints() if e["protocol"] == "dlt645")
        client = Line(dlt["port"])
        try:
            assert client.ask(READ_TOTAL, 24) == TOTAL_REPLY
        finally:
            client.close()


# -- a peer nobody here wrote: the dlt645 package (Apache-2.0)
def test_third_party_client_reads_the_values(fleet):
    import dlt645 as client_mod

    meter = fleet.gateways[0].meter_by_address("000000000302")
    client = client_mod.MeterClientService.new_tcp_client(
        "127.0.0.1", fleet.gateways[0].port, timeout=1
    )
    # the package takes the address in wire order (least significant byte first)
    client.set_address("020300000000")
    assert client.read_00(0x00010000).value == pytest.approx(meter.energy_total)
    bands = list(meter.bands.values())
    for n in range(4):
        value = client.read_00(0x00010100 + 0x100 * n).value
        assert value == pytest.approx(bands[n])
    assert client.read_00(0x00020000).value == 0.0
    assert client.read_02(0x02010100).value == pytest.approx(230.0)
    assert client.read_02(0x02010300).value == pytest.approx(230.3)
    # 6.555 kW over three phases at 230 V, 229.6 V, 230.3 V and PF 0.95
    assert client.read_02(0x02020100).value == pytest.approx(10.0, abs=0.001)
    assert client.read_02(0x02030000).value == pytest.approx(6.555)
    assert client.read_04(0x04000401).value == "000000000302"
    assert client.read_04(0x04000101).value == "25030106"
    assert client.read_04(0x04000102).value == "093000"


# -- command line
def test_cli_serves_dlt645_beside_modbus_and_refuses_unknown_protocols():
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    args = [sys.executable, "-m", "simulator", "--gateways", "2"]
    args += ["--meters-per-gateway", "2", "--base-port", "0", "--json"]
    proc = subprocess.Popen(
        [*args, "--protocol", "modbus,dlt645", "--start-time", START],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        endpoints = json.loads(proc.stdout.readline())["endpoints"]
        assert [e["protocol"] for e in endpoints] == ["modbus", "dlt645"]
        assert endpoints[1]["addresses"] == ["000002000001", "000002000002"]
        client = Line(endpoints[1]["port"])
        try:
            body = "68 02 00 00 02 00 00 68 11 04 33 33 34 33"
            reply = client.ask(f"{body} {cs(body):02X} 16", 24)
        finally:
            client.close()
        assert reply[12:18] == h("91 08 33 33 34 33")
    finally:
        proc.terminate()
        proc.wait(10)
    bad = subprocess.run(
        [*args, "--protocol", "bacnet"], cwd=root, capture_output=True, text=True
    )
    assert bad.returncode == 2
    assert "protocol must be one of" in bad.stderr
