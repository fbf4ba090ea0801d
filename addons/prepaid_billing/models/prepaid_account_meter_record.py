from typing import NamedTuple

from odoo import models
from odoo.exceptions import UserError

#: Seconds a person's recharge on a meter waits for the meter before it
#: reports "sending".
METER_WAIT_S = 5.0


class MeterRecord(NamedTuple):
    """What became of a recharge or refund written to a meter now."""

    command: object  # prepaid.meter.command
    state: str  # its committed state: done, failed, queued or sending
    error: str | None  # why it failed (state "failed")
    busy: object  # prepaid.gateway whose bus was busy (the command waits)


class PrepaidAccount(models.Model):
    """Money written to meter-side meters as counted records: a person's
    recharge or refund on a chosen meter, and every top-up of the wallet of an
    account with a meter-side meter (portal, WeChat, counter)."""

    _inherit = "prepaid.account"

    def _top_up_meter(self):
        """The meter a top-up of this account is written to: its meter-side
        meter (the first by id when it has several), none when every meter is
        server-side. Server-side meters draw on the wallet."""
        self.ensure_one()
        return self.meter_ids.filtered(lambda m: m.billing_mode == "meter").sorted(
            "id"
        )[:1]

    def _check_meter_record(self, meter, amount, journal=None):
        """Refuse a record of ``amount`` (negative: a refund) on ``meter``."""
        self.ensure_one()
        if self.state != "open":
            raise UserError(
                self.env._(
                    "Account %s is not open: its meter cannot be recharged.",
                    self.name,
                )
            )
        if meter.billing_account_id != self or meter.billing_mode != "meter":
            raise UserError(
                self.env._(
                    "Meter %(meter)s is not a meter-side meter of %(account)s.",
                    meter=meter.name,
                    account=self.name,
                )
            )
        if journal:
            self._check_money_journal(journal)
        if amount < 0:
            self._check_refund_amount(-amount, self.balance, self.debt_amount)
        else:
            self._check_recharge_amount(amount)

    def _meter_record_vals(
        self, meter, amount, key, journal, payment_method, reason, credited=False
    ):
        """Values of the counted record writing ``amount`` to ``meter``; one
        command per ``key``. ``credited``: the wallet already holds the
        money (a top-up), the record only brings the meter level with it."""
        self.ensure_one()
        params = {
            "amount": amount,
            "account_id": self.id,
            "journal_id": journal.id if journal else False,
            "payment_method": payment_method,
        }
        if credited:
            params["wallet_key"] = key
        return {
            "meter_id": meter.id,
            "command_type": "record_write",
            "request_key": f"meter_record:{key}",
            "reason": reason
            or (
                self.env._("Refund of %s", self.name)
                if amount < 0
                else self.env._("Recharge of %s", self.name)
            ),
            "params": params,
        }

    def _record_on_meter(
        self, meter, amount, journal, key, payment_method, reason=None
    ):
        """A person recharges (or, ``amount`` negative, refunds) ``meter``.

        The command is committed in a transaction of its own before anything
        is written to the meter (outbox), then sent through the command
        queue's claim; the wallet moves in the command's own transaction when
        the meter's counter proves the record applied. This transaction holds
        nothing of it: its rollback loses no command and credits nothing.
        One command per ``key`` however often it is asked. Returns a
        :class:`MeterRecord`.
        """
        self.ensure_one()
        self._check_group("prepaid_billing.group_billing_user")
        self.check_access("write")
        self._check_meter_record(meter, amount, journal)
        vals = self._meter_record_vals(
            meter, amount, key, journal, payment_method, reason
        )
        sent = self.env["prepaid.meter.command"].send_and_wait(vals, METER_WAIT_S)
        return MeterRecord(sent.command, sent.state, sent.error, sent.busy)

    def _queue_top_up_on_meter(self, amount, key, journal, payment_method, label):
        """The wallet was just credited ``amount`` under ``key``: write it to
        the account's meter-side meter too (``_top_up_meter``), as a counted
        record queued in this same transaction (outbox: the credit and the
        command commit or vanish together). The command job, woken at once,
        sends it; the wallet is not credited a second time when it is done.
        One command per ``key``. Returns the command (or nothing)."""
        self.ensure_one()
        meter = self._top_up_meter()
        if not meter:
            return self.env["prepaid.meter.command"]
        Command = self.env["prepaid.meter.command"].sudo()
        vals = self._meter_record_vals(
            meter, amount, key, journal, payment_method, label, credited=True
        )
        existing = Command.search([("request_key", "=", vals["request_key"])])
        if existing:
            return existing
        command = Command.create(vals)
        command._trigger_processing()
        return command
