from odoo import api, fields, models
from odoo.exceptions import ValidationError

from ..tools import apportion, money

METHODS = [
    ("ratio", "Fixed ratio"),
    ("area", "Room area"),
    ("consumption", "Sub-meters' consumption"),
]


class PrepaidApportionment(models.Model):
    """A common area's master meter shared over rooms or sub-meters."""

    _name = "prepaid.apportionment"
    _description = "Common-Area Apportionment"
    _inherit = ["mail.thread"]
    _order = "name"
    _check_company_auto = True

    name = fields.Char(required=True, translate=True, tracking=True)
    active = fields.Boolean(default=True)
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company
    )
    currency_id = fields.Many2one(related="company_id.currency_id")
    master_meter_id = fields.Many2one(
        "prepaid.meter",
        required=True,
        domain="[('is_master', '=', True), ('company_id', '=', company_id)]",
        check_company=True,
        tracking=True,
    )
    tariff_id = fields.Many2one(
        "prepaid.tariff",
        required=True,
        check_company=True,
        tracking=True,
        help="Prices the master meter's consumption (time-of-use bands when the "
        "master has band registers).",
    )
    product_id = fields.Many2one(
        "product.product",
        string="Service",
        required=True,
        domain=[("type", "=", "service")],
        check_company=True,
        help="Income account and taxes of the shares.",
    )
    method = fields.Selection(METHODS, required=True, default="area", tracking=True)
    loss_only = fields.Boolean(
        string="Share Only the Losses",
        tracking=True,
        help="Share the master's consumption minus what the sub-meters measured "
        "themselves (each member pays its own meter separately).",
    )
    collection = fields.Selection(
        [
            ("wallet", "Deduct from the prepaid wallet"),
            ("invoice", "Put on the tenant's invoice"),
        ],
        required=True,
        default="wallet",
        help="Postpaid accounts always get their share on the invoice.",
    )
    line_ids = fields.One2many(
        "prepaid.apportionment.line", "apportionment_id", string="Members", copy=True
    )
    run_ids = fields.One2many("prepaid.apportionment.run", "apportionment_id")
    ratio_total = fields.Float(compute="_compute_ratio_total", digits=(16, 4))

    @api.depends("line_ids.ratio")
    def _compute_ratio_total(self):
        for record in self:
            record.ratio_total = sum(record.line_ids.mapped("ratio"))

    @api.onchange("master_meter_id")
    def _onchange_master_meter_id(self):
        meter = self.master_meter_id
        tariff = meter.tariff_id or meter.billing_account_id._tariff_for(meter)
        if tariff and not self.tariff_id:
            self.tariff_id = tariff
        if tariff.product_id and not self.product_id:
            self.product_id = tariff.product_id

    @api.onchange("tariff_id")
    def _onchange_tariff_id(self):
        if self.tariff_id.product_id and not self.product_id:
            self.product_id = self.tariff_id.product_id

    @api.constrains("method", "loss_only", "line_ids")
    def _check_members(self):
        for record in self:
            lines = record.line_ids
            if record.method == "ratio" and lines:
                try:
                    apportion.check_ratios(
                        [money.to_decimal(r) for r in lines.mapped("ratio")]
                    )
                except apportion.ApportionError as err:
                    raise ValidationError(
                        self.env._(
                            "Apportionment %(name)s: %(error)s",
                            name=record.name,
                            error=str(err),
                        )
                    ) from err
            needs_meter = record.method == "consumption" or record.loss_only
            if needs_meter and lines.filtered(lambda line: not line.meter_id):
                raise ValidationError(
                    self.env._(
                        "Apportionment %s: sharing by consumption or sharing the "
                        "losses needs a sub-meter on every member.",
                        record.name,
                    )
                )
            if record.master_meter_id in lines.meter_id:
                raise ValidationError(
                    self.env._(
                        "Apportionment %s: the master meter cannot be its own "
                        "sub-meter.",
                        record.name,
                    )
                )

    def action_new_run(self):
        """Open a new draft run (preview) for this apportionment."""
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": "prepaid.apportionment.run",
            "view_mode": "form",
            "context": {"default_apportionment_id": self.id},
        }

    def action_view_runs(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "prepaid_billing.prepaid_apportionment_run_action"
        )
        action["domain"] = [("apportionment_id", "=", self.id)]
        action["context"] = {"default_apportionment_id": self.id}
        return action
