from odoo import api, fields, models, tools


class PrepaidArrears(models.Model):
    """Accounts whose bill invoices are overdue (one row per account, its id
    being the account's)."""

    _name = "prepaid.arrears"
    _description = "Arrears"
    _auto = False
    _order = "days_overdue desc, amount_due desc"
    _rec_name = "account_id"

    account_id = fields.Many2one("prepaid.account", readonly=True)
    partner_id = fields.Many2one("res.partner", string="Tenant", readonly=True)
    company_id = fields.Many2one("res.company", readonly=True)
    currency_id = fields.Many2one("res.currency", readonly=True)
    mode = fields.Selection(
        [("prepaid", "Prepaid"), ("postpaid", "Postpaid")], readonly=True
    )
    supply_state = fields.Selection(
        [("on", "On"), ("cut_pending", "Cut-off Deferred"), ("cut_off", "Cut Off")],
        readonly=True,
    )
    invoice_count = fields.Integer(string="Overdue Invoices", readonly=True)
    amount_due = fields.Monetary(string="Amount Overdue", readonly=True)
    oldest_due = fields.Date(string="Oldest Due Date", readonly=True)
    days_overdue = fields.Integer(readonly=True)
    last_notice = fields.Datetime(readonly=True)
    notice_count = fields.Integer(string="Notices", readonly=True)

    def _select(self):
        return """
            a.id AS id, a.id AS account_id, a.partner_id, a.company_id,
            c.currency_id, a.mode, a.supply_state,
            COUNT(m.id) AS invoice_count,
            SUM(m.amount_residual_signed) AS amount_due,
            MIN(m.invoice_date_due) AS oldest_due,
            (CURRENT_DATE - MIN(m.invoice_date_due))::int AS days_overdue,
            n.last_notice, COALESCE(n.notice_count, 0) AS notice_count
        """

    def _from(self):
        return """
            prepaid_bill b
            JOIN account_move m ON m.id = b.move_id
            JOIN prepaid_account a ON a.id = b.account_id
            JOIN res_company c ON c.id = a.company_id
            LEFT JOIN LATERAL (
                  SELECT MAX(x.sent_at) AS last_notice, COUNT(*) AS notice_count
                    FROM prepaid_arrears_notice x
                   WHERE x.account_id = a.id) n ON TRUE
        """

    def _where(self):
        return """
            m.state = 'posted'
            AND m.payment_state IN ('not_paid', 'partial')
            AND m.invoice_date_due < CURRENT_DATE
        """

    def _group_by(self):
        return "a.id, c.currency_id, n.last_notice, n.notice_count"

    def _query(self):
        return (
            f"SELECT {self._select()} FROM {self._from()} "
            f"WHERE {self._where()} GROUP BY {self._group_by()}"
        )

    def init(self):
        tools.drop_view_if_exists(self.env.cr, self._table)
        self.env.cr.execute(
            f"CREATE VIEW {self._table} AS ({self._query()})"  # noqa: S608
        )

    @api.model
    def _search(self, domain, *args, **kwargs):
        # The view reads the invoices' payment state and the notices: pending
        # ORM writes to them must reach the database first.
        self.env["account.move"].flush_model()
        self.env["prepaid.arrears.notice"].flush_model()
        return super()._search(domain, *args, **kwargs)

    def action_send_notice(self):
        """Send an arrears notice (email with the PDF) to each selected tenant."""
        notices = self.env["prepaid.arrears.notice"]._create_for(self.account_id)
        notices._send()
        return True

    def action_export_xlsx(self):
        records = self or self.search([])
        headers = [
            self.env._("Account"),
            self.env._("Tenant"),
            self.env._("Overdue Invoices"),
            self.env._("Amount Overdue"),
            self.env._("Oldest Due Date"),
            self.env._("Days Overdue"),
            self.env._("Last Notice"),
            self.env._("Supply"),
        ]
        supply = dict(self._fields["supply_state"]._description_selection(self.env))
        rows = [
            [
                row.account_id.name,
                row.partner_id.name,
                row.invoice_count,
                row.amount_due,
                row.oldest_due,
                row.days_overdue,
                row.last_notice,
                supply.get(row.supply_state, ""),
            ]
            for row in records
        ]
        return self.env["prepaid.bill"]._xlsx_download(
            self.env._("Arrears"), headers, rows
        )
