from datetime import datetime

import pytz

from odoo import api, models

#: Names of the profile lines that carry the meter's clock (DL/T 645
#: 04000101 date+weekday YYMMDDWW, 04000102 time hhmmss).
CLOCK_DATE, CLOCK_TIME = "clock_date", "clock_time"


class PrepaidMeter(models.Model):
    """What a sweep reads besides the billable values: the meter's event
    counters (a rise becomes a ``prepaid.meter.event``) and its clock."""

    _inherit = "prepaid.meter"

    @api.model
    def _store_meter_extras(self, gateway_results, profiles_by_meter):
        """Record counter rises as meter events and the clock offsets of the
        meters whose results carry them (read every N sweeps)."""
        kinds_by_profiles = {}
        todo = []
        for _gateway, results in gateway_results:
            for res in results:
                if not res.values:
                    continue
                profiles = profiles_by_meter[res.key]
                kinds = kinds_by_profiles.get(profiles)
                if kinds is None:
                    kinds = kinds_by_profiles[profiles] = {
                        line.name: (line.event_kind, line.di)
                        for line in profiles.line_ids
                        if line.event_kind
                    }
                wanted = any(name in res.values for name in kinds)
                if wanted or CLOCK_DATE in res.values:
                    todo.append((res, kinds))
        if not todo:
            return
        meters = self.browse([res.key for res, _kinds in todo])
        meters.fetch(["event_counters", "site_id", "clock_offset_s"])
        events = []
        for res, kinds in todo:
            meter = self.browse(res.key)
            vals = {}
            counts = {
                name: int(res.values[name]) for name in kinds if name in res.values
            }
            if counts:
                events += meter._counter_events(counts, kinds, res.at)
                vals["event_counters"] = {
                    **(meter.event_counters or {}),
                    **counts,
                    "read_at": str(res.at.replace(microsecond=0)),
                }
            offset = meter._clock_offset(res.values, res.at)
            if offset is not None:
                vals.update(clock_offset_s=offset, clock_read_at=res.at)
            if vals:
                meter.sudo().write(vals)
        if events:
            self.env["prepaid.meter.event"].sudo().create(events)

    def _counter_events(self, counts, kinds, read_at):
        """Event values for each counter that rose since the last read (the
        first read only sets the baseline; a counter that went down was
        cleared, no event)."""
        self.ensure_one()
        before = self.event_counters or {}
        events = []
        for name, after in counts.items():
            previous = before.get(name)
            if previous is None or after <= previous:
                continue
            kind, di = kinds[name]
            events.append(
                {
                    "meter_id": self.id,
                    "kind": kind,
                    "source": "counter",
                    "occurred_at": read_at.replace(microsecond=0),
                    "count_before": previous,
                    "count_after": after,
                    "evidence": {
                        "counter": name,
                        "data_identifier": di,
                        "before": previous,
                        "before_at": before.get("read_at"),
                        "after": after,
                        "after_at": str(read_at.replace(microsecond=0)),
                    },
                }
            )
        return events

    def _clock_offset(self, values, read_at):
        """Seconds the meter's clock is ahead of ``read_at`` (UTC), or None
        when the values hold no valid clock."""
        self.ensure_one()
        date, clock = values.get(CLOCK_DATE), values.get(CLOCK_TIME)
        if date is None or clock is None:
            return None
        ymd, hms = int(date), int(clock)
        try:
            local = datetime(
                2000 + ymd // 10000,
                ymd // 100 % 100,
                ymd % 100,
                hms // 10000,
                hms // 100 % 100,
                hms % 100,
            )
        except ValueError:
            return None
        tz = pytz.timezone(self.site_id.tz or "UTC")
        meter_utc = tz.localize(local).astimezone(pytz.utc).replace(tzinfo=None)
        return round((meter_utc - read_at).total_seconds())
