from dateutil.relativedelta import relativedelta

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError

from ..tools import apportion, money


class PrepaidApportionmentRun(models.Model):
    """One period of an apportionment: computed as a preview (draft), posted
    once, cancelled by reversing what it posted."""

    _name = "prepaid.apportionment.run"
    _description = "Apportionment Run"
    _inherit = ["mail.thread"]
    _order = "period_start desc, id desc"
    _check_company_auto = True

    name = fields.Char(compute="_compute_name", store=True)
    # The run's company is the apportionment's: no company check on the field
    # that decides it (a new run has no company yet, the check hid every
    # apportionment); the record rules keep other companies' out of reach.
    apportionment_id = fields.Many2one(
        "prepaid.apportionment",
        required=True,
        ondelete="restrict",
        index=True,
    )
    company_id = fields.Many2one(related="apportionment_id.company_id", store=True)
    currency_id = fields.Many2one(related="company_id.currency_id")
    period_start = fields.Date(
        required=True, default=lambda self: self._default_period()[0]
    )
    period_end = fields.Date(
        required=True, default=lambda self: self._default_period()[1]
    )
    state = fields.Selection(
        [("draft", "Preview"), ("posted", "Posted"), ("cancel", "Cancelled")],
        default="draft",
        required=True,
        readonly=True,
        tracking=True,
        copy=False,
    )
    method = fields.Selection(related="apportionment_id.method")
    master_quantity = fields.Float(
        string="Master Consumption", readonly=True, digits=(16, 3)
    )
    subs_quantity = fields.Float(
        string="Sub-meters' Consumption", readonly=True, digits=(16, 3)
    )
    shared_quantity = fields.Float(string="Shared", readonly=True, digits=(16, 3))
    unit = fields.Char(readonly=True)
    amount = fields.Monetary(readonly=True)
    pricing_text = fields.Text(string="Pricing", readonly=True)
    reading_count = fields.Integer(string="Master Readings", readonly=True)
    share_ids = fields.One2many(
        "prepaid.apportionment.share", "run_id", string="Shares", readonly=True
    )
    posted_at = fields.Datetime(readonly=True, copy=False)

    def init(self):
        # A period is posted once per apportionment, whatever worker gets there.
        self.env.cr.execute(
            """
            CREATE UNIQUE INDEX IF NOT EXISTS prepaid_apportionment_run_posted_uniq
                ON prepaid_apportionment_run (apportionment_id, period_start)
             WHERE state = 'posted'
            """
        )

    def _default_period(self):
        """Last month, the one an accountant apportions at the start of this one."""
        first = fields.Date.context_today(self).replace(day=1)
        return first - relativedelta(months=1), first - relativedelta(days=1)

    @api.depends("apportionment_id.name", "period_start", "period_end")
    def _compute_name(self):
        for run in self:
            if not (run.apportionment_id and run.period_start and run.period_end):
                run.name = False
                continue
            run.name = (
                f"{run.apportionment_id.name} {run.period_start} - {run.period_end}"
            )

    @api.onchange("period_start")
    def _onchange_period_start(self):
        # Picking a month's first day proposes the whole month.
        if self.period_start and self.period_start.day == 1:
            self.period_end = self.period_start + relativedelta(months=1, days=-1)

    @api.constrains("period_start", "period_end")
    def _check_period(self):
        for run in self:
            if run.period_end < run.period_start:
                raise ValidationError(self.env._("The period ends before it starts."))

    @api.ondelete(at_uninstall=False)
    def _unlink_except_posted(self):
        if self.filtered(lambda run: run.state != "draft"):
            raise UserError(
                self.env._("Posted or cancelled runs are kept; cancel a posted one.")
            )

    # ------------------------------------------------------------------
    # Preview
    # ------------------------------------------------------------------
    def action_compute(self):
        """(Re)compute the preview: master usage, amount and each share."""
        for run in self:
            if run.state != "draft":
                raise UserError(self.env._("Only a preview can be recomputed."))
            run._compute_shares()
        return True

    def _compute_shares(self):
        self.ensure_one()
        record = self.apportionment_id
        lines = record.line_ids
        if not lines:
            raise UserError(self.env._("Apportionment %s has no member.", record.name))
        master = record.master_meter_id
        meters = master | lines.meter_id
        tariffs = {meter.id: record.tariff_id for meter in meters}
        usage = self.env["prepaid.bill.usage"]._meter_usage(
            meters, self.period_start, self.period_end, tariffs
        )
        master_usage = usage[master.id]
        payers = lines._payers()
        members = [
            apportion.Member(
                ratio=money.to_decimal(line.ratio),
                area_m2=money.to_decimal(line.area_m2),
                consumption=money.to_decimal(
                    usage[line.meter_id.id].quantity if line.meter_id else 0.0
                ),
            )
            for line in lines
        ]
        currency = self.currency_id
        rounding = money.to_decimal(currency.rounding)
        try:
            shared = apportion.shared_quantity(
                master_usage.quantity, members, record.loss_only
            )
            amount = self._shared_amount(master_usage, shared, rounding)
            parts = apportion.split(amount, record.method, members, rounding)
        except apportion.ApportionError as err:
            raise UserError(
                self.env._(
                    "Apportionment %(name)s: %(error)s", name=record.name, error=err
                )
            ) from err
        missing = lines.filtered(lambda line: line.id not in payers)
        if missing:
            raise UserError(
                self.env._(
                    "Nobody pays for %s: give the room an open account.",
                    ", ".join(missing.room_id.mapped("name")),
                )
            )
        weights = apportion.weights(record.method, members)
        subs = sum((member.consumption for member in members), money.ZERO)
        self.share_ids.unlink()
        self.write(
            {
                "master_quantity": master_usage.quantity,
                "subs_quantity": float(subs),
                "shared_quantity": float(shared),
                "unit": master_usage.unit,
                "amount": float(amount),
                "reading_count": master_usage.reading_count,
                "pricing_text": "\n".join(
                    f"{line.label}: {line.quantity} x {line.unit_price} = {line.amount}"
                    for line in master_usage.lines
                ),
                "share_ids": [
                    fields.Command.create(
                        {
                            "line_id": line.id,
                            "account_id": payers[line.id].id,
                            "room_id": line.room_id.id,
                            "meter_id": line.meter_id.id,
                            "weight": float(weight),
                            "amount": float(part),
                        }
                    )
                    for line, weight, part in zip(lines, weights, parts, strict=True)
                ],
            }
        )

    @staticmethod
    def _shared_amount(master_usage, shared, rounding):
        """The master's priced usage scaled to the shared quantity (all of it,
        or the losses' part)."""
        total = sum((line.amount for line in master_usage.lines), money.ZERO)
        quantity = money.to_decimal(master_usage.quantity)
        if not quantity or shared == quantity:
            return total
        return money.round_money(total * shared / quantity, rounding)

    # ------------------------------------------------------------------
    # Posting and cancelling
    # ------------------------------------------------------------------
    def action_post(self):
        for run in self:
            if run.state != "draft":
                raise UserError(self.env._("Only a preview can be posted."))
            if not run.share_ids:
                run._compute_shares()
            already = self.search(
                [
                    ("apportionment_id", "=", run.apportionment_id.id),
                    ("state", "=", "posted"),
                    ("period_start", "<=", run.period_end),
                    ("period_end", ">=", run.period_start),
                ],
                limit=1,
            )
            if already:
                raise UserError(
                    self.env._(
                        "%(name)s: the period overlaps the posted run %(run)s.",
                        name=run.apportionment_id.name,
                        run=already.name,
                    )
                )
            run.write({"state": "posted", "posted_at": fields.Datetime.now()})
            run.share_ids._post_wallet()
        return True

    def action_cancel(self):
        """Cancel: reverse the wallet deductions, take the shares off draft
        bills and credit those already invoiced (a credit note each,
        reconciled with the invoice); cancelling such a bill afterwards
        reverses its invoice and these credit notes together."""
        for run in self:
            if run.state == "cancel":
                continue
            if run.state == "posted":
                run.share_ids._reverse(
                    self.env._("apportionment %s cancelled", run.name)
                )
            run.state = "cancel"
        return True
