from odoo import api, models


class ReportPrepaidMonthly(models.AbstractModel):
    """Values of the QWeb PDF of the comprehensive monthly report."""

    _name = "report.prepaid_billing.report_monthly"
    _description = "Comprehensive Monthly Report (PDF)"

    @api.model
    def _get_report_values(self, docids, data=None):
        wizards = self.env["prepaid.monthly.report.wizard"].browse(docids)
        return {
            "doc_ids": docids,
            "doc_model": "prepaid.monthly.report.wizard",
            "docs": wizards,
            "rows_of": {wizard.id: wizard._rows() for wizard in wizards},
            "rooms": self.env["prepaid.room"],
            "partners": self.env["res.partner"],
            "bands": ("sharp", "peak", "flat", "valley"),
        }
