from datetime import datetime, time, timedelta

import pytz
from dateutil.relativedelta import relativedelta

from odoo import fields, models
from odoo.tools import format_amount

from ..tools import chart as chart_tools


class PrepaidAccount(models.Model):
    _inherit = "prepaid.account"

    def _portal_tz(self):
        """The time zone the portal shows the account's times in: its site's
        (where the meters are and the days are counted), else the user's."""
        self.ensure_one()
        site = self.meter_ids.site_id[:1]
        return pytz.timezone(site.tz or self.env.user.tz or self.partner_id.tz or "UTC")

    def _portal_title(self):
        """What the tenant calls the account: its rooms and tenant (the
        reference ``PA/00001`` means nothing to them)."""
        self.ensure_one()
        rooms = ", ".join(self.meter_ids.room_id.sorted("name").mapped("name"))
        tenant = self.partner_id.name or ""
        return f"{rooms} \N{EM DASH} {tenant}" if rooms and tenant else rooms or tenant

    def _portal_state(self):
        """The one state a tenant needs: (label, badge colour)."""
        self.ensure_one()
        env = self.env
        if self.supply_state in ("cut_off", "restore_failed"):
            return env._("Supply cut off"), "danger"
        if self.currency_id.compare_amounts(self.balance, 0) < 0:
            return env._("Overdrawn"), "danger"
        if self.alarm_level:
            return env._("Low balance"), "warning"
        return env._("Normal"), "success"

    def _portal_topup_advice(self):
        """What to pay when the balance is at or below the restore line (the
        smallest top-up after which billing restores a cut supply, as money),
        else an empty string."""
        self.ensure_one()
        amount = self._topup_to_restore()
        if not amount:
            return ""
        money = format_amount(self.env, amount, self.currency_id)
        if self.supply_state in ("cut_off", "restore_failed"):
            return self.env._(
                "Top up at least %(amount)s to restore supply.", amount=money
            )
        if self.supply_state == "on":
            # within the allowed credit: not cut yet
            return self.env._(
                "Your balance is used up: top up at least %(amount)s to bring it "
                "above zero.",
                amount=money,
            )
        return self.env._(
            "Top up at least %(amount)s to keep your supply on.", amount=money
        )

    def _portal_supplies(self):
        """Per utility of the account's meters, whether it is supplied:
        ``[{"utility": "electricity" | "water", "on": True | False | None}]``
        (None: not read yet), electricity first."""
        self.ensure_one()
        supplies = []
        for utility in ("electricity", "water"):
            meters = self.meter_ids.filtered(
                lambda m, u=utility: (m.meter_type == "water") == (u == "water")
            )
            if not meters:
                continue
            states = set(meters.mapped("switch_state"))
            state = False if "off" in states else None if "unknown" in states else True
            supplies.append({"utility": utility, "on": state})
        return supplies

    def _portal_usage_series(self, granularity):
        """What the account used per local day (last 30 days, today last,
        ``"day"``) or per month (last 12 months, ``"month"``): a list of dicts
        ``label``, ``energy_kwh``, ``volume_m3``, ``amount`` (what the energy
        and water cost) and ``charges`` (charge items: fees, shares), oldest
        first.

        The one place the portal reads use from: energy and water from the
        daily aggregates (``prepaid.daily.usage``, local days of the site,
        never the readings), the charge items from their wallet lines, by
        local day.
        """
        self.ensure_one()
        tz = self._portal_tz()
        today = fields.Datetime.now().replace(tzinfo=pytz.utc).astimezone(tz).date()
        if granularity == "day":
            starts = [today - timedelta(days=n) for n in range(29, -1, -1)]
            key, fmt = "date:day", "%m-%d"
        else:
            first = today.replace(day=1)
            starts = [first - relativedelta(months=n) for n in range(11, -1, -1)]
            key, fmt = "date:month", "%Y-%m"
        by_start = {
            start: {"amount": 0.0, "charges": 0.0, "kwh": 0.0, "m3": 0.0}
            for start in starts
        }

        def bucket(period):
            return by_start.get(period.date() if hasattr(period, "date") else period)

        days = (
            self.env["prepaid.daily.usage"]
            .sudo()
            ._read_group(
                [("account_id", "=", self.id), ("date", ">=", starts[0])],
                groupby=[key],
                aggregates=["amount:sum", "energy_kwh:sum", "volume_m3:sum"],
            )
        )
        for period, amount, kwh, m3 in days:
            if (point := bucket(period)) is not None:
                point["amount"] += amount
                point["kwh"] += kwh
                point["m3"] += m3
        since = tz.localize(datetime.combine(starts[0], time.min)).astimezone(pytz.utc)
        items = (
            self.env["prepaid.ledger.line"]
            .sudo()
            .with_context(tz=tz.zone)
            ._read_group(
                [
                    ("account_id", "=", self.id),
                    ("line_type", "=", "charge"),
                    ("date", ">=", since.replace(tzinfo=None)),
                ],
                groupby=[key],
                aggregates=["amount:sum"],
            )
        )
        for period, amount in items:
            if (point := bucket(period)) is not None:
                point["charges"] -= amount
        return [
            {
                "label": start.strftime(fmt),
                "amount": by_start[start]["amount"],
                "charges": by_start[start]["charges"],
                "energy_kwh": by_start[start]["kwh"],
                "volume_m3": by_start[start]["m3"],
            }
            for start in starts
        ]

    def _portal_usage_charts(self, series, label_every=1):
        """The bar charts of a :meth:`_portal_usage_series`: electricity (kWh)
        and water (m³), each only when the account has such meters or such
        use in the window."""
        self.ensure_one()
        labels = [point["label"] for point in series]
        types = set(self.meter_ids.mapped("meter_type"))
        charts = []
        for key, unit, has_meters, title in (
            ("energy_kwh", "kWh", bool(types - {"water"}), self.env._("Electricity")),
            ("volume_m3", "m³", "water" in types, self.env._("Water")),
        ):
            values = [point[key] for point in series]
            if has_meters or any(values):
                chart = chart_tools.bars(labels, values, label_every=label_every)
                chart.update({"key": key, "unit": unit, "title": title})
                charts.append(chart)
        return charts

    def action_grant_portal_access(self):
        """Odoo's portal wizard for the tenant of the account."""
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "portal.partner_wizard_action"
        )
        action["context"] = {
            "active_ids": self.partner_id.ids,
            "active_id": self.partner_id.id,
            "active_model": "res.partner",
        }
        return action
