import json
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
        # A sweep may bring thousands of meters: one read, one UPDATE.
        self.env.flush_all()
        self.env.cr.execute(
            """SELECT m.id, m.event_counters, COALESCE(s.tz, 'UTC')
                 FROM prepaid_meter m
                 LEFT JOIN prepaid_site s ON s.id = m.site_id
                WHERE m.id = ANY(%s)""",
            [[res.key for res, _kinds in todo]],
        )
        known = {row[0]: (row[1] or {}, row[2]) for row in self.env.cr.fetchall()}
        events, rows = [], []
        for res, kinds in todo:
            before, tz = known[res.key]
            read_at = res.at.replace(microsecond=0)
            counts = {
                name: int(res.values[name]) for name in kinds if name in res.values
            }
            counters = None
            if counts:
                events += self._counter_events(res.key, before, counts, kinds, read_at)
                counters = json.dumps({**before, **counts, "read_at": str(read_at)})
            offset = self._clock_offset(res.values, read_at, tz)
            rows.append(
                (res.key, counters, offset, read_at if offset is not None else None)
            )
        self.env.cr.execute(
            """UPDATE prepaid_meter m
                  SET event_counters = COALESCE(u.counters, m.event_counters),
                      clock_offset_s = COALESCE(u.offset_s, m.clock_offset_s),
                      clock_read_at = COALESCE(u.read_at, m.clock_read_at)
                 FROM unnest(%s::int4[], %s::jsonb[], %s::int4[], %s::timestamp[])
                      AS u(id, counters, offset_s, read_at)
                WHERE m.id = u.id""",
            [[column[i] for column in rows] for i in range(4)],
        )
        self.invalidate_model(["event_counters", "clock_offset_s", "clock_read_at"])
        if events:
            self.env["prepaid.meter.event"].sudo().create(events)

    @api.model
    def _counter_events(self, meter_id, before, counts, kinds, read_at):
        """Event values for each counter that rose since the last read (the
        first read only sets the baseline; a counter that went down was
        cleared, no event)."""
        events = []
        for name, after in counts.items():
            previous = before.get(name)
            if previous is None or after <= previous:
                continue
            kind, di = kinds[name]
            events.append(
                {
                    "meter_id": meter_id,
                    "kind": kind,
                    "source": "counter",
                    "occurred_at": read_at,
                    "count_before": previous,
                    "count_after": after,
                    "evidence": {
                        "counter": name,
                        "data_identifier": di,
                        "before": previous,
                        "before_at": before.get("read_at"),
                        "after": after,
                        "after_at": str(read_at),
                    },
                }
            )
        return events

    @api.model
    def _clock_offset(self, values, read_at, tz):
        """Seconds the meter's clock (local time of ``tz``) is ahead of
        ``read_at`` (UTC), or None when the values hold no valid clock."""
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
        zone = pytz.timezone(tz)
        meter_utc = zone.localize(local).astimezone(pytz.utc).replace(tzinfo=None)
        return round((meter_utc - read_at).total_seconds())
