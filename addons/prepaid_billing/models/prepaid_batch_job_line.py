from odoo import fields, models


class PrepaidBatchJobLine(models.Model):
    """One target of a batch task (a meter, or an account for a recharge),
    with its outcome. Written by the task's code only."""

    _name = "prepaid.batch.job.line"
    _description = "Batch Task Line"
    _order = "job_id desc, id"

    job_id = fields.Many2one(
        "prepaid.batch.job", required=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one(related="job_id.company_id", store=True)
    operation = fields.Selection(related="job_id.operation")
    meter_id = fields.Many2one("prepaid.meter", readonly=True, index="btree_not_null")
    account_id = fields.Many2one("prepaid.account", readonly=True)
    room_id = fields.Many2one(related="meter_id.room_id")
    state = fields.Selection(
        [
            ("pending", "Pending"),
            ("sent", "Sent"),
            ("done", "Done"),
            ("failed", "Failed"),
            ("cancelled", "Cancelled"),
        ],
        default="pending",
        required=True,
        readonly=True,
        index=True,
    )
    command_id = fields.Many2one(
        "prepaid.meter.command", readonly=True, index="btree_not_null"
    )
    command_state = fields.Selection(related="command_id.state", string="Command State")
    result = fields.Char(readonly=True)
    error = fields.Char(readonly=True)

    def _compute_display_name(self):
        for line in self:
            line.display_name = (
                line.meter_id.display_name or line.account_id.display_name or ""
            )

    def _mark_sent(self, command_ids):
        """These lines were sent as ``command_ids`` (same order), in one
        statement."""
        if not self:
            return
        self.env.flush_all()
        self.env.cr.execute(
            """
            UPDATE prepaid_batch_job_line l
               SET state = 'sent', command_id = u.command_id, write_uid = %s,
                   write_date = now() AT TIME ZONE 'UTC'
              FROM unnest(%s::int4[], %s::int4[]) AS u(id, command_id)
             WHERE l.id = u.id
            """,
            [self.env.uid, self.ids, list(command_ids)],
        )
        self.invalidate_recordset(["state", "command_id", "write_uid", "write_date"])
        # the tasks' progress counts the lines by state
        self.job_id.invalidate_recordset()
