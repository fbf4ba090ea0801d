from odoo import api, fields, models


class PrepaidRoom(models.Model):
    _inherit = "prepaid.room"  # pylint: disable=consider-merging-classes-inherited

    limit_alert = fields.Char(
        compute="_compute_limit_alert",
        help="A supply cut for a power or daily energy limit, with its reason.",
    )

    @api.depends(
        "meter_ids.billing_account_id.limit_state",
        "meter_ids.billing_account_id.limit_reason",
    )
    def _compute_limit_alert(self):
        for room in self:
            room.limit_alert = (
                ", ".join(
                    account.limit_reason
                    for account in room.meter_ids.billing_account_id
                    if account.limit_state != "none" and account.limit_reason
                )
                or False
            )
