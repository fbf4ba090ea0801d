from odoo import api, fields, models
from odoo.exceptions import ValidationError

from ..drivers import codec
from .prepaid_meter import READING_FIELDS

SWITCH_KINDS = [("none", "None"), ("relay", "Relay"), ("valve", "Valve")]


class PrepaidRegisterProfile(models.Model):
    """A meter brand's register map, kept as data.

    The lines say where each value lives and how it is encoded; the switch
    fields say how to open/close the relay or valve and how to read it back.
    """

    _name = "prepaid.register.profile"
    _description = "Register Profile"
    _order = "name"

    name = fields.Char(required=True, translate=True)
    code = fields.Char(required=True, help="Technical reference, e.g. acrel_ddsy1352.")
    active = fields.Boolean(default=True)
    description = fields.Text(translate=True)
    line_ids = fields.One2many(
        "prepaid.register", "profile_id", string="Registers", copy=True
    )
    switch_kind = fields.Selection(
        SWITCH_KINDS, string="Switch", default="none", required=True
    )
    switch_address = fields.Integer(help="Register written to switch the supply.")
    switch_function = fields.Selection(
        [("6", "FC06 write single register"), ("16", "FC16 write registers")],
        default="16",
    )
    switch_off_words = fields.Char(
        string="Words to Cut Supply",
        help="Comma-separated register words, e.g. 1,1 (decimal or 0x hex).",
    )
    switch_on_words = fields.Char(string="Words to Restore Supply")
    state_register = fields.Char(
        help="Name of the register (in any profile of the meter) that tells the "
        "relay/valve position."
    )
    state_off_mask = fields.Integer(default=1)
    state_off_value = fields.Integer(default=1)
    state_on_mask = fields.Integer(default=1)
    state_on_value = fields.Integer(default=0)
    read_max_gap = fields.Integer(
        string="Read Through Holes Up To",
        default=16,
        help="Registers are read in one request when the unmapped hole between "
        "them is at most this many registers. Set 0 for meters that answer "
        "'illegal address' when a read covers an unmapped register.",
    )
    read_max_count = fields.Integer(
        string="Registers per Read",
        default=codec.MAX_READ_COUNT,
        help="Largest number of registers read in one request (1-125; some "
        "meters accept fewer than the Modbus limit).",
    )
    settle_timeout_s = fields.Float(
        string="Settle Time (s)",
        default=5.0,
        help="How long a switch may take before the read-back fails "
        "(battery valves need several seconds).",
    )

    _sql_constraints = [
        ("code_uniq", "unique(code)", "A register profile code must be unique.")
    ]

    def _parse_words(self, text):
        words = []
        for part in (text or "").replace(" ", "").split(","):
            if not part:
                continue
            try:
                value = int(part, 0)
            except ValueError as err:
                raise ValidationError(
                    self.env._(
                        "'%s' is not a register word (use decimal or 0x hex).", part
                    )
                ) from err
            if not 0 <= value <= 0xFFFF:
                raise ValidationError(
                    self.env._("Register word %s is outside 0-65535.", part)
                )
            words.append(value)
        return words

    @api.constrains(
        "switch_kind",
        "switch_address",
        "switch_function",
        "switch_off_words",
        "switch_on_words",
    )
    def _check_switch(self):
        for profile in self:
            if profile.switch_kind == "none":
                continue
            if not 0 <= profile.switch_address <= 0xFFFF:
                raise ValidationError(
                    self.env._(
                        "Profile %s: the switch address is outside 0-65535.",
                        profile.name,
                    )
                )
            for text in (profile.switch_off_words, profile.switch_on_words):
                words = self._parse_words(text)
                if not words or (profile.switch_function == "6" and len(words) != 1):
                    raise ValidationError(
                        self.env._(
                            "Profile %s: give the words to cut and to restore the "
                            "supply (exactly one word for FC06).",
                            profile.name,
                        )
                    )

    def _driver_registers(self):
        """All lines of these profiles as driver registers."""
        return [line._driver_register() for line in self.line_ids]

    def _read_plan(self):
        """FC03 read blocks covering every readable register of these profiles
        (with the strictest hole and size limits among them)."""
        return codec.plan_reads(
            self._driver_registers(),
            max_count=min(self.mapped("read_max_count") or [codec.MAX_READ_COUNT]),
            max_gap=min(self.mapped("read_max_gap") or [16]),
        )

    @api.constrains("read_max_gap", "read_max_count")
    def _check_read_limits(self):
        for profile in self:
            if profile.read_max_gap < 0 or not (
                1 <= profile.read_max_count <= codec.MAX_READ_COUNT
            ):
                raise ValidationError(
                    self.env._(
                        "Profile %(name)s: the hole read through must be 0 or more "
                        "registers and a read 1 to %(max)s registers.",
                        name=profile.name,
                        max=codec.MAX_READ_COUNT,
                    )
                )

    def _find_register(self, name):
        """The first line named ``name`` in these profiles (driver register)."""
        line = self.line_ids.filtered(lambda r: r.name == name)[:1]
        return line._driver_register() if line else None

    def _switch_profile(self):
        return self.filtered(lambda p: p.switch_kind != "none")[:1]

    def _counter_wraps(self):
        """Reading column -> value at which its unsigned counter wraps to 0."""
        wraps = {}
        for line in self.line_ids:
            column = READING_FIELDS.get(line.name)
            if column and line.dtype.startswith("uint"):
                wraps[column] = round(2 ** (16 * line.word_count) * line.scale, 6)
        return wraps

    def _switch_reader(self):
        """A function telling 'on'/'off'/'unknown' from decoded values."""
        profile = self._switch_profile()
        name = profile.state_register
        if not name:
            return lambda values: None
        off_mask, off_value = profile.state_off_mask, profile.state_off_value
        on_mask, on_value = profile.state_on_mask, profile.state_on_value

        def read(values):
            raw = values.get(name)
            if raw is None:
                return None
            raw = int(raw)
            if raw & off_mask == off_value:
                return "off"
            if raw & on_mask == on_value:
                return "on"
            return "unknown"

        return read
