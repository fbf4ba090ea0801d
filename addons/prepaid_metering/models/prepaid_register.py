from odoo import api, fields, models
from odoo.exceptions import ValidationError

from ..drivers import codec

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
        return codec.Register(
            name=self.name,
            address=self.address,
            dtype=self.dtype,
            byte_order=self.byte_order,
            scale=self.scale,
            unit=self.unit or "",
            access=self.access,
        )

    @api.constrains("address", "dtype", "scale", "profile_id")
    def _check_address(self):
        for line in self:
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
        for profile in self.profile_id:
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
