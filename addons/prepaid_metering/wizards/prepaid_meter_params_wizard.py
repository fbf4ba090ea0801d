from odoo import api, fields, models
from odoo.exceptions import UserError


class PrepaidMeterParamsWizard(models.TransientModel):
    """Queue Write Parameters commands for one or many meters."""

    _name = "prepaid.meter.params.wizard"
    _description = "Write Meter Parameters"

    meter_ids = fields.Many2many(
        "prepaid.meter",
        required=True,
        default=lambda self: self.env["prepaid.meter"].browse(
            self.env.context.get("active_ids", [])
        ),
    )
    line_ids = fields.One2many(
        "prepaid.meter.params.wizard.line", "wizard_id", string="Parameters"
    )
    available_registers = fields.Char(compute="_compute_available_registers")
    reason = fields.Char()

    @api.depends("meter_ids")
    def _compute_available_registers(self):
        for wizard in self:
            names = set()
            for line in wizard.meter_ids.profile_ids.line_ids:
                if "w" in line.access and "r" in line.access:
                    names.add(line.name)
            wizard.available_registers = ", ".join(sorted(names))

    def action_apply(self):
        self.ensure_one()
        if not self.line_ids:
            raise UserError(self.env._("Add at least one parameter to write."))
        params = {line.register: line.value for line in self.line_ids}
        if len(params) != len(self.line_ids):
            raise UserError(self.env._("Each register may appear only once."))
        self.meter_ids._queue_commands(
            lambda meter: "write_params", reason=self.reason, params=params
        )
        return self.meter_ids._commands_queued_notification()


class PrepaidMeterParamsWizardLine(models.TransientModel):
    _name = "prepaid.meter.params.wizard.line"
    _description = "Meter Parameter to Write"

    wizard_id = fields.Many2one(
        "prepaid.meter.params.wizard", required=True, ondelete="cascade"
    )
    register = fields.Char(
        required=True, help="Name of a writable register, e.g. unit_price."
    )
    value = fields.Float(required=True, digits=(16, 4))
