from odoo import SUPERUSER_ID, api, fields, models
from odoo.exceptions import UserError


class PrepaidAccount(models.Model):
    """The relay or valve a meter reports against the supply state of its
    account (the "Relay Contradicts Supply" filter)."""

    _inherit = "prepaid.account"  # pylint: disable=consider-merging-classes-inherited

    supply_mismatch = fields.Boolean(
        string="Relay Contradicts Supply",
        compute="_compute_supply_mismatch",
        search="_search_supply_mismatch",
        help="A relay or valve state read from a meter contradicts the supply "
        "state (no switch command pending for that meter).",
    )

    def _compute_supply_mismatch(self):
        flagged = set(self._supply_mismatch_ids(self.ids))
        for account in self:
            account.supply_mismatch = account.id in flagged

    def _search_supply_mismatch(self, operator, value):
        if operator not in ("=", "!=") or not isinstance(value, bool):
            raise UserError(self.env._("Unsupported search on the supply mismatch."))
        ids = self._supply_mismatch_ids()
        positive = (operator == "=") == value
        return [("id", "in" if positive else "not in", ids)]

    @api.model
    def _supply_mismatch_ids(self, ids=None):
        """Open accounts with a meter whose relay/valve, as last read, is not
        what the supply state wants (commands still on their way excepted):
        server-side and meter-side meters alike, so a meter-side meter left
        off (or cutting itself off) under an account that says "On" shows.
        Under a cut account only server-side meters are expected off: billing
        does not cut a meter-side meter, which runs on its own balance (an
        account with both kinds).
        A relay a person switched on purpose (Cut/Restore on the room or the
        meter), still as that command left it, is no contradiction."""
        self.env.flush_all()
        self.env.cr.execute(
            """
            SELECT DISTINCT a.id
              FROM prepaid_account a
              JOIN prepaid_meter m ON m.billing_account_id = a.id
             WHERE a.state = 'open'
               AND (%(ids)s::int4[] IS NULL OR a.id = ANY(%(ids)s::int4[]))
               AND m.active
               AND m.switch_state IN ('on', 'off')
               AND m.switch_state <> CASE
                   WHEN a.supply_state IN ('cut_off', 'cut_failed') THEN 'off'
                   ELSE 'on' END
               -- billing cuts only server-side meters: under a cut account a
               -- meter-side meter runs on its own balance, either state is
               -- its own (a person's cut is covered below)
               AND NOT (m.billing_mode = 'meter'
                        AND a.supply_state IN ('cut_off', 'cut_failed'))
               AND NOT EXISTS (
                   SELECT 1 FROM prepaid_meter_command c
                    WHERE c.meter_id = m.id AND c.state IN ('queued', 'sending')
                      AND c.command_type IN ('relay_on', 'relay_off',
                                             'valve_open', 'valve_close'))
               AND NOT EXISTS (
                   SELECT 1
                     FROM (SELECT c.command_type, c.requested_by
                             FROM prepaid_meter_command c
                            WHERE c.meter_id = m.id AND c.state = 'done'
                              AND c.command_type IN ('relay_on', 'relay_off',
                                                     'valve_open', 'valve_close')
                            ORDER BY c.done_at DESC NULLS LAST, c.id DESC
                            LIMIT 1) last
                    WHERE last.requested_by <> %(system)s
                      AND m.switch_state = CASE
                          WHEN last.command_type IN ('relay_off', 'valve_close')
                          THEN 'off' ELSE 'on' END)
            """,
            {"ids": ids, "system": SUPERUSER_ID},
        )
        return [row[0] for row in self.env.cr.fetchall()]
