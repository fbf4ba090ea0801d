"""Meter drivers: plain Python, importable without Odoo.

``codec`` turns register profiles into words and back; ``modbus`` is the single
door to Modbus gateways and serial buses.
"""

from . import codec, modbus

__all__ = ["codec", "modbus"]
