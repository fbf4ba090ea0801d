from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError

from ..tools.precompute import forget_inverses
from ..tools.tables import set_fillfactor
from . import prepaid_bulk_create

METER_TYPES = [
    ("electric_1p", "Electricity, single-phase"),
    ("electric_3p", "Electricity, three-phase"),
    ("water", "Water (valve)"),
]
METER_STATES = [
    ("new", "New"),
    ("online", "Online"),
    ("offline", "Offline"),
    ("fault", "Fault"),
]
SWITCH_STATES = [("on", "Supply On"), ("off", "Supply Off"), ("unknown", "Unknown")]
# What went wrong at the last poll, by the drivers' error kinds: the label
# is shown in the reader's language, the driver's own words (state_reason)
# beside it as the technical detail.
FAULT_KINDS = [
    ("timeout", "No answer in time"),
    ("connection", "Gateway not reachable"),
    ("exception", "Meter refused the request"),
    ("decode", "Answer not understood"),
    ("protocol", "Communication error"),
    ("verify", "Value not confirmed"),
]
# Rated maximum demand of a direct-connected meter of each type (kW, m³/h
# for water): 60 A at 230 V, three times that, a DN20 water meter's Q4.
RATED_DEMAND = {"electric_1p": 15.0, "electric_3p": 45.0, "water": 5.0}

# Reading columns filled from registers of these names (the profile keys).
READING_FIELDS = {
    "energy_total": "energy_total_kwh",
    "energy_sharp": "energy_sharp_kwh",
    "energy_peak": "energy_peak_kwh",
    "energy_flat": "energy_flat_kwh",
    "energy_valley": "energy_valley_kwh",
    "voltage": "voltage_v",
    "current": "current_a",
    "active_power": "power_kw",
    "power_factor": "power_factor",
    "volume_total": "volume_m3",
}
# The CT ratio multiplies what flows through the current transformer.
MULTIPLIED = {
    "energy_total_kwh",
    "energy_sharp_kwh",
    "energy_peak_kwh",
    "energy_flat_kwh",
    "energy_valley_kwh",
    "current_a",
    "power_kw",
}


class PrepaidMeter(models.Model):
    _name = "prepaid.meter"
    _description = "Meter"
    _inherit = ["mail.thread", "mail.activity.mixin", "prepaid.bulk.create"]
    _order = "gateway_id, device_id"
    _check_company_auto = True

    name = fields.Char(required=True, tracking=True)
    serial_number = fields.Char(tracking=True, copy=False)
    active = fields.Boolean(default=True)
    meter_type = fields.Selection(
        METER_TYPES, required=True, default="electric_1p", tracking=True
    )
    gateway_id = fields.Many2one(
        "prepaid.gateway",
        required=True,
        ondelete="restrict",
        index=True,
        check_company=True,
        tracking=True,
    )
    device_id = fields.Integer(
        string="Device Address",
        required=True,
        default=1,
        tracking=True,
        help="Modbus address of the meter on its RS-485 bus (1-247).",
    )
    address = fields.Char(
        string="Meter Address",
        size=12,
        tracking=True,
        copy=False,
        help="DL/T 645: the meter's 12-digit communication address (printed on "
        "its nameplate, or found with Scan on the gateway).",
    )
    is_dlt645 = fields.Boolean(related="gateway_id.is_dlt645")
    dlt_password_level = fields.Integer(
        string="Password Level",
        default=2,
        groups="base.group_system",
        copy=False,
        help="DL/T 645 password level used for relay control (0x1C).",
    )
    dlt_password = fields.Char(
        string="Relay Password",
        groups="base.group_system",
        copy=False,
        help="DL/T 645: the 6-digit password of that level. Only administrators "
        "see it; it is never logged.",
    )
    dlt_operator = fields.Char(
        string="Operator Code",
        groups="base.group_system",
        copy=False,
        help="DL/T 645: the 8-digit operator code sent with relay control.",
    )
    clock_offset_s = fields.Integer(
        string="Clock Offset (s)",
        readonly=True,
        copy=False,
        help="Meter clock minus server time when it was last read (positive: "
        "the meter is ahead).",
    )
    clock_read_at = fields.Datetime(string="Clock Read", readonly=True, copy=False)
    clock_off = fields.Boolean(
        compute="_compute_clock_off",
        search="_search_clock_off",
        help="The clock offset exceeds the limit of the Settings.",
    )
    event_counters = fields.Json(
        readonly=True,
        copy=False,
        help="The meter's event counters at their last read, by name.",
    )
    profile_ids = fields.Many2many(
        "prepaid.register.profile",
        string="Register Profiles",
        help="Register maps this meter answers to (e.g. the brand's block plus "
        "the prepaid extension).",
    )
    room_id = fields.Many2one(
        "prepaid.room",
        ondelete="set null",
        index=True,
        check_company=True,
        tracking=True,
    )
    building_id = fields.Many2one(
        related="room_id.building_id", store=True, precompute=True
    )
    floor_id = fields.Many2one(related="room_id.floor_id", store=True, precompute=True)
    site_id = fields.Many2one(
        related="gateway_id.site_id", store=True, index=True, precompute=True
    )
    company_id = fields.Many2one(
        related="gateway_id.company_id", store=True, index=True, precompute=True
    )
    multiplier = fields.Float(
        string="CT Ratio",
        default=1.0,
        digits=(16, 4),
        tracking=True,
        help="Current-transformer ratio: energy, current and power read from the "
        "meter are multiplied by it.",
    )
    rated_power_kw = fields.Float(
        string="Rated Max Demand (kW)",
        compute="_compute_rated_demand",
        store=True,
        readonly=False,
        precompute=True,
        digits=(16, 2),
        tracking=True,
        help="Largest power the supply can draw, in kW of the energy readings "
        "(after the CT ratio). Readings rising faster than this x the "
        "plausibility margin are suspect and not billed until accepted.",
    )
    rated_flow_m3h = fields.Float(
        string="Rated Max Flow (m³/h)",
        compute="_compute_rated_demand",
        store=True,
        readonly=False,
        precompute=True,
        digits=(16, 3),
        tracking=True,
        help="Largest flow of the water meter. Readings rising faster than "
        "this x the plausibility margin are suspect and not billed until "
        "accepted.",
    )
    is_master = fields.Boolean(
        string="Master Meter",
        help="Measures a common area (corridors, lifts) shared by several rooms.",
    )
    state = fields.Selection(
        METER_STATES,
        default="new",
        required=True,
        readonly=True,
        copy=False,
        index=True,
    )
    fault_kind = fields.Selection(
        FAULT_KINDS,
        string="Problem",
        readonly=True,
        copy=False,
        help="What went wrong at the last poll; the details say it in the "
        "driver's own words.",
    )
    state_reason = fields.Char(string="Details", readonly=True, copy=False)
    fail_count = fields.Integer(
        string="Consecutive Failures", readonly=True, copy=False
    )
    switch_state = fields.Selection(
        SWITCH_STATES,
        string="Relay / Valve",
        default="unknown",
        readonly=True,
        copy=False,
    )
    last_contact = fields.Datetime(readonly=True, copy=False)
    last_reading_at = fields.Datetime(readonly=True, copy=False)
    energy_total_kwh = fields.Float(
        string="Energy (kWh)", readonly=True, copy=False, digits=(16, 2)
    )
    energy_sharp_kwh = fields.Float(
        string="Sharp (kWh)", readonly=True, copy=False, digits=(16, 2)
    )
    energy_peak_kwh = fields.Float(
        string="Peak (kWh)", readonly=True, copy=False, digits=(16, 2)
    )
    energy_flat_kwh = fields.Float(
        string="Flat (kWh)", readonly=True, copy=False, digits=(16, 2)
    )
    energy_valley_kwh = fields.Float(
        string="Valley (kWh)", readonly=True, copy=False, digits=(16, 2)
    )
    voltage_v = fields.Float(string="Voltage (V)", readonly=True, copy=False)
    current_a = fields.Float(
        string="Current (A)", readonly=True, copy=False, digits=(16, 2)
    )
    power_kw = fields.Float(
        string="Power (kW)", readonly=True, copy=False, digits=(16, 3)
    )
    power_factor = fields.Float(readonly=True, copy=False, digits=(16, 3))
    volume_m3 = fields.Float(
        string="Volume (m³)", readonly=True, copy=False, digits=(16, 3)
    )
    energy_baseline_kwh = fields.Float(
        readonly=True,
        copy=False,
        digits=(16, 2),
        help="Last accepted energy counter; consumption is counted from it.",
    )
    volume_baseline_m3 = fields.Float(readonly=True, copy=False, digits=(16, 3))
    baseline_at = fields.Datetime(
        string="Last Accepted Reading",
        readonly=True,
        copy=False,
        help="When the baseline values were read; the plausibility limit grows "
        "with the time since then.",
    )
    suspect_reading_id = fields.Many2one(
        "prepaid.reading",
        readonly=True,
        copy=False,
        index="btree_not_null",
        help="Latest reading waiting for review: it is not billed and does not "
        "move the baseline until someone accepts it.",
    )
    meter_values = fields.Json(
        string="Other Values",
        readonly=True,
        copy=False,
        help="Every decoded register of the last reading, by name.",
    )
    meter_values_text = fields.Text(
        string="Register Values", compute="_compute_meter_values_text"
    )
    day_start_date = fields.Date(readonly=True, copy=False)
    day_start_kwh = fields.Float(readonly=True, copy=False, digits=(16, 2))
    day_start_m3 = fields.Float(readonly=True, copy=False, digits=(16, 3))
    month_start_date = fields.Date(readonly=True, copy=False)
    month_start_kwh = fields.Float(readonly=True, copy=False, digits=(16, 2))
    month_start_m3 = fields.Float(readonly=True, copy=False, digits=(16, 3))
    today_energy_kwh = fields.Float(
        string="Today (kWh)", compute="_compute_period_use", digits=(16, 2)
    )
    month_energy_kwh = fields.Float(
        string="This Month (kWh)", compute="_compute_period_use", digits=(16, 2)
    )
    today_volume_m3 = fields.Float(
        string="Today (m³)", compute="_compute_period_use", digits=(16, 3)
    )
    month_volume_m3 = fields.Float(
        string="This Month (m³)", compute="_compute_period_use", digits=(16, 3)
    )
    reading_ids = fields.One2many("prepaid.reading", "meter_id", string="Readings")
    command_ids = fields.One2many(
        "prepaid.meter.command", "meter_id", string="Commands"
    )
    reading_count = fields.Integer(compute="_compute_counts")
    command_count = fields.Integer(compute="_compute_counts")

    _sql_constraints = [
        (
            "device_gateway_uniq",
            "unique(gateway_id, device_id)",
            "Two meters cannot share a device address on the same gateway.",
        ),
        (
            "device_id_range",
            "CHECK(device_id BETWEEN 1 AND 247)",
            "The device address must be between 1 and 247.",
        ),
    ]

    def init(self):
        # Every poll and every billing batch rewrites each meter's row: keep
        # those updates HOT (see set_fillfactor).
        set_fillfactor(self.env.cr, "prepaid_meter", 70)

    @api.model_create_multi
    def create(self, vals_list):
        taken = {}
        for vals in vals_list:
            gateway_id = vals.get("gateway_id")
            if vals.get("address") and gateway_id:
                # a DL/T 645 meter is found by its address; the device id only
                # orders it on its bus (the form sends its default, 1)
                used = self._used_device_ids(gateway_id, taken)
                if vals.get("device_id") in used or "device_id" not in vals:
                    if self.env["prepaid.gateway"].browse(gateway_id).is_dlt645:
                        vals["device_id"] = self._free_device_id(gateway_id, taken)
                used.add(vals.get("device_id"))
            self._check_relay_secret(vals)
        self._check_new_addresses(vals_list)
        # One read of the gateways instead of Odoo's precompute on new
        # records, which is quadratic in the batch (see tools/precompute).
        meters = super().create(forget_inverses(self, vals_list))
        meters._check_dlt645_address()
        return meters

    @api.model
    def _check_new_addresses(self, vals_list):
        """``_check_address_vals`` for many new meters in one query (an
        import creates thousands at once), twins within the batch included."""
        if len(vals_list) == 1:
            self._check_address_vals(vals_list[0])
            return
        wanted = {}
        for vals in vals_list:
            self._check_address_vals(vals, check_twin=False)
            if vals.get("gateway_id"):
                key = (vals["gateway_id"], vals.get("device_id", 1))
                if key in wanted:
                    raise ValidationError(
                        self.env._(
                            "Meters %(name)s and %(twin)s cannot share device "
                            "address %(id)s on one gateway.",
                            name=vals.get("name", ""),
                            twin=wanted[key].get("name", ""),
                            id=key[1],
                        )
                    )
                wanted[key] = vals
        if not wanted:
            return
        self.flush_model(["gateway_id", "device_id"])
        gateway_ids, device_ids = zip(*wanted, strict=True)
        self.env.cr.execute(
            """SELECT m.id FROM prepaid_meter m
                 JOIN unnest(%s::int4[], %s::int4[]) AS w(gateway_id, device_id)
                   ON w.gateway_id = m.gateway_id AND w.device_id = m.device_id
                LIMIT 1""",
            (list(gateway_ids), list(device_ids)),
        )
        row = self.env.cr.fetchone()
        if row:
            twin = self.browse(row[0])
            self._check_address_vals(wanted[(twin.gateway_id.id, twin.device_id)])

    def write(self, vals):
        if "device_id" in vals or "gateway_id" in vals:
            for meter in self:
                self._check_address_vals(vals, meter)
        if {"dlt_password", "dlt_operator", "dlt_password_level"} & set(vals):
            self._check_relay_secret(vals)
        result = super().write(vals)
        if {"address", "gateway_id"} & set(vals):
            self._check_dlt645_address()
        return result

    @api.model
    def _used_device_ids(self, gateway_id, taken):
        """Device ids used on ``gateway_id``, with those given out in this
        create (``taken`` caches them per gateway)."""
        if gateway_id not in taken:
            taken[gateway_id] = set(
                self.with_context(active_test=False)
                .search([("gateway_id", "=", gateway_id)])
                .mapped("device_id")
            )
        return taken[gateway_id]

    @api.model
    def _free_device_id(self, gateway_id, taken):
        """The lowest device id free on ``gateway_id``."""
        used = self._used_device_ids(gateway_id, taken)
        return next(i for i in range(1, 248) if i not in used)

    def _check_dlt645_address(self):
        """A meter on a DL/T 645 line has a unique 12-digit address there."""
        dlt = self.filtered(lambda meter: meter.gateway_id.is_dlt645)
        for meter in dlt:
            address = meter.address or ""
            if len(address) != 12 or not address.isdigit():
                raise ValidationError(
                    self.env._(
                        "Meter %(name)s: a DL/T 645 meter needs its 12-digit "
                        "address (got '%(address)s').",
                        name=meter.name,
                        address=address,
                    )
                )
        if not dlt:
            return
        # one grouped query for all (an import creates thousands at once);
        # the meters on a shared address then get the search for the message
        shared = {
            (gateway.id, address)
            for gateway, address in self.with_context(active_test=False)._read_group(
                [
                    ("gateway_id", "in", dlt.gateway_id.ids),
                    ("address", "in", list(set(dlt.mapped("address")))),
                ],
                ["gateway_id", "address"],
                having=[("__count", ">", 1)],
            )
        }
        for meter in dlt:
            address = meter.address
            if (meter.gateway_id.id, address) not in shared:
                continue
            twin = self.with_context(active_test=False).search(
                [
                    ("gateway_id", "=", meter.gateway_id.id),
                    ("address", "=", address),
                    ("id", "!=", meter.id),
                ],
                limit=1,
            )
            if twin:
                raise ValidationError(
                    self.env._(
                        "Address %(address)s is already used by meter %(twin)s on "
                        "gateway %(gateway)s.",
                        address=address,
                        twin=twin.name,
                        gateway=meter.gateway_id.name,
                    )
                )

    @api.constrains("profile_ids", "gateway_id")
    def _check_profile_protocol(self):
        """A meter's profiles speak its gateway's protocol: a DL/T 645 line
        reads data identifiers, a Modbus bus registers."""
        checked = {}  # (protocol, profiles): the wrong ones (one check each)
        for meter in self:
            wanted = "dlt645" if meter.gateway_id.is_dlt645 else "modbus"
            key = (wanted, meter.profile_ids._ids)
            if key not in checked:
                checked[key] = meter.profile_ids.filtered(
                    lambda p, w=wanted: p.protocol != w
                )
            wrong = checked[key]
            if wrong:
                raise ValidationError(
                    self.env._(
                        "Meter %(meter)s: profile %(profile)s does not speak the "
                        "protocol of gateway %(gateway)s; choose a %(protocol)s "
                        "profile.",
                        meter=meter.name,
                        profile=wrong[0].name,
                        gateway=meter.gateway_id.name,
                        protocol="DL/T 645" if wanted == "dlt645" else "Modbus",
                    )
                )

    @api.model
    def _check_relay_secret(self, vals):
        password = vals.get("dlt_password")
        operator = vals.get("dlt_operator")
        level = vals.get("dlt_password_level")
        if password and (len(password) != 6 or not password.isdigit()):
            raise ValidationError(self.env._("The relay password has 6 digits."))
        if operator and (len(operator) != 8 or not operator.isdigit()):
            raise ValidationError(self.env._("The operator code has 8 digits."))
        if level is not None and not 0 <= level <= 9:
            raise ValidationError(self.env._("The password level is 0 to 9."))

    @api.depends("clock_offset_s", "clock_read_at")
    def _compute_clock_off(self):
        limit = self._clock_offset_limit()
        for meter in self:
            meter.clock_off = bool(meter.clock_read_at) and (
                abs(meter.clock_offset_s) > limit
            )

    def _search_clock_off(self, operator, value):
        if operator not in ("=", "!=") or not isinstance(value, bool):
            raise UserError(self.env._("Search 'Clock Off' with = or != only."))
        limit = self._clock_offset_limit()
        domain = [
            ("clock_read_at", "!=", False),
            "|",
            ("clock_offset_s", ">", limit),
            ("clock_offset_s", "<", -limit),
        ]
        if (operator == "=") == value:
            return domain
        return ["!", *domain]

    @api.model
    def _clock_offset_limit(self):
        value = (
            self.env["ir.config_parameter"]
            .sudo()
            .get_param("prepaid_metering.clock_offset_max_s", "60")
        )
        try:
            return max(int(value), 0)
        except ValueError:
            return 60

    @api.model
    def _check_address_vals(self, vals, meter=None, check_twin=True):
        """Refuse a bad or taken bus address before the database does.

        The SQL constraints stay as the last guard; checking first gives the
        user a sentence instead of a database error.
        """
        device_id = vals.get("device_id", meter.device_id if meter else 1)
        gateway_id = vals.get("gateway_id", meter.gateway_id.id if meter else False)
        name = vals.get("name") or (meter.name if meter else "")
        if not isinstance(device_id, int) or not 1 <= device_id <= 247:
            raise ValidationError(
                self.env._(
                    "Meter %(name)s: device address %(id)s is outside 1-247.",
                    name=name,
                    id=device_id,
                )
            )
        if not gateway_id or not check_twin:
            return
        domain = [("gateway_id", "=", gateway_id), ("device_id", "=", device_id)]
        if meter:
            domain.append(("id", "!=", meter.id))
        twin = self.with_context(active_test=False).search(domain, limit=1)
        if twin:
            raise ValidationError(
                self.env._(
                    "Device address %(id)s is already used by meter %(twin)s on "
                    "gateway %(gateway)s.",
                    id=device_id,
                    twin=twin.name,
                    gateway=twin.gateway_id.name,
                )
            )

    @api.constrains("multiplier")
    def _check_multiplier(self):
        for meter in self:
            if meter.multiplier <= 0:
                raise ValidationError(
                    self.env._("Meter %s: the CT ratio must be positive.", meter.name)
                )

    @api.constrains("meter_type", "rated_power_kw", "rated_flow_m3h")
    def _check_rated_demand(self):
        for meter in self:
            water = meter.meter_type == "water"
            rated = meter.rated_flow_m3h if water else meter.rated_power_kw
            if rated <= 0:
                raise ValidationError(
                    self.env._(
                        "Meter %s: the rated maximum demand must be positive (it "
                        "tells plausible readings from suspect ones).",
                        meter.name,
                    )
                )

    @api.depends("meter_type")
    def _compute_rated_demand(self):
        for meter in self:
            power, flow = self._rated_demand_of(meter.meter_type)
            meter.rated_power_kw = power
            meter.rated_flow_m3h = flow

    @api.model
    def _rated_demand_of(self, meter_type):
        """(rated power kW, rated flow m³/h) of a new meter of this type."""
        water = meter_type == "water"
        rated = RATED_DEMAND.get(meter_type, 0.0)
        return (0.0 if water else rated), (rated if water else 0.0)

    def _add_precomputed_values(self, vals_list):
        # _compute_rated_demand without a new record per meter (an import
        # creates thousands at once)
        if len(vals_list) >= prepaid_bulk_create.BULK_MINIMUM:
            for vals in vals_list:
                power, flow = self._rated_demand_of(vals.get("meter_type"))
                vals.setdefault("rated_power_kw", power)
                vals.setdefault("rated_flow_m3h", flow)
        return super()._add_precomputed_values(vals_list)

    def _reading_locked_until(self):
        """Readings dated at or before the returned datetime would change what
        is already settled, and are refused (False: nothing is). Metering
        settles nothing; modules that use the readings (billing) extend it."""
        self.ensure_one()
        return False

    @api.depends("meter_values")
    def _compute_meter_values_text(self):
        for meter in self:
            meter.meter_values_text = "\n".join(
                f"{name} = {value}"
                for name, value in (meter.meter_values or {}).items()
            )

    def _compute_counts(self):
        readings = dict(
            self.env["prepaid.reading"]._read_group(
                [("meter_id", "in", self.ids)], ["meter_id"], ["__count"]
            )
        )
        commands = dict(
            self.env["prepaid.meter.command"]._read_group(
                [("meter_id", "in", self.ids)], ["meter_id"], ["__count"]
            )
        )
        for meter in self:
            meter.reading_count = readings.get(meter, 0)
            meter.command_count = commands.get(meter, 0)

    @api.depends(
        "energy_total_kwh",
        "volume_m3",
        "day_start_date",
        "month_start_date",
        "day_start_kwh",
        "month_start_kwh",
        "day_start_m3",
        "month_start_m3",
    )
    def _compute_period_use(self):
        today_by_tz = {}
        for meter in self:
            tz = meter.site_id.tz or "UTC"
            if tz not in today_by_tz:
                today_by_tz[tz] = self._local_date(fields.Datetime.now(), tz)
            today = today_by_tz[tz]
            same_day = meter.day_start_date == today
            same_month = meter.month_start_date and meter.month_start_date.replace(
                day=1
            ) == today.replace(day=1)
            meter.today_energy_kwh = (
                meter.energy_total_kwh - meter.day_start_kwh if same_day else 0.0
            )
            meter.today_volume_m3 = (
                meter.volume_m3 - meter.day_start_m3 if same_day else 0.0
            )
            meter.month_energy_kwh = (
                meter.energy_total_kwh - meter.month_start_kwh if same_month else 0.0
            )
            meter.month_volume_m3 = (
                meter.volume_m3 - meter.month_start_m3 if same_month else 0.0
            )

    @staticmethod
    def _local_date(utc_dt, tz):
        import pytz

        return pytz.utc.localize(utc_dt).astimezone(pytz.timezone(tz)).date()

    # ------------------------------------------------------------------
    # Commands
    # ------------------------------------------------------------------
    def _switch_command_type(self, supply_on):
        self.ensure_one()
        profile = self.profile_ids._switch_profile()
        if not profile:
            raise UserError(
                self.env._(
                    "Meter %s has no register profile that can switch the supply.",
                    self.name,
                )
            )
        if profile.switch_kind == "valve":
            return "valve_open" if supply_on else "valve_close"
        return "relay_on" if supply_on else "relay_off"

    def _queue_commands(self, command_type_for, reason=None, params=None):
        """Create one command per meter and wake the command job up."""
        if not self:
            raise UserError(self.env._("Select at least one meter."))
        self.check_access("read")
        commands = self.env["prepaid.meter.command"].create(
            [
                {
                    "meter_id": meter.id,
                    "command_type": command_type_for(meter),
                    "reason": reason,
                    "params": params,
                }
                for meter in self
            ]
        )
        commands._trigger_processing()
        return commands

    def action_switch_off(self, reason=None):
        """Queue a relay-off / valve-close command for each meter."""
        self._queue_commands(lambda m: m._switch_command_type(False), reason)
        return self._commands_queued_notification()

    def action_switch_on(self, reason=None):
        """Queue a relay-on / valve-open command for each meter."""
        self._queue_commands(lambda m: m._switch_command_type(True), reason)
        return self._commands_queued_notification()

    def action_read_now(self):
        """Queue a read of every register of each meter."""
        self._queue_commands(lambda m: "read_now")
        return self._commands_queued_notification()

    def _commands_queued_notification(self):
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": self.env._("Commands queued"),
                "message": self.env._(
                    "%s command(s) queued; they are sent within seconds. Follow them "
                    "under Commands.",
                    len(self),
                ),
                "type": "info",
                "next": {"type": "ir.actions.act_window_close"},
            },
        }

    def action_view_readings(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "prepaid_metering.prepaid_reading_action"
        )
        action["domain"] = [("meter_id", "=", self.id)]
        action["context"] = {"default_meter_id": self.id}
        return action

    def action_view_suspect_readings(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "prepaid_metering.prepaid_reading_suspect_action"
        )
        action["domain"] = [("meter_id", "=", self.id)]
        return action

    def action_replace_meter(self):
        """Open the meter replacement wizard."""
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Replace Meter"),
            "res_model": "prepaid.meter.replace.wizard",
            "view_mode": "form",
            "target": "new",
            "context": {"default_meter_id": self.id},
        }

    def action_view_commands(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "prepaid_metering.prepaid_meter_command_action"
        )
        action["domain"] = [("meter_id", "=", self.id)]
        action["context"] = {"default_meter_id": self.id}
        return action
