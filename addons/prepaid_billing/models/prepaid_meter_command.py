import logging

from odoo import api, fields, models
from odoo.exceptions import ValidationError

from odoo.addons.prepaid_metering.drivers import codec, modbus

_logger = logging.getLogger(__name__)


class PrepaidMeterCommand(models.Model):
    _inherit = "prepaid.meter.command"

    command_type = fields.Selection(
        selection_add=[("meter_recharge", "Meter-side Recharge")],
        ondelete={"meter_recharge": "cascade"},
    )

    @api.constrains("command_type", "params", "max_attempts")
    def _check_meter_recharge(self):
        for command in self.filtered(lambda c: c.command_type == "meter_recharge"):
            params = command.params or {}
            if command.max_attempts != 1:
                raise ValidationError(
                    self.env._("A meter recharge is written once, never retried.")
                )
            if not params.get("account_id") or not params.get("amount"):
                raise ValidationError(
                    self.env._("A meter recharge needs the account and the amount.")
                )
            profiles = command.meter_id.profile_ids
            for name in ("recharge_amount", "recharge_count", "purchase_count"):
                if not profiles._find_register(name):
                    raise ValidationError(
                        self.env._(
                            "Meter %(meter)s has no %(register)s register: it "
                            "cannot be recharged on the meter.",
                            meter=command.meter_id.name,
                            register=name,
                        )
                    )

    def _send(self):
        if self.command_type != "meter_recharge":
            return super()._send()
        return self._send_meter_recharge()

    def _read_counter(self, endpoint, profiles):
        registers = [profiles._find_register(n) for n in ("purchase_count", "balance")]
        result = modbus.read_now(
            endpoint,
            self.meter_id.device_id,
            codec.plan_reads([r for r in registers if r]),
        )
        return result

    def _send_meter_recharge(self):
        """Write the recharge record once; credit only what the meter accepted.

        The record carries purchase count + 1. If the meter refuses it (a
        replay), or the reply is lost, the counter is read again: when it
        already shows our count the recharge was accepted; it is never
        written a second time.
        """
        meter = self.meter_id
        profiles = meter.profile_ids
        endpoint = meter.gateway_id._driver_endpoint()
        params = dict(self.params or {})
        before = self._read_counter(endpoint, profiles)
        if not before.ok:
            return False, self.env._("Counter not read: %s", before.error)
        count = int(params.get("count") or before.values["purchase_count"] + 1)
        if "count" not in params:
            params["count"] = count
            self.params = params
        amount_reg = profiles._find_register("recharge_amount")
        count_reg = profiles._find_register("recharge_count")
        if before.values["purchase_count"] >= count and not params.get("attempted"):
            return False, self.env._(
                "Purchase count %(count)s is already used on the meter (it shows "
                "%(now)s): a replayed recharge is refused.",
                count=count,
                now=int(before.values["purchase_count"]),
            )
        if before.values["purchase_count"] < count:
            # Remembered before writing: a retry after a lost reply then
            # checks the counter instead of writing again.
            params["attempted"] = True
            self.params = params
            start, words = codec.encode_record(
                [(amount_reg, float(params["amount"])), (count_reg, count)]
            )
            written = modbus.execute_write(
                endpoint, meter.device_id, address=start, words=words, function=16
            )
            if not written.ok:
                _logger.info(
                    "meter recharge %s: %s; reading the counter back",
                    self.name,
                    written.error,
                )
        after = self._read_counter(endpoint, profiles)
        if not after.ok:
            return False, self.env._(
                "Recharge record sent but the counter could not be read back (%s); "
                "retry reads it again and never writes twice.",
                after.error,
            )
        if int(after.values["purchase_count"]) != count:
            return False, self.env._(
                "The meter refused the recharge: its purchase count is %(now)s, "
                "expected %(count)s.",
                now=int(after.values["purchase_count"]),
                count=count,
            )
        params["balance_after"] = after.values.get("balance")
        self.params = params
        account = self.env["prepaid.account"].browse(params["account_id"])
        account._credit_meter_recharge(self, params)
        return True, self.env._(
            "Accepted: purchase count %(count)s, meter balance %(balance)s",
            count=count,
            balance=params["balance_after"],
        )
