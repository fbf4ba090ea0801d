from datetime import datetime

import pytz

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError

from ..tools import dashboard
from .prepaid_account import BALANCE_STATES, BILLING_USER

METERING_USER = "prepaid_metering.group_metering_user"
# Supply states the dashboard counts as cut off: the supply is off, or should
# be and the meter did not obey.
CUT_STATES = ("cut_off", "cut_failed")
PROBLEM_METER_STATES = ("offline", "fault")
# Wallet lines that are income: consumption and charge items (negative
# amounts; a charge credited back is positive and lowers the revenue).
REVENUE_LINE_TYPES = ("consumption", "charge")
TOP_CONSUMERS = 10
LIST_LIMIT = 20


class PrepaidDashboard(models.AbstractModel):
    """Figures of the one-page energy dashboard (client action
    ``prepaid_energy_dashboard``).

    Every figure is a grouped query through the ORM as the current user: the
    record rules keep each user to the companies they work in, and the
    revenue is left out (None) for users who may not see wallets.
    """

    _name = "prepaid.dashboard"
    _description = "Energy Dashboard"

    @api.model
    @api.readonly
    def get_dashboard_data(self, site_id=None, today=None):
        """The dashboard of ``site_id`` (all sites the user sees when empty)
        as a JSON-able dict. ``today`` (a date or ``YYYY-MM-DD``) defaults to
        the local date of the site.

        Read-only (``api.readonly``): with ``--db_replica_host`` the web
        client's call is served from the read replica."""
        if not self.env.user.has_group(METERING_USER):
            raise AccessError(self.env._("The energy dashboard is for metering users."))
        sites = self.env["prepaid.site"].search(self._get_company_domain())
        site = sites.browse()
        if site_id:
            site = sites.filtered(lambda record: record.id == site_id)
            if not site:
                raise UserError(
                    self.env._(
                        "Site %s does not exist or belongs to a company you "
                        "do not work in; pick another site.",
                        site_id,
                    )
                )
        tzname = self._dashboard_tz(site or sites)
        if today:
            today = fields.Date.to_date(today)
        else:
            today = datetime.now(pytz.timezone(tzname)).date()
        months = dashboard.months_of(today)
        last_to = dashboard.same_days_end(today)
        usage = self._dashboard_usage(site, months, last_to)
        return {
            "sites": [{"id": s.id, "name": s.display_name} for s in sites],
            "site_id": site.id or False,
            "tz": tzname,
            "today": fields.Date.to_string(today),
            "months": {
                **{
                    key: fields.Date.to_string(day)
                    for key, day in months._asdict().items()
                },
                # this month so far is compared with last month until here
                "last_to": fields.Date.to_string(last_to),
            },
            "currency_id": self._dashboard_currency(site).id,
            **usage,
            **self._dashboard_accounts(site),
            **self._dashboard_meters(site),
            "revenue": self._dashboard_revenue(site, months, last_to, tzname),
        }

    @api.model
    def _dashboard_currency(self, site):
        """The currency of the money figures: the site's company's, else the
        current company's (amounts in other currencies are not added in)."""
        return (site.company_id or self.env.company).currency_id

    @api.model
    def _dashboard_tz(self, sites):
        """The time zone of the months: the site's, the one all the sites
        share, else the user's."""
        zones = set(sites.mapped("tz"))
        if len(zones) == 1:
            return zones.pop()
        return self.env.user.tz or "UTC"

    # ------------------------------------------------------------------
    # Domains (one home for what each figure counts)
    # ------------------------------------------------------------------
    @api.model
    def _get_company_domain(self):
        # The record rules do the same for users; this keeps a superuser or
        # sudo call to the companies selected in the switcher too.
        return [("company_id", "in", self.env.companies.ids)]

    @api.model
    def _get_usage_domain(self, site, date_from, date_to):
        domain = self._get_company_domain() + [
            ("date", ">=", date_from),
            ("date", "<", date_to),
        ]
        if site:
            domain.append(("site_id", "=", site.id))
        return domain

    @api.model
    def _get_account_domain(self, site):
        domain = self._get_company_domain() + [("state", "=", "open")]
        if site:
            domain.append(("meter_ids.site_id", "=", site.id))
        return domain

    @api.model
    def _get_meter_domain(self, site):
        domain = self._get_company_domain()
        if site:
            domain.append(("site_id", "=", site.id))
        return domain

    @api.model
    def _get_revenue_domain(self, site, date_from, date_to):
        domain = self._get_company_domain() + [
            ("line_type", "in", REVENUE_LINE_TYPES),
            ("date", ">=", date_from),
            ("date", "<", date_to),
        ]
        if site:
            # A consumption line names its meter; a charge only its account.
            domain += [
                "|",
                ("meter_id.site_id", "=", site.id),
                "&",
                ("meter_id", "=", False),
                ("account_id.meter_ids.site_id", "=", site.id),
            ]
        return domain

    # ------------------------------------------------------------------
    # Figures
    # ------------------------------------------------------------------
    @api.model
    def _dashboard_usage(self, site, months, last_to):
        Daily = self.env["prepaid.daily.usage"]
        sums = ["energy_kwh:sum", "volume_m3:sum", "amount:sum"]

        def use(date_from, date_to):
            [(kwh, m3, amount)] = Daily._read_group(
                self._get_usage_domain(site, date_from, date_to), [], sums
            )
            return dashboard.Use(kwh or 0.0, m3 or 0.0, amount or 0.0)

        this_month = self._get_usage_domain(site, months.this, months.next)
        rows = [
            (
                building.id,
                building.display_name,
                floor.id,
                floor.name,
                dashboard.Use(kwh or 0.0, m3 or 0.0, amount or 0.0),
            )
            for building, floor, kwh, m3, amount in Daily._read_group(
                this_month, ["building_id", "floor_id"], sums
            )
        ]
        top = Daily._read_group(
            this_month + [("room_id", "!=", False)],
            ["room_id"],
            sums,
            order="energy_kwh:sum desc, volume_m3:sum desc",
            limit=TOP_CONSUMERS,
        )
        return {
            "usage": dashboard.period(
                use(months.this, months.next), use(months.last, last_to)
            ),
            "location": dashboard.by_location(
                rows, self.env._("No building"), self.env._("No floor")
            ),
            "top_consumers": [
                {
                    "id": room.id,
                    "name": room.display_name,
                    "kwh": kwh or 0.0,
                    "m3": m3 or 0.0,
                    "amount": amount or 0.0,
                }
                for room, kwh, m3, amount in top
            ],
        }

    @api.model
    def _dashboard_accounts(self, site):
        Account = self.env["prepaid.account"]
        domain = self._get_account_domain(site)
        balance = dict(Account._read_group(domain, ["balance_state"], ["__count"]))
        labels = dict(Account._fields["balance_state"]._description_selection(self.env))
        cut_domain = domain + [("supply_state", "in", CUT_STATES)]
        cut = dict(Account._read_group(cut_domain, ["supply_state"], ["__count"]))
        supply_labels = dict(
            Account._fields["supply_state"]._description_selection(self.env)
        )
        cut_accounts = Account.search(
            cut_domain, order="write_date desc, id desc", limit=LIST_LIMIT
        )
        return {
            "balance_states": dashboard.counts(
                [(state, labels[state]) for state, _label in BALANCE_STATES], balance
            ),
            "cut_off": {
                "count": sum(cut.values()),
                "by_state": dashboard.counts(
                    [(state, supply_labels[state]) for state in CUT_STATES], cut
                ),
                "accounts": [
                    {
                        "id": account.id,
                        "name": account.display_name,
                        "tenant": account.partner_id.display_name,
                        "rooms": ", ".join(
                            account.meter_ids.room_id.mapped("display_name")
                        ),
                        "supply_state": account.supply_state,
                        "supply_label": supply_labels[account.supply_state],
                        "balance": account.balance,
                    }
                    for account in cut_accounts
                ],
            },
        }

    @api.model
    def _dashboard_meters(self, site):
        Meter = self.env["prepaid.meter"]
        domain = self._get_meter_domain(site)
        states = dict(
            Meter._read_group(
                domain + [("state", "in", PROBLEM_METER_STATES)], ["state"], ["__count"]
            )
        )
        # Readings, not meters: a meter can hold several waiting for review.
        suspect = self.env["prepaid.reading"].search_count(
            [("review_state", "=", "suspect"), ("meter_id", "any", domain)]
        )
        # Tamper signals and meter events nobody acknowledged yet.
        signals = self.env["prepaid.meter.event"].search_count(
            [("state", "=", "open"), ("meter_id", "any", domain)]
        )
        labels = dict(Meter._fields["state"]._description_selection(self.env))
        faults = dict(Meter._fields["fault_kind"]._description_selection(self.env))
        problems = Meter.search(
            domain
            + [
                "|",
                ("state", "in", PROBLEM_METER_STATES),
                ("suspect_reading_id", "!=", False),
            ],
            order="last_contact asc, id",
            limit=LIST_LIMIT,
        )
        return {
            "meters": {
                "offline": states.get("offline", 0),
                "fault": states.get("fault", 0),
                "suspect": suspect,
                "signals": signals,
                "list": [
                    {
                        "id": meter.id,
                        "name": meter.display_name,
                        "room": meter.room_id.display_name or "",
                        "state": meter.state,
                        "state_label": labels[meter.state],
                        # what went wrong in the reader's language, then
                        # the driver's own words
                        "reason": self.env._(
                            "%(problem)s: %(details)s",
                            problem=faults[meter.fault_kind],
                            details=meter.state_reason or "",
                        )
                        if meter.fault_kind
                        else meter.state_reason or "",
                        "suspect": bool(meter.suspect_reading_id),
                        "last_contact": fields.Datetime.to_string(meter.last_contact)
                        if meter.last_contact
                        else False,
                    }
                    for meter in problems
                ],
            }
        }

    @api.model
    def _dashboard_revenue(self, site, months, last_to, tzname):
        """Consumption and charges posted to the wallets this month and on the
        same days of last month (local days, as wallet lines carry UTC times);
        None for users who may not see wallets."""
        if not self.env.user.has_group(BILLING_USER):
            return None
        Line = self.env["prepaid.ledger.line"]
        currency = self._dashboard_currency(site)
        last, this, following, last_end = (
            dashboard.utc_start(day, tzname) for day in (*months, last_to)
        )
        figures = {}
        left_out = self.env["res.currency"]
        for key, start, end in (("this", this, following), ("last", last, last_end)):
            by_type = {}
            # Amounts of another currency are not added to these: they are
            # named instead (several companies, no site chosen).
            for line_currency, line_type, amount in Line._read_group(
                self._get_revenue_domain(site, start, end),
                ["currency_id", "line_type"],
                ["amount:sum"],
            ):
                if line_currency == currency:
                    by_type[line_type] = amount
                else:
                    left_out |= line_currency
            figures[key] = {
                line_type: currency.round(0.0 - (by_type.get(line_type) or 0.0))
                for line_type in REVENUE_LINE_TYPES
            }
            figures[key]["total"] = currency.round(sum(figures[key].values()))
        return {
            **figures,
            "currency_id": currency.id,
            "left_out": ", ".join(left_out.sorted("name").mapped("name")),
            "change": dashboard.change_pct(
                figures["this"]["total"], figures["last"]["total"]
            ),
            "utc": {
                "last": fields.Datetime.to_string(last),
                "last_to": fields.Datetime.to_string(last_end),
                "this": fields.Datetime.to_string(this),
                "next": fields.Datetime.to_string(following),
            },
        }
