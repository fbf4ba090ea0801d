from odoo import api, fields, models


class PrepaidApportionmentLine(models.Model):
    """A member of an apportionment: a room, or a sub-meter and its room."""

    _name = "prepaid.apportionment.line"
    _description = "Apportionment Member"
    _order = "apportionment_id, id"

    apportionment_id = fields.Many2one(
        "prepaid.apportionment", required=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one(related="apportionment_id.company_id", store=True)
    meter_id = fields.Many2one(
        "prepaid.meter",
        string="Sub-meter",
        domain="[('company_id', '=', company_id), ('is_master', '=', False)]",
    )
    room_id = fields.Many2one(
        "prepaid.room",
        compute="_compute_room_id",
        store=True,
        readonly=False,
        precompute=True,
        required=True,
    )
    area_m2 = fields.Float(related="room_id.area_m2")
    ratio = fields.Float(
        string="Ratio (%)", digits=(16, 4), help="Fixed-ratio method: percent paid."
    )
    account_id = fields.Many2one(
        "prepaid.account",
        compute="_compute_account_id",
        help="Who pays: the sub-meter's account, else the open account of the "
        "room's meters.",
    )

    _sql_constraints = [
        ("ratio_positive", "CHECK(ratio >= 0)", "A ratio cannot be negative.")
    ]

    @api.depends("meter_id")
    def _compute_room_id(self):
        for line in self:
            if line.meter_id.room_id:
                line.room_id = line.meter_id.room_id

    @api.depends("meter_id", "room_id")
    def _compute_account_id(self):
        accounts = self._payers()
        for line in self:
            line.account_id = accounts.get(line.id, False)

    def _payers(self):
        """``{line id: account}`` of who pays each member (one search)."""
        Account = self.env["prepaid.account"]
        rooms = self.room_id
        meters = self.env["prepaid.meter"].search(
            [
                ("room_id", "in", rooms.ids),
                ("billing_account_id.state", "=", "open"),
            ],
            order="id",
        )
        by_room = {}
        for meter in meters:
            by_room.setdefault(meter.room_id.id, meter.billing_account_id)
        result = {}
        for line in self:
            account = line.meter_id.billing_account_id
            if not account or account.state != "open":
                account = by_room.get(line.room_id.id, Account)
            if account:
                result[line.id] = account
        return result
