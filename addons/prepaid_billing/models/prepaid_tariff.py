from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError

from ..tools import tariff as core

UTILITIES = [("electricity", "Electricity (kWh)"), ("water", "Water (m³)")]
KINDS = [("flat", "Single price"), ("tou", "Time of use"), ("tiered", "Tiered")]
BANDS = [("sharp", "Sharp"), ("peak", "Peak"), ("flat", "Flat"), ("valley", "Valley")]
PRICE_DIGITS = (16, 4)


class PrepaidTariff(models.Model):
    """A price plan; its versions say which prices apply from which date."""

    _name = "prepaid.tariff"
    _description = "Tariff"
    _inherit = ["mail.thread"]
    _order = "utility, name"

    name = fields.Char(required=True, translate=True, tracking=True)
    active = fields.Boolean(default=True)
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company
    )
    currency_id = fields.Many2one(related="company_id.currency_id")
    utility = fields.Selection(UTILITIES, required=True, default="electricity")
    product_id = fields.Many2one(
        "product.product",
        string="Revenue Product",
        domain=[("type", "=", "service")],
        help="Its income account and taxes are used when consumption is "
        "recognised as revenue.",
    )
    version_ids = fields.One2many(
        "prepaid.tariff.version", "tariff_id", string="Versions", copy=True
    )
    current_version_id = fields.Many2one(
        "prepaid.tariff.version", compute="_compute_current_version"
    )
    description = fields.Text(translate=True)

    @api.depends("version_ids.date_from")
    def _compute_current_version(self):
        today = fields.Date.context_today(self)
        for tariff in self:
            valid = tariff.version_ids.filtered(lambda v: v.date_from <= today)
            tariff.current_version_id = valid.sorted("date_from")[-1:] or False

    @api.ondelete(at_uninstall=False)
    def _unlink_except_used(self):
        # Its versions go with it (a cascade of the database, which calls no
        # guard of theirs): a tariff that priced consumption is archived.
        if self.version_ids._used_ids():
            raise UserError(
                self.env._(
                    "This tariff already priced consumption and stays as its "
                    "evidence; archive it instead."
                )
            )

    def _version_at(self, when):
        """The version in force at ``when`` (a date or datetime)."""
        self.ensure_one()
        day = when.date() if hasattr(when, "date") else when
        valid = self.version_ids.filtered(lambda v: v.date_from <= day)
        if not valid:
            raise UserError(
                self.env._(
                    "Tariff %(tariff)s has no version in force on %(day)s.",
                    tariff=self.name,
                    day=day,
                )
            )
        return valid.sorted("date_from")[-1]


class PrepaidTariffVersion(models.Model):
    _name = "prepaid.tariff.version"
    _description = "Tariff Version"
    _order = "tariff_id, date_from desc"
    _rec_name = "date_from"

    tariff_id = fields.Many2one(
        "prepaid.tariff", required=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one(related="tariff_id.company_id", store=True)
    currency_id = fields.Many2one(related="tariff_id.currency_id")
    date_from = fields.Date(
        string="Valid From", required=True, default=fields.Date.context_today
    )
    kind = fields.Selection(KINDS, string="Pricing", required=True, default="flat")
    price = fields.Float(string="Unit Price", digits=PRICE_DIGITS)
    price_sharp = fields.Float(string="Sharp Price", digits=PRICE_DIGITS)
    price_peak = fields.Float(string="Peak Price", digits=PRICE_DIGITS)
    price_flat = fields.Float(string="Flat Price", digits=PRICE_DIGITS)
    price_valley = fields.Float(string="Valley Price", digits=PRICE_DIGITS)
    season_ids = fields.One2many(
        "prepaid.tariff.season", "version_id", string="Seasons", copy=True
    )
    tier_ids = fields.One2many(
        "prepaid.tariff.tier", "version_id", string="Tiers", copy=True
    )
    tier_period = fields.Selection(
        [("month", "Monthly"), ("year", "Yearly")],
        default="month",
        help="Cumulative consumption that climbs the tiers restarts at the start "
        "of each month or year.",
    )
    minimum_monthly = fields.Monetary(
        string="Minimum Monthly Charge",
        help="If a month's consumption costs less, the difference is charged.",
    )
    used = fields.Boolean(compute="_compute_used")

    _sql_constraints = [
        (
            "date_uniq",
            "unique(tariff_id, date_from)",
            "A tariff has one version per start date.",
        )
    ]

    def _compute_display_name(self):
        for version in self:
            version.display_name = self.env._(
                "%(tariff)s from %(date)s",
                tariff=version.tariff_id.name,
                date=version.date_from,
            )

    def _used_ids(self):
        """Ids of these versions that priced wallet lines (one probe of the
        lines' version index each, however many lines they priced)."""
        ids = self._origin.ids  # a new version priced nothing
        if not ids:
            return set()
        self.env["prepaid.ledger.line"].flush_model(["tariff_version_id"])
        self.env.cr.execute(
            """SELECT v.id FROM unnest(%s::int4[]) AS v(id)
                WHERE EXISTS (SELECT 1 FROM prepaid_ledger_line l
                               WHERE l.tariff_version_id = v.id)""",
            [ids],
        )
        return {version_id for (version_id,) in self.env.cr.fetchall()}

    def _compute_used(self):
        used = self._used_ids()
        for version in self:
            version.used = version._origin.id in used

    @api.ondelete(at_uninstall=False)
    def _unlink_except_used(self):
        # The wallet lines it priced name it (their charges are priced again
        # from it): the audit trail keeps it.
        if self._used_ids():
            raise UserError(
                self.env._(
                    "This tariff version already priced consumption and stays "
                    "as its evidence; add a new version with a later start "
                    "date instead."
                )
            )

    def _core(self):
        """The plain-Python version the pricing core works with."""
        self.ensure_one()
        to_d = core.to_decimal
        return core.TariffVersion(
            key=self.id,
            valid_from=self.date_from,
            kind=self.kind,
            price=to_d(self.price),
            band_prices={band: to_d(self[f"price_{band}"]) for band, _label in BANDS}
            if self.kind == "tou"
            else {},
            seasons=tuple(
                core.Season(
                    season.name,
                    frozenset(season._months()),
                    tuple(
                        core.Period(p.band, p.hour_from, p.hour_to)
                        for p in season.period_ids
                    ),
                )
                for season in self.season_ids
            )
            if self.kind == "tou"
            else (),
            tiers=tuple(
                core.Tier(to_d(t.upto) if t.upto else None, to_d(t.price))
                for t in self.tier_ids.sorted(lambda t: (not t.upto, t.upto))
            )
            if self.kind == "tiered"
            else (),
            tier_period=self.tier_period or "month",
            minimum_monthly=to_d(self.minimum_monthly),
        )

    def _pricer(self):
        return core.compile_tariff(self._core())

    @api.constrains(
        "kind",
        "price",
        "price_sharp",
        "price_peak",
        "price_flat",
        "price_valley",
        "tier_period",
        "minimum_monthly",
    )
    def _check_prices(self):
        for version in self:
            version._validate()

    def _validate(self):
        self.ensure_one()
        try:
            core.validate(self._core())
        except core.TariffError as err:
            raise ValidationError(
                self.env._(
                    "Tariff %(tariff)s (from %(date)s): %(error)s",
                    tariff=self.tariff_id.name,
                    date=self.date_from,
                    error=str(err),
                )
            ) from err

    def write(self, vals):
        pricing = set(vals) - {"tariff_id"}
        if pricing and any(self.mapped("used")):
            raise UserError(
                self.env._(
                    "This tariff version already priced consumption; add a new "
                    "version with a later start date instead of changing it."
                )
            )
        return super().write(vals)


class PrepaidTariffSeason(models.Model):
    _name = "prepaid.tariff.season"
    _description = "Tariff Season"
    _order = "version_id, id"

    version_id = fields.Many2one(
        "prepaid.tariff.version", required=True, ondelete="cascade", index=True
    )
    name = fields.Char(required=True, translate=True)
    months = fields.Char(
        required=True,
        default="1-12",
        help="Months of the season, e.g. 6-9 or 1,2,12.",
    )
    period_ids = fields.One2many(
        "prepaid.tariff.period", "season_id", string="Day Schedule", copy=True
    )

    def _months(self):
        self.ensure_one()
        months = set()
        for part in (self.months or "").replace(" ", "").split(","):
            if not part:
                continue
            try:
                if "-" in part:
                    low, high = (int(x) for x in part.split("-", 1))
                    months.update(range(low, high + 1))
                else:
                    months.add(int(part))
            except ValueError as err:
                raise ValidationError(
                    self.env._(
                        "Season %(season)s: '%(part)s' is not a month.",
                        season=self.name,
                        part=part,
                    )
                ) from err
        if not months or not months <= set(range(1, 13)):
            raise ValidationError(
                self.env._("Season %s: months go from 1 to 12.", self.name)
            )
        return months

    @api.constrains("months", "name")
    def _check_season(self):
        for version in self.version_id:
            version._validate()


class PrepaidTariffPeriod(models.Model):
    _name = "prepaid.tariff.period"
    _description = "Tariff Time Period"
    _order = "season_id, hour_from"

    season_id = fields.Many2one(
        "prepaid.tariff.season", required=True, ondelete="cascade", index=True
    )
    band = fields.Selection(BANDS, required=True)
    hour_from = fields.Float(string="From", required=True)
    hour_to = fields.Float(string="To", required=True)

    @api.constrains("band", "hour_from", "hour_to")
    def _check_period(self):
        for version in self.season_id.version_id:
            version._validate()


class PrepaidTariffTier(models.Model):
    _name = "prepaid.tariff.tier"
    _description = "Tariff Tier"
    _order = "version_id, upto"

    version_id = fields.Many2one(
        "prepaid.tariff.version", required=True, ondelete="cascade", index=True
    )
    upto = fields.Float(
        string="Up To",
        digits=(16, 3),
        help="Cumulative consumption of the period where this tier ends; leave 0 "
        "on the last, unlimited tier.",
    )
    price = fields.Float(required=True, digits=PRICE_DIGITS)

    @api.constrains("upto", "price")
    def _check_tier(self):
        for version in self.version_id:
            version._validate()
