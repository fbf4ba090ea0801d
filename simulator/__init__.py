"""Meter-fleet simulator (no Odoo import): electric and water meters behind
Modbus TCP / RTU-over-TCP gateways, and DL/T 645-2007 electric meters behind
transparent RS-485-to-TCP gateways, per meter-protocols.md.

Typical use::

    from simulator import Fleet

    with Fleet.build(gateways=2, meters_per_gateway=20, speed=0) as fleet:
        port = fleet.gateways[0].port
        meter = fleet.meter(0, 1)
"""

from .bus import (
    bus_time,
    dlt645_bus_time,
    dlt645_frame_size,
    dlt645_frame_time,
    frame_time,
    rtu_request_size,
    rtu_response_size,
    silent_interval,
    transaction_time,
)
from .clock import SimClock
from .dlt645_gateway import DltGateway
from .dlt645_meter import EVENTS, DltMeter
from .demo import DEMO_FLEET_PATH, demo_spec
from .faults import ModbusError
from .fleet import Fleet, Gateway, ProcessFleet, build_spec
from .meters import (
    TOU_SCHEDULE,
    ElectricMeter,
    Meter,
    WaterMeter,
    dcba_regs_float32,
    float32_dcba_regs,
    make_meter,
)

__all__ = [
    "DEMO_FLEET_PATH",
    "EVENTS",
    "DltGateway",
    "DltMeter",
    "TOU_SCHEDULE",
    "ElectricMeter",
    "Fleet",
    "Gateway",
    "Meter",
    "ModbusError",
    "ProcessFleet",
    "SimClock",
    "WaterMeter",
    "build_spec",
    "bus_time",
    "dcba_regs_float32",
    "demo_spec",
    "dlt645_bus_time",
    "dlt645_frame_size",
    "dlt645_frame_time",
    "float32_dcba_regs",
    "frame_time",
    "make_meter",
    "rtu_request_size",
    "rtu_response_size",
    "silent_interval",
    "transaction_time",
]
