from markupsafe import Markup, escape

from odoo import fields, models

from ..tools import month_report


class PrepaidRoom(models.Model):
    """The room form's use charts: daily for 30 days, monthly for 12 months,
    read from the daily aggregates."""

    _inherit = "prepaid.room"

    usage_chart_html = fields.Html(
        string="Use Charts", compute="_compute_usage_chart_html", sanitize=False
    )

    def _compute_usage_chart_html(self):
        today = fields.Date.context_today(self)
        first_day = fields.Date.subtract(today, days=29)
        first_month = month_report.add_months(today, -11)
        Daily = self.env["prepaid.daily.usage"]
        for room in self:
            if not room.id:
                room.usage_chart_html = False
                continue
            domain = [("room_id", "=", room.id), ("utility", "=", "electricity")]
            days = {
                day: kwh
                for day, kwh in Daily._read_group(
                    [*domain, ("date", ">=", first_day)],
                    ["date:day"],
                    ["energy_kwh:sum"],
                )
            }
            months = {
                month: kwh
                for month, kwh in Daily._read_group(
                    [*domain, ("date", ">=", first_month)],
                    ["date:month"],
                    ["energy_kwh:sum"],
                )
            }
            daily = [
                (d.strftime("%d"), days.get(d, 0.0))
                for d in (fields.Date.add(first_day, days=n) for n in range(30))
            ]
            monthly = [
                (m.strftime("%Y-%m"), months.get(m, 0.0))
                for m in (month_report.add_months(first_month, n) for n in range(12))
            ]
            room.usage_chart_html = self._bar_chart(
                self.env._("kWh per day, last 30 days"), daily
            ) + self._bar_chart(self.env._("kWh per month, last 12 months"), monthly)

    @staticmethod
    def _bar_chart(title, bars):
        """A bar chart in plain HTML (no script): one column per bar."""
        top = max((value for _label, value in bars), default=0.0) or 1.0
        columns = Markup("").join(
            Markup(
                '<div class="d-flex flex-column justify-content-end text-center" '
                'style="flex: 1; min-width: 0;" title="%s: %s">'
                '<div class="bg-primary" style="height: %spx;"></div>'
                '<small class="text-muted text-truncate">%s</small></div>'
            )
            % (label, f"{value:.2f}", round(120 * value / top), label)
            for label, value in bars
        )
        return Markup(
            '<div class="o_prepaid_usage_chart mb-3"><strong>%s</strong>'
            '<div class="d-flex align-items-end gap-1" style="height: 150px;">'
            "%s</div></div>"
        ) % (escape(title), columns)
