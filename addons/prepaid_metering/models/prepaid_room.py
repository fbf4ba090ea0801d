from odoo import api, fields, models
from odoo.exceptions import ValidationError

from ..tools.constants import SWITCH_COMMANDS
from ..tools.precompute import forget_inverses
from . import prepaid_bulk_create

ROOM_TYPES = [
    ("shop", "Shop"),
    ("office", "Office"),
    ("apartment", "Apartment"),
    ("dorm", "Dormitory"),
    ("common", "Common Area"),
]

MONITOR_STATES = [
    ("no_meter", "No Meter"),
    ("new", "Not Polled Yet"),
    ("online", "Online"),
    ("offline", "Offline"),
    ("fault", "Fault"),
]


class PrepaidRoom(models.Model):
    _name = "prepaid.room"
    _description = "Room / Shop"
    _inherit = ["mail.thread", "mail.activity.mixin", "prepaid.bulk.create"]
    _order = "building_id, floor_id, name"
    _check_company_auto = True

    name = fields.Char(required=True, tracking=True)
    code = fields.Char()
    active = fields.Boolean(default=True)
    floor_id = fields.Many2one(
        "prepaid.floor",
        required=True,
        ondelete="restrict",
        index=True,
        check_company=True,
    )
    building_id = fields.Many2one(
        related="floor_id.building_id", store=True, index=True, precompute=True
    )
    site_id = fields.Many2one(
        related="floor_id.site_id", store=True, index=True, precompute=True
    )
    company_id = fields.Many2one(
        related="floor_id.company_id", store=True, index=True, precompute=True
    )
    area_m2 = fields.Float(string="Area (m²)", digits=(16, 2))
    room_type = fields.Selection(ROOM_TYPES, required=True, default="shop")
    tenant_id = fields.Many2one("res.partner", tracking=True)
    meter_ids = fields.One2many("prepaid.meter", "room_id", string="Meters")
    meter_count = fields.Integer(compute="_compute_meter_count")
    monitor_state = fields.Selection(
        MONITOR_STATES,
        string="Monitoring State",
        compute="_compute_monitor_state",
        store=True,
        precompute=True,
        index=True,
        help="Worst state of the room's meters: a fault beats offline, offline "
        "beats online.",
    )
    today_kwh = fields.Float(
        string="Today (kWh)", compute="_compute_consumption", digits=(16, 2)
    )
    month_kwh = fields.Float(
        string="This Month (kWh)", compute="_compute_consumption", digits=(16, 2)
    )
    today_m3 = fields.Float(
        string="Today (m³)", compute="_compute_consumption", digits=(16, 3)
    )
    month_m3 = fields.Float(
        string="This Month (m³)", compute="_compute_consumption", digits=(16, 3)
    )
    color = fields.Integer(compute="_compute_color")
    switched_off_count = fields.Integer(
        compute="_compute_consumption",
        help="Meters of this room whose relay or valve is off.",
    )
    switched_on_count = fields.Integer(
        compute="_compute_consumption",
        help="Meters of this room whose relay or valve is on.",
    )
    suspect_count = fields.Integer(
        string="Suspect Readings",
        compute="_compute_consumption",
        help="Meters of this room whose latest reading waits for review (not "
        "billed until accepted).",
    )

    command_alert = fields.Char(
        string="Failed Command",
        compute="_compute_command_alert",
        help="The last relay or valve command of a meter of this room failed: "
        "the meter and the reason.",
    )

    def _compute_command_alert(self):
        Command = self.env["prepaid.meter.command"]
        latest = Command._read_group(
            [
                ("room_id", "in", self.ids),
                ("command_type", "in", list(SWITCH_COMMANDS)),
            ],
            ["meter_id"],
            ["id:max"],
        )
        failed = Command.browse([last for _meter, last in latest]).filtered(
            lambda command: command.state == "failed"
        )
        alerts = {}
        for command in failed:
            alerts.setdefault(command.room_id.id, []).append(
                f"{command.meter_id.name}: {command.last_error}"
            )
        for room in self:
            room.command_alert = "; ".join(alerts.get(room.id, [])) or False

    @api.model_create_multi
    def create(self, vals_list):
        # One read of the parents instead of Odoo's precompute on new
        # records, which is quadratic in the batch (see tools/precompute).
        return super().create(forget_inverses(self, vals_list))

    def _add_precomputed_values(self, vals_list):
        # A new room without meters has none to monitor: say so in its
        # INSERT instead of a new record per room and an UPDATE of each
        # (an import creates thousands at once).
        if len(vals_list) >= prepaid_bulk_create.BULK_MINIMUM:
            for vals in vals_list:
                if not vals.get("meter_ids"):
                    vals.setdefault("monitor_state", "no_meter")
        return super()._add_precomputed_values(vals_list)

    event_count = fields.Integer(
        string="Open Meter Events",
        compute="_compute_events",
        help="Tamper signals and meter events of this room's meters not yet "
        "acknowledged.",
    )
    event_reason = fields.Char(
        string="Meter Events",
        compute="_compute_events",
        help="What they are.",
    )

    @api.constrains("area_m2")
    def _check_area(self):
        for room in self:
            if room.area_m2 < 0:
                raise ValidationError(
                    self.env._("Room %s: the area cannot be negative.", room.name)
                )

    @api.depends("meter_ids")
    def _compute_meter_count(self):
        for room in self:
            room.meter_count = len(room.meter_ids)

    @api.model
    def _monitor_state_from(self, meter_states):
        """Room state from its meters' states (worst first)."""
        for state in ("fault", "offline", "online", "new"):
            if state in meter_states:
                return state
        return "no_meter"

    @api.depends("meter_ids.state", "meter_ids.active")
    def _compute_monitor_state(self):
        # One grouped query for the rooms in the database (an import or a
        # sweep recomputes thousands at once); new rooms (forms) from cache.
        saved = self.filtered("id")
        states = {}
        if saved:
            meters = self.env["prepaid.meter"].search_fetch(
                [("room_id", "in", saved.ids)], ["room_id", "state"], order="id"
            )
            for meter in meters:
                states.setdefault(meter.room_id.id, set()).add(meter.state)
        for room in self - saved:
            room.monitor_state = self._monitor_state_from(
                set(room.meter_ids.mapped("state"))
            )
        for room in saved:
            room.monitor_state = self._monitor_state_from(states.get(room.id, ()))

    @api.depends("monitor_state")
    def _compute_color(self):
        # Kanban colour indexes: 10 green, 2 orange, 1 red, 0 none.
        colors = {"online": 10, "offline": 2, "fault": 1}
        for room in self:
            room.color = colors.get(room.monitor_state, 0)

    @api.depends(
        "meter_ids.today_energy_kwh",
        "meter_ids.today_volume_m3",
        "meter_ids.suspect_reading_id",
    )
    def _compute_consumption(self):
        for room in self:
            meters = room.meter_ids
            electric = meters.filtered(lambda m: m.meter_type != "water")
            water = meters - electric
            room.today_kwh = sum(electric.mapped("today_energy_kwh"))
            room.month_kwh = sum(electric.mapped("month_energy_kwh"))
            room.today_m3 = sum(water.mapped("today_volume_m3"))
            room.month_m3 = sum(water.mapped("month_volume_m3"))
            room.switched_off_count = len(
                meters.filtered(lambda m: m.switch_state == "off")
            )
            room.switched_on_count = len(
                meters.filtered(lambda m: m.switch_state == "on")
            )
            room.suspect_count = len(meters.filtered("suspect_reading_id"))

    def _compute_events(self):
        rooms = self.filtered("id")
        groups = {}
        # a portal user reading a room sees no meter events
        if rooms and self.env["prepaid.meter.event"].has_access("read"):
            for room, kind, count in self.env["prepaid.meter.event"]._read_group(
                [("room_id", "in", rooms.ids), ("state", "=", "open")],
                ["room_id", "kind"],
                ["__count"],
            ):
                groups.setdefault(room.id, []).append((kind, count))
        kinds = dict(
            self.env["prepaid.meter.event"]
            ._fields["kind"]
            ._description_selection(self.env)
        )
        for room in self:
            found = groups.get(room.id, [])
            room.event_count = sum(count for _kind, count in found)
            room.event_reason = ", ".join(sorted(kinds[kind] for kind, _c in found))

    def action_view_events(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "prepaid_metering.prepaid_meter_event_action"
        )
        action["domain"] = [("room_id", "=", self.id)]
        return action

    def action_view_meters(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "prepaid_metering.prepaid_meter_action"
        )
        action["domain"] = [("room_id", "=", self.id)]
        action["context"] = {"default_room_id": self.id}
        return action

    def action_read_now(self):
        return self.meter_ids.action_read_now()

    def action_switch_off(self):
        return self.meter_ids.action_switch_off()

    def action_switch_on(self):
        return self.meter_ids.action_switch_on()
