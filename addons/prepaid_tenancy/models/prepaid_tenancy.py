import base64

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError

BILLING_USER = "prepaid_billing.group_billing_user"
STATES = [
    ("draft", "Draft"),
    ("active", "Active"),
    ("ending", "Moving Out"),
    ("ended", "Ended"),
]


class PrepaidTenancy(models.Model):
    """One tenant in one or more rooms, from move-in to the final settlement:
    the account it opened, its readings at both ends, its deposit."""

    _name = "prepaid.tenancy"
    _description = "Tenancy"
    _inherit = ["mail.thread", "portal.mixin"]
    _order = "date_start desc, id desc"
    _check_company_auto = True

    name = fields.Char(
        required=True, readonly=True, copy=False, default=lambda self: self.env._("New")
    )
    partner_id = fields.Many2one(
        "res.partner", string="Tenant", required=True, tracking=True, index=True
    )
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company, index=True
    )
    currency_id = fields.Many2one(related="company_id.currency_id")
    room_ids = fields.Many2many(
        "prepaid.room",
        "prepaid_tenancy_room_rel",
        "tenancy_id",
        "room_id",
        string="Rooms",
        required=True,
        check_company=True,
    )
    room_names = fields.Char(compute="_compute_room_names", string="Room")
    state = fields.Selection(
        STATES, default="draft", required=True, readonly=True, tracking=True, index=True
    )
    mode = fields.Selection(
        [("prepaid", "Prepaid"), ("postpaid", "Postpaid")],
        string="Billing Mode",
        default="prepaid",
        required=True,
    )
    tariff_id = fields.Many2one(
        "prepaid.tariff",
        string="Electricity Tariff",
        domain="[('utility', '=', 'electricity'), ('company_id', '=', company_id)]",
        check_company=True,
    )
    water_tariff_id = fields.Many2one(
        "prepaid.tariff",
        domain="[('utility', '=', 'water'), ('company_id', '=', company_id)]",
        check_company=True,
    )
    charge_item_ids = fields.Many2many(
        "prepaid.charge.item",
        string="Charge Items",
        domain="[('target_type', '=', 'account'), ('company_id', '=', company_id)]",
        check_company=True,
        help="Charges of this tenancy (property fee, rent...): its account is "
        "added to them at move-in, prorated from the local day of the opening "
        "reading to the local day of the final one.",
    )
    deposit_amount = fields.Monetary(
        string="Agreed Deposit", help="Taken at move-in (received or invoiced)."
    )
    deposit_held = fields.Monetary(
        compute="_compute_deposit_held",
        help="Balance of the tenant deposits account for this tenancy.",
    )
    account_id = fields.Many2one(
        "prepaid.account", readonly=True, copy=False, check_company=True
    )
    balance = fields.Monetary(related="account_id.balance", string="Wallet Balance")
    date_start = fields.Datetime(
        string="Moved In", readonly=True, copy=False, help="The opening reading."
    )
    date_end = fields.Datetime(
        string="Moved Out", readonly=True, copy=False, help="The final reading."
    )
    reading_ids = fields.One2many("prepaid.tenancy.reading", "tenancy_id", "Readings")
    opening_reading_ids = fields.One2many(
        "prepaid.tenancy.reading",
        "tenancy_id",
        domain=[("kind", "=", "opening")],
        string="Opening Readings",
    )
    final_reading_ids = fields.One2many(
        "prepaid.tenancy.reading",
        "tenancy_id",
        domain=[("kind", "=", "final"), ("cancelled", "=", False)],
        string="Final Readings",
    )
    previous_tenancy_id = fields.Many2one(
        "prepaid.tenancy",
        readonly=True,
        copy=False,
        help="Transfer: the tenancy that ended at this one's opening reading.",
    )
    move_ids = fields.One2many("account.move", "prepaid_tenancy_id", "Entries")
    move_line_ids = fields.One2many(
        "account.move.line",
        "prepaid_tenancy_id",
        "Entry Lines",
        help="Its lines in entries shared with other tenancies (the deposits "
        "of a batch of move-ins).",
    )
    # The settlement, written when it is made (and cleared by a reversal).
    settled_at = fields.Datetime(readonly=True, copy=False)
    settle_count = fields.Integer(readonly=True, copy=False)
    settle_wallet = fields.Monetary(string="Wallet at Settlement", readonly=True)
    settle_deposit = fields.Monetary(string="Deposit Returned", readonly=True)
    settle_unpaid = fields.Monetary(string="Unpaid Invoices", readonly=True)
    settle_refund = fields.Monetary(string="Refunded", readonly=True)
    settle_owed = fields.Monetary(string="Owed by the Tenant", readonly=True)
    settle_line_ids = fields.Many2many(
        "prepaid.ledger.line",
        "prepaid_tenancy_settle_line_rel",
        string="Settlement Wallet Lines",
        readonly=True,
        copy=False,
    )
    settle_invoice_ids = fields.Many2many(
        "account.move",
        "prepaid_tenancy_settle_invoice_rel",
        string="Invoices Settled",
        readonly=True,
        copy=False,
    )
    owed_move_id = fields.Many2one("account.move", string="Invoice of the Amount Owed")

    _sql_constraints = [
        (
            "deposit_not_negative",
            "CHECK (deposit_amount >= 0)",
            "The deposit cannot be negative.",
        )
    ]

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if vals.get("name", self.env._("New")) == self.env._("New"):
                vals["name"] = self.env["ir.sequence"].next_by_code(
                    "prepaid.tenancy"
                ) or self.env._("New")
        return super().create(vals_list)

    @api.depends("room_ids")
    def _compute_room_names(self):
        for tenancy in self:
            tenancy.room_names = ", ".join(tenancy.room_ids.mapped("display_name"))

    @api.depends("state", "move_ids.state", "move_line_ids.parent_state")
    def _compute_deposit_held(self):
        held = {}
        accounts = self.company_id.prepaid_deposit_account_id
        if self.ids and accounts:
            self.env["account.move.line"].flush_model()
            self.env.cr.execute(
                """SELECT COALESCE(l.prepaid_tenancy_id, m.prepaid_tenancy_id),
                          SUM(l.credit - l.debit)
                     FROM account_move_line l
                     JOIN account_move m ON m.id = l.move_id
                    WHERE COALESCE(l.prepaid_tenancy_id, m.prepaid_tenancy_id)
                          = ANY(%s)
                      AND l.account_id = ANY(%s) AND l.parent_state = 'posted'
                    GROUP BY 1""",
                [self.ids, accounts.ids],
            )
            held = dict(self.env.cr.fetchall())
        for tenancy in self:
            tenancy.deposit_held = float(held.get(tenancy.id) or 0.0)

    def _compute_access_url(self):  # pylint: disable=missing-return
        super()._compute_access_url()
        for tenancy in self:
            tenancy.access_url = f"/my/tenancies/{tenancy.id}"

    @api.constrains("room_ids", "state")
    def _check_one_active_per_room(self):
        active = self.filtered(lambda t: t.state == "active")
        if not active:
            return
        self.flush_model(["state", "room_ids"])
        # one statement for a whole batch of move-ins
        self.env.cr.execute(
            """SELECT r.tenancy_id, array_agg(o.tenancy_id ORDER BY o.tenancy_id)
                 FROM prepaid_tenancy_room_rel r
                 JOIN prepaid_tenancy_room_rel o
                   ON o.room_id = r.room_id AND o.tenancy_id != r.tenancy_id
                 JOIN prepaid_tenancy t ON t.id = o.tenancy_id
                WHERE r.tenancy_id = ANY(%s) AND t.state = 'active'
                GROUP BY r.tenancy_id ORDER BY r.tenancy_id LIMIT 1""",
            [active.ids],
        )
        row = self.env.cr.fetchone()
        if row:
            tenancy, clash = self.browse(row[0]), self.browse(row[1][0])
            raise ValidationError(
                self.env._(
                    "Room %(rooms)s already has an active tenancy (%(other)s, "
                    "%(tenant)s): move that tenant out first.",
                    rooms=", ".join((clash.room_ids & tenancy.room_ids).mapped("name")),
                    other=clash.name,
                    tenant=clash.partner_id.name,
                )
            )

    @api.ondelete(at_uninstall=False)
    def _unlink_except_draft(self):
        if self.filtered(lambda t: t.state != "draft"):
            raise UserError(self.env._("Only draft tenancies can be deleted."))

    def _check_billing_user(self):
        if not self.env.su and not self.env.user.has_group(BILLING_USER):
            raise UserError(
                self.env._("Only billing users can move tenants in and out.")
            )
        self.check_access("write")

    # ------------------------------------------------------------------
    # Actions (the wizards collect the input, the methods below do the work)
    # ------------------------------------------------------------------
    @api.model
    def action_new_move_in(self, rooms=None):
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Move In"),
            "res_model": "prepaid.tenancy.move.in.wizard",
            "view_mode": "form",
            "target": "new",
            "context": {"default_room_ids": rooms.ids if rooms else []},
        }

    def action_move_in(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Move In"),
            "res_model": "prepaid.tenancy.move.in.wizard",
            "view_mode": "form",
            "target": "new",
            "context": {"default_tenancy_id": self.id},
        }

    def action_move_out(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Move Out"),
            "res_model": "prepaid.tenancy.move.out.wizard",
            "view_mode": "form",
            "target": "new",
            "context": {"default_tenancy_id": self.id},
        }

    def action_transfer(self):
        action = self.action_move_out()
        action["name"] = self.env._("Transfer to the Next Tenant")
        action["context"]["default_transfer"] = True
        return action

    def action_view_account(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": "prepaid.account",
            "res_id": self.account_id.id,
            "view_mode": "form",
        }

    def action_view_entries(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "account.action_move_journal_line"
        )
        action["domain"] = [
            "|",
            ("prepaid_tenancy_id", "=", self.id),
            ("line_ids.prepaid_tenancy_id", "=", self.id),
        ]
        action["context"] = {"create": False}
        return action

    # ------------------------------------------------------------------
    # Readings
    # ------------------------------------------------------------------
    def _lock_meters(self, meters):
        """Hold the meters' rows until commit: a poll storing a reading meanwhile
        waits, so its reading lands after this one, on the next side."""
        self.env.flush_all()
        self.env.cr.execute(
            "SELECT id FROM prepaid_meter WHERE id = ANY(%s) ORDER BY id "
            "FOR NO KEY UPDATE",
            [meters.ids],
        )

    def _take_readings(self, specs, kind):
        """Read every meter of ``specs`` (dicts: ``meter``, ``manual``,
        ``value``, ``read_at``, ``photo`` (base64), ``photo_name``) live or
        store its manual reading; returns the reading lines (not yet linked:
        a transfer gives the same readings to two tenancies)."""
        Reading = self.env["prepaid.reading"].sudo()
        now = fields.Datetime.now()
        lines = []
        for spec in specs:
            meter = spec["meter"]
            last = Reading.search([("meter_id", "=", meter.id)], limit=1)
            if spec.get("manual"):
                reading = self._manual_reading(meter, spec, last, now)
                photo = self.env["ir.attachment"].create(
                    {
                        "name": spec.get("photo_name")
                        or self.env._("Photo of meter %s", meter.name),
                        "datas": spec["photo"],
                        "res_model": "prepaid.reading",
                        "res_id": reading.id,
                    }
                )
            else:
                reading = self._live_reading(meter, last, kind)
                photo = self.env["ir.attachment"]
            lines.append(
                {
                    "kind": kind,
                    "meter_id": meter.id,
                    "reading_id": reading.id,
                    "manual": bool(spec.get("manual")),
                    "photo_id": photo.id or False,
                }
            )
        return lines

    def _manual_reading(self, meter, spec, last, now):
        water = meter.meter_type == "water"
        field = "volume_m3" if water else "energy_total_kwh"
        if not spec.get("photo"):
            raise UserError(
                self.env._(
                    "Meter %s: a reading entered by hand needs a photo of the "
                    "meter's display.",
                    meter.name,
                )
            )
        try:
            base64.b64decode(spec["photo"], validate=True)
        except ValueError as error:
            raise UserError(
                self.env._("Meter %s: the photo is not a valid file.", meter.name)
            ) from error
        read_at = spec.get("read_at") or now
        value = spec.get("value")
        if value is None or value < 0:
            raise UserError(
                self.env._("Meter %s: enter the value read on the meter.", meter.name)
            )
        if read_at > now:
            raise UserError(
                self.env._("Meter %s: a reading cannot be in the future.", meter.name)
            )
        if last and read_at < last.read_at:
            raise UserError(
                self.env._(
                    "Meter %(meter)s was read at %(last)s, after %(when)s: a move "
                    "cannot be dated before the meter's last reading.",
                    meter=meter.name,
                    last=fields.Datetime.to_string(last.read_at),
                    when=fields.Datetime.to_string(read_at),
                )
            )
        if last and value < last[field]:
            raise UserError(
                self.env._(
                    "Meter %(meter)s: %(value)s is below its previous reading "
                    "%(previous)s. Check the value, or record a meter replacement.",
                    meter=meter.name,
                    value=value,
                    previous=last[field],
                )
            )
        return (
            self.env["prepaid.reading"]
            .sudo()
            .create(
                {
                    "meter_id": meter.id,
                    "source": "manual",
                    "read_at": read_at,
                    field: value,
                }
            )
        )

    def _live_reading(self, meter, last, kind):
        """Read the meter now through the command path (read-back stored as a
        reading, in this transaction)."""
        label = (
            self.env._("Opening reading of %s", self.display_name)
            if kind == "opening"
            else self.env._("Final reading of %s", self.display_name)
        )
        command = (
            self.env["prepaid.meter.command"]
            .sudo()
            .create(
                {
                    "meter_id": meter.id,
                    "command_type": "read_now",
                    "max_attempts": 1,
                    "reason": label,
                }
            )
        )
        try:
            command.action_send_now()
        except UserError as error:
            raise UserError(
                self.env._(
                    "Meter %(meter)s cannot be read now (%(error)s). Nothing was "
                    "changed: try again in a moment, or enter the reading by hand "
                    "with a photo.",
                    meter=meter.name,
                    error=error.args[0],
                )
            ) from error
        if command.state != "done":
            raise UserError(
                self.env._(
                    "Meter %(meter)s did not answer (%(error)s). Nothing was "
                    "changed: enter the reading by hand with a photo.",
                    meter=meter.name,
                    error=command.last_error,
                )
            )
        return (
            self.env["prepaid.reading"]
            .sudo()
            .search(
                [("meter_id", "=", meter.id), ("id", ">", last.id or 0)],
                order="id desc",
                limit=1,
            )
        )

    # ------------------------------------------------------------------
    # Move-in
    # ------------------------------------------------------------------
    def _meters(self):
        return self.room_ids.meter_ids.filtered("active")

    def _move_in(self, specs, deposit_mode=None, deposit_journal=None, readings=None):
        """Move the tenant in: opening readings (``specs``, or the reading
        lines ``readings`` of a transfer), the account opened from the local
        day of the opening reading, charge items attached and charged, the
        deposit received or invoiced into the tenant deposits account."""
        self.ensure_one()
        self._check_move_in()
        self._record_readings(self._meters(), specs, readings, "opening")
        self._moved_in(deposit_mode, deposit_journal)
        return True

    def _check_move_in(self):
        """Refuse a move-in of a tenancy of ``self`` that is not possible."""
        self._check_billing_user()
        for tenancy in self:
            if tenancy.state != "draft":
                raise UserError(
                    self.env._("Tenancy %s has already moved in.", tenancy.name)
                )
            meters = tenancy._meters()
            if not meters:
                raise UserError(
                    self.env._(
                        "Rooms %s have no meter: add the meters first.",
                        tenancy.room_names,
                    )
                )
            taken = meters.filtered("billing_account_id")
            if taken:
                raise UserError(
                    self.env._(
                        "Meter(s) %(meters)s still belong to account %(account)s: "
                        "move the previous tenant out first.",
                        meters=", ".join(taken.mapped("name")),
                        account=", ".join(taken.billing_account_id.mapped("name")),
                    )
                )

    def _moved_in(self, deposit_mode=None, deposit_journal=None):
        """The move-in of every tenancy of ``self`` once its opening readings
        are stored (one of them: the wizard; many: a batch), set-based: the
        accounts made and opened together, the charges of their items made in
        one pass, the deposits received in one entry (a line per tenancy) or
        invoiced, one note each."""
        if not self:
            return
        opened_at = {
            tenancy.id: max(tenancy.opening_reading_ids.mapped("read_at"))
            for tenancy in self
        }
        accounts = (
            self.env["prepaid.account"]
            .sudo()
            .create(
                [
                    {
                        "partner_id": tenancy.partner_id.id,
                        "company_id": tenancy.company_id.id,
                        "mode": tenancy.mode,
                        "tariff_id": tenancy.tariff_id.id,
                        "water_tariff_id": tenancy.water_tariff_id.id,
                        "meter_link_ids": [fields.Command.set(tenancy._meters().ids)],
                    }
                    for tenancy in self
                ]
            )
        )
        accounts._open()
        self.write({"state": "active"})
        for tenancy, account in zip(self, accounts, strict=True):
            # Charges count from the local day of the opening reading.
            account._write_guarded({"opened_at": opened_at[tenancy.id]})
            tenancy.write(
                {"account_id": account.id, "date_start": opened_at[tenancy.id]}
            )
        for partner, tenancies in self.grouped("partner_id").items():
            tenancies.room_ids.sudo().write({"tenant_id": partner.id})
        items = self.env["prepaid.charge.item"]
        for tenancy in self.filtered("charge_item_ids"):
            tenancy.charge_item_ids.sudo().write(
                {"account_ids": [fields.Command.link(tenancy.account_id.id)]}
            )
            items |= tenancy.charge_item_ids
        if items:
            self.env["prepaid.charge.line"].sudo()._generate(items.sudo())
        with_deposit = self.filtered(
            lambda t: t.currency_id.compare_amounts(t.deposit_amount, 0) > 0
        )
        if with_deposit:
            with_deposit._take_deposit(deposit_mode or "receive", deposit_journal)
        self._message_log_batch(
            bodies={
                tenancy.id: self.env._(
                    "Moved in; account %s opened.", tenancy.account_id.name
                )
                for tenancy in self
            }
        )

    def _take_deposit(self, mode, journal):
        """The deposits of ``self``, into the tenant deposits account:
        received now (Dr cash/bank: one entry for them all, a deposit line
        per tenancy with its tenant, linked to it) or invoiced (Dr
        receivable, an invoice each)."""
        if not self:
            return self.env["account.move"]
        if mode == "invoice":
            moves = self.env["account.move"]
            for tenancy in self:
                moves |= tenancy._invoice_deposit()
            return moves
        if not journal:
            raise UserError(
                self.env._("Choose the cash or bank journal the deposit is paid in.")
            )
        moves = self.env["account.move"]
        for company, tenancies in self.grouped("company_id").items():
            tenancies.account_id[:1]._check_money_journal(journal)
            moves |= tenancies._receive_deposits(company, journal)
        return moves

    def _receive_deposits(self, company, journal):
        deposit = company._prepaid_deposit_account()
        one = len(self) == 1
        labels = {
            tenancy.id: self.env._("Deposit of tenancy %s", tenancy.name)
            for tenancy in self
        }
        total = sum(self.mapped("deposit_amount"))
        cash_label = (
            labels[self.id]
            if one
            else self.env._("Deposits of %s tenancies", len(self))
        )
        lines = [
            fields.Command.create(
                {
                    "account_id": journal.default_account_id.id,
                    "debit": total,
                    "partner_id": self.partner_id.id if one else False,
                    "name": cash_label,
                }
            )
        ]
        lines += [
            fields.Command.create(
                {
                    "account_id": deposit.id,
                    "credit": tenancy.deposit_amount,
                    "partner_id": tenancy.partner_id.id,
                    "name": labels[tenancy.id],
                    "prepaid_tenancy_id": tenancy.id,
                }
            )
            for tenancy in self
        ]
        move = (
            self.env["account.move"]
            .sudo()
            .create(
                {
                    "move_type": "entry",
                    "journal_id": journal.id,
                    "company_id": company.id,
                    "prepaid_tenancy_id": self.id if one else False,
                    "date": fields.Date.context_today(self),
                    "ref": cash_label,
                    "line_ids": lines,
                }
            )
        )
        move.action_post()
        return move

    def _invoice_deposit(self):
        self.ensure_one()
        return self._post_invoice(
            self.env._("Deposit of tenancy %s", self.name),
            self.company_id._prepaid_deposit_account(),
            self.deposit_amount,
        )

    def _post_invoice(self, label, account, amount):
        """A posted invoice of the tenancy to its tenant: one line of
        ``amount`` on ``account``, no tax."""
        self.ensure_one()
        move = (
            self.env["account.move"]
            .sudo()
            .create(
                {
                    "move_type": "out_invoice",
                    "partner_id": self.partner_id.id,
                    "company_id": self.company_id.id,
                    "prepaid_tenancy_id": self.id,
                    "invoice_date": fields.Date.context_today(self),
                    "invoice_line_ids": [
                        fields.Command.create(
                            {
                                "name": label,
                                "account_id": account.id,
                                "quantity": 1,
                                "price_unit": amount,
                                "tax_ids": [fields.Command.clear()],
                            }
                        )
                    ],
                }
            )
        )
        move.action_post()
        return move

    # ------------------------------------------------------------------
    # Move-out
    def _record_readings(self, meters, specs, readings, kind):
        """Lock ``meters``, take their ``kind`` readings (``opening`` or
        ``final``; read now unless ``readings`` are given) and store them on
        the tenancy: every meter must have one."""
        self._lock_meters(meters)
        if readings is None:
            readings = self._take_readings(specs, kind)
        read = {line["meter_id"] for line in readings}
        missing = meters.filtered(lambda m: m.id not in read)
        if missing:
            names = ", ".join(missing.mapped("name"))
            if kind == "opening":
                message = self.env._("Meter(s) %s have no opening reading.", names)
            else:
                message = self.env._("Meter(s) %s have no final reading.", names)
            raise UserError(message)
        self._store_reading_lines({self.id: readings})

    def _store_reading_lines(self, lines_by_tenancy):
        """Link the reading lines (``{tenancy id: [vals]}``) in one create."""
        self.env["prepaid.tenancy.reading"].create(
            [
                dict(line, tenancy_id=tenancy_id)
                for tenancy_id, lines in lines_by_tenancy.items()
                for line in lines
            ]
        )
        self.invalidate_recordset(
            ["reading_ids", "opening_reading_ids", "final_reading_ids"]
        )

    # ------------------------------------------------------------------
    def _move_out(self, specs, readings=None):
        """Final readings, the last usage billed (deducted, or the final
        bill and invoice of a postpaid account), charges prorated to the local
        day of the final reading, the meters released and the room vacant.
        The settlement (``_settle``) follows; until then the move-out can be
        cancelled."""
        self.ensure_one()
        self._check_move_out()
        self._record_readings(self.account_id.meter_ids, specs, readings, "final")
        self._moved_out()
        return True

    def _check_move_out(self):
        self._check_billing_user()
        if self.filtered(lambda t: t.state != "active"):
            raise UserError(self.env._("Only an active tenancy can move out."))

    def _moved_out(self):
        """The move-out of every tenancy of ``self`` once its final readings
        are stored (one: the wizard; many: a batch), set-based: one billing
        pass for all their meters, the accounts closed together, the final
        bills of those that need one, one note each."""
        if not self:
            return
        ended_at = {
            tenancy.id: max(tenancy.final_reading_ids.mapped("read_at"))
            for tenancy in self
        }
        if any(ended_at[t.id] < t.date_start for t in self):
            raise UserError(self.env._("The final readings are before the move-in."))
        accounts = self.account_id
        accounts._close_books(
            read_meters=False,
            closed_at={t.account_id.id: ended_at[t.id] for t in self},
        )
        for tenancy in self._needing_final_bill():
            tenancy._final_bill(ended_at[tenancy.id])
        accounts._release_meters()
        self.write({"state": "ending"})
        for tenancy in self:
            tenancy.date_end = ended_at[tenancy.id]
        self._vacate_rooms()
        body = self.env._("Moved out; waiting for the settlement.")
        self._message_log_batch(bodies=dict.fromkeys(self.ids, body))

    def _needing_final_bill(self):
        """The tenancies whose account gets a final bill: postpaid, or with
        charges paid by invoice not billed yet (one query for all)."""
        postpaid = self.filtered(lambda t: t.account_id.mode == "postpaid")
        others = self - postpaid
        if not others:
            return postpaid
        billable = {
            account.id
            for [account] in self.env["prepaid.charge.line"]
            .sudo()
            ._read_group(
                [
                    ("account_id", "in", others.account_id.ids),
                    ("collection", "=", "invoice"),
                    ("bill_id", "=", False),
                ],
                ["account_id"],
            )
        }
        return postpaid | others.filtered(lambda t: t.account_id.id in billable)

    def _vacate_rooms(self):
        vacant = self.env["prepaid.room"]
        for tenancy in self:
            for room in tenancy.room_ids:
                if room.tenant_id == tenancy.partner_id and not (
                    room.tenancy_ids.filtered(lambda t: t.state == "active")
                ):
                    vacant |= room
        vacant.sudo().write({"tenant_id": False})

    def _local_day(self, stamp):
        tz = self.room_ids.site_id[:1].tz or "UTC"
        return fields.Datetime.context_timestamp(self.with_context(tz=tz), stamp).date()

    def _final_bill(self, ended_at):
        """The last bill of a postpaid account (or of the charges a prepaid
        one pays by invoice), from the day after its last bill to the local
        day of the final reading, confirmed into an invoice."""
        account = self.account_id
        Bill = self.env["prepaid.bill"].sudo()
        if not self._needing_final_bill():
            return Bill
        last = Bill.search(
            [("account_id", "=", account.id), ("state", "!=", "cancel")],
            order="date_to desc",
            limit=1,
        )
        start = self._local_day(self.date_start)
        if last:
            start = max(start, fields.Date.add(last.date_to, days=1))
        end = self._local_day(ended_at)
        if start > end:
            return Bill
        run = (
            self.env["prepaid.bill.run"]
            .sudo()
            .with_context(prepaid_bill_account_ids=account.ids)
            .create(
                {
                    "company_id": self.company_id.id,
                    "date_from": start,
                    "date_to": end,
                }
            )
        )
        run.action_compute()
        run.action_confirm()
        return run.bill_ids

    def _cancel_move_out(self):
        """Undo a move-out not settled yet: the account is open again with its
        meters, the credits of the unused days are charged again (they are
        credited anew at the next closing), the final readings are marked
        cancelled. A final bill already invoiced stays: its usage was real."""
        self.ensure_one()
        self._check_billing_user()
        if self.state != "ending":
            raise UserError(
                self.env._(
                    "Only a move-out waiting for its settlement can be cancelled; "
                    "a settled one is reversed first."
                )
            )
        account = self.account_id
        meters = self.final_reading_ids.meter_id
        taken = meters.filtered("billing_account_id")
        if taken:
            raise UserError(
                self.env._(
                    "Meter(s) %(meters)s already belong to account %(account)s: "
                    "the move-out cannot be cancelled.",
                    meters=", ".join(taken.mapped("name")),
                    account=", ".join(taken.billing_account_id.mapped("name")),
                )
            )
        clash = self.search(
            [("state", "=", "active"), ("room_ids", "in", self.room_ids.ids)],
            limit=1,
        )
        if clash:
            raise UserError(
                self.env._(
                    "Tenancy %s is active in the room now: the move-out cannot be "
                    "cancelled.",
                    clash.name,
                )
            )
        self._recharge_credits()
        account._write_guarded({"state": "open", "closed_at": False})
        meters.sudo().write({"billing_account_id": account.id})
        self.final_reading_ids.write({"cancelled": True})
        self.write({"state": "active", "date_end": False})
        self.room_ids.sudo().write({"tenant_id": self.partner_id.id})
        account.message_post(body=self.env._("Closing cancelled; account open again."))
        self.message_post(body=self.env._("Move-out cancelled."))
        return True

    def _recharge_credits(self):
        """Charge again the unused days credited at the cancelled closing;
        the charges are left uncredited (NULL, as the charge job leaves a
        charge never credited), so the next closing credits them anew."""
        self.env.flush_all()
        self.env.cr.execute(
            "SELECT id FROM prepaid_charge_line "
            "WHERE account_id = %s AND credit_amount IS NOT NULL",
            [self.account_id.id],
        )
        lines = (
            self.env["prepaid.charge.line"]
            .sudo()
            .browse([row[0] for row in self.env.cr.fetchall()])
        )
        vals_list = [
            {
                "account_id": line.account_id.id,
                # A charge again (recognised as revenue like the charge it
                # restores), pointing at the credit it undoes.
                "line_type": "charge",
                "amount": -line.credit_ledger_line_id.amount,
                "name": self.env._(
                    "%s: move-out cancelled", line.credit_ledger_line_id.name
                ),
                "product_id": line.product_id.id,
                "reversed_line_id": line.credit_ledger_line_id.id,
                "idempotency_key": f"tenancy_uncredit:{line.credit_ledger_line_id.id}",
            }
            for line in lines
            if line.credit_ledger_line_id
        ]
        self.env["prepaid.ledger.line"].sudo()._post(vals_list)
        # A float written False is 0.0: NULL ("never credited") is SQL's.
        self.env.cr.execute(
            "UPDATE prepaid_charge_line SET credit_amount = NULL, "
            "credit_ledger_line_id = NULL WHERE id = ANY(%s)",
            [lines.ids],
        )
        lines.invalidate_recordset(["credit_amount", "credit_ledger_line_id"])

    # ------------------------------------------------------------------
    # Transfer
    # ------------------------------------------------------------------
    def _transfer(self, specs, next_vals, deposit_mode=None, deposit_journal=None):
        """End this tenancy and start the next one at the same readings, in
        one transaction: the meters are locked first, so a reading a poll
        stores meanwhile lands after them, on the next tenant's side."""
        self.ensure_one()
        self._check_billing_user()
        if self.state != "active":
            raise UserError(self.env._("Only an active tenancy can be transferred."))
        if not next_vals.get("partner_id"):
            raise UserError(self.env._("Choose the next tenant."))
        self._lock_meters(self.account_id.meter_ids)
        readings = self._take_readings(specs, "final")
        self._move_out(None, readings=readings)
        following = self.create(
            {
                "room_ids": [fields.Command.set(self.room_ids.ids)],
                "company_id": self.company_id.id,
                "previous_tenancy_id": self.id,
                **next_vals,
            }
        )
        following._move_in(
            None,
            deposit_mode=deposit_mode,
            deposit_journal=deposit_journal,
            readings=[dict(line, kind="opening") for line in readings],
        )
        return following
