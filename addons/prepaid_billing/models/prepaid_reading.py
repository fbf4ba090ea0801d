from odoo import api, fields, models
from odoo.exceptions import UserError


class PrepaidReading(models.Model):
    _inherit = "prepaid.reading"

    charge_id = fields.Many2one(
        "prepaid.reading.charge",
        compute="_compute_charge_id",
        help="What billing charged for this reading (same id as the reading).",
    )
    # Computed with charge_id (charges never change once written).
    charge_amount = fields.Monetary(
        compute="_compute_charge_id", string="Charged", currency_field="currency_id"
    )
    charge_detail = fields.Text(compute="_compute_charge_id", string="Pricing")
    charge_line_id = fields.Many2one(
        "prepaid.ledger.line", compute="_compute_charge_id", string="Wallet Line"
    )
    currency_id = fields.Many2one(related="company_id.currency_id")

    def _compute_charge_id(self):
        # Charges are written in SQL by billing only: nothing to flush.
        self.env.cr.execute(
            "SELECT id FROM prepaid_reading_charge WHERE id = ANY(%s)",
            [[reading.id for reading in self if reading.id]],
        )
        charged = {row[0] for row in self.env.cr.fetchall()}
        Charge = self.env["prepaid.reading.charge"]
        for reading in self:
            charge = Charge.browse(reading.id if reading.id in charged else [])
            reading.charge_id = charge
            reading.charge_amount = charge.amount
            reading.charge_detail = charge.pricing_text
            reading.charge_line_id = charge.ledger_line_id

    @api.ondelete(at_uninstall=False)
    def _unlink_except_charged(self):
        # A charged reading is the evidence of a wallet movement.
        self.env.flush_all()
        self.env.cr.execute(
            "SELECT count(*) FROM prepaid_reading_charge WHERE id = ANY(%s)",
            [self.ids],
        )
        if self.env.cr.fetchone()[0]:
            raise UserError(
                self.env._(
                    "Readings that were billed cannot be deleted: they are the "
                    "evidence of the tenant's charges."
                )
            )
