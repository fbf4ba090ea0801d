from odoo import api, fields, models

from ..tools.precompute import forget_inverses


class PrepaidBuilding(models.Model):
    _name = "prepaid.building"
    _description = "Building"
    _order = "site_id, sequence, name"
    _check_company_auto = True

    name = fields.Char(required=True)
    sequence = fields.Integer(default=10)
    active = fields.Boolean(default=True)
    site_id = fields.Many2one(
        "prepaid.site",
        required=True,
        ondelete="restrict",
        index=True,
        check_company=True,
    )
    company_id = fields.Many2one(
        related="site_id.company_id", store=True, index=True, precompute=True
    )
    floor_ids = fields.One2many("prepaid.floor", "building_id", string="Floors")
    room_ids = fields.One2many("prepaid.room", "building_id", string="Rooms")

    @api.model_create_multi
    def create(self, vals_list):
        # One read of the parents instead of Odoo's precompute on new
        # records, which is quadratic in the batch (see tools/precompute).
        return super().create(forget_inverses(self, vals_list))
