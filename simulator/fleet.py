"""Gateways and fleets: pymodbus servers in a background thread (or processes).

Each gateway is one pymodbus :class:`ModbusTcpServer` (Modbus TCP or RTU over
TCP) with one :class:`SimDevice` per meter; the device ``action`` coroutine
hands every request to the meter model.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import multiprocessing
import os
import random
import threading
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path

from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException
from pymodbus.framer import FramerType
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from .bus import frame_time, rtu_request_size, rtu_response_size
from .clock import SimClock
from .dlt645_gateway import DltGateway
from .dlt645_meter import make_dlt_meter
from .faults import GATEWAY_FAULTS, NO_REPLY, ModbusError
from .meters import (
    ACREL_COUNT,
    ACREL_START,
    PREPAID_COUNT,
    PREPAID_START,
    RELAY_CONTROL,
    TAMPER_COUNT,
    TAMPER_START,
    WATER_COUNT,
    WATER_START,
    ElectricMeter,
    Meter,
    make_meter,
)

_log = logging.getLogger(__name__)

#: Format of :meth:`Fleet.state` (the simulator's state file).
STATE_VERSION = 1
#: A gateway spec's "protocol" (absent = Modbus).
PROTOCOLS = ("modbus", "dlt645")
FRAMERS = {"socket": FramerType.SOCKET, "tcp": FramerType.SOCKET, "rtu": FramerType.RTU}

#: One register image spanning the whole address space, shared by every
#: simulated device. The action fills the requested range from the meter just
#: before pymodbus copies it (no await in between), so sharing is safe, and it
#: avoids building a 16k-register image per meter for the 0x0058..0x3FFF gap
#: (about 2.5 GB and a minute of start-up for 10,000 meters).
_SHARED_IMAGE = (0, [0] * 0x10000, [int(DataType.REGISTERS)] * 0x10000)


class _MeterDevice(SimDevice):
    """SimDevice whose register image is the shared one; the meter decides.

    ``simdata`` still lists the meter's documented blocks (validated by
    pymodbus); address legality is enforced by the meter model so that faults
    such as "no reply" also apply to illegal addresses.
    """

    def build_device(self):
        """Return the shared image instead of building one per device."""
        return _SHARED_IMAGE


def _simdata_for(meter: Meter | None) -> list[SimData]:
    if meter is None:
        return [SimData(0, datatype=DataType.REGISTERS)]
    if isinstance(meter, ElectricMeter):
        return [
            SimData(ACREL_START, count=ACREL_COUNT, datatype=DataType.REGISTERS),
            SimData(RELAY_CONTROL, count=2, datatype=DataType.REGISTERS),
            SimData(PREPAID_START, count=PREPAID_COUNT, datatype=DataType.REGISTERS),
            SimData(TAMPER_START, count=TAMPER_COUNT, datatype=DataType.REGISTERS),
        ]
    return [SimData(WATER_START, count=WATER_COUNT, datatype=DataType.REGISTERS)]


class Gateway:
    """One TCP gateway (one RS-485 bus) serving up to 247 meters."""

    def __init__(
        self,
        meters: Iterable[Meter],
        *,
        index: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        framer: str = "socket",
        baud: int | None = None,
        name: str | None = None,
    ) -> None:
        """Describe a gateway; it listens once its fleet is started."""
        if framer not in FRAMERS:
            raise ValueError(f"framer must be one of {sorted(FRAMERS)}")
        self.index = index
        self.name = name or f"gw{index + 1}"
        self.host = host
        self.port = port
        self.framer = "rtu" if FRAMERS[framer] == FramerType.RTU else "socket"
        self.baud = baud
        self.meters: dict[int, Meter] = {}
        for meter in meters:
            if meter.device_id in self.meters:
                raise ValueError(f"{self.name}: device_id {meter.device_id} used twice")
            self.meters[meter.device_id] = meter
        self.faults: dict[str, dict] = {}
        self.requests = 0
        self._server: ModbusTcpServer | None = None
        self._bus: asyncio.Lock | None = None
        self._rng = random.Random(index)

    def __repr__(self) -> str:
        return f"<Gateway {self.name} {self.host}:{self.port} {self.framer}>"

    def meter(self, device_id: int) -> Meter:
        """Return the meter with ``device_id`` on this bus."""
        return self.meters[device_id]

    def inject(self, name: str, **params) -> None:
        """Inject a gateway fault; only "stall" exists (accept TCP, never answer)."""
        if name not in GATEWAY_FAULTS:
            raise ValueError(f"unknown gateway fault {name!r}")
        self.faults[name] = params

    def clear_faults(self) -> None:
        """Remove gateway faults."""
        self.faults.clear()

    def endpoint(self) -> dict:
        """Return host, port, framer and device ids as a JSON-friendly dict."""
        return {
            "name": self.name,
            "host": self.host,
            "port": self.port,
            "protocol": "modbus",
            "framer": self.framer,
            "baud": self.baud,
            "device_ids": sorted(self.meters),
        }

    async def start(self) -> None:
        """Listen (inside the running loop); fills in :attr:`port` when it was 0."""
        devices = [
            _MeterDevice(
                id=dev_id,
                simdata=_simdata_for(meter),
                action=functools.partial(self._action, meter),
            )
            for dev_id, meter in sorted(self.meters.items())
        ]
        # id 0 catches every unknown device id: silence, like an empty RS-485
        # address (pymodbus would otherwise answer 0x04 and log a traceback).
        devices.append(
            _MeterDevice(id=0, simdata=_simdata_for(None), action=self._absent)
        )
        self._bus = asyncio.Lock()
        self._server = ModbusTcpServer(
            devices,
            address=(self.host, self.port),
            framer=FRAMERS[self.framer],
            ignore_missing_devices=True,
            trace_packet=self._trace_packet,
        )
        await self._server.serve_forever(background=True)
        self.port = self._server.transport.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close the listener and all client connections."""
        if self._server is not None:
            await self._server.shutdown()
            self._server = None

    async def _absent(self, *_args) -> None:
        raise NoSuchIdException("no meter at this address")

    async def _action(
        self,
        meter: Meter,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """Serve one request for ``meter`` (pymodbus SimDevice action)."""
        if function_code == 6 and set_values is None:
            # Second call of an FC06: pymodbus reads back what it just stored,
            # which is the echo a real meter sends.
            return None
        if self.faults:
            raise NoSuchIdException("gateway stalled")
        if self.baud:
            async with self._bus:
                result = await self._serve_on_bus(
                    meter, function_code, address, count, set_values
                )
        else:
            result = self._serve(meter, function_code, address, count, set_values)
        if isinstance(result, ExcCodes):
            return result
        if result is not None:
            # No await since the meter answered: the shared image is still ours.
            offset = address - start_address
            registers[offset : offset + count] = result
        return None

    def _serve(
        self,
        meter: Meter,
        function_code: int,
        address: int,
        count: int,
        set_values: list | None,
    ) -> list[int] | ExcCodes | None:
        """Ask the meter; return registers read, an exception code or None."""
        self.requests += 1
        fault = meter.reply_fault()
        if fault == NO_REPLY:
            raise NoSuchIdException("meter does not answer")
        if fault is not None:
            return ExcCodes(fault)
        try:
            return meter.handle_request(function_code, address, count, set_values)
        except ModbusError as exc:
            return ExcCodes(exc.code)

    async def _serve_on_bus(
        self,
        meter: Meter,
        function_code: int,
        address: int,
        count: int,
        set_values: list | None,
    ) -> list[int] | ExcCodes | None:
        """Like :meth:`_serve`, holding the bus for both frame times (8N1)."""
        baud = self.baud
        fc = function_code if function_code in (3, 4, 6, 16) else 3
        n_values = len(set_values) if set_values else count
        await asyncio.sleep(frame_time(rtu_request_size(fc, n_values), baud))
        result = self._serve(meter, function_code, address, count, set_values)
        exception = isinstance(result, ExcCodes)
        await asyncio.sleep(frame_time(rtu_response_size(fc, count, exception), baud))
        return result

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        """Break outgoing frames of meters with a garbage / bad_crc fault."""
        if not sending or not data:
            return data
        dev_pos = 0 if self.framer == "rtu" else 6
        meter = self.meters.get(data[dev_pos]) if len(data) > dev_pos else None
        mode = meter.corruption() if meter is not None else None
        if mode == "garbage":
            return bytes(self._rng.getrandbits(8) for _ in data)
        if mode == "bad_crc":
            return data[:-1] + bytes([data[-1] ^ 0xFF])
        return data


class Fleet:
    """A set of gateways served by one background thread with its own loop."""

    def __init__(self, gateways: Sequence[Gateway], clock: SimClock) -> None:
        """Group gateways that share ``clock``; call :meth:`start` to listen."""
        self.gateways = list(gateways)
        self.clock = clock
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # -- construction -----------------------------------------------------
    @classmethod
    def build(
        cls,
        gateways: int = 1,
        meters_per_gateway: int = 10,
        *,
        kinds: str | Sequence[str] = "electric_1p",
        framer: str | Sequence[str] = "socket",
        speed: float = 0.0,
        host: str = "127.0.0.1",
        base_port: int = 0,
        baud: int | None = None,
        start_time: str | datetime | None = None,
        seed: int = 1,
        meter_defaults: dict | None = None,
    ) -> Fleet:
        """Build a uniform fleet (see :func:`build_spec` for the parameters)."""
        return cls.from_spec(
            build_spec(
                gateways,
                meters_per_gateway,
                kinds=kinds,
                framer=framer,
                speed=speed,
                host=host,
                base_port=base_port,
                baud=baud,
                start_time=start_time,
                seed=seed,
                meter_defaults=meter_defaults,
            )
        )

    @classmethod
    def from_spec(cls, spec: dict | str | Path) -> Fleet:
        """Build a fleet from a spec dict or a JSON file path (format in README)."""
        if not isinstance(spec, dict):
            spec = json.loads(Path(spec).read_text())
        clock = SimClock(speed=spec.get("speed", 0.0), start=spec.get("start_time"))
        host = spec.get("host", "127.0.0.1")
        gateways = []
        for index, gw in enumerate(spec["gateways"]):
            protocol = gw.get("protocol") or "modbus"
            if protocol not in PROTOCOLS:
                raise ValueError(f"gateway protocol must be one of {PROTOCOLS}")
            common = {
                "index": gw.get("index", index),
                "host": gw.get("host", host),
                "port": gw.get("port", 0),
                "baud": gw.get("baud", spec.get("baud")),
                "name": gw.get("name"),
            }
            if protocol == "dlt645":
                specs = gw.get("meters", [])
                meters = [make_dlt_meter(m, clock, i) for i, m in enumerate(specs)]
                gateways.append(
                    DltGateway(meters, preamble=gw.get("preamble", 4), **common)
                )
                continue
            meters = [make_meter(m, clock) for m in gw.get("meters", [])]
            gateways.append(
                Gateway(meters, framer=gw.get("framer", "socket"), **common)
            )
        return cls(gateways, clock)

    # -- access -----------------------------------------------------------
    def gateway(self, gateway: int) -> Gateway:
        """Return a gateway by index, or by port when ``gateway`` >= 1024."""
        if gateway < 1024:
            return self.gateways[gateway]
        for gw in self.gateways:
            if gw.port == gateway:
                return gw
        raise KeyError(f"no gateway on port {gateway}")

    def meter(self, gateway: int, device_id: int) -> Meter:
        """Return a meter by gateway (index, or port when >= 1024) and device id."""
        return self.gateway(gateway).meter(device_id)

    def meters(self) -> Iterator[tuple[Gateway, Meter]]:
        """Iterate over ``(gateway, meter)`` pairs."""
        for gw in self.gateways:
            for meter in gw.meters.values():
                yield gw, meter

    def endpoints(self) -> list[dict]:
        """Return :meth:`Gateway.endpoint` for every gateway."""
        return [gw.endpoint() for gw in self.gateways]

    # -- state file ---------------------------------------------------------
    def state(self) -> dict:
        """Every meter's :meth:`Meter.state`, keyed ``<gateway name>/<device id>``."""
        return {
            "version": STATE_VERSION,
            "saved_at": datetime.now().isoformat(timespec="seconds"),
            "meters": {
                f"{gw.name}/{meter.device_id}": meter.state()
                for gw, meter in self.meters()
            },
        }

    def restore(self, state: dict) -> int:
        """Take over a :meth:`state`; meters it does not name keep their spec
        values. Returns how many meters were restored."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unknown simulator state version {state.get('version')}")
        saved = state.get("meters", {})
        restored = 0
        for gw, meter in self.meters():
            meter_state = saved.get(f"{gw.name}/{meter.device_id}")
            if meter_state is not None:
                meter.restore(meter_state)
                restored += 1
        return restored

    def save_state(self, path: str | Path) -> None:
        """Write :meth:`state` to ``path`` (atomically: a crash while writing
        leaves the previous file)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.state(), indent=1) + "\n")
        os.replace(tmp, path)

    def load_state(self, path: str | Path) -> int:
        """:meth:`restore` from ``path``; 0 when there is no such file."""
        path = Path(path)
        if not path.exists():
            return 0
        return self.restore(json.loads(path.read_text()))

    # -- lifecycle ----------------------------------------------------------
    def start(self, timeout: float = 60.0) -> Fleet:
        """Start serving in a background thread; return once every port listens."""
        if self._thread is not None:
            raise RuntimeError("fleet already started")
        self._ready.clear()
        self._thread = threading.Thread(
            target=self._run, name="meter-fleet", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("fleet did not start in time")
        if self._error is not None:
            self._thread.join()
            self._thread = None
            raise RuntimeError(f"fleet failed to start: {self._error}") from self._error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop all servers and the background thread."""
        if self._thread is None:
            return
        if self._loop is not None and self._stop_event is not None:
            self._loop.call_soon_threadsafe(self._stop_event.set)
        self._thread.join(timeout)
        self._thread = None

    def __enter__(self) -> Fleet:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # noqa: BLE001 - reported to start()
            self._error = exc
            self._ready.set()
        finally:
            loop.close()

    async def _serve(self) -> None:
        self._stop_event = asyncio.Event()
        try:
            for gw in self.gateways:
                await gw.start()
            self._ready.set()
            await self._stop_event.wait()
        finally:
            for gw in self.gateways:
                await gw.stop()


def build_spec(
    gateways: int = 1,
    meters_per_gateway: int = 10,
    *,
    kinds: str | Sequence[str] = "electric_1p",
    framer: str | Sequence[str] = "socket",
    speed: float = 0.0,
    host: str = "127.0.0.1",
    base_port: int = 0,
    baud: int | None = None,
    start_time: str | datetime | None = None,
    seed: int = 1,
    meter_defaults: dict | None = None,
    protocol: str | Sequence[str] = "modbus",
) -> dict:
    """Return a fleet spec dict for a uniform fleet.

    ``kinds`` is one kind or a sequence cycled over the device ids of each
    gateway; ``framer`` one framer or a sequence cycled over gateways.
    Ports are ``base_port + index`` (``base_port=0``: ephemeral).
    Initial energies are drawn from 100..5,000 kWh with ``seed``; balance
    200.00, unit price 0.8000; ``meter_defaults`` overrides any meter field.
    ``protocol`` ("modbus" or "dlt645") is one protocol or a sequence cycled
    over gateways; a DL/T 645 meter gets the address ``GGGGGGDDDDDD``
    (gateway number, device id), password level 2, password 123456, operator
    00000001, and no meter-side deduction (unit price 0).
    """
    if not 1 <= meters_per_gateway <= 247:
        raise ValueError("meters_per_gateway must be 1..247")
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    framers = [framer] if isinstance(framer, str) else list(framer)
    protocols = [protocol] if isinstance(protocol, str) else list(protocol)
    if not protocols or set(protocols) - set(PROTOCOLS):
        raise ValueError(f"protocol must be one of {PROTOCOLS}, not {protocols}")
    if isinstance(start_time, datetime):
        start_time = start_time.isoformat()
    rng = random.Random(seed)
    gws = []
    for g in range(gateways):
        proto = protocols[g % len(protocols)]
        meters = []
        for dev in range(1, meters_per_gateway + 1):
            kind = kinds[(dev - 1) % len(kinds)]
            meter = _default_meter(kind, dev, g, rng)
            if proto == "dlt645":
                meter.update(_dlt_fields(g, dev))
            meters.append({**meter, **(meter_defaults or {})})
        gw = {
            "name": f"gw{g + 1}",
            "port": base_port + g if base_port else 0,
            "meters": meters,
        }
        if proto == "dlt645":
            gw["protocol"] = proto
        else:
            gw["framer"] = framers[g % len(framers)]
        gws.append(gw)
    return {
        "host": host,
        "speed": speed,
        "start_time": start_time or datetime.now().replace(microsecond=0).isoformat(),
        "baud": baud,
        "gateways": gws,
    }


def _default_meter(
    kind: str, device_id: int, gw_index: int, rng: random.Random
) -> dict:
    serial = f"SIM-{gw_index + 1:03d}-{device_id:03d}"
    if kind == "water":
        return {
            "kind": kind,
            "device_id": device_id,
            "serial": serial,
            "volume_m3": round(rng.uniform(10, 500), 3),
            "flow_m3h": round(rng.uniform(0.02, 0.2), 3),
        }
    return {
        "kind": kind,
        "device_id": device_id,
        "serial": serial,
        "energy_kwh": round(rng.uniform(100, 5000), 2),
        "load_kw": round(rng.uniform(0.2, 3.0 if kind == "electric_1p" else 12.0), 3),
        "balance": 200.0,
        "unit_price": 0.8,
    }


def _dlt_fields(gw_index: int, device_id: int) -> dict:
    return {
        "address": f"{gw_index + 1:06d}{device_id:06d}",
        "password_level": 2,
        "password": "123456",
        "operator": "00000001",
        "balance": 0.0,
        "unit_price": 0.0,
    }


# -- multi-process ------------------------------------------------------------
def _worker(spec: dict, conn) -> None:
    """Serve ``spec`` in a child process; report endpoints, stop on SIGTERM."""
    import signal

    fleet = Fleet.from_spec(spec)

    def _terminate(*_args):
        fleet.stop()
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _terminate)
    try:
        fleet.start()
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        conn.send({"error": str(exc)})
        return
    conn.send({"endpoints": fleet.endpoints()})
    conn.close()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fleet.stop()


class ProcessFleet:
    """A fleet split over ``processes`` worker processes (slices of gateways).

    One Python process tops out at a few thousand Modbus requests per second;
    splitting 100 gateways over several processes uses several cores. Meters
    are only reachable over Modbus here (no in-process state API).
    """

    def __init__(self, spec: dict | str | Path, processes: int = 2) -> None:
        """Prepare ``processes`` slices of ``spec`` (a dict or JSON path)."""
        if not isinstance(spec, dict):
            spec = json.loads(Path(spec).read_text())
        if not spec.get("start_time"):
            # Every worker must run the same simulated calendar.
            spec = {
                **spec,
                "start_time": datetime.now().replace(microsecond=0).isoformat(),
            }
        gws = list(enumerate(spec["gateways"]))
        processes = max(1, min(processes, len(gws)))
        self.slices = [
            {**spec, "gateways": [{**gw, "index": i} for i, gw in gws[k::processes]]}
            for k in range(processes)
        ]
        self._procs: list[multiprocessing.Process] = []
        self.endpoint_list: list[dict] = []

    def start(self, timeout: float = 120.0) -> ProcessFleet:
        """Start the workers; return when all of them listen."""
        ctx = multiprocessing.get_context("spawn")
        pipes = []
        for part in self.slices:
            parent, child = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_worker, args=(part, child), daemon=True)
            proc.start()
            child.close()
            self._procs.append(proc)
            pipes.append(parent)
        endpoints = []
        for pipe in pipes:
            if not pipe.poll(timeout):
                self.stop()
                raise TimeoutError("worker did not start in time")
            msg = pipe.recv()
            if "error" in msg:
                self.stop()
                raise RuntimeError(f"worker failed: {msg['error']}")
            endpoints.extend(msg["endpoints"])
        self.endpoint_list = sorted(endpoints, key=lambda e: (e["port"], e["name"]))
        return self

    def endpoints(self) -> list[dict]:
        """Return the endpoints of every gateway of every worker."""
        return self.endpoint_list

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the workers."""
        for proc in self._procs:
            if proc.is_alive():
                proc.terminate()
        for proc in self._procs:
            proc.join(timeout)
            if proc.is_alive():
                proc.kill()
        self._procs = []

    def __enter__(self) -> ProcessFleet:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
