from odoo import api, fields, models

from ..tools.precompute import forget_inverses


class PrepaidFloor(models.Model):
    _name = "prepaid.floor"
    _inherit = ["prepaid.bulk.create"]
    _description = "Floor"
    _order = "building_id, level, name"
    _check_company_auto = True

    name = fields.Char(required=True)
    level = fields.Integer(help="Storey number used for sorting; basements < 0.")
    active = fields.Boolean(default=True)
    building_id = fields.Many2one(
        "prepaid.building",
        required=True,
        ondelete="restrict",
        index=True,
        check_company=True,
    )
    site_id = fields.Many2one(
        related="building_id.site_id", store=True, index=True, precompute=True
    )
    company_id = fields.Many2one(
        related="building_id.company_id", store=True, index=True, precompute=True
    )
    room_ids = fields.One2many("prepaid.room", "floor_id", string="Rooms")

    @api.model_create_multi
    def create(self, vals_list):
        # One read of the parents instead of Odoo's precompute on new
        # records, which is quadratic in the batch (see tools/precompute).
        return super().create(forget_inverses(self, vals_list))

    def _compute_display_name(self):
        for floor in self:
            floor.display_name = f"{floor.building_id.name} / {floor.name}"
