from odoo import api, fields, models
from odoo.exceptions import UserError

DEPOSIT_MODES = [
    ("receive", "Received now (cash or bank)"),
    ("invoice", "On an invoice"),
]


class PrepaidTenancyMoveInWizard(models.TransientModel):
    """Collects a move-in; ``prepaid.tenancy._move_in`` does it."""

    _name = "prepaid.tenancy.move.in.wizard"
    _description = "Move a Tenant In"

    tenancy_id = fields.Many2one("prepaid.tenancy")
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company
    )
    currency_id = fields.Many2one(related="company_id.currency_id")
    partner_id = fields.Many2one("res.partner", string="Tenant", required=True)
    room_ids = fields.Many2many(
        "prepaid.room",
        string="Rooms",
        required=True,
        domain="[('company_id', '=', company_id)]",
    )
    mode = fields.Selection(
        [("prepaid", "Prepaid"), ("postpaid", "Postpaid")],
        string="Billing Mode",
        default="prepaid",
        required=True,
    )
    tariff_id = fields.Many2one(
        "prepaid.tariff",
        string="Electricity Tariff",
        domain="[('utility', '=', 'electricity'), ('company_id', '=', company_id)]",
    )
    water_tariff_id = fields.Many2one(
        "prepaid.tariff",
        domain="[('utility', '=', 'water'), ('company_id', '=', company_id)]",
    )
    charge_item_ids = fields.Many2many(
        "prepaid.charge.item",
        string="Charge Items",
        domain="[('target_type', '=', 'account'), ('company_id', '=', company_id)]",
    )
    deposit_amount = fields.Monetary(string="Deposit")
    deposit_mode = fields.Selection(
        DEPOSIT_MODES, string="Deposit Paid", default="receive", required=True
    )
    journal_id = fields.Many2one(
        "account.journal",
        string="Deposit Journal",
        domain="[('type', 'in', ('cash', 'bank')), ('company_id', '=', company_id)]",
    )
    line_ids = fields.One2many(
        "prepaid.tenancy.reading.line", "move_in_id", string="Opening Readings"
    )

    @api.model
    def default_get(self, fields_list):
        values = super().default_get(fields_list)
        tenancy = self.env["prepaid.tenancy"].browse(values.get("tenancy_id"))
        if tenancy:
            values.update(
                {
                    "partner_id": tenancy.partner_id.id,
                    "room_ids": [fields.Command.set(tenancy.room_ids.ids)],
                    "mode": tenancy.mode,
                    "tariff_id": tenancy.tariff_id.id,
                    "water_tariff_id": tenancy.water_tariff_id.id,
                    "charge_item_ids": [
                        fields.Command.set(tenancy.charge_item_ids.ids)
                    ],
                    "deposit_amount": tenancy.deposit_amount,
                    "company_id": tenancy.company_id.id,
                }
            )
        return values

    @api.onchange("room_ids")
    def _onchange_room_ids(self):
        meters = self.room_ids.meter_ids.filtered("active")
        kept = self.line_ids.filtered(lambda line: line.meter_id in meters)
        new = meters - kept.meter_id
        self.line_ids = [fields.Command.set(kept.ids)] + [
            fields.Command.create({"meter_id": meter.id}) for meter in new
        ]

    def _readings(self):
        meters = self.room_ids.meter_ids.filtered("active")
        lines = self.line_ids
        missing = meters - lines.meter_id
        if missing:
            lines |= self.env["prepaid.tenancy.reading.line"].create(
                [{"meter_id": m.id, "move_in_id": self.id} for m in missing]
            )
        return lines.filtered(lambda line: line.meter_id in meters)._specs()

    def action_move_in(self):
        self.ensure_one()
        vals = {
            "partner_id": self.partner_id.id,
            "company_id": self.company_id.id,
            "room_ids": [fields.Command.set(self.room_ids.ids)],
            "mode": self.mode,
            "tariff_id": self.tariff_id.id,
            "water_tariff_id": self.water_tariff_id.id,
            "charge_item_ids": [fields.Command.set(self.charge_item_ids.ids)],
            "deposit_amount": self.deposit_amount,
        }
        tenancy = self.tenancy_id
        if tenancy:
            if tenancy.state != "draft":
                raise UserError(self.env._("This tenancy has already moved in."))
            tenancy.write(vals)
        else:
            tenancy = self.env["prepaid.tenancy"].create(vals)
        tenancy._move_in(
            self._readings(),
            deposit_mode=self.deposit_mode,
            deposit_journal=self.journal_id,
        )
        return {
            "type": "ir.actions.act_window",
            "res_model": "prepaid.tenancy",
            "res_id": tenancy.id,
            "view_mode": "form",
        }
