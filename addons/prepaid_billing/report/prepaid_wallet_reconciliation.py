from odoo import fields, models, tools


class PrepaidWalletReconciliation(models.Model):
    """Per company: wallets against the prepayment liability account."""

    _name = "prepaid.wallet.reconciliation"
    _description = "Wallet / Liability Reconciliation"
    _auto = False
    _rec_name = "company_id"

    company_id = fields.Many2one("res.company", readonly=True)
    currency_id = fields.Many2one("res.currency", readonly=True)
    wallet_total = fields.Monetary(string="Wallets", readonly=True)
    unrecognised = fields.Monetary(
        string="Consumption Not Yet Recognised", readonly=True
    )
    liability_balance = fields.Monetary(string="Liability Account", readonly=True)
    difference = fields.Monetary(
        readonly=True,
        help="Liability - wallets - consumption not yet recognised: zero when "
        "every cent is accounted for.",
    )

    def _select(self):
        return """
            c.id AS id, c.id AS company_id, c.currency_id,
            w.total AS wallet_total, u.total AS unrecognised,
            g.total AS liability_balance,
            g.total - w.total - u.total AS difference
        """

    def _from(self):
        return """
            res_company c
            CROSS JOIN LATERAL (
                  SELECT COALESCE(SUM(a.balance), 0) AS total
                    FROM prepaid_account a
                   WHERE a.company_id = c.id AND a.state != 'draft') w
            CROSS JOIN LATERAL (
                  SELECT COALESCE(SUM(-l.amount), 0) AS total
                    FROM prepaid_ledger_line l
                   WHERE l.company_id = c.id
                     AND l.line_type IN ('consumption', 'charge')
                     AND l.recognition_move_id IS NULL) u
            CROSS JOIN LATERAL (
                  SELECT COALESCE(SUM(aml.credit - aml.debit), 0) AS total
                    FROM account_move_line aml
                   WHERE aml.company_id = c.id
                     AND aml.account_id = c.prepaid_liability_account_id
                     AND aml.parent_state = 'posted') g
        """

    def _query(self):
        return f"SELECT {self._select()} FROM {self._from()}"

    def init(self):
        tools.drop_view_if_exists(self.env.cr, self._table)
        self.env.cr.execute(
            f"CREATE VIEW {self._table} AS ({self._query()})"  # noqa: S608
        )
