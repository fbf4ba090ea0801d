from odoo import fields, models

KINDS = [
    ("usage", "Usage"),
    ("charge", "Charge Item"),
    ("apportionment", "Common Area"),
]


class PrepaidBillLine(models.Model):
    """One priced line of a bill: a meter's usage in a band or tier, a charge
    item occurrence or a common-area share."""

    _name = "prepaid.bill.line"
    _description = "Bill Line"
    _order = "bill_id, sequence, id"

    bill_id = fields.Many2one(
        "prepaid.bill", required=True, ondelete="cascade", index=True
    )
    sequence = fields.Integer(default=10)
    kind = fields.Selection(KINDS, required=True, default="usage")
    product_id = fields.Many2one("product.product", required=True)
    name = fields.Char(string="Description", required=True)
    meter_id = fields.Many2one("prepaid.meter")
    quantity = fields.Float(digits=(16, 4))
    unit = fields.Char()
    unit_price = fields.Float(digits=(16, 4))
    currency_id = fields.Many2one(related="bill_id.currency_id")
    amount = fields.Monetary()
    tariff_version_id = fields.Many2one("prepaid.tariff.version")
    # Indexed: removing old readings keeps those a bill names.
    first_reading_id = fields.Many2one("prepaid.reading", index="btree_not_null")
    last_reading_id = fields.Many2one("prepaid.reading", index="btree_not_null")
    reading_count = fields.Integer(string="Readings")
    charge_line_id = fields.Many2one("prepaid.charge.line", ondelete="set null")
    share_id = fields.Many2one("prepaid.apportionment.share", ondelete="set null")
