from odoo import api, fields, models
from odoo.exceptions import UserError


class PrepaidReading(models.Model):
    _inherit = "prepaid.reading"

    charge_id = fields.Many2one(
        "prepaid.reading.charge",
        compute="_compute_charge_id",
        string="Charge",
        help="What billing charged for this reading (same id as the reading).",
    )
    charge_amount = fields.Monetary(
        related="charge_id.amount", string="Charged", currency_field="currency_id"
    )
    charge_detail = fields.Text(related="charge_id.detail", string="Pricing")
    charge_line_id = fields.Many2one(
        related="charge_id.ledger_line_id", string="Wallet Line"
    )
    currency_id = fields.Many2one(related="company_id.currency_id")

    def _compute_charge_id(self):
        self.env.flush_all()
        self.env.cr.execute(
            "SELECT id FROM prepaid_reading_charge WHERE id = ANY(%s)",
            [[reading.id for reading in self if reading.id]],
        )
        charged = {row[0] for row in self.env.cr.fetchall()}
        Charge = self.env["prepaid.reading.charge"]
        for reading in self:
            reading.charge_id = Charge.browse(
                reading.id if reading.id in charged else []
            )

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
