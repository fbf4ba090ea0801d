"""Meter drivers: plain Python, importable without Odoo.

``codec`` turns register profiles into words and back; ``modbus`` is the single
door to Modbus gateways and serial buses; ``dlt645`` the one to
DL/T 645-2007 lines; ``bus`` routes each bus to its driver.
"""

from . import bus, codec, dlt645, modbus

__all__ = ["bus", "codec", "dlt645", "modbus"]
