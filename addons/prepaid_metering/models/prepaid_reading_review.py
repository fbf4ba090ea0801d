"""Review of suspect readings: accept (billed from the last accepted value,
the new baseline) or reject (counts nothing), with the reason kept in the
meter's chatter. Part of ``prepaid.reading`` (see ``prepaid_reading``)."""

import math

from odoo import models
from odoo.exceptions import AccessError, UserError
from odoo.tools import format_datetime

from ..tools import counters
from .prepaid_meter import MULTIPLIED
from .prepaid_reading import COUNTER_COLUMNS, COUNTERS, VALUE_COLUMNS


class PrepaidReadingReview(models.Model):
    _inherit = "prepaid.reading"

    def action_accept(self):
        """Button: accept these suspect readings (asks for the reason)."""
        return self._open_review_wizard("accept")

    def action_reject(self):
        """Button: reject these suspect readings (asks for the reason)."""
        return self._open_review_wizard("reject")

    def _open_review_wizard(self, decision):
        self._check_reviewer()
        suspects = self.filtered(lambda r: r.review_state == "suspect")
        if not suspects:
            raise UserError(
                self.env._(
                    "None of the selected readings is suspect: only suspect "
                    "readings can be accepted or rejected (filter Suspect)."
                )
            )
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Accept Readings")
            if decision == "accept"
            else self.env._("Reject Readings"),
            "res_model": "prepaid.reading.review.wizard",
            "view_mode": "form",
            "target": "new",
            "context": {
                "default_reading_ids": suspects.ids,
                "default_decision": decision,
            },
        }

    def _review(self, decision, reason):
        """Accept or reject these suspect readings for ``reason``.

        Accepting a reading rejects the earlier pending ones of its meter (its
        delta, from the last accepted value, covers them) and re-assesses the
        later ones against it.
        """
        self._check_reviewer()
        reason = (reason or "").strip()
        if not reason:
            raise UserError(
                self.env._(
                    "Give the reason of the decision: it is kept in the meter's "
                    "chatter."
                )
            )
        reviewed = self.filtered(lambda r: r.review_state != "suspect")
        if reviewed:
            raise UserError(
                self.env._(
                    "Only suspect readings can be accepted or rejected; already "
                    "plausible or reviewed: %s",
                    ", ".join(reviewed.mapped("display_name")),
                )
            )
        for meter in self.meter_id:
            readings = self.filtered(lambda r, m=meter: r.meter_id == m).sorted("id")
            if decision == "accept":
                for reading in readings:
                    # an earlier acceptance may have re-assessed it already
                    if reading.review_state == "suspect":
                        reading._accept(reason)
            else:
                readings._reject(reason)
        return True

    def _check_reviewer(self):
        """Raise AccessError unless the user is a metering manager: only they
        decide whether a suspect reading is money."""
        if not self.env.su and not self.env.user.has_group(
            "prepaid_metering.group_metering_manager"
        ):
            raise AccessError(
                self.env._(
                    "Only metering managers may accept or reject suspect readings "
                    "(you are %s).",
                    self.env.user.name,
                )
            )
        self.check_access("write")

    def _reject(self, reason):
        """Reject these suspect readings of one meter."""
        meter = self.meter_id
        self._set_review("rejected", reason)
        meter.sudo().suspect_reading_id = self.search(
            [("meter_id", "=", meter.id), ("review_state", "=", "suspect")],
            order="id desc",
            limit=1,
        )
        meter._message_log(
            body=self.env._(
                "Suspect reading(s) of %(dates)s rejected: %(reason)s",
                dates=", ".join(format_datetime(self.env, r.read_at) for r in self),
                reason=reason,
            )
        )

    def _accept(self, reason):
        """Accept one suspect reading: the new baseline, billed from the last
        accepted value."""
        self.ensure_one()
        meter = self.meter_id
        if self.anomaly == "invalid":
            raise UserError(
                self.env._(
                    "The reading of %s holds an invalid value (not a number, "
                    "negative or out of range): it cannot be accepted. Reject it.",
                    format_datetime(self.env, self.read_at),
                )
            )
        self.env.flush_all()
        state = self._load_meter_states(meter.ids)[meter.id]
        last_reading_at = state["last_reading_at"]
        later = self.search(
            [
                ("meter_id", "=", meter.id),
                ("review_state", "=", "suspect"),
                ("id", ">", self.id),
            ],
            order="id",
        )
        raw = (self | later)._raw_values()
        wraps = meter.profile_ids._counter_wraps()
        deltas = self._accepted_deltas(state, raw[self.id], wraps)
        self.search(
            [
                ("meter_id", "=", meter.id),
                ("review_state", "=", "suspect"),
                ("id", "<", self.id),
            ]
        )._set_review(
            "rejected",
            self.env._(
                "Superseded: the later reading of %s was accepted.",
                format_datetime(self.env, self.read_at),
            ),
        )
        self.sudo().write({"review_state": "accepted", "review_note": reason, **deltas})
        state.update(
            self._state_after(state, raw[self.id], self.read_at, {"review_state": None})
        )
        state["suspect_reading_id"] = later._reassess(state, raw, wraps, self)
        state["last_reading_at"] = last_reading_at
        self._write_meter_state(state, COUNTER_COLUMNS)
        used = ", ".join(
            f"{deltas[c.delta]} {c.unit}" for c in COUNTERS if c.delta in deltas
        )
        meter._message_log(
            body=self.env._(
                "Suspect reading of %(at)s accepted (it counts %(used)s from the "
                "last accepted value): %(reason)s",
                at=format_datetime(self.env, self.read_at),
                used=used or "0",
                reason=reason,
            )
        )

    def _accepted_deltas(self, state, values, wraps):
        """Deltas of an accepted reading from the meter's last accepted values
        (no limit: someone vouched for it). A drop cannot be accepted."""
        deltas = {}
        for counter in COUNTERS:
            current = values.get(counter.column)
            if current is None:
                continue
            baseline = state[counter.baseline]
            if baseline is None:
                deltas[counter.delta] = 0.0
                continue
            wrap = wraps.get(counter.column)
            if wrap and counter.column in MULTIPLIED:
                wrap *= state["multiplier"]
            step = counters.classify(baseline, current, math.inf, wrap)
            if step.kind == counters.DROP:
                raise UserError(
                    self.env._(
                        "The reading of %(at)s (%(value)s %(unit)s) is below the "
                        "last accepted value %(baseline)s %(unit)s: it cannot be "
                        "counted. If the meter was replaced, reject it and record "
                        "the replacement (Replace Meter on the meter); otherwise "
                        "reject it.",
                        at=format_datetime(self.env, self.read_at),
                        value=current,
                        unit=counter.unit,
                        baseline=baseline,
                    )
                )
            deltas[counter.delta] = step.delta
        return deltas

    def _reassess(self, state, raw, wraps, accepted):
        """Judge these pending readings again (id order) against the meter
        state after ``accepted``; returns the id of the one left pending last,
        or None."""
        margin = self._plausibility_margin()
        pending = self.browse()
        note = self.env._(
            "Re-assessed as plausible once the reading of %s was accepted.",
            format_datetime(self.env, accepted.read_at),
        )
        for reading in self:
            values = raw[reading.id]
            judged = self._judge(state, values, reading.read_at, wraps, margin)
            if judged["review_state"]:
                reading.sudo().write(
                    {
                        "anomaly": judged["anomaly"],
                        "anomaly_note": judged["anomaly_note"],
                    }
                )
                pending |= reading
            else:
                pending._set_review("rejected", self._cleared_note())
                pending = self.browse()
                reading.sudo().write({**judged, "review_note": note})
            state.update(self._state_after(state, values, reading.read_at, judged))
        return pending[-1:].id or None

    def _raw_values(self):
        """{reading id: {column: value}} of the values read (SQL: the ORM
        shows a value never read as 0.0)."""
        self.env.cr.execute(
            f"""SELECT id, {", ".join(VALUE_COLUMNS)}
                  FROM prepaid_reading WHERE id = ANY(%s)""",  # noqa: S608
            [self.ids],
        )
        return {
            row.pop("id"): {c: v for c, v in row.items() if v is not None}
            for row in self.env.cr.dictfetchall()
        }
