from odoo import fields, models


class PrepaidReadingReviewWizard(models.TransientModel):
    """Accept or reject suspect readings, with the reason kept in the chatter."""

    _name = "prepaid.reading.review.wizard"
    _description = "Review Suspect Readings"

    reading_ids = fields.Many2many("prepaid.reading", string="Readings", required=True)
    decision = fields.Selection(
        [("accept", "Accept"), ("reject", "Reject")], required=True, default="reject"
    )
    reason = fields.Text(
        required=True,
        help="Why: kept on the readings and in the meter's chatter.",
    )

    reading_count = fields.Integer(
        string="Readings to Review",
        compute="_compute_reading_count",
        help="The decision and its reason apply to each of them.",
    )

    def _compute_reading_count(self):
        for wizard in self:
            wizard.reading_count = len(wizard.reading_ids)

    def action_confirm(self):
        """Accept or reject every reading of the wizard (managers only)."""
        self.ensure_one()
        self.reading_ids._review(self.decision, self.reason)
        return {"type": "ir.actions.act_window_close"}
