from datetime import datetime, time, timedelta

import pytz
from dateutil.relativedelta import relativedelta

from odoo import fields, models


class PrepaidAccount(models.Model):
    _inherit = "prepaid.account"

    def _portal_tz(self):
        self.ensure_one()
        site = self.meter_ids.site_id[:1]
        return pytz.timezone(site.tz or self.partner_id.tz or "Asia/Shanghai")

    def _portal_usage_series(self, granularity):
        """What the account used per local day (last 30 days, ``"day"``) or
        per month (last 12 months, ``"month"``): a list of dicts ``label``,
        ``amount`` (money), ``energy_kwh``, ``volume_m3``, oldest first.

        The one place the portal reads use from: energy and water from the
        daily aggregates (``prepaid.daily.usage``, local days of the site,
        never the readings), plus the charge items the wallet paid in the
        window (their wallet lines, by local day).
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
        by_start = {start: {"amount": 0.0, "kwh": 0.0, "m3": 0.0} for start in starts}

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
                point["amount"] -= amount
        top = max([b["amount"] for b in by_start.values()] + [0.01])
        return [
            {
                "label": start.strftime(fmt),
                "amount": by_start[start]["amount"],
                "energy_kwh": by_start[start]["kwh"],
                "volume_m3": by_start[start]["m3"],
                "percent": round(100 * by_start[start]["amount"] / top, 1),
            }
            for start in starts
        ]

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
