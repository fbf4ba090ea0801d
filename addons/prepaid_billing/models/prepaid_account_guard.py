from odoo import api, models
from odoo.exceptions import AccessError, UserError

from .prepaid_account import BILLING_MANAGER

# Changed only by the account's actions (open, close, supply override, the
# billing engine), which check the user's group and then write with
# ``_write_guarded``; a plain write or create by a user is refused.
ACTION_FIELDS = frozenset(
    {
        "state",
        "supply_state",
        "keep_on_until",
        "opened_at",
        "closed_at",
        "alarm_level",
        "debt_amount",
        "debt_daily_last_day",
        "emergency_state",
        "emergency_taken_amount",
        "limit_state",
        "limit_cut_until",
        "limit_reason",
    }
)
# Risk settings of an account: billing managers only.
MANAGER_FIELDS = frozenset(
    {
        "credit_limit",
        "protected",
        "debt_recovery_override",
        "debt_recovery_percent",
        "debt_recovery_min",
        "debt_recovery_max",
        "debt_recovery_daily",
        "emergency_credit_amount",
        "power_limit_kw",
        "daily_energy_limit_kwh",
    }
)


class PrepaidAccount(models.Model):
    """Create and write of an account, guarded: the balance moves only
    through wallet lines, the state fields only through the account's actions
    (``_write_guarded``), the risk settings only by billing managers."""

    _inherit = "prepaid.account"  # pylint: disable=consider-merging-classes-inherited

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if "balance" in vals:
                raise UserError(
                    self.env._("The balance moves only through wallet lines.")
                )
            if vals.get("name", self.env._("New")) == self.env._("New"):
                vals["name"] = self.env["ir.sequence"].next_by_code(
                    "prepaid.account"
                ) or self.env._("New")
        accounts = super().create(vals_list)
        if not self.env.su:
            # Checked on the result, so that values given through context or
            # user defaults are caught as well as those in ``vals``.
            changed = set()
            for account in accounts:
                changed |= self._guarded_changes(
                    {name: account[name] for name in ACTION_FIELDS | MANAGER_FIELDS},
                    self._static_default,
                )
            self._check_guarded_fields(changed)
        return accounts

    def _static_default(self, name):
        """The default of field ``name`` as declared, whatever the context."""
        default = self._fields[name].default
        return default(self) if default else False

    def write(self, vals):
        if "balance" in vals:
            raise UserError(self.env._("The balance moves only through wallet lines."))
        if "company_id" in vals and self.filtered(
            lambda a: a.state != "draft" and a.company_id.id != vals["company_id"]
        ):
            raise UserError(
                self.env._(
                    "The company of an account cannot change once it is opened: "
                    "its wallet and journal entries belong to that company."
                )
            )
        if (
            "mode" in vals
            and not self.env.su
            and self.filtered(lambda a: a.state != "draft" and a.mode != vals["mode"])
        ):
            # Prepaid to postpaid takes an open account out of deduction and
            # cut-off: a risk decision like the allowed credit.
            self._check_group(BILLING_MANAGER)
        if not self.env.su:
            changed = set()
            for account in self:
                changed |= self._guarded_changes(
                    vals, lambda name, account=account: account[name]
                )
            self._check_guarded_fields(changed)
        return super().write(vals)

    def _guarded_changes(self, vals, current):
        """The guarded fields ``vals`` would change from ``current(name)``."""
        changed = set()
        for name in (ACTION_FIELDS | MANAGER_FIELDS) & vals.keys():
            field = self._fields[name]
            new = field.convert_to_cache(vals[name], self.browse())
            if new != field.convert_to_cache(current(name), self.browse()):
                changed.add(name)
        return changed

    def _check_guarded_fields(self, changed):
        """Refuse a user's write of fields owned by actions or by managers."""
        by_action = changed & ACTION_FIELDS
        if by_action:
            raise AccessError(
                self.env._(
                    "%(fields)s of a prepaid account change only through its "
                    "actions (Open, Close, Supply Override) and the billing job.",
                    fields=", ".join(self._fields[f].string for f in sorted(by_action)),
                )
            )
        if changed & MANAGER_FIELDS:
            self._check_group(BILLING_MANAGER)

    def _check_group(self, group):
        """Raise AccessError unless the user (or the system) is in ``group``."""
        if self.env.su or self.env.user.has_group(group):
            return
        raise AccessError(
            self.env._(
                "Only members of the group %(group)s may do this (you are %(user)s).",
                group=self.env.ref(group).full_name,
                user=self.env.user.name,
            )
        )

    def _write_guarded(self, vals):
        """Write the state, supply state, keep-on-until... of the accounts.

        Only for the account's own actions and the billing engine, after they
        have checked what the user may do: a user's plain ``write`` of these
        fields is refused.
        """
        return self.sudo().write(vals)
