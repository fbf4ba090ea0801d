"""DL/T 645-2007 codec, parser and transport.

The frames below were worked out by hand from the standard (section 4: frame
``68 A0..A5 68 C L DATA CS 16``, data +0x33, CS = byte sum from the first 68
to the last data byte, address and values least significant byte first); the
sums are written out next to them so that a reader can check them.
"""

import asyncio
import os
import threading
from datetime import datetime

import pytest
from prepaid_metering_drivers import bus, dlt645
from prepaid_metering_drivers.dlt645 import DataItem, FrameError, parse
from prepaid_metering_drivers.modbus import Endpoint


def h(text):
    return bytes.fromhex(text)


# --- the corpus -------------------------------------------------------------
# Read 00010000 (forward active energy) from 000000001234, with 4 x FE:
# 68+34+12+68+11+04 = 0x12B; data 33+33+34+33 = 0xCD; 0x1F8 -> CS F8
READ_ENERGY = h("FE FE FE FE 68 34 12 00 00 00 00 68 11 04 33 33 34 33 F8 16")
# Its reply 0x91: DI + 1234.56 kWh = 56 34 12 00, all +33:
# header 68+34+12+68+91+08 = 0x1AF; DI 0xCD; value 89+67+45+33 = 0x168;
# 0x1AF+0xCD+0x168 = 0x3E4 -> CS E4
REPLY_ENERGY = h("68 34 12 00 00 00 00 68 91 08 33 33 34 33 89 67 45 33 E4 16")
# Error reply 0xD1, error byte 02 (no data requested) -> 35 on the wire:
# 68+34+12+68+D1+01+35 = 0x21D -> CS 1D
REPLY_NO_DATA = h("68 34 12 00 00 00 00 68 D1 01 35 1D 16")
# Read address to AA...AA: 68 + 6 x AA + 68 + 13 + 00 = 0x4DF -> CS DF
READ_ADDRESS = h("FE FE FE FE 68 AA AA AA AA AA AA 68 13 00 DF 16")
# Broadcast time 2026-12-05 20:15:30: ss mm hh DD MM YY = 30 15 20 05 12 26,
# +33 = 63 48 53 38 45 59; 68 + 6 x 99 + 68 + 08 + 06 = 0x474, data 0x1D4,
# 0x648 -> CS 48
TIME_SYNC = h("FE FE FE FE 68 99 99 99 99 99 99 68 08 06 63 48 53 38 45 59 48 16")
# Relay trip to 000000000301: level 02, password 123456 (56 34 12), operator
# 00000001 (01 00 00 00), N1 1A, N2 00, valid until 2026-12-05 20:25:30
# (30 25 20 05 12 26); +33 each; header 68+01+03+68+1C+10 = 0x100, data
# 0x49B -> 0x59B -> CS 9B
RELAY_TRIP = h(
    "FE FE FE FE 68 01 03 00 00 00 00 68 1C 10"
    " 35 89 67 45 34 33 33 33 4D 33 63 58 53 38 45 59 9B 16"
)
# Its normal reply 0x9C: 68+01+03+68+9C+00 = 0x170 -> CS 70
REPLY_RELAY_OK = h("68 01 03 00 00 00 00 68 9C 00 70 16")
# Relay refused 0xDC, error byte 04 (password wrong) -> 37:
# 68+01+03+68+DC+01+37 = 0x1E8 -> CS E8
REPLY_RELAY_PASSWORD = h("68 01 03 00 00 00 00 68 DC 01 37 E8 16")


def test_read_request_matches_the_hand_worked_frame():
    frame = dlt645.encode_frame(
        "000000001234", dlt645.READ, dlt645.di_bytes("00010000")
    )
    assert frame == READ_ENERGY


def test_read_address_request_matches_the_hand_worked_frame():
    assert dlt645.encode_frame(dlt645.WILDCARD, dlt645.READ_ADDRESS) == READ_ADDRESS


def test_time_sync_matches_the_hand_worked_frame():
    data = dlt645.time_sync_data(datetime(2026, 12, 5, 20, 15, 30))
    assert dlt645.encode_frame(dlt645.BROADCAST, dlt645.TIME_SYNC, data) == TIME_SYNC


def test_relay_trip_matches_the_hand_worked_frame():
    data = dlt645.relay_data(
        2, "123456", "00000001", dlt645.TRIP, datetime(2026, 12, 5, 20, 25, 30)
    )
    assert dlt645.encode_frame("000000000301", dlt645.RELAY, data) == RELAY_TRIP


def test_energy_reply_decodes_to_its_value():
    frame, used, error = parse(REPLY_ENERGY)
    assert (used, error) == (len(REPLY_ENERGY), None)
    assert frame.address == "000000001234"
    assert frame.control == 0x91 and frame.is_reply and not frame.is_error
    assert dlt645.di_text(frame.data) == "00010000"
    item = DataItem("energy_total", "00010000", "bcd", 4, 2)
    assert item.decode(frame.data[4:]) == 1234.56


def test_relay_replies_decode():
    ok, _used, _error = parse(REPLY_RELAY_OK)
    assert ok.control == 0x9C and ok.data == b""
    refused, _used, _error = parse(REPLY_RELAY_PASSWORD)
    assert refused.is_error and refused.function == dlt645.RELAY
    assert dlt645.error_reason(refused.control, refused.data) == (
        0x04,
        "error 0x04: password wrong or unauthorised",
    )


def test_address_goes_least_significant_byte_first():
    assert dlt645.address_bytes("000000001234") == h("34 12 00 00 00 00")
    assert dlt645.address_text(h("34 12 00 00 00 00")) == "000000001234"
    with pytest.raises(FrameError):
        dlt645.address_bytes("12345")
    with pytest.raises(FrameError):
        dlt645.address_bytes("00000000123A")


@pytest.mark.parametrize(
    ("raw", "fmt", "decimals", "value"),
    [
        (h("01 22"), "bcd", 1, 220.1),  # voltage XXX.X
        (h("23 51 00"), "bcd_signed", 3, 5.123),  # current XXX.XXX
        (h("23 51 80"), "bcd_signed", 3, -5.123),  # sign in bit 7 of the top byte
        (h("45 23 01"), "bcd_signed", 4, 1.2345),  # power XX.XXXX kW
        (h("45 23 81"), "bcd_signed", 4, -1.2345),
        (h("99 99 99 99"), "bcd", 2, 999999.99),
        (h("06 05 12 26"), "date", 0, 261205.0),  # WW DD MM YY
        (h("30 15 20"), "time", 0, 201530.0),  # ss mm hh
        (h("10 00"), "hex", 0, 16.0),  # status word 3, bit 4: relay off
    ],
)
def test_values_decode_with_scale_and_sign(raw, fmt, decimals, value):
    assert dlt645.decode_value(raw, fmt, decimals) == value


def test_a_non_bcd_value_is_a_decode_error():
    with pytest.raises(FrameError, match="not a BCD byte"):
        dlt645.decode_value(h("1A 00 00 00"), "bcd", 2)


# --- resynchronisation --------------------------------------------------------
@pytest.mark.parametrize("preamble", [0, 1, 2, 3, 4])
def test_zero_to_four_preamble_bytes(preamble):
    frame, used, _error = parse(b"\xfe" * preamble + REPLY_ENERGY)
    assert frame.control == 0x91 and used == preamble + len(REPLY_ENERGY)


def test_noise_before_and_after_a_frame():
    noisy = h("00 16 68 11 FF") + REPLY_ENERGY + h("16 68 00")
    frame, used, _error = parse(noisy)
    assert frame.control == 0x91
    assert noisy[used:] == h("16 68 00")


def test_doubled_68_is_skipped():
    frame, _used, _error = parse(h("68") + REPLY_ENERGY)
    assert frame.address == "000000001234"


def test_16_inside_the_address_and_the_data():
    # address 000000001600 -> 00 16 00 00 00 00; value 16.16 kWh -> 16 16 00 00
    # (on the wire 49 49 33 33): the parser goes by L, not by the first 16
    data = dlt645.di_bytes("00010000") + h("16 16 00 00")
    raw = dlt645.encode_frame("000000001600", 0x91, data, preamble=False)
    assert raw.count(0x16) >= 2
    frame, used, _error = parse(raw)
    assert frame.address == "000000001600" and used == len(raw)


def test_16_as_the_checksum():
    # header 68+00+16+00+00+00+00+68+91+04 = 0x17B; data 33+33+34+01 = 0x9B;
    # 0x17B+0x9B = 0x216 -> CS 16, followed by the end byte 16
    raw = h("68 00 16 00 00 00 00 68 91 04 33 33 34 01 16 16")
    frame, used, error = parse(raw)
    assert error is None and used == len(raw)
    assert frame.data == h("00 00 01 CE")


def test_bad_checksum_is_a_named_error_not_an_exception():
    broken = bytearray(REPLY_ENERGY)
    broken[-2] ^= 0xFF
    frame, used, error = parse(bytes(broken))
    assert frame is None and used == len(broken)
    assert error.startswith("bad checksum")


def test_bad_frame_then_good_frame_gives_the_good_one():
    broken = bytearray(REPLY_ENERGY)
    broken[-2] ^= 0xFF
    frame, _used, _error = parse(bytes(broken) + REPLY_NO_DATA)
    assert frame.control == 0xD1


def test_truncated_frame_waits_for_more():
    frame, used, error = parse(REPLY_ENERGY[:-3])
    assert frame is None and used == 0 and error == "truncated frame"


def test_missing_end_byte():
    raw = REPLY_ENERGY[:-1] + b"\x00"
    frame, _used, error = parse(raw)
    assert frame is None and "does not end with 16" in error


# --- every error code ----------------------------------------------------------
@pytest.mark.parametrize(
    ("bits", "text"),
    [
        (0x01, "other error"),
        (0x02, "no data requested"),
        (0x04, "password wrong or unauthorised"),
        (0x08, "baud rate cannot be changed"),
        (0x10, "year time zones exceeded"),
        (0x20, "day periods exceeded"),
        (0x40, "tariff count exceeded"),
        (0x06, "no data requested, password wrong or unauthorised"),
        (0x80, "unknown error"),
    ],
)
def test_error_byte_is_named(bits, text):
    assert dlt645.error_reason(0xD1, bytes((bits,)))[1] == f"error 0x{bits:02X}: {text}"


@pytest.mark.parametrize(
    ("word", "text"),
    [
        (0x0001, "other error (suspended)"),
        (0x0002, "MAC error"),
        (0x0004, "password wrong or unauthorised"),
        (0x0008, "authentication timed out"),
        (0x0010, "execution time invalid"),
        (0x0020, "trip refused under keep-power"),
    ],
)
def test_state_grid_relay_error_word_is_named(word, text):
    code, reason = dlt645.error_reason(0xDC, word.to_bytes(2, "little"))
    assert code == word and reason == f"error 0x{word:04X}: {text}"


def test_error_reply_without_a_code():
    assert dlt645.error_reason(0xD1, b"") == (0, "error reply without an error code")


def test_bad_password_and_operator_are_refused():
    with pytest.raises(FrameError, match="6 digits"):
        dlt645.password_bytes(2, "12345")
    with pytest.raises(FrameError, match="8 digits"):
        dlt645.operator_bytes("0000001x")
    with pytest.raises(FrameError, match="not a relay operation"):
        dlt645.relay_data(2, "123456", "00000001", 0x55, datetime(2026, 1, 1))


# --- transport against a tiny line server -------------------------------------
class LineServer:
    """A TCP 'transparent gateway' answering each request with the bytes a
    function returns (None: silence), in a thread of its own."""

    def __init__(self, answer):
        self.answer = answer
        self.requests = []
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        asyncio.set_event_loop(self.loop)

        async def handle(reader, writer):
            buffer = bytearray()
            while data := await reader.read(512):
                buffer += data
                while True:
                    frame, used, _error = parse(buffer)
                    del buffer[:used]
                    if frame is None:
                        break
                    self.requests.append(frame)
                    reply = self.answer(frame)
                    if reply:
                        writer.write(reply)
                        await writer.drain()
            writer.close()

        self.server = self.loop.run_until_complete(
            asyncio.start_server(handle, "127.0.0.1", 0)
        )
        self.port = self.server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()

    def __enter__(self):
        self.thread.start()
        self.ready.wait(5)
        return self

    def __exit__(self, *exc):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    def endpoint(self, timeout=0.3):
        return Endpoint("dlt645_tcp", port=self.port, timeout=timeout)


ENERGY = DataItem("energy_total", "00010000", "bcd", 4, 2)
VOLTAGE = DataItem("voltage", "02010100", "bcd", 2, 1)


def _reply(frame, data):
    return dlt645.encode_frame(frame.address, frame.control | 0x80, data)


def test_sweep_stores_good_meters_beside_garbage_silence_and_errors():
    def answer(frame):
        di = frame.data[:4]
        if frame.address == "000000000002":
            return h("68 12 34 56 16 68 99")  # garbage
        if frame.address == "000000000003":
            return None  # silent
        if frame.address == "000000000004" and di == dlt645.di_bytes("02010100"):
            return dlt645.encode_frame(frame.address, 0xD1, b"\x02")
        if di == dlt645.di_bytes("00010000"):
            # the late reply of another meter first: never taken for this one
            late = dlt645.encode_frame("000000000009", 0x91, di + h("00 00 00 00"))
            return late + _reply(frame, di + h("56 34 12 00"))
        return _reply(frame, di + h("01 22"))

    with LineServer(answer) as server:
        polls = [
            dlt645.MeterPoll(n, f"00000000000{n}", [ENERGY, VOLTAGE])
            for n in (1, 2, 3, 4)
        ]
        [(index, results)] = list(bus.iter_sweep([(server.endpoint(), polls)]))
    assert index == 0
    assert [r.error_kind for r in results] == [None, "decode", "timeout", "exception"]
    assert results[0].values == {"energy_total": 1234.56, "voltage": 220.1}
    assert "no data requested" in results[3].error
    # the error of one identifier keeps the values of the others
    assert results[3].values == {"energy_total": 1234.56}


def test_bad_checksum_reply_fails_that_meter_only():
    def answer(frame):
        raw = bytearray(_reply(frame, frame.data[:4] + h("56 34 12 00")))
        if frame.address == "000000000001":
            raw[-2] ^= 0x01
        return bytes(raw)

    with LineServer(answer) as server:
        polls = [dlt645.MeterPoll(n, f"00000000000{n}", [ENERGY]) for n in (1, 2)]
        results = asyncio.run(dlt645.poll_bus(server.endpoint(), polls))
    assert results[0].error_kind == "decode" and "bad checksum" in results[0].error
    assert results[1].ok and results[1].values["energy_total"] == 1234.56


def test_follow_up_frames_are_read_with_0x12():
    item = DataItem("energy_total", "00010000", "bcd", 4, 2)

    def answer(frame):
        di = frame.data[:4]
        if frame.control == dlt645.READ:
            return dlt645.encode_frame(frame.address, 0xB1, di + h("56 34"))
        return dlt645.encode_frame(frame.address, 0x92, di + h("12 00") + b"\x01")

    with LineServer(answer) as server:
        result = dlt645.read_now(server.endpoint(), "000000000001", [item])
    assert result.values == {"energy_total": 1234.56}
    assert [f.control for f in server.requests] == [0x11, 0x12]


def test_a_block_identifier_is_one_request_for_its_values():
    block = [
        DataItem(name, "0001FF00", "bcd", 4, 2, offset=4 * index)
        for index, name in enumerate(("energy_total", "energy_sharp", "energy_peak"))
    ]

    def answer(frame):
        # total 30.00, sharp 10.00, peak 20.00 (BCD, least significant first)
        return _reply(frame, frame.data[:4] + h("00 30 00 00 00 10 00 00 00 20 00 00"))

    with LineServer(answer) as server:
        result = dlt645.read_now(server.endpoint(), "000000000001", block)
    assert result.values == {
        "energy_total": 30.0,
        "energy_sharp": 10.0,
        "energy_peak": 20.0,
    }
    assert len(server.requests) == 1
    assert result.raw == {"0001FF00": "00 30 00 00 00 10 00 00 00 20 00 00"}


def test_relay_refused_is_named_and_not_read_back():
    status = DataItem("status_word_3", "04000503", "hex", 2)

    def answer(frame):
        if frame.control == dlt645.RELAY:
            return dlt645.encode_frame(frame.address, 0xDC, b"\x04")
        return _reply(frame, frame.data[:4] + h("00 00"))

    job = dlt645.RelayJob(
        key=1,
        address="000000000001",
        operation=dlt645.TRIP,
        level=2,
        password="000000",
        operator="00000001",
        valid_until=datetime(2026, 1, 1),
        verify=status,
        mask=0x10,
        expected=0x10,
    )
    with LineServer(answer) as server:
        result = bus.execute_job(server.endpoint(), job)
    assert not result.ok and result.error_kind == "exception"
    assert result.error == (
        "relay control 0x1A refused: error 0x04: password wrong or unauthorised"
    )
    assert [f.control for f in server.requests] == [dlt645.RELAY]


def test_scan_and_time_sync():
    def answer(frame):
        if frame.control == dlt645.READ_ADDRESS:
            return dlt645.encode_frame("000000000301", 0x93, h("01 03 00 00 00 00"))
        return None

    with LineServer(answer) as server:
        assert dlt645.scan(server.endpoint()) == ("000000000301", "ok")
        ok, _message = dlt645.sync_time(server.endpoint(), datetime(2026, 12, 5))
        assert ok
        for _ in range(50):
            if len(server.requests) == 2:
                break
            threading.Event().wait(0.02)
    assert server.requests[1].address == dlt645.BROADCAST
    assert server.requests[1].data == h("00 00 00 05 12 26")


def test_unreachable_line_fails_every_meter_with_connection():
    endpoint = Endpoint("dlt645_tcp", port=1, timeout=0.3)
    polls = [dlt645.MeterPoll(n, f"00000000000{n}", [ENERGY]) for n in (1, 2)]
    results = asyncio.run(dlt645.poll_bus(endpoint, polls))
    assert [r.error_kind for r in results] == ["connection", "connection"]


# --- serial line through a pty pair -------------------------------------------
def test_serial_line_reads_a_meter_through_a_pty():
    pytest.importorskip("serial_asyncio")
    master, slave = os.openpty()
    name = os.ttyname(slave)
    stop = threading.Event()

    def meter():
        buffer = bytearray()
        while not stop.is_set():
            try:
                buffer += os.read(master, 256)
            except OSError:
                return
            frame, used, _error = parse(buffer)
            del buffer[:used]
            if frame is not None:
                os.write(master, _reply(frame, frame.data[:4] + h("56 34 12 00")))

    thread = threading.Thread(target=meter, daemon=True)
    thread.start()
    try:
        # a pty refuses parity bits (EINVAL): the line settings reach pyserial
        # as test_serial_line_settings_reach_pyserial shows
        endpoint = Endpoint(
            "dlt645_serial", serial_port=name, baudrate=2400, parity="N", timeout=1.0
        )
        result = dlt645.read_now(endpoint, "000000000001", [ENERGY])
    finally:
        stop.set()
        os.close(slave)
        os.close(master)
        thread.join(2)
    assert result.ok, result.error
    assert result.values == {"energy_total": 1234.56}


def test_serial_line_settings_reach_pyserial(monkeypatch):
    serial_asyncio = pytest.importorskip("serial_asyncio")
    seen = {}

    async def fake_open(**kwargs):
        seen.update(kwargs)
        raise OSError("no such port")

    monkeypatch.setattr(serial_asyncio, "open_serial_connection", fake_open)
    endpoint = Endpoint(
        "dlt645_serial", serial_port="/dev/ttyUSB9", baudrate=2400, parity="E"
    )
    ok, message = dlt645.check_connection(endpoint)
    assert not ok and "no such port" in message
    assert seen == {
        "url": "/dev/ttyUSB9",
        "baudrate": 2400,
        "bytesize": 8,
        "parity": "E",
        "stopbits": 1,
    }
