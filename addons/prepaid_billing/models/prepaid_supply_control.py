import pytz

from odoo import api, fields, models
from odoo.tools import SQL

from odoo.addons.prepaid_metering.tools.constants import SWITCH_COMMANDS

from ..tools import balance as balance_core
from ..tools import protection as protection_core


class PrepaidSupplyControl(models.AbstractModel):
    """Alarm levels, cut-off and restore of accounts after their balance
    moved; the supply state follows the relay and valve commands.

    Part of ``prepaid.billing.engine``, which the rest of the module calls.
    """

    _name = "prepaid.supply.control"
    _description = "Prepaid Supply Control"

    @api.model
    def _after_balance_change(self, accounts):
        """Alarm levels, cut-off and restore after the balances moved.

        Works on the whole batch at once: a few statements whatever the number
        of accounts (one write per alarm level, one notice search and create,
        one command create for all meters to cut).
        """
        if not accounts:
            return
        Account = self.env["prepaid.account"]
        Account.flush_model()
        accounts.invalidate_recordset(["balance"])  # moved in SQL by the engine
        # One read of every account of the batch, the decisions in plain
        # Python (tools/balance): no field access per account.
        billable = (
            Account.sudo()
            .with_context(active_test=False)
            ._search(
                [("id", "in", accounts.ids), *Account._get_billable_account_domain()]
            )
        )
        self.env.cr.execute(
            SQL(
                """
            SELECT a.id, a.balance::text, a.alarm_level,
                   COALESCE(a.credit_limit, 0)::text, a.supply_state,
                   a.alarm_override,
                   ARRAY[a.alarm1_amount, a.alarm2_amount, a.alarm3_amount]::text[],
                   ARRAY[c.prepaid_alarm1_amount, c.prepaid_alarm2_amount,
                         c.prepaid_alarm3_amount]::text[],
                   cur.rounding::text,
                   CASE WHEN a.emergency_state IN ('taken', 'in_use')
                        THEN COALESCE(a.emergency_taken_amount, 0) ELSE 0 END::text,
                   a.emergency_state = 'in_use',
                   COALESCE(a.limit_state, 'none') != 'none'
              FROM prepaid_account a
              JOIN res_company c ON c.id = a.company_id
              JOIN res_currency cur ON cur.id = c.currency_id
             WHERE a.id IN %s
             ORDER BY a.id
            """,
                billable.subselect(),
            )
        )
        rows = [
            balance_core.AccountRow(
                account_id,
                balance or "0",
                level or 0,
                credit,
                supply,
                *(
                    amount or "0"
                    for amount in balance_core.thresholds(override, own, company)
                ),
                rounding,
                emergency,
                emergency_used,
                limit_cut,
            )
            for (
                account_id,
                balance,
                level,
                credit,
                supply,
                override,
                own,
                company,
                rounding,
                emergency,
                emergency_used,
                limit_cut,
            ) in self.env.cr.fetchall()
        ]
        if not rows:
            return
        decided = balance_core.decide(rows)
        # One recordset for the accounts that raise, reset or restore: what
        # the notices read of them is fetched at once (shared prefetch), and
        # only for them (a steady batch moves ten thousand balances, a few
        # of which cross a level).
        by_id = {
            account.id: account
            for account in Account.browse(
                sorted(
                    {i for i, _event in decided.raise_events}
                    | {i for i, _level in decided.resets}
                    | set(decided.to_restore)
                )
            )
        }
        Notice = self.env["prepaid.alarm.notice"]
        for level, ids in decided.by_level.items():
            Account.browse(ids)._write_guarded({"alarm_level": level})
        Notice._reset_batch([(by_id[i], level) for i, level in decided.resets])
        Notice._raise_batch([(by_id[i], event) for i, event in decided.raise_events])
        Account._emergency_settle(decided.emergency_in_use, decided.emergency_repaid)
        if decided.to_cut:
            self._cut_or_defer_batch(
                Account.browse(decided.to_cut), fields.Datetime.now()
            )
        for account_id in decided.to_restore:
            self._restore(by_id[account_id])

    def _cut_or_defer_batch(self, accounts, now, reason=None):
        """Queue the cut-off of ``accounts`` (or defer those protected now).

        Returns the accounts actually cut.
        """
        deferred, cut, notes = [], [], {}
        rules_by_company = {}
        # One read for every meter (and its site) of the batch, not one per
        # account.
        accounts.meter_ids.fetch(["billing_mode", "profile_ids", "site_id"])
        accounts.meter_ids.site_id.fetch(["tz"])
        for account in accounts:
            company = account.company_id
            if company not in rules_by_company:
                rules_by_company[company] = self.env[
                    "prepaid.protection.period"
                ]._rules(company)
            protected, why = self._protection(account, now, rules_by_company[company])
            if protected:
                if account.supply_state != "cut_pending":
                    deferred.append(account.id)
                    notes[account.id] = self.env._(
                        "Balance exhausted; cut-off deferred: %s", why
                    )
                continue
            if account.meter_ids.filtered(self._switchable):
                cut.append(account.id)
                notes[account.id] = reason or self.env._(
                    "Balance exhausted: supply cut off."
                )
            # Meter-side meters open their own relay; nothing to switch here.
        Account = self.env["prepaid.account"]
        cut = Account.browse(cut)
        if deferred:
            Account.browse(deferred)._write_guarded({"supply_state": "cut_pending"})
        if cut:
            command_reason = reason or (
                self.env._("Prepaid balance exhausted (%s)", cut.name)
                if len(cut) == 1
                else self.env._("Prepaid balance exhausted")
            )
            cut.meter_ids.filtered(self._switchable)._queue_commands(
                lambda m: m._switch_command_type(False), command_reason
            )
            cut._write_guarded({"supply_state": "cut_off"})
            self.env["prepaid.alarm.notice"]._raise_batch(
                [(account, "cutoff") for account in cut]
            )
        if notes:
            Account.browse(list(notes))._message_log_batch(notes)
        return cut

    @staticmethod
    def _has_switch(meter):
        """Whether ``meter`` has a relay or valve the server can switch."""
        return bool(meter.profile_ids._switch_profile())

    @classmethod
    def _switchable(cls, meter):
        """Whether billing switches ``meter``'s supply on its own: a
        server-side meter with a relay or valve (a meter-side meter opens
        its own). A manager's override switches every meter with a switch
        (see ``_manual_cut`` and ``_restore(force=True)``)."""
        return meter.billing_mode == "server" and cls._has_switch(meter)

    def _manual_cut(self, account, reason):
        """A manager cuts ``account`` off now, whatever its balance: every
        meter with a relay or valve, meter-side ones included."""
        account.meter_ids.filtered(self._has_switch)._queue_commands(
            lambda m: m._switch_command_type(False), reason
        )
        account._write_guarded({"supply_state": "cut_off"})
        account.message_post(body=reason)

    def _restore(self, account, reason=None, force=False):
        """Supply ``account`` again; its meters are switched on when it was
        cut off (see ``_meters_to_switch_on``)."""
        meters = self._meters_to_switch_on(account, force)
        was_cut = force or account.supply_state in ("cut_off", "cut_failed")
        vals = {"supply_state": "on"}
        if account.limit_state != "none":
            # a manager's restore ends a limit cut too
            vals.update(limit_state="none", limit_cut_until=False, limit_reason=False)
        account._write_guarded(vals)
        if meters and was_cut:
            meters._queue_commands(
                lambda m: m._switch_command_type(True),
                reason or self.env._("Recharged (%s)", account.name),
            )
            self.env["prepaid.alarm.notice"]._raise_batch([(account, "restore")])
        account.message_post(body=reason or self.env._("Supply restored."))

    def _meters_to_switch_on(self, account, force=False):
        """The meters a restore of ``account`` switches on: every meter the
        server cut, by the same rule whoever restores. That is each meter
        billing switches (``_switchable``) and any other meter with a relay
        or valve whose latest switch command was a cut (a manager's override
        of a meter-side meter); ``force`` (a manager's override) switches on
        every meter with a relay or valve, as ``_manual_cut`` cut them."""
        meters = account.meter_ids.filtered(self._has_switch)
        if force:
            return meters
        cuts = {kind for kind, (_key, on) in SWITCH_COMMANDS.items() if not on}
        self.env["prepaid.meter.command"].flush_model(["meter_id", "command_type"])
        self.env.cr.execute(
            """
            SELECT DISTINCT ON (meter_id) meter_id, command_type
              FROM prepaid_meter_command
             WHERE meter_id = ANY(%s) AND command_type = ANY(%s)
             ORDER BY meter_id, id DESC
            """,
            [meters.ids, list(SWITCH_COMMANDS)],
        )
        latest = dict(self.env.cr.fetchall())
        return meters.filtered(
            lambda m: self._switchable(m) or latest.get(m.id) in cuts
        )

    def _switch_settled(self, command):
        """A relay or valve command of an account's meter ended: the account's
        supply state follows. A failed cut-off or restore shows as "cut-off
        failed" / "restore failed" with a to-do for the operator; a later
        command that succeeds puts it back to "cut off" / "on"."""
        meter = command.meter_id
        account = meter.billing_account_id
        if not account or account.state != "open" or not self._has_switch(meter):
            return
        supply_on = SWITCH_COMMANDS[command.command_type][1]
        wanted = ("on", "restore_failed") if supply_on else ("cut_off", "cut_failed")
        if account.supply_state not in wanted:
            # The account wants the other way by now; this outcome is history.
            return
        failed = self._failed_switch_meters(account, supply_on)
        new = wanted[1] if failed else wanted[0]
        if new == account.supply_state:
            return
        account._write_guarded({"supply_state": new})
        if not failed:
            account.message_post(
                body=self.env._("Supply state back to normal (%s).", command.name)
            )
            return
        summary = (
            self.env._("Restore failed on %s", ", ".join(failed.mapped("name")))
            if supply_on
            else self.env._("Cut-off failed on %s", ", ".join(failed.mapped("name")))
        )
        account.message_post(
            body=self.env._(
                "%(summary)s: %(error)s",
                summary=summary,
                error=command.last_error or "",
            )
        )
        account.sudo().activity_schedule(
            "mail.mail_activity_data_todo",
            summary=summary,
            note=self.env._(
                "Command %(command)s failed: %(error)s. Check the meter and its "
                "gateway, then retry the command or switch the supply by hand.",
                command=command.name,
                error=command.last_error,
            ),
            user_id=self._supply_operator(command).id,
        )

    def _failed_switch_meters(self, account, supply_on):
        """Meters of ``account`` whose latest settled command switching the
        supply ``supply_on`` failed."""
        types = [t for t, (_k, on) in SWITCH_COMMANDS.items() if on == supply_on]
        meters = account.meter_ids.filtered(self._has_switch)
        latest = {}
        for command in self.env["prepaid.meter.command"].search(
            [
                ("meter_id", "in", meters.ids),
                ("command_type", "in", types),
                ("state", "in", ("done", "failed")),
            ],
            order="id desc",
        ):
            latest.setdefault(command.meter_id, command.state)
        return meters.filtered(lambda m: latest.get(m) == "failed")

    def _supply_operator(self, command):
        """Who gets the to-do of a failed switch: the person who asked for it,
        else (an automatic cut-off) the administrator."""
        user = command.requested_by
        if user and user.active and not user.share and not user._is_superuser():
            return user
        admin = self.env.ref("base.user_admin", raise_if_not_found=False)
        return admin if admin and admin.active else self.env.user

    def _protection(self, account, now, rules=None):
        """(protected?, why) for an automatic cut-off of ``account`` at ``now``."""
        if account.protected:
            return True, self.env._("the account is protected")
        if account.keep_on_until and account.keep_on_until > now:
            return True, self.env._(
                "supply kept on until %s by a manual override", account.keep_on_until
            )
        if rules is None:
            rules = self.env["prepaid.protection.period"]._rules(account.company_id)
        tz = account.meter_ids[:1].site_id.tz or "UTC"
        local = (
            pytz.utc.localize(now).astimezone(pytz.timezone(tz)).replace(tzinfo=None)
        )
        if protection_core.is_protected(rules, local):
            try:
                until = protection_core.next_unprotected(rules, local)
            except ValueError:
                until = None
            if until is None:
                return True, self.env._(
                    "protection period (%s local time); the rules protect every "
                    "day, so no cut-off can run",
                    local.strftime("%Y-%m-%d %H:%M"),
                )
            return True, self.env._(
                "protection period (%(now)s local time) until %(until)s",
                now=local.strftime("%Y-%m-%d %H:%M"),
                until=until.strftime("%Y-%m-%d %H:%M"),
            )
        return False, ""

    @api.model
    def _cron_deferred_cutoffs(self, accounts=None):
        """Carry out cut-offs deferred by protection periods once they end;
        returns how many were carried out.

        ``accounts``: only those (a test's own); the cron looks at every
        account.
        """
        now = fields.Datetime.now()
        domain = [("supply_state", "=", "cut_pending"), ("state", "=", "open")]
        if accounts is not None:
            domain.append(("id", "in", accounts.ids))
        accounts = self.env["prepaid.account"].search(domain)
        recovered = accounts.filtered(
            lambda a: (
                a.currency_id.compare_amounts(a.balance, -a._effective_credit_limit())
                > 0
            )
        )
        recovered._write_guarded({"supply_state": "on"})
        return len(self._cut_or_defer_batch(accounts - recovered, now))
