from odoo import api, models
from odoo.exceptions import UserError


class PrepaidReading(models.Model):
    _inherit = "prepaid.reading"

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
