from datetime import timedelta

from odoo import api, fields, models
from odoo.tools import SQL

from odoo.addons.prepaid_metering.tools import tamper


class PrepaidApportionment(models.Model):
    """Theft between a master meter and its sub-meters: the master measures
    far more than the sum of its sub-meters over a window."""

    _inherit = "prepaid.apportionment"

    @api.model
    def _master_loss_settings(self):
        icp = self.env["ir.config_parameter"].sudo()

        def number(key, default):
            try:
                return float(icp.get_param(f"prepaid_billing.{key}") or default)
            except ValueError:
                return default

        return (
            number("master_loss_pct", 20.0),
            number("master_loss_window_h", 24.0),
            number("master_loss_min_kwh", 5.0),
        )

    @api.model
    def _cron_check_master_loss(self, apportionments=None, now=None):
        """Compare each master meter with the sum of its sub-meters over the
        window ending ``now``: a loss above the threshold is a meter event on
        the master (one open event, one alarm, until acknowledged). Only
        apportionments whose every member has a sub-meter can be compared.
        No money moves. One statement for all of them; returns how many
        events it reported."""
        loss_pct, window_h, min_use = self._master_loss_settings()
        now = now or fields.Datetime.now()
        start = now - timedelta(hours=window_h)
        records = (
            apportionments if apportionments is not None else self.search([])
        ).filtered("active")
        if not records:
            return 0
        self.env.flush_all()
        money = self.env["prepaid.reading"]._money_sql("r")
        self.env.cr.execute(
            SQL(
                """
            WITH ap AS (
                SELECT a.id, a.master_meter_id
                  FROM prepaid_apportionment a
                 WHERE a.id = ANY(%(ids)s)
                   AND EXISTS (SELECT 1 FROM prepaid_apportionment_line l
                                WHERE l.apportionment_id = a.id)
                   AND NOT EXISTS (SELECT 1 FROM prepaid_apportionment_line l
                                    WHERE l.apportionment_id = a.id
                                      AND l.meter_id IS NULL)
            ), members AS (
                SELECT ap.id AS ap_id, ap.master_meter_id AS meter_id,
                       true AS is_master
                  FROM ap
                UNION ALL
                SELECT l.apportionment_id, l.meter_id, false
                  FROM prepaid_apportionment_line l
                  JOIN ap ON ap.id = l.apportionment_id
            )
            SELECT mb.ap_id, mb.meter_id, mb.is_master,
                   COALESCE(sum(COALESCE(r.delta_kwh, 0)
                                + COALESCE(r.delta_m3, 0)), 0) AS used,
                   count(r.id) AS readings,
                   min(r.read_at) AS first_at, max(r.read_at) AS last_at
              FROM members mb
              LEFT JOIN prepaid_reading r
                ON r.meter_id = mb.meter_id
               AND r.read_at > %(start)s AND r.read_at <= %(end)s
               AND %(money)s
             GROUP BY mb.ap_id, mb.meter_id, mb.is_master
             ORDER BY mb.ap_id
                """,
                ids=records.ids,
                start=start,
                end=now,
                money=money,
            )
        )
        by_ap = {}
        for row in self.env.cr.dictfetchall():
            by_ap.setdefault(row["ap_id"], []).append(row)
        meters = self.env["prepaid.meter"].browse(
            {row["meter_id"] for rows in by_ap.values() for row in rows}
        )
        names = {m.id: m.display_name for m in meters}
        found = []
        for ap_id, rows in by_ap.items():
            master = next(r for r in rows if r["is_master"])
            subs = {r["meter_id"]: r["used"] for r in rows if not r["is_master"]}
            loss = tamper.master_loss(master["used"], subs, loss_pct, min_use)
            if loss is None:
                continue
            evidence = {
                "window_from": str(start),
                "window_to": str(now),
                "master_used": round(master["used"], 3),
                "master_readings": master["readings"],
                "sub_meters_used": round(sum(subs.values()), 3),
                "loss_pct": loss,
                "threshold_pct": loss_pct,
                **{
                    f"sub {names[r['meter_id']]}": round(r["used"], 3)
                    for r in rows
                    if not r["is_master"]
                },
            }
            found.append(
                {
                    "meter_id": master["meter_id"],
                    "kind": "master_loss",
                    "source": "analysis",
                    "occurred_at": now,
                    "evidence": evidence,
                    "description": self.env._(
                        "%(apportionment)s: the master meter measured %(master)s, "
                        "its sub-meters %(subs)s over %(hours)s h: %(loss)s %% "
                        "lost (threshold %(threshold)s %%).",
                        apportionment=self.browse(ap_id).display_name,
                        master=round(master["used"], 3),
                        subs=round(sum(subs.values()), 3),
                        hours=window_h,
                        loss=loss,
                        threshold=loss_pct,
                    ),
                }
            )
        if found:
            self.env["prepaid.meter.event"].sudo().create(found)
        return len(found)
