from odoo import fields, models
from odoo.exceptions import UserError
from odoo.tools import format_datetime

from ..tools import plausibility


class PrepaidMeterReplaceWizard(models.TransientModel):
    """Record a meter replacement: the old counter's final reading (billed
    like any reading) and the new counter's initial reading (counts nothing,
    becomes the baseline)."""

    _name = "prepaid.meter.replace.wizard"
    _description = "Replace Meter"

    meter_id = fields.Many2one("prepaid.meter", required=True, ondelete="cascade")
    meter_type = fields.Selection(related="meter_id.meter_type")
    replaced_at = fields.Datetime(
        string="Replaced On", required=True, default=fields.Datetime.now
    )
    final_value = fields.Float(
        string="Old Meter's Final Reading",
        digits=(16, 3),
        required=True,
        help="Counter of the removed meter when it was taken out (kWh or m³).",
    )
    initial_value = fields.Float(
        string="New Meter's Initial Reading",
        digits=(16, 3),
        help="Counter of the new meter when it was put in (kWh or m³).",
    )
    new_serial_number = fields.Char(help="Written on the meter when given.")

    def action_confirm(self):
        """Store both readings; the final one must be plausible."""
        self.ensure_one()
        meter = self.meter_id
        meter.check_access("write")
        column = "volume_m3" if meter.meter_type == "water" else "energy_total_kwh"
        unit = "m³" if meter.meter_type == "water" else "kWh"
        for value in (self.final_value, self.initial_value):
            if not plausibility.storable(value):
                raise UserError(
                    self.env._(
                        "Meter readings are positive numbers: %s cannot be recorded.",
                        value,
                    )
                )
        Reading = self.env["prepaid.reading"]
        final = Reading.create(
            {
                "meter_id": meter.id,
                "source": "manual",
                "read_at": self.replaced_at,
                column: self.final_value,
            }
        )
        if final.review_state:
            raise UserError(
                self.env._(
                    "The old meter's final reading is not plausible: %s Check the "
                    "value (or the meter's rated maximum demand) and try again.",
                    final.anomaly_note,
                )
            )
        # The access was checked above; only code records a replacement.
        Reading.sudo().create(
            {
                "meter_id": meter.id,
                "source": "manual",
                "read_at": self.replaced_at,
                column: self.initial_value,
                "anomaly": "replacement",
                "anomaly_note": self.env._(
                    "Meter replaced: the old counter ended at %(final)s %(unit)s, "
                    "the new one starts at %(initial)s %(unit)s.",
                    final=self.final_value,
                    initial=self.initial_value,
                    unit=unit,
                ),
            }
        )
        if self.new_serial_number:
            meter.serial_number = self.new_serial_number
        meter._message_log(
            body=self.env._(
                "Meter replaced on %(at)s: final reading %(final)s %(unit)s, new "
                "counter from %(initial)s %(unit)s.",
                at=format_datetime(self.env, self.replaced_at),
                final=self.final_value,
                initial=self.initial_value,
                unit=unit,
            )
        )
        return {"type": "ir.actions.act_window_close"}
