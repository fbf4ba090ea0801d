from odoo import models


class PrepaidBillingEngine(models.AbstractModel):
    """The billing engine the module calls: turns readings into wallet lines
    (``prepaid.billing.deduction``), then alarms, cut-off and restore
    (``prepaid.supply.control``), minimum monthly charges, revenue
    recognition and reconciliation (``prepaid.revenue.recognition``).

    Each job lives in its own model; this one puts them together under the
    name the crons, the other models and the benchmarks use.
    """

    _name = "prepaid.billing.engine"
    _inherit = ["prepaid.billing.deduction", "prepaid.revenue.recognition"]
    _description = "Prepaid Billing Engine"
