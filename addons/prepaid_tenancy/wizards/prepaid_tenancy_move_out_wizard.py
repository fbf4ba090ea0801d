from odoo import api, fields, models

from .prepaid_tenancy_move_in_wizard import DEPOSIT_MODES


class PrepaidTenancyMoveOutWizard(models.TransientModel):
    """Collects a move-out (or a transfer to the next tenant, or the
    settlement of a tenancy that moved out); the tenancy's methods do it."""

    _name = "prepaid.tenancy.move.out.wizard"
    _description = "Move a Tenant Out"

    tenancy_id = fields.Many2one("prepaid.tenancy", required=True)
    company_id = fields.Many2one(related="tenancy_id.company_id")
    currency_id = fields.Many2one(related="tenancy_id.currency_id")
    step = fields.Selection(
        [("move_out", "Move Out"), ("settle", "Settle")],
        default="move_out",
        required=True,
    )
    transfer = fields.Boolean(
        string="Next Tenant Moves In Now",
        help="End this tenancy and start the next one at the same readings.",
    )
    settle_now = fields.Boolean(
        default=True,
        help="Refund or invoice the balance at once; otherwise the tenancy waits "
        "in Moving Out, and the move-out can still be cancelled.",
    )
    journal_id = fields.Many2one(
        "account.journal",
        string="Refund Journal",
        domain="[('type', 'in', ('cash', 'bank')), ('company_id', '=', company_id)]",
    )
    line_ids = fields.One2many(
        "prepaid.tenancy.reading.line", "move_out_id", string="Final Readings"
    )
    deposit_held = fields.Monetary(related="tenancy_id.deposit_held")
    deposit_retained = fields.Monetary(
        string="Retain from the Deposit",
        help="Damages, cleaning...: kept from the deposit and posted to the "
        "retained deposits income account; the rest goes back to the tenant.",
    )
    retention_reason = fields.Char(string="Reason for Retaining")
    preview_wallet = fields.Monetary(related="tenancy_id.preview_wallet")
    preview_deposit = fields.Monetary(related="tenancy_id.preview_deposit")
    preview_unpaid = fields.Monetary(related="tenancy_id.preview_unpaid")
    preview_debt = fields.Monetary(related="tenancy_id.preview_debt")
    preview_net = fields.Monetary(
        compute="_compute_preview_net", string="To Refund (or Owed if Negative)"
    )
    # The next tenant of a transfer.
    next_partner_id = fields.Many2one("res.partner", string="Next Tenant")
    next_mode = fields.Selection(
        [("prepaid", "Prepaid"), ("postpaid", "Postpaid")],
        string="Next Billing Mode",
        default="prepaid",
    )
    next_tariff_id = fields.Many2one(
        "prepaid.tariff",
        string="Next Electricity Tariff",
        domain="[('utility', '=', 'electricity'), ('company_id', '=', company_id)]",
    )
    next_water_tariff_id = fields.Many2one(
        "prepaid.tariff",
        domain="[('utility', '=', 'water'), ('company_id', '=', company_id)]",
    )
    next_charge_item_ids = fields.Many2many(
        "prepaid.charge.item",
        string="Next Charge Items",
        domain="[('target_type', '=', 'account'), ('company_id', '=', company_id)]",
    )
    next_deposit_amount = fields.Monetary(string="Next Deposit")
    next_deposit_mode = fields.Selection(
        DEPOSIT_MODES, string="Next Deposit Paid", default="receive"
    )
    next_journal_id = fields.Many2one(
        "account.journal",
        string="Next Deposit Journal",
        domain="[('type', 'in', ('cash', 'bank')), ('company_id', '=', company_id)]",
    )

    @api.depends("tenancy_id", "deposit_retained")
    def _compute_preview_net(self):
        for wizard in self:
            tenancy = wizard.tenancy_id
            wizard.preview_net = (
                tenancy.preview_net + tenancy.preview_retained - wizard.deposit_retained
            )

    @api.model
    def default_get(self, fields_list):
        values = super().default_get(fields_list)
        tenancy = self.env["prepaid.tenancy"].browse(values.get("tenancy_id"))
        if tenancy:
            values.setdefault("deposit_retained", tenancy.deposit_retained)
            values.setdefault("retention_reason", tenancy.retention_reason)
        if tenancy and values.get("step", "move_out") == "move_out":
            values["line_ids"] = [
                fields.Command.create({"meter_id": meter.id})
                for meter in tenancy.account_id.meter_ids
            ]
            values.setdefault("next_tariff_id", tenancy.tariff_id.id)
            values.setdefault("next_water_tariff_id", tenancy.water_tariff_id.id)
        return values

    def _specs(self):
        meters = self.tenancy_id.account_id.meter_ids
        lines = self.line_ids
        missing = meters - lines.meter_id
        if missing:
            lines |= self.env["prepaid.tenancy.reading.line"].create(
                [{"meter_id": m.id, "move_out_id": self.id} for m in missing]
            )
        return lines.filtered(lambda line: line.meter_id in meters)._specs()

    def _write_retention(self):
        """The deposit retained, on the tenancy (checked there against what is
        held), before the settlement reads it."""
        tenancy = self.tenancy_id
        if tenancy.currency_id.compare_amounts(
            self.deposit_retained, tenancy.deposit_retained
        ) or (self.retention_reason or "") != (tenancy.retention_reason or ""):
            tenancy.write(
                {
                    "deposit_retained": self.deposit_retained,
                    "retention_reason": self.retention_reason,
                }
            )

    def action_confirm(self):
        self.ensure_one()
        tenancy = self.tenancy_id
        result = {
            "type": "ir.actions.act_window",
            "res_model": "prepaid.tenancy",
            "res_id": tenancy.id,
            "view_mode": "form",
        }
        if self.step == "settle":
            self._write_retention()
            tenancy._settle(self.journal_id or None)
            return result
        if self.transfer:
            following = tenancy._transfer(
                self._specs(),
                {
                    "partner_id": self.next_partner_id.id,
                    "mode": self.next_mode,
                    "tariff_id": self.next_tariff_id.id,
                    "water_tariff_id": self.next_water_tariff_id.id,
                    "charge_item_ids": [
                        fields.Command.set(self.next_charge_item_ids.ids)
                    ],
                    "deposit_amount": self.next_deposit_amount,
                },
                deposit_mode=self.next_deposit_mode,
                deposit_journal=self.next_journal_id,
            )
            result["res_id"] = following.id
        else:
            tenancy._move_out(self._specs())
        if self.settle_now:
            self._write_retention()
            tenancy._settle(self.journal_id or None)
        return result
