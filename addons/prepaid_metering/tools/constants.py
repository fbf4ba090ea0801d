"""Names other modules need from metering, without importing what sends them
(the models that hold them import the drivers).

``SWITCH_COMMANDS``: the switch command types, each with what it switches
("relay" or "valve") and whether it turns the supply on.
"""

SWITCH_COMMANDS = {
    "relay_off": ("relay", False),
    "relay_on": ("relay", True),
    "valve_close": ("valve", False),
    "valve_open": ("valve", True),
}
