import logging
from datetime import timedelta

from odoo import api, fields, models
from odoo.modules import module as odoo_module

from ..tools.transactions import start_read_committed

_logger = logging.getLogger(__name__)


class PrepaidMeterCommandRecovery(models.AbstractModel):
    """What dead workers leave behind: commands still sending after the
    timeout, outcomes whose follow-up never ran (mixed into
    ``prepaid.meter.command``)."""

    _name = "prepaid.meter.command.recovery"
    _description = "Meter Command: recovery of stuck commands"

    @api.model
    def _stuck_before(self):
        """Commands sending since before this moment are stuck."""
        minutes = float(
            self.env["ir.config_parameter"]
            .sudo()
            .get_param("prepaid_metering.command_sending_timeout_min", 5)
        )
        return fields.Datetime.now() - timedelta(minutes=minutes)

    @api.model
    def _cron_recover(self, commit=None, limit=100):
        """Recover what dead workers left behind.

        Commands sending since before the timeout (and not held by a live
        worker) are sent again by their type's rule, through the same bus
        claim as every sender: a switch command reads back and resends if
        needed, a counted record is settled by the meter's counter. A stuck
        command whose bus is busy waits for the next run. Outcomes whose
        follow-up never ran get it now.
        """
        if commit is None:
            commit = not odoo_module.current_test
        if commit:
            start_read_committed(self.env.cr)
        before = self._stuck_before()
        stuck = self._claim_stuck(before, limit).commands
        for command in stuck:
            _logger.info("recovering meter command %s left sending", command.name)
        self.env.cr.execute(
            """
            SELECT id FROM prepaid_meter_command
             WHERE followup_pending AND state IN ('done', 'failed')
               AND write_date <= %s
             ORDER BY id LIMIT %s
               FOR NO KEY UPDATE SKIP LOCKED
            """,
            (before, limit),
        )
        orphans = self.browse([row[0] for row in self.env.cr.fetchall()])
        if commit:
            # Deliberate: publish the new claims before talking to meters.
            start_read_committed(self.env.cr)
        stuck.with_context(prepaid_read_committed=commit)._execute_claimed(commit)
        for command in orphans:
            command._run_followups()
            if commit:
                start_read_committed(self.env.cr)
        return len(stuck) + len(orphans)
