import logging

from odoo import api, models
from odoo.exceptions import UserError

from odoo.addons.prepaid_metering.drivers import modbus

_logger = logging.getLogger(__name__)


class PrepaidTenancy(models.Model):
    """Many moves at once (a term's end on a campus, a plaza's turnover): one
    live read of every meter concerned, all buses in parallel, then each move
    on those readings. A move whose meter does not answer is left out and
    reported; the others go ahead."""

    _inherit = "prepaid.tenancy"  # pylint: disable=consider-merging-classes-inherited

    @api.model
    def _batch_read(self, meters, kind):
        """Read ``meters`` now, every bus in parallel under the bus claim the
        poll and the commands share; returns ``{meter id: reading}`` of the
        meters that answered."""
        gateways = meters.gateway_id
        claimed = gateways._claim_bus("command")
        busy = gateways - claimed
        if busy:
            raise UserError(
                self.env._(
                    "The buses of %s are busy: nothing was moved. Try again in a "
                    "moment.",
                    ", ".join(busy.mapped("name")),
                )
            )
        try:
            plans, jobs, order = {}, [], []
            for gateway, some in meters.grouped("gateway_id").items():
                polls = []
                for meter in some:
                    profiles = meter.profile_ids
                    if profiles not in plans:
                        plans[profiles] = profiles._read_plan()
                    polls.append(
                        modbus.MeterPoll(
                            key=meter.id,
                            device_id=meter.device_id,
                            blocks=plans[profiles],
                        )
                    )
                jobs.append((gateway._driver_endpoint(), polls))
                order.append(gateway)
            Reading = self.env["prepaid.reading"].sudo()
            self.env.flush_all()
            self.env.cr.execute(
                "SELECT COALESCE(max(id), 0) FROM prepaid_reading "
                "WHERE meter_id = ANY(%s)",
                [meters.ids],
            )
            before = self.env.cr.fetchone()[0]
            chunk = []
            for index, results in modbus.iter_sweep(jobs):
                chunk.append((order[index], results))
            Reading._store_poll_results(chunk)
        finally:
            claimed._release_bus("command")
        readings = Reading.search(
            [("meter_id", "in", meters.ids), ("id", ">", before)], order="id"
        )
        _logger.info(
            "batch %s readings: %s of %s meters answered",
            kind,
            len(readings),
            len(meters),
        )
        return {reading.meter_id.id: reading for reading in readings}

    @api.model
    def _batch_moves(self, moving_out, moving_in, deposit_journal=None):
        """Move ``moving_out`` (active tenancies) out and ``moving_in``
        (draft tenancies, their deposit received in ``deposit_journal``) in,
        in one task: one live reading per meter, then each move on it.
        Returns ``(moved out, moved in, refused)``, refused being
        ``[(tenancy, reason)]``."""
        meters = moving_out.account_id.meter_ids | moving_in.room_ids.meter_ids
        self._lock_meters(meters)
        readings = self._batch_read(meters, "move")
        done_out, done_in, refused = self.browse(), self.browse(), []
        for tenancy in moving_out:
            own = tenancy.account_id.meter_ids
            missing = own.filtered(lambda m: m.id not in readings)
            if missing:
                refused.append((tenancy, self.env._("meter did not answer")))
                continue
            tenancy._move_out(
                None, readings=self._reading_lines(own, readings, "final")
            )
            done_out |= tenancy
        for tenancy in moving_in:
            own = tenancy._meters()
            missing = own.filtered(lambda m: m.id not in readings)
            if missing:
                refused.append((tenancy, self.env._("meter did not answer")))
                continue
            tenancy._move_in(
                None,
                deposit_mode="receive",
                deposit_journal=deposit_journal,
                readings=self._reading_lines(own, readings, "opening"),
            )
            done_in |= tenancy
        return done_out, done_in, refused

    @api.model
    def _reading_lines(self, meters, readings, kind):
        return [
            {
                "kind": kind,
                "meter_id": meter.id,
                "reading_id": readings[meter.id].id,
                "manual": False,
                "photo_id": False,
            }
            for meter in meters
        ]
