from odoo import fields, models


class PrepaidAccountOpenWizard(models.TransientModel):
    """Open prepared (draft) accounts in one click, singly or in batch."""

    _name = "prepaid.account.open.wizard"
    _description = "Open Prepaid Accounts"

    account_ids = fields.Many2many(
        "prepaid.account",
        required=True,
        domain=[("state", "=", "draft")],
        default=lambda self: (
            self.env["prepaid.account"]
            .browse(self.env.context.get("active_ids", []))
            .filtered(lambda a: a.state == "draft")
        ),
    )
    tariff_id = fields.Many2one(
        "prepaid.tariff",
        string="Set Electricity Tariff",
        domain=[("utility", "=", "electricity")],
    )
    water_tariff_id = fields.Many2one(
        "prepaid.tariff", string="Set Water Tariff", domain=[("utility", "=", "water")]
    )
    journal_id = fields.Many2one(
        "account.journal",
        string="Opening Balance Journal",
        domain=[("type", "in", ("cash", "bank", "general"))],
        help="Where the opening balances come from (cash received, or a "
        "transfer account from the previous system).",
    )
    push_parameters = fields.Boolean(
        string="Push Meter Parameters",
        default=True,
        help="Write unit price and alarm amounts into meters that keep the "
        "balance themselves.",
    )

    def action_open(self):
        self.ensure_one()
        accounts = self.account_ids
        accounts.check_access("write")
        vals = {}
        if self.tariff_id:
            vals["tariff_id"] = self.tariff_id.id
        if self.water_tariff_id:
            vals["water_tariff_id"] = self.water_tariff_id.id
        if vals:
            accounts.write(vals)
        accounts.with_context(prepaid_opening_journal_id=self.journal_id.id)._open(
            push_parameters=self.push_parameters
        )
        return {"type": "ir.actions.act_window_close"}
