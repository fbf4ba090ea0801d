from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import ValidationError

from ..tools import limits as limits_core

#: the register name of a meter that keeps a power limit itself (px_limit_v1)
LIMIT_REGISTER = "power_limit"

LIMIT_STATES = [
    ("none", "No Limit Cut"),
    ("power", "Power Limit"),
    ("energy", "Daily Energy Limit"),
]


class PrepaidAccount(models.Model):
    """Load and energy limits of an account, enforced by the server: demand
    above the power limit for a set number of polls cuts the supply for a
    set number of minutes; a local day's energy above the daily limit cuts it
    until the next local midnight. A meter with a writable ``power_limit``
    register (profile px_limit_v1, or a brand's own) gets the power limit
    written into it instead and is not cut by the server for demand."""

    _inherit = "prepaid.account"  # pylint: disable=consider-merging-classes-inherited

    power_limit_kw = fields.Float(
        string="Power Limit (kW)",
        digits=(16, 3),
        help="Demand above this for the polls set in Settings cuts the supply "
        "for a while; 0: no limit.",
    )
    daily_energy_limit_kwh = fields.Float(
        string="Daily Energy Limit (kWh)",
        digits=(16, 3),
        help="Energy of a local day above this cuts the supply until midnight; "
        "0: no limit.",
    )
    limit_state = fields.Selection(
        LIMIT_STATES,
        string="Limit Cut",
        default="none",
        required=True,
        readonly=True,
        copy=False,
        tracking=True,
    )
    limit_cut_until = fields.Datetime(readonly=True, copy=False)
    limit_reason = fields.Char(string="Limit Cut Reason", readonly=True, copy=False)

    @api.constrains("power_limit_kw", "daily_energy_limit_kwh")
    def _check_limits(self):
        for account in self:
            if account.power_limit_kw < 0 or account.daily_energy_limit_kwh < 0:
                raise ValidationError(
                    self.env._("Power and energy limits cannot be negative.")
                )

    @api.model_create_multi
    def create(self, vals_list):
        accounts = super().create(vals_list)
        accounts.filtered("power_limit_kw")._write_power_limit_to_meters()
        return accounts

    def write(self, vals):
        result = super().write(vals)
        if "power_limit_kw" in vals:
            self._write_power_limit_to_meters()
        return result

    def _limit_register_meters(self):
        """The meters of these accounts that keep a power limit themselves:
        a writable ``power_limit`` register in one of their profiles."""
        return self.meter_ids.filtered(
            lambda meter: any(
                line.name == LIMIT_REGISTER and "w" in line.access
                for line in meter.profile_ids.line_ids
            )
        )

    def _write_power_limit_to_meters(self):
        """Write each account's power limit into the meters that enforce it
        themselves (a parameter command: outbox, write, read-back); the
        server does not cut those meters for demand."""
        for account in self.filtered(lambda a: a.state in ("draft", "open")):
            meters = account._limit_register_meters()
            if meters:
                meters._queue_commands(
                    lambda meter: "write_params",
                    reason=self.env._("Power limit of the account"),
                    params={LIMIT_REGISTER: account.power_limit_kw},
                )

    @api.model
    def _self_limiting(self, meter_ids):
        """Of ``meter_ids``, those with a writable power limit register (one
        query: profiles are few)."""
        self.env.cr.execute(
            """SELECT DISTINCT rel.prepaid_meter_id
                 FROM prepaid_meter_prepaid_register_profile_rel rel
                 JOIN prepaid_register r
                   ON r.profile_id = rel.prepaid_register_profile_id
                WHERE rel.prepaid_meter_id = ANY(%s)
                  AND r.name = %s AND r.access IN ('w', 'rw')""",
            [list(meter_ids), LIMIT_REGISTER],
        )
        return [meter_id for (meter_id,) in self.env.cr.fetchall()]

    @api.model
    def _check_limits_after_billing(self, meter_ids):
        """Cut the accounts of ``meter_ids`` whose meters broke a limit (one
        statement for the batch, a few index probes per meter; a second one
        only for accounts with several electricity meters)."""
        # Companies and sites are few: their settings are read through the
        # ORM, not joined to every meter (which misleads the planner into
        # running the lookups once per company).
        self.env.cr.execute(
            """
            SELECT a.id, a.company_id, m.site_id, a.power_limit_kw,
                   a.daily_energy_limit_kwh, p.demands, d.date,
                   d.energy_kwh::float8, d.several
              FROM prepaid_meter m
              JOIN prepaid_account a ON a.id = m.billing_account_id
              LEFT JOIN LATERAL (
                   SELECT array_agg(r.power_kw::float8) AS demands
                     FROM (SELECT power_kw FROM prepaid_reading
                            WHERE meter_id = m.id ORDER BY id DESC
                            LIMIT (SELECT GREATEST(max(prepaid_limit_polls), 1)
                                     FROM res_company)) r
                   ) p ON a.power_limit_kw > 0 AND NOT m.id = ANY(%s)
              LEFT JOIN LATERAL (
                   -- the meter's latest local day; whether the account has
                   -- other electricity meters to add to it
                   SELECT u.date, u.energy_kwh,
                          EXISTS (SELECT 1 FROM prepaid_meter am
                                   WHERE am.billing_account_id = a.id
                                     AND am.id != m.id
                                     AND am.meter_type != 'water') AS several
                     FROM prepaid_daily_usage u
                    WHERE u.meter_id = m.id
                    ORDER BY u.date DESC LIMIT 1
                   ) d ON a.daily_energy_limit_kwh > 0 AND m.meter_type != 'water'
             WHERE m.id = ANY(%s)
               AND (a.power_limit_kw > 0 OR a.daily_energy_limit_kwh > 0)
               AND a.limit_state = 'none' AND a.supply_state = 'on'
               AND a.state = 'open'
             ORDER BY a.id
            """,
            [self._self_limiting(meter_ids), meter_ids],
        )
        fetched = self.env.cr.fetchall()
        if not fetched:
            return
        companies = self.env["res.company"].sudo().browse({r[1] for r in fetched})
        sites = self.env["prepaid.site"].sudo().browse({r[2] for r in fetched if r[2]})
        settings = {
            c.id: (max(c.prepaid_limit_polls, 1), c.prepaid_limit_restore_minutes)
            for c in companies
        }
        zones = {site.id: site.tz for site in sites}
        several = {(row[0], row[6]) for row in fetched if row[8]}
        energies = self._day_energies(several)
        rows = [
            (
                account_id,
                power,
                energy_limit,
                zones.get(site_id) or "UTC",
                demands,
                day,
                energies.get((account_id, day), energy),
                *settings[company_id],
            )
            for (
                account_id,
                company_id,
                site_id,
                power,
                energy_limit,
                demands,
                day,
                energy,
                _several,
            ) in fetched
        ]
        now = fields.Datetime.now()
        breaches = {}
        for (
            account_id,
            power,
            energy_limit,
            tz,
            demands,
            day,
            energy,
            polls,
            minutes,
        ) in rows:
            if account_id in breaches:
                continue
            if limits_core.power_breached(demands or [], power, polls):
                breaches[account_id] = (
                    "power",
                    now + timedelta(minutes=minutes or 1),
                    self.env._(
                        "Demand above the power limit of %(limit)s kW for %(polls)s "
                        "polls (last %(demand)s kW).",
                        limit=power,
                        polls=polls,
                        demand=demands[0],
                    ),
                )
            elif day and limits_core.energy_breached(energy or 0.0, energy_limit):
                until = limits_core.next_local_midnight(day, tz)
                if until > now:
                    breaches[account_id] = (
                        "energy",
                        until,
                        self.env._(
                            "%(energy)s kWh used on %(day)s, above the daily limit "
                            "of %(limit)s kWh.",
                            energy=round(energy, 3),
                            day=day.isoformat(),
                            limit=energy_limit,
                        ),
                    )
        if breaches:
            self.browse(list(breaches))._limit_cut(breaches, now)

    @api.model
    def _day_energies(self, pairs):
        """``{(account id, day): kWh}``: the energy of the local ``day`` over
        all the electricity meters of each account of ``pairs``."""
        if not pairs:
            return {}
        accounts, days = zip(*sorted(pairs), strict=True)
        self.env.cr.execute(
            """
            SELECT p.account_id, p.day, SUM(u.energy_kwh)::float8
              FROM unnest(%s::int4[], %s::date[]) AS p(account_id, day)
              JOIN prepaid_meter am ON am.billing_account_id = p.account_id
              JOIN prepaid_daily_usage u ON u.meter_id = am.id AND u.date = p.day
             GROUP BY p.account_id, p.day
            """,
            [list(accounts), list(days)],
        )
        return {
            (account, day): energy for account, day, energy in self.env.cr.fetchall()
        }

    def _limit_cut(self, breaches, now):
        """Cut the supply of these accounts for a limit (``breaches``: account
        id -> (kind, until, reason)); friendly hours and protection apply as
        to any automatic cut-off."""
        Control = self.env["prepaid.supply.control"]
        rules = {}
        Notice = self.env["prepaid.alarm.notice"]
        for account in self:
            kind, until, reason = breaches[account.id]
            company = account.company_id
            if company not in rules:
                rules[company] = self.env["prepaid.protection.period"]._rules(company)
            protected, _why = Control._protection(account, now, rules[company])
            if protected:
                continue
            meters = account.meter_ids.filtered(Control._has_switch)
            meters._queue_commands(lambda m: m._switch_command_type(False), reason)
            account._write_guarded(
                {
                    "supply_state": "cut_off",
                    "limit_state": kind,
                    "limit_cut_until": until,
                    "limit_reason": reason,
                }
            )
            account.message_post(
                body=self.env._(
                    "Supply cut off until %(until)s: %(reason)s",
                    until=fields.Datetime.context_timestamp(account, until).strftime(
                        "%Y-%m-%d %H:%M"
                    ),
                    reason=reason,
                )
            )
            Notice._raise_batch([(account, "cutoff")])

    @api.model
    def _cron_limit_restores(self, accounts=None):
        """Restore the supply of accounts whose limit cut is over (unless
        their balance is exhausted meanwhile: then a top-up restores them, as
        any cut account); returns how many were restored.

        ``accounts``: only those (a test's own); the cron looks at all.
        """
        now = fields.Datetime.now()
        domain = [
            ("limit_state", "!=", "none"),
            ("limit_cut_until", "<=", now),
            ("state", "=", "open"),
        ]
        if accounts is not None:
            domain.append(("id", "in", accounts.ids))
        due = self.sudo().search(domain)
        Control = self.env["prepaid.supply.control"]
        restored = 0
        for account in due:
            account._write_guarded(
                {"limit_state": "none", "limit_cut_until": False, "limit_reason": False}
            )
            currency = account.currency_id
            if (
                account.mode == "postpaid"
                or currency.compare_amounts(
                    account.balance, -account._effective_credit_limit()
                )
                > 0
            ):
                Control._restore(
                    account, self.env._("Limit cut over: supply restored.")
                )
                restored += 1
            else:
                account.message_post(
                    body=self.env._(
                        "Limit cut over; the supply stays off: the balance is "
                        "exhausted."
                    )
                )
        return restored
