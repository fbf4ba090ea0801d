from odoo import api, fields, models

from odoo.addons.base.models.res_partner import _tz_get


class PrepaidSite(models.Model):
    _name = "prepaid.site"
    _description = "Metered Site"
    _inherit = ["mail.thread"]
    _order = "name"

    name = fields.Char(required=True, tracking=True)
    code = fields.Char()
    active = fields.Boolean(default=True)
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company
    )
    partner_id = fields.Many2one("res.partner", string="Address")
    tz = fields.Selection(
        _tz_get,
        string="Timezone",
        default=lambda self: self.env.user.tz or "UTC",
        required=True,
        help="Days and months of consumption (today's kWh) follow this timezone.",
    )
    building_ids = fields.One2many("prepaid.building", "site_id", string="Buildings")
    gateway_ids = fields.One2many("prepaid.gateway", "site_id", string="Gateways")
    building_count = fields.Integer(compute="_compute_counts")
    room_count = fields.Integer(compute="_compute_counts")
    meter_count = fields.Integer(compute="_compute_counts")

    _sql_constraints = [
        (
            "code_company_uniq",
            "unique(code, company_id)",
            "A site code must be unique per company.",
        )
    ]

    @api.depends("building_ids")
    def _compute_counts(self):
        for model, field in (
            ("prepaid.building", "building_count"),
            ("prepaid.room", "room_count"),
            ("prepaid.meter", "meter_count"),
        ):
            counts = dict(
                self.env[model]._read_group(
                    [("site_id", "in", self.ids)], ["site_id"], ["__count"]
                )
            )
            for site in self:
                site[field] = counts.get(site, 0)
