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
        in one task and one transaction: one live reading per meter, then the
        move-outs together and the move-ins together (the same code as one
        move of the wizards, on the whole set). Returns ``(moved out, moved
        in, refused)``, refused being ``[(tenancy, reason)]``: a tenancy
        whose meter did not answer is left as it was."""
        moving_out._check_move_out()
        moving_in._check_billing_user()
        meters = moving_out.account_id.meter_ids | moving_in._meters()
        self._lock_meters(meters)
        readings = self._batch_read(meters, "move")
        refused = []

        def answered(tenancies, own_meters, kind):
            done, lines = self.browse(), {}
            for tenancy in tenancies:
                own = own_meters(tenancy)
                if own.filtered(lambda m: m.id not in readings):
                    refused.append((tenancy, self.env._("meter did not answer")))
                    continue
                done |= tenancy
                lines[tenancy.id] = self._reading_lines(own, readings, kind)
            return done, lines

        done_out, lines = answered(
            moving_out, lambda t: t.account_id.meter_ids, "final"
        )
        done_out._store_reading_lines(lines)
        done_out._moved_out()
        done_in, lines = answered(moving_in, lambda t: t._meters(), "opening")
        # checked after the move-outs: a room may change hands in the batch
        done_in._check_move_in()
        done_in._store_reading_lines(lines)
        done_in._moved_in("receive", deposit_journal)
        _logger.info(
            "batch moves: %s out, %s in, %s refused",
            len(done_out),
            len(done_in),
            len(refused),
        )
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
