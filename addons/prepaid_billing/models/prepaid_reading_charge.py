from odoo import api, fields, models
from odoo.exceptions import UserError

from ..tools import money
from ..tools.tariff import SINGLE_PRICE


class PrepaidReadingCharge(models.Model):
    """What one reading cost: the evidence behind a consumption wallet line.

    One row per billed reading, and its id *is* the reading's id: the primary
    key is what makes "each reading is billed at most once" a database rule,
    whatever worker or retry gets there. A consumption wallet line sums the
    charges of one meter, tariff version and local month of a billing batch.

    The table is append-only and written only by the billing engine, with
    ``COPY`` (see ``prepaid.billing.deduction._bill_batch``): it is the
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

    ledger_line_id = fields.Many2one(
        "prepaid.ledger.line", string="Wallet Line", readonly=True
    )
    meter_id = fields.Many2one("prepaid.meter", readonly=True)
    quantity = fields.Float(readonly=True, digits=(16, 4))
    amount = fields.Monetary(
        readonly=True,
        currency_field="currency_id",
        help="What this reading cost, rounded to the cent (sub-cent remainders "
        "are carried to the next reading of the meter).",
    )
    detail = fields.Text(
        readonly=True,
        help="Pricing lines when the reading was not simply priced at the "
        "version's single price.",
    )
    pricing_text = fields.Text(
        string="Pricing",
        compute="_compute_pricing_text",
        help="Quantity x unit price per band or tier.",
    )
    reading_id = fields.Many2one("prepaid.reading", compute="_compute_reading_id")
    read_at = fields.Datetime(compute="_compute_reading_id")
    # What the raw reading said, copied when it is removed after the
    # retention period (prepaid.reading._retention_before_delete); empty
    # while the reading is there.
    kept_read_at = fields.Datetime(string="Read At (Kept)", readonly=True)
    kept_energy_total_kwh = fields.Float(
        string="Energy Register (kWh)", readonly=True, digits=(16, 2)
    )
    kept_energy_sharp_kwh = fields.Float(
        string="Sharp Register (kWh)", readonly=True, digits=(16, 2)
    )
    kept_energy_peak_kwh = fields.Float(
        string="Peak Register (kWh)", readonly=True, digits=(16, 2)
    )
    kept_energy_flat_kwh = fields.Float(
        string="Flat Register (kWh)", readonly=True, digits=(16, 2)
    )
    kept_energy_valley_kwh = fields.Float(
        string="Valley Register (kWh)", readonly=True, digits=(16, 2)
    )
    kept_volume_m3 = fields.Float(
        string="Volume Register (m³)", readonly=True, digits=(16, 3)
    )
    kept_anomaly = fields.Char(string="Anomaly (Kept)", readonly=True)
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
                quantity numeric NOT NULL,
                amount numeric NOT NULL,
                detail text
            )
            """
        )
        # What the raw reading said, copied before the reading is removed.
        cr.execute(
            """
            ALTER TABLE prepaid_reading_charge
                ADD COLUMN IF NOT EXISTS kept_read_at timestamp,
                ADD COLUMN IF NOT EXISTS kept_energy_total_kwh numeric,
                ADD COLUMN IF NOT EXISTS kept_energy_sharp_kwh numeric,
                ADD COLUMN IF NOT EXISTS kept_energy_peak_kwh numeric,
                ADD COLUMN IF NOT EXISTS kept_energy_flat_kwh numeric,
                ADD COLUMN IF NOT EXISTS kept_energy_valley_kwh numeric,
                ADD COLUMN IF NOT EXISTS kept_volume_m3 numeric,
                ADD COLUMN IF NOT EXISTS kept_anomaly varchar
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

    def _compute_display_name(self):
        for charge in self:
            charge.display_name = self.env._(
                "%(meter)s, reading %(reading)s",
                meter=charge.meter_id.display_name,
                reading=charge.id,
            )

    def _compute_reading_id(self):
        # The raw reading may be gone (retention): then the charge is all.
        readings = self.env["prepaid.reading"].browse(self.ids).exists()
        readings.fetch(["read_at"])
        for charge in self:
            reading = readings.browse(charge.id if charge.id in readings._ids else [])
            charge.reading_id = reading
            charge.read_at = reading.read_at or charge.kept_read_at

    @api.depends("detail", "quantity", "tariff_version_id")
    def _compute_pricing_text(self):
        for charge in self:
            if charge.detail or not charge.tariff_version_id:
                charge.pricing_text = charge.detail
                continue
            # priced at the version's single price (see ChargeBatch.add_single)
            quantity = money.to_decimal(charge.quantity).normalize()
            price = money.to_decimal(charge.tariff_version_id.price)
            charge.pricing_text = (
                f"{SINGLE_PRICE}: {quantity} x {price} = {quantity * price}"
            )

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
