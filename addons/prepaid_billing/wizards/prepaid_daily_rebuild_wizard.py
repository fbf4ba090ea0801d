import logging

from odoo import Command, api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tools import format_date

from ..models.prepaid_batch_job import OPERATION_GROUPS
from ..tools import rebuild

_logger = logging.getLogger(__name__)

#: Who may rebuild: the group of the batch task doing the same.
BILLING_MANAGER = OPERATION_GROUPS["rebuild_daily"]


class PrepaidDailyRebuildWizard(models.TransientModel):
    """Rebuild the daily use of a scope of meters over a range of local days
    from their readings (after a reading was corrected or accepted late, or
    rows were damaged): each day becomes what billing it afresh adds up.

    Billing managers only (access rights and a check in the action). Any
    range up to today is allowed: the work is cut into pieces of at most
    500 meters and about 500 meter-days (``tools/rebuild``), each piece in a
    transaction of its own, so no transaction holds a year of a whole site's
    readings nor keeps its days locked from billing for long. A piece is a
    complete rebuild of its meters and days: if the request stops half-way,
    the pieces done are right and running the wizard again finishes the job.
    """

    _name = "prepaid.daily.rebuild.wizard"
    _description = "Rebuild Daily Use"

    # Meters and meter-days per _rebuild call (tests make them small).
    _rebuild_meters_per_piece = rebuild.METERS_PER_PIECE
    _rebuild_meter_days_per_piece = rebuild.METER_DAYS_PER_PIECE
    # Above this many meter-days the rebuild is a batch task (the cron does
    # it, with progress and a line per meter), not the browser's request.
    _inline_meter_days = 20000

    date_from = fields.Date(
        string="From",
        required=True,
        default=lambda self: fields.Date.context_today(self).replace(day=1),
        help="First local day (site time zone) to rebuild.",
    )
    date_to = fields.Date(
        string="To",
        required=True,
        default=fields.Date.context_today,
        help="Last local day to rebuild (included); a day after today counts as today.",
    )
    scope = fields.Selection(
        [
            ("company", "All meters of the company"),
            ("site", "A site"),
            ("building", "Buildings"),
            ("meter", "Chosen meters"),
        ],
        required=True,
        default="company",
        help="Archived meters are rebuilt only when chosen one by one.",
    )
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company
    )
    site_id = fields.Many2one("prepaid.site")
    building_ids = fields.Many2many("prepaid.building", string="Buildings")
    meter_ids = fields.Many2many("prepaid.meter", string="Meters")

    @api.constrains("date_from", "date_to")
    def _check_dates(self):
        for wizard in self:
            if wizard.date_to < wizard.date_from:
                raise ValidationError(
                    self.env._(
                        "The last day (%(date_to)s) is before the first day "
                        "(%(date_from)s): swap them.",
                        date_from=format_date(self.env, wizard.date_from),
                        date_to=format_date(self.env, wizard.date_to),
                    )
                )

    def _check_manager(self):
        """AccessError unless the user is a billing manager: a rebuild
        rewrites the figures every report and bill is made of."""
        if self.env.su or self.env.user.has_group(BILLING_MANAGER):
            return
        raise AccessError(
            self.env._(
                "Only members of the group %(group)s may rebuild the daily use "
                "(you are %(user)s).",
                group=self.env.ref(BILLING_MANAGER).full_name,
                user=self.env.user.name,
            )
        )

    def _get_meter_domain(self):
        """The meters of the chosen scope (active ones unless chosen one by
        one); the user's record rules apply on top."""
        self.ensure_one()
        if self.scope == "company":
            return [("company_id", "=", self.company_id.id)]
        if self.scope == "site":
            if not self.site_id:
                raise UserError(
                    self.env._("Choose the site whose daily use to rebuild.")
                )
            return [("site_id", "=", self.site_id.id)]
        if self.scope == "building":
            if not self.building_ids:
                raise UserError(self.env._("Choose at least one building to rebuild."))
            return [("building_id", "in", self.building_ids.ids)]
        if not self.meter_ids:
            raise UserError(self.env._("Choose at least one meter to rebuild."))
        return [("id", "in", self.meter_ids.ids), ("active", "in", (True, False))]

    def _get_meters(self):
        """The meters to rebuild, in id order; UserError when there is none."""
        if self.scope == "meter":
            self.meter_ids.check_access("read")
        meters = self.env["prepaid.meter"].search(self._get_meter_domain(), order="id")
        if not meters:
            scopes = dict(self._fields["scope"]._description_selection(self.env))
            raise UserError(
                self.env._(
                    "No meter to rebuild in the chosen scope (%(scope)s): choose "
                    "another company, site, buildings or meters.",
                    scope=scopes[self.scope],
                )
            )
        return meters

    def action_rebuild(self):
        """Rebuild the scope's days, piece by piece; a notification (and the
        server log) tells how many days of how many meters were written."""
        self.ensure_one()
        self._check_manager()
        meters = self._get_meters()
        Daily = self.env["prepaid.daily.usage"]
        today = Daily._local_today(meters)
        if self.date_from > today:
            raise UserError(
                self.env._(
                    "The first day (%(date_from)s) is in the future: there is "
                    "nothing to rebuild after today (%(today)s).",
                    date_from=format_date(self.env, self.date_from),
                    today=format_date(self.env, today),
                )
            )
        date_to = min(self.date_to, today)
        if (
            len(meters) * ((date_to - self.date_from).days + 1)
            > self._inline_meter_days
        ):
            return self._rebuild_in_background(meters, date_to)
        written = Daily._rebuild_in_pieces(
            meters.ids,
            self.date_from,
            date_to,
            meters_per_piece=self._rebuild_meters_per_piece,
            meter_days_per_piece=self._rebuild_meter_days_per_piece,
        )
        _logger.info(
            "Daily use rebuilt by %s: %d meters, %s to %s, %d days written",
            self.env.user.login,
            len(meters),
            self.date_from,
            date_to,
            written,
        )
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": self.env._("Daily use rebuilt"),
                "message": self.env._(
                    "%(days)s days of %(meters)s meters rewritten from their "
                    "readings (%(date_from)s to %(date_to)s).",
                    days=written,
                    meters=len(meters),
                    date_from=format_date(self.env, self.date_from),
                    date_to=format_date(self.env, date_to),
                ),
                "type": "success",
                "sticky": False,
                "next": {"type": "ir.actions.act_window_close"},
            },
        }

    def _rebuild_in_background(self, meters, date_to):
        """A batch task rebuilding ``meters`` (run now), opened for the user
        to follow."""
        job = self.env["prepaid.batch.job"].create(
            {
                "operation": "rebuild_daily",
                "company_id": self.company_id.id,
                "target_type": "meter",
                "meter_ids": [Command.set(meters.ids)],
                "rebuild_from": self.date_from,
                "rebuild_to": date_to,
            }
        )
        job.action_run_now()
        return {
            "type": "ir.actions.act_window",
            "name": job.name,
            "res_model": "prepaid.batch.job",
            "res_id": job.id,
            "view_mode": "form",
            "target": "current",
        }
