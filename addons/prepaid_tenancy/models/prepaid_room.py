from odoo import api, fields, models


class PrepaidRoom(models.Model):
    _inherit = "prepaid.room"

    tenancy_ids = fields.Many2many(
        "prepaid.tenancy",
        "prepaid_tenancy_room_rel",
        "room_id",
        "tenancy_id",
        string="Tenancies",
        readonly=True,
    )
    tenancy_id = fields.Many2one(
        "prepaid.tenancy",
        string="Current Tenancy",
        compute="_compute_tenancy_id",
        help="The tenancy in the room now (active, or moving out).",
    )
    tenancy_count = fields.Integer(compute="_compute_tenancy_id")

    @api.depends("tenancy_ids.state")
    def _compute_tenancy_id(self):
        for room in self:
            tenancies = room.tenancy_ids
            room.tenancy_id = tenancies.filtered(lambda t: t.state == "active")[:1]
            room.tenancy_count = len(tenancies)

    def action_view_tenancies(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "prepaid_tenancy.prepaid_tenancy_action"
        )
        action["domain"] = [("room_ids", "in", self.ids)]
        action["context"] = {"default_room_ids": self.ids}
        return action

    def action_move_in(self):
        return self.env["prepaid.tenancy"].action_new_move_in(rooms=self)
