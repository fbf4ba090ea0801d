from odoo import api, fields, models
from odoo.exceptions import ValidationError

from ..drivers import codec, dlt645
from .prepaid_meter_event import EVENT_KINDS

DTYPES = [
    ("uint16", "UINT16"),
    ("int16", "INT16"),
    ("uint32", "UINT32"),
    ("int32", "INT32"),
    ("float32", "FLOAT32"),
    ("uint64", "UINT64"),
    ("int64", "INT64"),
    ("float64", "FLOAT64"),
]
BYTE_ORDERS = [(order, order) for order in codec.BYTE_ORDERS]
DLT_FORMATS = [
    ("bcd", "BCD"),
    ("bcd_signed", "BCD, sign in bit 7"),
    ("date", "Date YYMMDDWW"),
    ("time", "Time hhmmss"),
    ("hex", "Status bits"),
]
READ_EVERY = [
    ("sweep", "Every sweep"),
    ("slow", "With the event counters (every N sweeps)"),
]


class PrepaidRegister(models.Model):
    """One value of a register profile: where it is and how it is encoded.

    ``name`` is the technical key the product understands (energy_total,
    voltage, volume_total, relay_state, balance, ...); a new brand maps its own
    addresses to the same keys.
    """

    _name = "prepaid.register"
    _description = "Register Profile Line"
    _order = "profile_id, address"

    profile_id = fields.Many2one(
        "prepaid.register.profile", required=True, ondelete="cascade", index=True
    )
    name = fields.Char(
        required=True, help="Technical key, e.g. energy_total, voltage, balance."
    )
    label = fields.Char(translate=True)
    address = fields.Integer(required=True)
    function = fields.Selection(
        [("3", "FC03 holding registers")], default="3", required=True
    )
    dtype = fields.Selection(DTYPES, string="Type", required=True, default="uint16")
    byte_order = fields.Selection(BYTE_ORDERS, required=True, default="ABCD")
    scale = fields.Float(required=True, default=1.0, digits=(16, 6))
    unit = fields.Char()
    access = fields.Selection(
        [("r", "Read"), ("w", "Write"), ("rw", "Read/Write")],
        required=True,
        default="r",
    )
    word_count = fields.Integer(compute="_compute_word_count")
    protocol = fields.Selection(related="profile_id.protocol")
    di = fields.Char(
        string="Data Identifier",
        help="DL/T 645: DI3 DI2 DI1 DI0 in hex as the standard writes it, e.g. "
        "00010000 (forward active energy).",
    )
    dlt_format = fields.Selection(DLT_FORMATS, string="Format", default="bcd")
    byte_count = fields.Integer(string="Bytes", default=4)
    byte_offset = fields.Integer(
        string="Offset (bytes)",
        default=0,
        help="DL/T 645: where the value starts in the reply. Lines sharing a "
        "block identifier (e.g. 0001FF00: total and rates 1-4, 4 bytes each) "
        "are read with one request.",
    )
    read_every = fields.Selection(READ_EVERY, default="sweep", required=True)
    event_kind = fields.Selection(
        EVENT_KINDS,
        help="An event counter: a rise is stored as a meter event of this kind.",
    )

    _sql_constraints = [
        (
            "name_profile_uniq",
            "unique(profile_id, name)",
            "A register name appears only once in a profile.",
        )
    ]

    @api.depends("dtype")
    def _compute_word_count(self):
        for line in self:
            line.word_count = codec.register_count(line.dtype) if line.dtype else 0

    def _driver_register(self):
        self.ensure_one()
        if self.profile_id.protocol == "dlt645":
            return dlt645.DataItem(
                name=self.name,
                di=self.di or "",
                fmt=self.dlt_format or "bcd",
                size=self.byte_count,
                decimals=codec._scale_decimals(self.scale),
                offset=self.byte_offset,
            )
        return codec.Register(
            name=self.name,
            address=self.address,
            dtype=self.dtype,
            byte_order=self.byte_order,
            scale=self.scale,
            unit=self.unit or "",
            access=self.access,
        )

    @api.constrains(
        "di", "dlt_format", "byte_count", "byte_offset", "scale", "profile_id"
    )
    def _check_di(self):
        for line in self.filtered(lambda r: r.profile_id.protocol == "dlt645"):
            try:
                line._driver_register()
            except dlt645.FrameError as err:
                raise ValidationError(
                    self.env._(
                        "Line %(name)s: %(error)s (a data identifier has 8 hex "
                        "digits, a value 1-16 bytes).",
                        name=line.name,
                        error=err,
                    )
                ) from err
            twins = line.profile_id.line_ids.filtered(
                lambda r, line=line: (
                    r.di
                    and r.di.upper() == line.di.upper()
                    and r.byte_offset == line.byte_offset
                )
            )
            if len(twins) > 1:
                raise ValidationError(
                    self.env._(
                        "Profile %(profile)s reads data identifier %(di)s twice.",
                        profile=line.profile_id.name,
                        di=line.di,
                    )
                )

    @api.constrains("address", "dtype", "scale", "profile_id")
    def _check_address(self):
        modbus_lines = self.filtered(lambda r: r.profile_id.protocol != "dlt645")
        for line in modbus_lines:
            if not 0 <= line.address <= 0xFFFF - line.word_count + 1:
                raise ValidationError(
                    self.env._(
                        "Register %(name)s: address %(address)s is outside 0-65535.",
                        name=line.name,
                        address=line.address,
                    )
                )
            if not line.scale:
                raise ValidationError(
                    self.env._("Register %s: the scale cannot be zero.", line.name)
                )
        for profile in modbus_lines.profile_id:
            overlaps = codec.check_overlaps(profile._driver_registers())
            if overlaps:
                first, second = overlaps[0]
                raise ValidationError(
                    self.env._(
                        "Profile %(profile)s: register %(a)s (0x%(a_addr)04X) overlaps "
                        "register %(b)s (0x%(b_addr)04X).",
                        profile=profile.name,
                        a=first.name,
                        a_addr=first.address,
                        b=second.name,
                        b_addr=second.address,
                    )
                )
