from odoo import api, fields, models


class PrepaidWalletReconciliation(models.Model):
    """Beside wallets and the prepayment liability: the deposits held by the
    tenancies against the tenant deposits account."""

    _inherit = "prepaid.wallet.reconciliation"

    deposit_total = fields.Monetary(string="Deposits Held", readonly=True)
    deposit_account_balance = fields.Monetary(string="Deposits Account", readonly=True)
    deposit_difference = fields.Monetary(
        readonly=True,
        help="Deposits account - deposits held by tenancies: zero when every "
        "deposit entry belongs to a tenancy.",
    )

    def _select(self):
        return (
            super()._select()
            + """,
            d.held AS deposit_total, d.account AS deposit_account_balance,
            d.account - d.held AS deposit_difference
        """
        )

    def _from(self):
        return (
            super()._from()
            + """
            CROSS JOIN LATERAL (
                  SELECT COALESCE(SUM(aml.credit - aml.debit)
                           FILTER (WHERE COALESCE(aml.prepaid_tenancy_id,
                                                  am.prepaid_tenancy_id)
                                         IS NOT NULL), 0)
                           AS held,
                         COALESCE(SUM(aml.credit - aml.debit), 0) AS account
                    FROM account_move_line aml
                    JOIN account_move am ON am.id = aml.move_id
                   WHERE aml.company_id = c.id
                     AND aml.account_id = c.prepaid_deposit_account_id
                     AND aml.parent_state = 'posted') d
        """
        )


class PrepaidBillingEngine(models.AbstractModel):
    _inherit = "prepaid.billing.engine"

    @api.model
    def _reconciliation(self, company):
        """The wallet figures, and the deposits held by tenancies against the
        tenant deposits account (both must balance)."""
        result = super()._reconciliation(company)
        cr = self.env.cr
        held = account = 0.0
        if company.prepaid_deposit_account_id:
            cr.execute(
                """SELECT COALESCE(SUM(l.credit - l.debit)
                                   FILTER (WHERE COALESCE(l.prepaid_tenancy_id,
                                                          m.prepaid_tenancy_id)
                                                 IS NOT NULL), 0),
                          COALESCE(SUM(l.credit - l.debit), 0)
                     FROM account_move_line l JOIN account_move m ON m.id = l.move_id
                    WHERE l.company_id = %s AND l.account_id = %s
                      AND l.parent_state = 'posted'""",
                [company.id, company.prepaid_deposit_account_id.id],
            )
            held, account = (float(v) for v in cr.fetchone())
        currency = company.currency_id
        difference = currency.round(account - held)
        result.update(
            {
                "deposits": currency.round(held),
                "deposit_account": currency.round(account),
                "deposit_difference": difference,
                "balanced": result["balanced"] and currency.is_zero(difference),
            }
        )
        return result
