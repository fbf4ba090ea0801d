from odoo import models


class MergePartnerAutomatic(models.TransientModel):
    _inherit = "base.partner.merge.automatic.wizard"

    def _update_foreign_keys(self, src_partners, dst_partner):
        # The daily use names its tenant without a foreign key (see
        # prepaid.daily.usage): the merge finds it only here.
        result = super()._update_foreign_keys(src_partners, dst_partner)
        self.env["prepaid.daily.usage"].flush_model(["partner_id"])
        self.env.cr.execute(
            "UPDATE prepaid_daily_usage SET partner_id = %s WHERE partner_id = ANY(%s)",
            [dst_partner.id, src_partners.ids],
        )
        self.env["prepaid.daily.usage"].invalidate_model(["partner_id"])
        return result
