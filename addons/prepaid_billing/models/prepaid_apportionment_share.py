from odoo import api, fields, models
from odoo.exceptions import UserError


class PrepaidApportionmentShare(models.Model):
    """Who pays what of one apportionment run, and why (the weight)."""

    _name = "prepaid.apportionment.share"
    _description = "Apportionment Share"
    _order = "run_id, id"

    run_id = fields.Many2one(
        "prepaid.apportionment.run", required=True, ondelete="cascade", index=True
    )
    line_id = fields.Many2one("prepaid.apportionment.line", ondelete="set null")
    company_id = fields.Many2one(related="run_id.company_id", store=True)
    currency_id = fields.Many2one(related="run_id.currency_id")
    account_id = fields.Many2one(
        "prepaid.account", required=True, ondelete="restrict", index=True
    )
    partner_id = fields.Many2one(related="account_id.partner_id")
    room_id = fields.Many2one("prepaid.room", ondelete="restrict")
    meter_id = fields.Many2one("prepaid.meter", string="Sub-meter")
    weight = fields.Float(
        digits=(16, 4), help="Ratio (%), area (m²) or consumption used to split."
    )
    amount = fields.Monetary()
    collection = fields.Selection(
        [("wallet", "Wallet"), ("invoice", "Invoice")],
        compute="_compute_collection",
        store=True,
    )
    ledger_line_id = fields.Many2one("prepaid.ledger.line", readonly=True)
    reversal_line_id = fields.Many2one("prepaid.ledger.line", readonly=True)
    bill_id = fields.Many2one("prepaid.bill", readonly=True, ondelete="set null")
    refund_move_id = fields.Many2one(
        "account.move", string="Credit Note", readonly=True
    )
    state = fields.Selection(related="run_id.state")

    def init(self):
        self.env.cr.execute(
            """
            CREATE INDEX IF NOT EXISTS prepaid_apportionment_share_to_bill_idx
                ON prepaid_apportionment_share (account_id)
             WHERE collection = 'invoice' AND bill_id IS NULL
            """
        )

    # Decided when the share is computed; a later change of the account's mode
    # does not move a posted share.
    @api.depends("run_id")
    def _compute_collection(self):
        for share in self:
            wallet = (
                share.run_id.apportionment_id.collection == "wallet"
                and share.account_id.mode == "prepaid"
            )
            share.collection = "wallet" if wallet else "invoice"

    def _post_wallet(self):
        shares = self.filtered(lambda s: s.collection == "wallet" and s.amount)
        if not shares:
            return
        vals_list = []
        for share in shares:
            run = share.run_id
            vals_list.append(
                {
                    "account_id": share.account_id.id,
                    "line_type": "charge",
                    "amount": -share.amount,
                    "name": self.env._(
                        "%(name)s (%(room)s)", name=run.name, room=share.room_id.name
                    ),
                    "product_id": run.apportionment_id.product_id.id,
                    "meter_id": run.apportionment_id.master_meter_id.id,
                    "quantity": share.weight,
                    "idempotency_key": f"apportion:{share.id}",
                }
            )
        posted = self.env["prepaid.ledger.line"]._post(vals_list)
        by_key = {line.idempotency_key: line for line in posted}
        for share in shares:
            line = by_key.get(f"apportion:{share.id}")
            if line:
                share.ledger_line_id = line
        self.env["prepaid.billing.engine"]._after_balance_change(posted.account_id)

    def _reverse(self, reason):
        """Reverse what the shares posted: a positive charge line per wallet
        share (recognised as negative revenue), a credit note per invoiced
        share, reconciled with the invoice; shares on a draft bill leave it.

        A share whose invoice was cancelled or credited in full since is owed
        by nobody: it gets no credit note.

        :raises UserError: a share's invoice is back in draft (nothing done)
        """
        on_bill = self.filtered("bill_id")
        drafts = on_bill.filtered(lambda s: s.bill_id.state == "draft")
        invoiced = (on_bill - drafts).filtered(
            lambda s: not s.refund_move_id and s.bill_id.move_id.state != "cancel"
        )
        unposted = invoiced.filtered(lambda s: s.bill_id.move_id.state != "posted")
        if unposted:
            raise UserError(
                self.env._(
                    "The invoice of bill %s is in draft: post or cancel it, then "
                    "cancel the apportionment run.",
                    unposted[0].bill_id.name,
                )
            )
        invoiced = invoiced.filtered(
            lambda s: s.bill_id.move_id.payment_state != "reversed"
        )
        wallet = self.filtered("ledger_line_id")
        vals_list = []
        for share in wallet:
            vals = share.ledger_line_id._prepare_reversal(reason)
            vals.update(
                line_type="charge",
                product_id=share.ledger_line_id.product_id.id,
                idempotency_key=f"apportion_reversal:{share.id}",
            )
            vals_list.append(vals)
        posted = self.env["prepaid.ledger.line"]._post(vals_list)
        by_key = {line.idempotency_key: line for line in posted}
        for share in wallet:
            share.reversal_line_id = by_key.get(f"apportion_reversal:{share.id}")
        self.env["prepaid.billing.engine"]._after_balance_change(posted.account_id)
        if drafts:
            drafts.bill_id._drop_lines(share_ids=drafts.ids)
        if invoiced:
            notes = self.env["account.move"].create(
                [
                    share.bill_id._credit_note_vals(
                        share.run_id.apportionment_id.product_id, share.amount, reason
                    )
                    for share in invoiced
                ]
            )
            notes.action_post()
            for share, note in zip(invoiced, notes, strict=True):
                share.refund_move_id = note

    @api.ondelete(at_uninstall=False)
    def _unlink_except_posted(self):
        if self.filtered(lambda s: s.run_id.state != "draft"):
            raise UserError(self.env._("Shares of a posted run are kept."))
