from odoo import fields, models


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    prepaid_poll_interval_min = fields.Integer(
        string="Polling Interval (min)",
        default=5,
        config_parameter="prepaid_metering.poll_interval_min",
        help="How often each gateway's meters are read (a gateway may override).",
    )
    prepaid_offline_after_failures = fields.Integer(
        string="Offline After Failures",
        default=3,
        config_parameter="prepaid_metering.offline_after_failures",
        help="Consecutive missed replies before a meter is shown offline.",
    )
    prepaid_poll_batch_gateways = fields.Integer(
        string="Gateways per Sweep",
        default=200,
        config_parameter="prepaid_metering.poll_batch_gateways",
        help="Gateways claimed together and read in parallel (one connection "
        "each); their readings are stored in chunks as the buses finish.",
    )
    prepaid_command_max_attempts = fields.Integer(
        string="Command Attempts",
        default=3,
        config_parameter="prepaid_metering.command_max_attempts",
        help="How many times a failing meter command is tried before it fails.",
    )
