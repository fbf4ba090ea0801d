from odoo import api, fields, models
from odoo.exceptions import ValidationError

from ..tools import protection as core

WEEKDAYS = [
    ("0", "Monday"),
    ("1", "Tuesday"),
    ("2", "Wednesday"),
    ("3", "Thursday"),
    ("4", "Friday"),
    ("5", "Saturday"),
    ("6", "Sunday"),
]


class PrepaidProtectionPeriod(models.Model):
    """Times when the supply is never cut automatically (night, weekend,
    holidays): a cut-off due then waits until the period ends."""

    _name = "prepaid.protection.period"
    _description = "Cut-off Protection Period"
    _order = "kind, date, hour_from"

    name = fields.Char(required=True, translate=True)
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company
    )
    kind = fields.Selection(
        [
            ("night", "Every night"),
            ("weekday", "Every week on"),
            ("holiday", "Holiday"),
        ],
        required=True,
        default="night",
    )
    hour_from = fields.Float(string="From", default=22.0)
    hour_to = fields.Float(string="To", default=7.0)
    weekday = fields.Selection(WEEKDAYS)
    date = fields.Date()

    @api.constrains("kind", "hour_from", "hour_to", "weekday", "date")
    def _check_period(self):
        for period in self:
            if period.kind == "night" and not (
                0 <= period.hour_from < 24
                and 0 <= period.hour_to <= 24
                and period.hour_from != period.hour_to
            ):
                raise ValidationError(
                    self.env._(
                        "%s: night hours go from 0 to 24 and differ.", period.name
                    )
                )
            if period.kind == "weekday" and not period.weekday:
                raise ValidationError(self.env._("%s: choose the day.", period.name))
            if period.kind == "holiday" and not period.date:
                raise ValidationError(self.env._("%s: give the date.", period.name))

    @api.model
    def _rules(self, company):
        """The company's periods as the plain-Python rules."""
        periods = self.search([("company_id", "=", company.id)])
        nights = periods.filtered(lambda p: p.kind == "night")[:1]
        return core.ProtectionRules(
            night_start=nights.hour_from if nights else None,
            night_end=nights.hour_to if nights else None,
            weekend_days=frozenset(
                int(p.weekday) for p in periods if p.kind == "weekday"
            ),
            holidays=frozenset(p.date for p in periods if p.kind == "holiday"),
        )
