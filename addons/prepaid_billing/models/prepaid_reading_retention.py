"""What billing needs before old raw readings go (see prepaid_metering's
``prepaid_reading_retention``): the daily use and the charges are made, and
the charge rows keep the registers an auditor rebuilds a balance from."""

from odoo import api, models
from odoo.tools import SQL

from .prepaid_meter import billed_watermark_sql


class PrepaidReading(models.Model):
    _inherit = "prepaid.reading"

    @api.model
    def _retention_done_sql(self, meter):
        """Readings below the later of the billing and daily watermarks are
        priced (a prepaid meter) or added to their days (the others): the
        daily aggregates and the charges no longer need them. A meter neither
        job reached keeps every reading."""
        # the daily watermark (DAILY_WATERMARK) of the row ``meter``
        return SQL(
            "GREATEST(COALESCE(%s, 0), COALESCE(%s, 0))",
            SQL.identifier(meter, "daily_reading_id"),
            billed_watermark_sql(SQL.identifier(meter, "id")),
        )

    @api.model
    def _retention_released_references(self):
        """A consumption wallet line names the last reading it charged: its
        charges keep that (their ids are the readings' ids) with the
        registers, so the line lets the reading go (the reference becomes
        empty, see _retention_before_delete). Without a foreign key it is
        not asked anyway; named here in case a database still has one."""
        return super()._retention_released_references() | {
            ("prepaid_ledger_line", "reading_id")
        }

    @api.model
    def _retention_before_delete(self, reading_ids):
        """Copy the time and the registers of the charged readings into
        their charge rows (one statement): with the quantity, the amount and
        the wallet line's tariff version, each charge can be priced again
        without the reading."""
        result = super()._retention_before_delete(reading_ids)
        self.env.cr.execute(
            SQL(
                """
            UPDATE prepaid_reading_charge c
               SET kept_read_at = r.read_at,
                   kept_energy_total_kwh = r.energy_total_kwh,
                   kept_energy_sharp_kwh = r.energy_sharp_kwh,
                   kept_energy_peak_kwh = r.energy_peak_kwh,
                   kept_energy_flat_kwh = r.energy_flat_kwh,
                   kept_energy_valley_kwh = r.energy_valley_kwh,
                   kept_volume_m3 = r.volume_m3,
                   kept_anomaly = r.anomaly
              FROM prepaid_reading r
             WHERE r.id = c.id AND c.id = ANY(%s)
            """,
                reading_ids,
            )
        )
        # The wallet line that names the reading (no foreign key does it:
        # see prepaid.ledger.line) lets it go; its charges keep what it said.
        self.env.cr.execute(
            """UPDATE prepaid_ledger_line SET reading_id = NULL
                WHERE line_type = 'consumption' AND reading_id = ANY(%s)""",
            [reading_ids],
        )
        self.env["prepaid.reading.charge"].invalidate_model()
        self.env["prepaid.ledger.line"].invalidate_model(["reading_id"])
        return result
