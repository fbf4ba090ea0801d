from odoo import api, fields, models


class PrepaidTenancyReading(models.Model):
    """The opening or final reading of one meter of a tenancy: read live
    through the meter command path, or entered by hand with a photo."""

    _name = "prepaid.tenancy.reading"
    _description = "Tenancy Reading"
    _order = "tenancy_id, kind, meter_id"

    tenancy_id = fields.Many2one(
        "prepaid.tenancy", required=True, ondelete="cascade", index=True
    )
    kind = fields.Selection([("opening", "Opening"), ("final", "Final")], required=True)
    meter_id = fields.Many2one("prepaid.meter", required=True, ondelete="restrict")
    meter_type = fields.Selection(related="meter_id.meter_type")
    reading_id = fields.Many2one(
        "prepaid.reading", required=True, ondelete="restrict", readonly=True
    )
    read_at = fields.Datetime(related="reading_id.read_at")
    value = fields.Float(
        compute="_compute_value", digits=(16, 3), help="kWh, or m³ for water."
    )
    unit = fields.Char(compute="_compute_value")
    manual = fields.Boolean(
        string="Entered by Hand",
        readonly=True,
        help="The meter could not be read: the value was entered from a photo.",
    )
    photo_id = fields.Many2one("ir.attachment", readonly=True)
    value_text = fields.Char(
        string="Value Read", compute="_compute_value", help="The value with its unit."
    )
    cancelled = fields.Boolean(
        readonly=True, help="The move-out this reading ended was cancelled."
    )

    @api.depends("reading_id", "meter_id")
    def _compute_value(self):
        for line in self:
            water = line.meter_id.meter_type == "water"
            line.value = (
                line.reading_id.volume_m3 if water else line.reading_id.energy_total_kwh
            )
            line.unit = "m³" if water else "kWh"
            line.value_text = (
                f"{line.value:.3f} m³" if water else f"{line.value:.2f} kWh"
            )
