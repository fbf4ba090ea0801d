import logging
from typing import NamedTuple

from odoo import api, fields, models
from odoo.exceptions import ValidationError

from ..tools import money, proration

_logger = logging.getLogger(__name__)

RECURRENCES = [
    ("monthly", "Monthly"),
    ("quarterly", "Quarterly"),
    ("yearly", "Yearly"),
    ("once", "One-off"),
]
TARGETS = [
    ("room", "Rooms"),
    ("account", "Accounts"),
    ("building", "Buildings"),
    ("site", "Sites"),
]
COLLECTIONS = [
    ("wallet", "Deduct from the prepaid wallet"),
    ("invoice", "Put on the tenant's invoice"),
]


# The time zone whose calendar days count for an account (and room): the
# room's site, else the site of the account's meters, else of the rooms it was
# charged for (a closed account has released its meters), else the company's
# first site; UTC when the company has no site. ``{account}`` and ``{room}``
# are SQL expressions of the account and room ids (constants of this module).
LOCAL_TZ_SQL = """COALESCE(
    (SELECT s.tz FROM prepaid_room tr JOIN prepaid_site s ON s.id = tr.site_id
      WHERE tr.id = {room}),
    (SELECT s.tz FROM prepaid_meter tm JOIN prepaid_site s ON s.id = tm.site_id
      WHERE tm.billing_account_id = {account} ORDER BY tm.id LIMIT 1),
    (SELECT s.tz FROM prepaid_charge_line tc
       JOIN prepaid_room tr ON tr.id = tc.room_id
       JOIN prepaid_site s ON s.id = tr.site_id
      WHERE tc.account_id = {account} ORDER BY tc.id LIMIT 1),
    (SELECT s.tz FROM prepaid_site s JOIN prepaid_account ta
         ON ta.company_id = s.company_id
      WHERE ta.id = {account} ORDER BY s.id LIMIT 1),
    'UTC')"""


def local_day_sql(stamp, account, room="NULL::int4"):
    """SQL of the site's local calendar day of the naive UTC timestamp
    ``stamp`` for ``account`` (and ``room``): every day a charge counts."""
    zone = LOCAL_TZ_SQL.format(account=account, room=room)
    return f"(({stamp}) AT TIME ZONE 'UTC' AT TIME ZONE {zone})::date"


class Target(NamedTuple):
    """Who pays one occurrence of an item: an account, for a room or not."""

    account_id: int
    room_id: int | None
    area_m2: float
    opened: object  # local day the account opened (site time zone), or None
    closed: object  # local day the account closed (site time zone), or None
    mode: str


class PrepaidChargeItem(models.Model):
    """A recurring or one-off charge (property fee, rent, parking...)."""

    _name = "prepaid.charge.item"
    _description = "Charge Item"
    _inherit = ["mail.thread"]
    _order = "name"
    _check_company_auto = True

    name = fields.Char(required=True, translate=True, tracking=True)
    active = fields.Boolean(default=True)
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company
    )
    currency_id = fields.Many2one(related="company_id.currency_id")
    product_id = fields.Many2one(
        "product.product",
        string="Service",
        required=True,
        domain=[("type", "=", "service")],
        check_company=True,
        tracking=True,
        help="Its income account and taxes apply (revenue recognition of wallet "
        "charges, invoice lines).",
    )
    amount_type = fields.Selection(
        [("fixed", "Fixed amount"), ("per_m2", "Per m² of room area")],
        required=True,
        default="fixed",
        tracking=True,
    )
    amount = fields.Monetary(tracking=True, help="The amount per period (fixed items).")
    rate_m2 = fields.Float(
        string="Rate per m²",
        digits=(16, 4),
        tracking=True,
        help="Amount per m² of the room's area and per period.",
    )
    recurrence = fields.Selection(
        RECURRENCES, required=True, default="monthly", tracking=True
    )
    day_of_period = fields.Integer(
        string="Due on Day",
        default=1,
        help="Day of the month, quarter or year the charge is due (1-31; past "
        "the period's length it is due on its last day).",
    )
    date_start = fields.Date(
        required=True, default=fields.Date.context_today, tracking=True
    )
    date_end = fields.Date(tracking=True)
    prorate = fields.Boolean(
        string="Prorate by Days",
        default=True,
        help="Charge only the days covered when the item starts or ends, or "
        "the tenant arrives or leaves, inside a period.",
    )
    collection = fields.Selection(
        COLLECTIONS,
        required=True,
        default="wallet",
        tracking=True,
        help="Postpaid accounts always get their charges on the invoice.",
    )
    target_type = fields.Selection(
        TARGETS, string="Applies To", required=True, default="room"
    )
    room_ids = fields.Many2many("prepaid.room", string="Rooms", check_company=True)
    account_ids = fields.Many2many(
        "prepaid.account", string="Accounts", check_company=True
    )
    building_ids = fields.Many2many("prepaid.building", string="Buildings")
    site_ids = fields.Many2many("prepaid.site", string="Sites")
    line_ids = fields.One2many("prepaid.charge.line", "item_id", string="Charges")
    line_count = fields.Integer(compute="_compute_line_count")

    def _compute_line_count(self):
        counts = dict(
            self.env["prepaid.charge.line"]._read_group(
                [("item_id", "in", self.ids)], ["item_id"], ["__count"]
            )
        )
        for item in self:
            item.line_count = counts.get(item, 0)

    @api.constrains(
        "amount_type", "amount", "rate_m2", "date_start", "date_end", "day_of_period"
    )
    def _check_amount(self):
        for item in self:
            if item.date_end and item.date_end < item.date_start:
                raise ValidationError(
                    self.env._("Charge item %s ends before it starts.", item.name)
                )
            if not 1 <= item.day_of_period <= 31:
                raise ValidationError(
                    self.env._("The due day must be between 1 and 31.")
                )
            value = item.amount if item.amount_type == "fixed" else item.rate_m2
            if value <= 0:
                raise ValidationError(
                    self.env._(
                        "Charge item %s: the amount or rate must be positive.",
                        item.name,
                    )
                )

    def action_view_lines(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "prepaid_billing.prepaid_charge_line_action"
        )
        action["domain"] = [("item_id", "=", self.id)]
        return action

    def action_generate(self):
        """Generate the charges due today (the cron's job, for these items)."""
        self.env["prepaid.charge.line"]._generate(self)
        return self.action_view_lines() if len(self) == 1 else True

    # ------------------------------------------------------------------
    # Targets
    # ------------------------------------------------------------------
    def _room_filter(self):
        """SQL condition (and its parameter) selecting the item's rooms."""
        self.ensure_one()
        column, ids = {
            "room": ("r.id", self.room_ids.ids),
            "building": ("r.building_id", self.building_ids.ids),
            "site": ("r.site_id", self.site_ids.ids),
        }[self.target_type]
        return f"{column} = ANY(%s)", ids

    def _targets(self):
        """The accounts (and rooms) paying this item now: accounts opened,
        not closed (a charge of a closed account is credited back by
        ``prepaid.charge.line._credit_vacated``); the days they opened and
        closed are the site's local calendar days."""
        self.ensure_one()
        self.env.flush_all()
        cr = self.env.cr
        if self.target_type == "account":
            cr.execute(
                """
                SELECT a.id, NULL::int4,
                       COALESCE((SELECT SUM(r.area_m2) FROM prepaid_room r
                                  WHERE r.id IN (SELECT m.room_id FROM prepaid_meter m
                                                  WHERE m.billing_account_id = a.id)),
                                0)::float8,
                       {opened}, {closed}, a.mode
                  FROM prepaid_account a
                 WHERE a.id = ANY(%s) AND a.state = 'open' AND a.company_id = %s
                 ORDER BY a.id
                """.format(  # noqa: S608 - constant SQL of this module
                    opened=local_day_sql("a.opened_at", "a.id"),
                    closed=local_day_sql("a.closed_at", "a.id"),
                ),
                [self.account_ids.ids, self.company_id.id],
            )
        else:
            condition, ids = self._room_filter()
            cr.execute(
                f"""
                SELECT DISTINCT a.id, r.id, COALESCE(r.area_m2, 0)::float8,
                       {local_day_sql("a.opened_at", "a.id", "r.id")},
                       {local_day_sql("a.closed_at", "a.id", "r.id")}, a.mode
                  FROM prepaid_room r
                  JOIN prepaid_meter m ON m.room_id = r.id AND m.active
                  JOIN prepaid_account a ON a.id = m.billing_account_id
                 WHERE {condition} AND r.active AND a.state = 'open'
                   AND a.company_id = %s
                 ORDER BY a.id, r.id
                """,  # noqa: S608 - condition is a constant of _room_filter
                [ids, self.company_id.id],
            )
        return [Target(*row) for row in cr.fetchall()]

    def _local_today(self):
        """Today in the time zone of the company's sites (the first one), so
        that a charge falls due on the site's calendar day, whoever runs the
        job; the user's day when the company has no site."""
        self.ensure_one()
        site = (
            self.env["prepaid.site"]
            .sudo()
            .search([("company_id", "=", self.company_id.id)], order="id", limit=1)
        )
        if not site.tz:
            return fields.Date.context_today(self)
        return fields.Date.context_today(self.with_context(tz=site.tz))

    def _periods(self, today):
        self.ensure_one()
        return proration.due_periods(
            self.recurrence,
            self.date_start,
            self.date_end or None,
            today,
            self.day_of_period or 1,
        )

    def _unit_amount(self):
        self.ensure_one()
        return money.to_decimal(
            self.amount if self.amount_type == "fixed" else self.rate_m2
        )

    def _charge_terms(self):
        """The item's values every occurrence is priced from (read once per
        generation, not per target)."""
        self.ensure_one()
        return {
            "fixed": self.amount_type == "fixed",
            "unit": self._unit_amount(),
            "prorate": self.prorate and self.recurrence != "once",
            "window": (self.date_start, self.date_end or None),
            "rounding": money.to_decimal(self.currency_id.rounding),
        }

    def _charge_amount(self, period, target, terms=None):
        """(quantity, days covered, amount) of one occurrence; ``terms`` from
        :meth:`_charge_terms` (read here when not given)."""
        terms = terms or self._charge_terms()
        quantity = 1.0 if terms["fixed"] else target.area_m2
        full = terms["unit"] * money.to_decimal(quantity)
        days = period.days
        if terms["prorate"]:
            days = proration.covered_days(
                period, terms["window"], (target.opened, target.closed)
            )
        return quantity, days, proration.prorate(full, period, days, terms["rounding"])
