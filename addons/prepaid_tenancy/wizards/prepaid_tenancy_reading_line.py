from odoo import fields, models


class PrepaidTenancyReadingLine(models.TransientModel):
    """One meter of a move-in or move-out: read live, or by hand with a
    photo."""

    _name = "prepaid.tenancy.reading.line"
    _description = "Meter Reading at a Move"

    move_in_id = fields.Many2one("prepaid.tenancy.move.in.wizard", ondelete="cascade")
    move_out_id = fields.Many2one("prepaid.tenancy.move.out.wizard", ondelete="cascade")
    meter_id = fields.Many2one("prepaid.meter", required=True)
    meter_type = fields.Selection(related="meter_id.meter_type")
    last_value = fields.Float(
        string="Last Reading", compute="_compute_last", digits=(16, 3)
    )
    last_read_at = fields.Datetime(string="Last Read", compute="_compute_last")
    manual = fields.Boolean(
        string="Enter by Hand",
        help="The meter cannot be reached: enter the value on its display and "
        "attach a photo of it.",
    )
    value = fields.Float(digits=(16, 3), help="kWh, or m³ for water meters.")
    read_at = fields.Datetime(default=fields.Datetime.now)
    photo = fields.Binary(attachment=False)
    photo_name = fields.Char()

    def _compute_last(self):
        Reading = self.env["prepaid.reading"].sudo()
        for line in self:
            last = Reading.search([("meter_id", "=", line.meter_id.id)], limit=1)
            water = line.meter_id.meter_type == "water"
            line.last_value = last.volume_m3 if water else last.energy_total_kwh
            line.last_read_at = last.read_at

    def _specs(self):
        return [
            {
                "meter": line.meter_id,
                "manual": line.manual,
                "value": line.value if line.manual else None,
                "read_at": line.read_at if line.manual else None,
                "photo": line.photo,
                "photo_name": line.photo_name,
            }
            for line in self
        ]
