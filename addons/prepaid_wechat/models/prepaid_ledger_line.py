from odoo import models


class PrepaidLedgerLine(models.Model):
    _inherit = "prepaid.ledger.line"

    def init(self):
        res = super().init()
        # The portal reads an account's lines of a date window (charts, days
        # of credit left): with this index their cost does not grow with the
        # account's history.
        self.env.cr.execute(
            """
            CREATE INDEX IF NOT EXISTS prepaid_ledger_line_account_date_idx
                ON prepaid_ledger_line (account_id, date)
            """
        )
        return res
