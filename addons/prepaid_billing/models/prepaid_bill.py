from collections import defaultdict

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError

from ..tools import xlsx


class PrepaidBill(models.Model):
    """A postpaid bill: one account, one period, lines priced from readings,
    charge items and common-area shares; confirmed into a customer invoice."""

    _name = "prepaid.bill"
    _description = "Postpaid Bill"
    _order = "date_to desc, id desc"
    _check_company_auto = True

    name = fields.Char(required=True, readonly=True)
    run_id = fields.Many2one(
        "prepaid.bill.run", string="Bill Run", ondelete="cascade", index=True
    )
    account_id = fields.Many2one(
        "prepaid.account", required=True, ondelete="restrict", index=True
    )
    partner_id = fields.Many2one("res.partner", string="Tenant", required=True)
    company_id = fields.Many2one("res.company", required=True)
    currency_id = fields.Many2one("res.currency", required=True)
    date_from = fields.Date(required=True)
    date_to = fields.Date(required=True)
    state = fields.Selection(
        [("draft", "Draft"), ("confirmed", "Invoiced"), ("cancel", "Cancelled")],
        default="draft",
        required=True,
        readonly=True,
        index=True,
    )
    line_ids = fields.One2many("prepaid.bill.line", "bill_id", string="Lines")
    amount_total = fields.Monetary(string="Amount", readonly=True)
    move_id = fields.Many2one("account.move", string="Invoice", readonly=True)
    payment_state = fields.Selection(related="move_id.payment_state")
    invoice_total = fields.Monetary(
        related="move_id.amount_total", string="Invoice Total"
    )
    amount_residual = fields.Monetary(
        related="move_id.amount_residual", string="Amount Due"
    )
    invoice_date_due = fields.Date(related="move_id.invoice_date_due")

    def init(self):
        # Overlap checks and arrears go through the account's bills.
        self.env.cr.execute(
            """
            CREATE INDEX IF NOT EXISTS prepaid_bill_account_period_idx
                ON prepaid_bill (account_id, date_from, date_to)
             WHERE state != 'cancel'
            """
        )

    @api.ondelete(at_uninstall=False)
    def _unlink_except_invoiced(self):
        if self.filtered(lambda bill: bill.state == "confirmed" or bill.move_id):
            raise UserError(
                self.env._(
                    "Invoiced bills are kept, cancelled or not: cancel an "
                    "invoiced bill to credit its invoice."
                )
            )

    def action_view_readings(self):
        """The readings the bill's usage lines were priced from."""
        self.ensure_one()
        lines = self.line_ids.filtered("first_reading_id")
        ids = []
        for line in lines:
            ids += (
                self.env["prepaid.reading"]
                .search(
                    [
                        ("meter_id", "=", line.meter_id.id),
                        ("read_at", ">=", line.first_reading_id.read_at),
                        ("read_at", "<=", line.last_reading_id.read_at),
                    ]
                )
                .ids
            )
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Readings of %s", self.name),
            "res_model": "prepaid.reading",
            "view_mode": "list,form",
            "domain": [("id", "in", ids)],
        }

    def action_view_invoice(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": "account.move",
            "view_mode": "form",
            "res_id": self.move_id.id,
        }

    def action_confirm(self):
        """Confirm draft bills: one posted customer invoice each."""
        drafts = self.filtered(lambda bill: bill.state == "draft")
        if drafts != self:
            raise UserError(self.env._("Only draft bills can be confirmed."))
        self._confirm_batch()
        return True

    def action_cancel(self):
        """Cancel bills; their charges and common-area shares are freed for
        the next bill run (a share of a cancelled apportionment run is not
        billed again).

        An invoiced bill has its invoice reversed by a credit note reconciled
        with it, and the credit notes issued against it for the shares of
        cancelled apportionment runs are reversed too: nothing of the bill is
        owed any more and nothing is credited twice. An invoice already
        credited in full by hand is left as it is. Refused, with nothing
        done, while payments or other entries are reconciled with an invoice.
        """
        bills = self.filtered(lambda bill: bill.state != "cancel")
        invoiced = bills.filtered(lambda bill: bill.state == "confirmed")
        if (
            invoiced
            and not self.env.su
            and not self.env.user.has_group("prepaid_billing.group_billing_manager")
        ):
            raise AccessError(
                self.env._(
                    "Only billing managers may cancel an invoiced bill (it credits "
                    "the invoice): %s.",
                    ", ".join(invoiced.mapped("name")),
                )
            )
        to_reverse = bills._entries_to_reverse()
        bills.move_id.filtered(lambda move: move.state == "draft").button_cancel()
        if to_reverse:
            moves = self.env["account.move"].concat(*to_reverse)
            today = fields.Date.context_today(self)
            moves._reverse_moves(
                [
                    {
                        "ref": self.env._("Bill %s cancelled", bill.name),
                        "date": today,
                        "invoice_date": today,
                    }
                    for bill in to_reverse.values()
                ],
                cancel=True,
            )
        bills._release()
        bills.write({"state": "cancel"})
        return True

    def _entries_to_reverse(self):
        """``{entry: bill}``: what cancelling the bills reverses.

        A posted invoice reconciled with nothing but the credit notes issued
        for its shares (see ``prepaid.apportionment.share._reverse``) is
        reversed with them. An invoice credited in full by hand is not, nor
        are the share credit notes reconciled with it; the share credit
        notes left open are, as those of an invoice no longer posted.

        :raises UserError: payments or other entries are reconciled with an
            invoice (what to do with that money is the accountant's decision)
        """
        notes_of = defaultdict(lambda: self.env["account.move"])
        for share in self.env["prepaid.apportionment.share"].search(
            [("bill_id", "in", self.ids), ("refund_move_id.state", "=", "posted")]
        ):
            notes_of[share.bill_id] |= share.refund_move_id
        result = {}
        for bill in self:
            move, notes = bill.move_id, notes_of[bill]
            reverse = notes.filtered(
                lambda note: not note.currency_id.is_zero(note.amount_residual)
            )
            if move.state == "posted":
                receivable = move.line_ids.filtered(
                    lambda line: line.account_id.account_type == "asset_receivable"
                )
                others = (
                    receivable.matched_credit_ids.credit_move_id
                    | receivable.matched_debit_ids.debit_move_id
                ).move_id - (notes | move)
                if not others:
                    reverse = move | notes
                elif not move.currency_id.is_zero(move.amount_residual) or any(
                    other.reversed_entry_id != move for other in others
                ):
                    raise UserError(
                        self.env._(
                            "Bill %(bill)s cannot be cancelled: its invoice "
                            "%(invoice)s is reconciled with %(entries)s. "
                            "Unreconcile them (refund the tenant if need be), "
                            "then cancel the bill.",
                            bill=bill.name,
                            invoice=move.name,
                            entries=", ".join(others.mapped("name")),
                        )
                    )
            result.update(dict.fromkeys(reverse, bill))
        return result

    def _release(self):
        self.env["prepaid.charge.line"].search([("bill_id", "in", self.ids)]).write(
            {"bill_id": False}
        )
        self.env["prepaid.apportionment.share"].search(
            [("bill_id", "in", self.ids)]
        ).write({"bill_id": False, "refund_move_id": False})

    # ------------------------------------------------------------------
    # Export
    # ------------------------------------------------------------------
    def action_export_xlsx(self):
        bills = self or self.search([])
        states = dict(self._fields["state"]._description_selection(self.env))
        payments = dict(
            self.env["account.move"]
            ._fields["payment_state"]
            ._description_selection(self.env)
        )
        headers = [
            self.env._("Bill"),
            self.env._("Account"),
            self.env._("Tenant"),
            self.env._("From"),
            self.env._("To"),
            self.env._("Amount"),
            self.env._("State"),
            self.env._("Invoice"),
            self.env._("Invoice Total"),
            self.env._("Amount Due"),
            self.env._("Payment"),
        ]
        rows = [
            [
                bill.name,
                bill.account_id.name,
                bill.partner_id.name,
                bill.date_from,
                bill.date_to,
                bill.amount_total,
                states.get(bill.state, ""),
                bill.move_id.name or "",
                bill.invoice_total,
                bill.amount_residual,
                payments.get(bill.payment_state, ""),
            ]
            for bill in bills
        ]
        return self._xlsx_download(self.env._("Bills"), headers, rows)

    @api.model
    def _xlsx_download(self, title, headers, rows):
        """Store the rows as an XLSX attachment and download it."""
        attachment = self.env["ir.attachment"].create(
            {
                "name": f"{title} {fields.Date.context_today(self)}.xlsx",
                "raw": xlsx.workbook(title, headers, rows),
                "mimetype": xlsx.MIMETYPE,
            }
        )
        return {
            "type": "ir.actions.act_url",
            "url": f"/web/content/{attachment.id}?download=true",
            "target": "self",
        }

    # ------------------------------------------------------------------
    # Invoices
    # ------------------------------------------------------------------
    def _invoice_vals(self, invoice_date):
        """The customer invoice of this bill: one line per product."""
        self.ensure_one()
        by_product = defaultdict(list)
        for line in self.line_ids:
            by_product[line.product_id].append(line)
        period = self.env._(
            "%(from)s to %(to)s", **{"from": self.date_from, "to": self.date_to}
        )
        invoice_lines = []
        for product, lines in by_product.items():
            amount = self.currency_id.round(sum(line.amount for line in lines))
            details = "\n".join(
                line.name
                if line.kind != "usage"
                else f"{line.name}: {line.quantity:g} {line.unit or ''} x "
                f"{line.unit_price:g}"
                for line in lines
            )
            invoice_lines.append(
                fields.Command.create(
                    {
                        "product_id": product.id,
                        "name": f"{product.display_name} ({period})\n{details}",
                        "quantity": 1.0,
                        "price_unit": amount,
                    }
                )
            )
        return {
            "move_type": "out_invoice",
            "partner_id": self.partner_id.id,
            "company_id": self.company_id.id,
            "invoice_date": invoice_date,
            "invoice_origin": self.name,
            "ref": self.name,
            "invoice_line_ids": invoice_lines,
        }

    def _confirm_batch(self, batch_size=200):
        """Create and post the invoices ``batch_size`` at a time (one create
        and one post per batch)."""
        invoice_date = fields.Date.context_today(self)
        Move = self.env["account.move"].with_context(
            tracking_disable=True, mail_create_nolog=True, mail_notrack=True
        )
        for start in range(0, len(self), batch_size):
            bills = self[start : start + batch_size]
            bills.fetch(["partner_id", "company_id", "date_from", "date_to"])
            bills.line_ids.fetch(["product_id", "amount", "name", "kind"])
            negative = bills.filtered(
                lambda bill: bill.currency_id.compare_amounts(bill.amount_total, 0) < 0
            )
            if negative:
                raise UserError(
                    self.env._(
                        "Bill %s is negative: issue a credit note instead.",
                        negative[0].name,
                    )
                )
            to_invoice = bills.filtered("line_ids")
            moves = Move.create(
                [bill._invoice_vals(invoice_date) for bill in to_invoice]
            )
            moves.action_post()
            self.env.cr.execute(
                """UPDATE prepaid_bill b SET move_id = u.move_id, state = 'confirmed',
                          write_date = now() at time zone 'UTC', write_uid = %s
                     FROM unnest(%s::int4[], %s::int4[]) AS u(id, move_id)
                    WHERE b.id = u.id""",
                [self.env.uid, to_invoice.ids, moves.ids],
            )
            empty = bills - to_invoice
            if empty:
                empty.write({"state": "confirmed"})
            bills.invalidate_recordset(["move_id", "state"])

    def _credit_note_vals(self, product, amount, reason):
        """A credit note of ``amount`` for ``product`` against the bill's
        invoice (posting reconciles it with the invoice)."""
        self.ensure_one()
        return {
            "move_type": "out_refund",
            "partner_id": self.partner_id.id,
            "company_id": self.company_id.id,
            "invoice_date": fields.Date.context_today(self),
            "reversed_entry_id": self.move_id.id,
            "ref": reason,
            "invoice_line_ids": [
                fields.Command.create(
                    {
                        "product_id": product.id,
                        "name": reason,
                        "quantity": 1.0,
                        "price_unit": amount,
                    }
                )
            ],
        }

    def _drop_lines(self, share_ids=()):
        """Take shares off draft bills (their run was cancelled)."""
        lines = self.line_ids.filtered(lambda line: line.share_id.id in share_ids)
        lines.share_id.write({"bill_id": False})
        lines.unlink()
        for bill in self:
            bill.amount_total = sum(bill.line_ids.mapped("amount"))
