from odoo import api, fields, models
from odoo.exceptions import UserError

# Columns of prepaid_reading_charge, in COPY order.
CHARGE_COLUMNS = (
    "id",
    "ledger_line_id",
    "meter_id",
    "read_at",
    "quantity",
    "amount",
    "detail",
)


class PrepaidReadingCharge(models.Model):
    """What one reading cost: the evidence behind a consumption wallet line.

    One row per billed reading, and its id *is* the reading's id: the primary
    key is what makes "each reading is billed at most once" a database rule,
    whatever worker or retry gets there. A consumption wallet line sums the
    charges of one meter, tariff version and local month of a billing batch.

    The table is append-only and written only by the billing engine, with
    ``COPY`` (see ``prepaid.billing.engine._write_charges``): it is the
    largest table of the database (one row per reading), so it carries the
    primary key and one index, and no foreign-key triggers. Its references
    are kept by the engine and guarded where rows could go away: a charged
    reading cannot be deleted, and a meter with wallet lines neither.
    """

    _name = "prepaid.reading.charge"
    _description = "Reading Charge"
    _auto = False
    _log_access = False
    _order = "id"
    _rec_name = "read_at"

    ledger_line_id = fields.Many2one(
        "prepaid.ledger.line", string="Wallet Line", readonly=True
    )
    meter_id = fields.Many2one("prepaid.meter", readonly=True)
    read_at = fields.Datetime(string="Read At", readonly=True)
    quantity = fields.Float(readonly=True, digits=(16, 4))
    amount = fields.Monetary(
        readonly=True,
        currency_field="currency_id",
        help="What this reading cost, rounded to the cent (sub-cent remainders "
        "are carried to the next reading of the meter).",
    )
    detail = fields.Text(
        string="Pricing",
        readonly=True,
        help="Quantity x unit price per band or tier.",
    )
    reading_id = fields.Many2one(
        "prepaid.reading", compute="_compute_reading_id", string="Reading"
    )
    account_id = fields.Many2one(related="ledger_line_id.account_id")
    company_id = fields.Many2one(related="ledger_line_id.company_id")
    currency_id = fields.Many2one(related="ledger_line_id.currency_id")
    tariff_version_id = fields.Many2one(related="ledger_line_id.tariff_version_id")

    def init(self):
        cr = self.env.cr
        cr.execute(
            """
            CREATE TABLE IF NOT EXISTS prepaid_reading_charge (
                id int4 PRIMARY KEY,
                ledger_line_id int4,
                meter_id int4 NOT NULL,
                read_at timestamp NOT NULL,
                quantity numeric NOT NULL,
                amount numeric NOT NULL,
                detail text
            )
            """
        )
        cr.execute(
            """
            COMMENT ON COLUMN prepaid_reading_charge.id IS
                'The id of the billed prepaid_reading: one charge per reading'
            """
        )
        cr.execute(
            """
            CREATE INDEX IF NOT EXISTS prepaid_reading_charge_ledger_line_idx
                ON prepaid_reading_charge (ledger_line_id)
            """
        )

    def _compute_reading_id(self):
        for charge in self:
            charge.reading_id = charge.id

    # Charges are written by the billing engine only, and never change.
    @api.model_create_multi
    def create(self, vals_list):  # pylint: disable=method-required-super
        raise UserError(
            self.env._("Reading charges are written by billing; not by hand.")
        )

    def write(self, vals):  # pylint: disable=method-required-super
        raise UserError(self.env._("Reading charges cannot be changed."))

    @api.ondelete(at_uninstall=False)
    def _unlink_never(self):
        raise UserError(self.env._("Reading charges cannot be deleted."))
