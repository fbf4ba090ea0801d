from odoo import api, fields, models
from odoo.exceptions import ValidationError


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
    prepaid_plausibility_margin = fields.Float(
        string="Plausibility Margin",
        default=1.5,
        digits=(16, 2),
        config_parameter="prepaid_metering.plausibility_margin",
        help="A reading is suspect when it rises more than the meter's rated "
        "maximum demand x the hours since its last accepted reading x this "
        "margin.",
    )
    prepaid_command_max_attempts = fields.Integer(
        string="Command Attempts",
        default=3,
        config_parameter="prepaid_metering.command_max_attempts",
        help="How many times a failing meter command is tried before it fails.",
    )
    prepaid_command_sending_timeout_min = fields.Integer(
        string="Command Recovery After (min)",
        default=5,
        config_parameter="prepaid_metering.command_sending_timeout_min",
        help="A command still sending after this many minutes was left by a dead "
        "worker: the recovery job settles it (switch commands are read back and "
        "resent, counted records settled by the meter's counter).",
    )
    prepaid_reading_retention_months = fields.Integer(
        string="Reading Retention (months)",
        default=25,
        config_parameter="prepaid_metering.reading_retention_months",
        help="Raw readings older than this many months (the site's calendar) "
        "are removed once billed and added to the daily use; the daily use, "
        "the charges (with the meter registers) and the bills stay.",
    )

    @api.constrains("prepaid_reading_retention_months")
    def _check_prepaid_reading_retention_months(self):
        for settings in self:
            if settings.prepaid_reading_retention_months < 1:
                raise ValidationError(
                    self.env._(
                        "Readings must be kept at least one month (got %s months).",
                        settings.prepaid_reading_retention_months,
                    )
                )

    prepaid_event_every_sweeps = fields.Integer(
        string="Event Counters Every (sweeps)",
        default=12,
        config_parameter="prepaid_metering.event_every_sweeps",
        help="DL/T 645 meters: their event counters (cover opened, clock set...) "
        "and clocks are read every this many sweeps; a counter that rose is "
        "stored as a meter event.",
    )
    prepaid_clock_offset_max_s = fields.Integer(
        string="Clock Offset Limit (s)",
        default=60,
        config_parameter="prepaid_metering.clock_offset_max_s",
        help="A meter whose clock is further off than this is shown as 'clock "
        "off' (time-of-use meters bill by their own clock).",
    )

    @api.constrains("prepaid_event_every_sweeps", "prepaid_clock_offset_max_s")
    def _check_prepaid_dlt645_settings(self):
        for settings in self:
            if (
                settings.prepaid_event_every_sweeps <= 0
                or settings.prepaid_clock_offset_max_s < 0
            ):
                raise ValidationError(
                    self.env._(
                        "Read the event counters at least every sweep (1 or more) "
                        "and give a clock offset limit of 0 seconds or more."
                    )
                )

    prepaid_tamper_checks = fields.Selection(
        [("on", "On"), ("off", "Off")],
        string="Tamper Checks",
        default="on",
        required=True,
        config_parameter="prepaid_metering.tamper_checks",
        help="Look for tamper and theft signals in every poll: reverse energy, "
        "current without voltage, phase loss, cover and clear counters, water "
        "through a closed valve.",
    )
    prepaid_tamper_reverse_kwh = fields.Float(
        string="Reverse Energy Threshold (kWh)",
        default=0.05,
        digits=(16, 3),
        config_parameter="prepaid_metering.tamper_reverse_kwh",
        help="Reverse energy rising at least this much between two reads is a signal.",
    )
    prepaid_tamper_voltage_min_v = fields.Float(
        string="No Voltage Below (V)",
        default=50.0,
        digits=(16, 1),
        config_parameter="prepaid_metering.tamper_voltage_min_v",
        help="A phase below this voltage has no voltage: with current flowing "
        "it is current without voltage, without current on a three-phase "
        "meter whose other phases are live it is a phase loss.",
    )
    prepaid_tamper_current_min_a = fields.Float(
        string="Current Flowing From (A)",
        default=0.5,
        digits=(16, 2),
        config_parameter="prepaid_metering.tamper_current_min_a",
        help="Current on a phase without voltage from this value is a signal.",
    )
    prepaid_tamper_flow_m3 = fields.Float(
        string="Flow Through a Closed Valve (m³)",
        default=0.005,
        digits=(16, 3),
        config_parameter="prepaid_metering.tamper_flow_m3",
        help="Volume rising at least this much between two reads while the "
        "valve reports closed is a signal.",
    )
    prepaid_event_alarm_level = fields.Selection(
        [
            ("none", "No alarm (list only)"),
            ("activity", "Activity for the managers"),
            ("email", "Activity and e-mail to the managers"),
        ],
        string="Meter Event Alarm",
        default="email",
        required=True,
        config_parameter="prepaid_metering.event_alarm_level",
        help="What a new meter event (tamper signal, meter event counter) "
        "raises for the metering managers: one alarm per event until it is "
        "acknowledged.",
    )

    @api.constrains(
        "prepaid_tamper_reverse_kwh",
        "prepaid_tamper_voltage_min_v",
        "prepaid_tamper_current_min_a",
        "prepaid_tamper_flow_m3",
    )
    def _check_prepaid_tamper_thresholds(self):
        for settings in self:
            for name in (
                "prepaid_tamper_reverse_kwh",
                "prepaid_tamper_voltage_min_v",
                "prepaid_tamper_current_min_a",
                "prepaid_tamper_flow_m3",
            ):
                if settings[name] <= 0:
                    raise ValidationError(
                        self.env._(
                            "%(setting)s must be above 0 (got %(value)s).",
                            setting=settings._fields[name]._description_string(
                                self.env
                            ),
                            value=settings[name],
                        )
                    )

    @api.constrains("prepaid_plausibility_margin")
    def _check_prepaid_plausibility_margin(self):
        for settings in self:
            if settings.prepaid_plausibility_margin < 1:
                raise ValidationError(
                    self.env._(
                        "The plausibility margin cannot be below 1 (got %s): the "
                        "rated demand itself must stay credible.",
                        settings.prepaid_plausibility_margin,
                    )
                )

    @api.constrains("prepaid_poll_interval_min")
    def _check_prepaid_poll_interval_min(self):
        for settings in self:
            if settings.prepaid_poll_interval_min <= 0:
                raise ValidationError(
                    self.env._(
                        "The polling interval must be at least one minute (got %s).",
                        settings.prepaid_poll_interval_min,
                    )
                )
