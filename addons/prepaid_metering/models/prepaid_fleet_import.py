import base64
import logging
from datetime import timedelta
from typing import NamedTuple

import pytz

from odoo import Command, api, fields, models
from odoo.exceptions import UserError
from odoo.modules import module as odoo_module

from ..tools import fleet_import as fi
from ..tools.transactions import start_read_committed

_logger = logging.getLogger(__name__)

#: The model each kind of row creates.
KIND_MODELS = {
    "site": "prepaid.site",
    "building": "prepaid.building",
    "floor": "prepaid.floor",
    "gateway": "prepaid.gateway",
    "room": "prepaid.room",
    "meter": "prepaid.meter",
}
#: External ids of imported rows live under this module, as with Odoo's own
#: import: ``__import__.<ref>`` (so Odoo's import can edit them by id later).
XMLID_MODULE = "__import__"
#: Imports up to this many rows run at once in the user's request; bigger
#: ones run as a background task, piece by piece.
INLINE_ROWS = 2000
#: What the ORM would log for every imported record (chatter notes, tracking,
#: followers): an import of 100,000 meters writes none of it.
MUTE_CONTEXT = {
    "tracking_disable": True,
    "mail_create_nolog": True,
    "mail_create_nosubscribe": True,
    "mail_notrack": True,
}
STATES = [
    ("draft", "Draft"),
    ("invalid", "Errors Found"),
    ("queued", "Importing"),
    ("failed", "Stopped"),
    ("done", "Done"),
]
#: A worker running an import holds it this long past its last piece; one
#: that dies frees it after that and another worker resumes it.
LEASE = timedelta(minutes=10)


class ImportLinks(NamedTuple):
    """Ids of the rows already in the database by ref, profile ids by code."""

    ids: dict
    profiles: dict


class PrepaidFleetImport(models.Model):
    """One import of a fleet table: checked as a whole first, then created in
    committed pieces.

    Each row's ``ref`` becomes the external id of what it creates, in the
    same transaction: a piece is all there or not at all, and a run that
    resumes after a crash skips every row whose external id exists. The table
    is parsed and checked again at every run, so nothing of the plan lives in
    the process between runs.
    """

    _name = "prepaid.fleet.import"
    _description = "Fleet Import"
    _inherit = ["mail.thread"]
    _order = "id desc"

    name = fields.Char(
        required=True, readonly=True, default=lambda self: self.env._("New")
    )
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company
    )
    user_id = fields.Many2one(
        "res.users",
        string="Requested By",
        required=True,
        readonly=True,
        default=lambda self: self.env.user,
        help="The import creates records with this user's access rights.",
    )
    file = fields.Binary(string="File", attachment=True, copy=False)
    filename = fields.Char()
    state = fields.Selection(
        STATES, default="draft", required=True, readonly=True, tracking=True
    )
    rows_total = fields.Integer(string="Rows", readonly=True)
    rows_done = fields.Integer(string="Rows Imported", readonly=True)
    progress = fields.Float(compute="_compute_progress", string="Progress (%)")
    issue_count = fields.Integer(string="Errors", readonly=True)
    issue_text = fields.Text(string="Errors Found", readonly=True)
    summary = fields.Text(readonly=True)
    lease_until = fields.Datetime(readonly=True, copy=False)
    failure = fields.Text(
        readonly=True,
        help="Why the last background run stopped; the next run starts where "
        "the last committed piece ended.",
    )

    @api.depends("rows_total", "rows_done")
    def _compute_progress(self):
        for job in self:
            total = job.rows_total
            job.progress = 100.0 * job.rows_done / total if total else 0.0

    # ------------------------------------------------------------------
    # Reading and checking
    # ------------------------------------------------------------------
    @api.model
    def _import_kinds(self):
        """{kind: fi.Kind}, {kind: model}: what rows may be. Extensions add
        kinds (billing: prepaid accounts)."""
        return dict(fi.KINDS), dict(KIND_MODELS)

    @api.model
    def _import_choices(self):
        Gateway, Room, Meter = (
            self.env["prepaid.gateway"],
            self.env["prepaid.room"],
            self.env["prepaid.meter"],
        )
        return {
            "protocol": {key for key, _label in Gateway._fields["protocol"].selection},
            "room_type": {key for key, _label in Room._fields["room_type"].selection},
            "meter_type": {
                key for key, _label in Meter._fields["meter_type"].selection
            },
            "tz": set(pytz.all_timezones),
        }

    def _read_plan(self):
        """Parse and check the file; return the plan (``plan.issues`` holds
        every problem found)."""
        self.ensure_one()
        if not self.file:
            raise UserError(self.env._("Choose the file to import first."))
        kinds, models_of = self._import_kinds()
        data = base64.b64decode(self.file)
        try:
            table = fi.read_table(data, self.filename or "")
            plan = fi.parse(table, self._import_choices(), kinds)
        except fi.BadValue as exc:
            raise UserError(
                self.env._(
                    "The file cannot be read as CSV (UTF-8) or XLSX: %s",
                    exc.params.get("reason", ""),
                )
            ) from None
        if plan.rows:
            plan.check_links(self._known(plan, models_of))
        return plan

    def _known(self, plan, models_of):
        """What the database holds for the refs and codes of ``plan``."""
        kind_of_model = {model: kind for kind, model in models_of.items()}
        names = {}
        for ref in plan.outside_refs():
            module, _dot, name = ref.rpartition(".")
            names.setdefault(module or XMLID_MODULE, []).append(name)
        refs = {}
        for module, chunk in names.items():
            self.env.cr.execute(
                """SELECT name, model, res_id FROM ir_model_data
                    WHERE module = %s AND name = ANY(%s)""",
                (module, chunk),
            )
            for name, model, res_id in self.env.cr.fetchall():
                ref = name if module == XMLID_MODULE else f"{module}.{name}"
                refs[ref] = (kind_of_model.get(model, model), res_id)
        profiles = (
            self.env["prepaid.register.profile"]
            .with_context(active_test=False)
            .search_fetch([], ["code"])
        )
        gateway_refs = {
            ref: res_id for ref, (kind, res_id) in refs.items() if kind == "gateway"
        }
        ref_of_gateway = {res_id: ref for ref, res_id in gateway_refs.items()}
        addresses = {}
        if gateway_refs:
            self.env.cr.execute(
                """SELECT gateway_id, device_id, id, name FROM prepaid_meter
                    WHERE gateway_id = ANY(%s)""",
                (list(ref_of_gateway),),
            )
            for gateway_id, device_id, meter_id, name in self.env.cr.fetchall():
                addresses.setdefault(ref_of_gateway[gateway_id], {})[device_id] = (
                    meter_id,
                    name,
                )
        return fi.Known(
            refs=refs, profiles=set(profiles.mapped("code")), addresses=addresses
        )

    def _issue_message(self, issue):
        """The sentence for one issue (translated)."""
        p = dict(issue.params)
        _ = self.env._
        messages = {
            fi.NO_ROWS: lambda: _("The file has no rows to import."),
            fi.MISSING_COLUMN: lambda: _(
                "Column %(column)s is missing from the first row.", **p
            ),
            fi.UNKNOWN_KIND: lambda: _(
                "Unknown type %(value)r: use site, building, floor, room, "
                "gateway or meter.",
                value=p["value"],
            ),
            fi.MISSING_VALUE: lambda: _("Column %(column)s is empty.", **p),
            fi.BAD_REF: lambda: _(
                "Reference %(ref)r may only hold letters, digits, - and _ "
                "(at most 64).",
                **p,
            ),
            fi.DUPLICATE_REF: lambda: _(
                "Reference %(ref)s is already used on line %(first)s.", **p
            ),
            fi.REF_TAKEN: lambda: _(
                "Reference %(ref)s already names a record of another kind (%(kind)s).",
                **p,
            ),
            fi.MISSING_PARENT: lambda: _(
                "%(column)s %(ref)s is no %(kind)s of this file or of the database.",
                **p,
            ),
            fi.BAD_NUMBER: lambda: _(
                "Column %(column)s: %(value)r is not a valid number here.", **p
            ),
            fi.BAD_CHOICE: lambda: _(
                "Column %(column)s: %(value)r is not one of the allowed values.",
                column=p["column"],
                value=p["value"],
            ),
            fi.UNKNOWN_PROFILE: lambda: _(
                "Unknown register profile %(code)s (use the profile codes of "
                "Configuration > Register Profiles).",
                **p,
            ),
            fi.DEVICE_ID_RANGE: lambda: _(
                "Device address %(value)s is outside 1-247.", **p
            ),
            fi.DUPLICATE_ADDRESS: lambda: (
                _(
                    "Device address %(device_id)s on gateway %(gateway)s is "
                    "already used by %(other)s (line %(other_line)s).",
                    **p,
                )
                if p.get("other_line")
                else _(
                    "Device address %(device_id)s on gateway %(gateway)s is "
                    "already used by meter %(other)s.",
                    **p,
                )
            ),
        }
        message = messages.get(issue.code)
        return message() if message else issue.code

    def _issue_lines(self, issues):
        return [
            {"line": issue.line, "message": self._issue_message(issue)}
            for issue in issues
        ]

    def _record_check(self, plan):
        """Store the outcome of a check on the task."""
        lines = self._issue_lines(plan.issues)
        self.write(
            {
                "rows_total": len(plan.rows),
                "rows_done": sum(1 for row in plan.rows if row.existing),
                "issue_count": len(lines),
                "issue_text": "\n".join(
                    self.env._("Line %(line)s: %(message)s", **line) for line in lines
                )
                or False,
                "state": "invalid" if lines else "draft",
            }
        )
        return lines

    # ------------------------------------------------------------------
    # Buttons and RPC
    # ------------------------------------------------------------------
    def action_check(self):
        """Check the whole file and list every error; imports nothing."""
        self._check_may_import()
        for job in self:
            job._record_check(job._read_plan())
        return True

    def action_import(self):
        """Check the whole file; when there is no error, import it (small
        files at once, big ones in the background)."""
        self._check_may_import()
        for job in self:
            job._start()
        return True

    def _check_may_import(self):
        for model in KIND_MODELS.values():
            self.env[model].check_access("create")
        if any(job.state in ("queued", "done") for job in self):
            raise UserError(
                self.env._("This import has already been started; make a new one.")
            )

    def _start(self):
        self.ensure_one()
        if self.name == self.env._("New") or not self.name:
            self.name = self.env["ir.sequence"].next_by_code("prepaid.fleet.import")
        plan = self._read_plan()
        issues = self._record_check(plan)
        if issues:
            return issues
        self.state = "queued"
        if len(plan.rows) <= INLINE_ROWS:
            self._run_plan(plan, commit=False)
        else:
            self.env.ref("prepaid_metering.ir_cron_fleet_import")._trigger()
        return []

    @api.model
    def import_fleet(self, file_content, filename, company_id=None):
        """Import a fleet table over RPC.

        ``file_content``: the CSV or XLSX file, base64-encoded; ``filename``
        tells the format (``.csv`` or ``.xlsx``). Returns ``{"id", "state",
        "rows", "errors": [{"line", "message"}]}``: with any error, nothing is
        imported (state ``invalid``); a file of more than 2,000 rows is
        imported in the background (state ``queued``, follow ``rows_done``).
        """
        vals = {"file": file_content, "filename": filename}
        if company_id:
            vals["company_id"] = company_id
        job = self.create(vals)
        job._check_may_import()
        errors = job._start()
        return {
            "id": job.id,
            "state": job.state,
            "rows": job.rows_total,
            "errors": errors,
        }

    # ------------------------------------------------------------------
    # Running
    # ------------------------------------------------------------------
    @api.model
    def _get_piece_rows(self):
        return int(
            self.env["ir.config_parameter"]
            .sudo()
            .get_param("prepaid_metering.import_piece_rows", 5000)
        )

    @api.model
    def _cron_run(self, job_ids=None, commit=None):
        """Run the queued imports (``job_ids``: only these), one committed
        piece at a time. A task is leased to one worker at a time; a worker
        that dies frees it when the lease runs out."""
        if commit is None:
            commit = not odoo_module.current_test
        done = 0
        while True:
            if commit:
                start_read_committed(self.env.cr)
            job = self._claim_next(job_ids)
            if not job:
                return done
            if commit:
                self.env.cr.commit()  # pylint: disable=invalid-commit
            job._run_queued(commit)
            done += 1

    @api.model
    def _claim_next(self, job_ids=None):
        self.env.flush_all()
        now = fields.Datetime.now()
        self.env.cr.execute(
            """
            UPDATE prepaid_fleet_import SET lease_until = %s
             WHERE id = (
                 SELECT id FROM prepaid_fleet_import
                  WHERE state = 'queued'
                    AND (lease_until IS NULL OR lease_until <= %s)
                    AND (%s OR id = ANY(%s))
                  ORDER BY id LIMIT 1
                    FOR NO KEY UPDATE SKIP LOCKED)
            RETURNING id
            """,
            (now + LEASE, now, job_ids is None, list(job_ids or [])),
        )
        row = self.env.cr.fetchone()
        self.invalidate_model(["lease_until"])
        return self.browse(row[0] if row else [])

    def _renew_lease(self):
        self.env.cr.execute(
            "UPDATE prepaid_fleet_import SET lease_until = %s WHERE id = %s",
            (fields.Datetime.now() + LEASE, self.id),
        )
        self.invalidate_recordset(["lease_until"])

    def _run_queued(self, commit):
        """Check again (the database may have changed), then import."""
        job = self.with_user(self.user_id).with_company(self.company_id)
        try:
            plan = job._read_plan()
            if plan.issues:
                job.sudo()._record_check(plan)
                return
            job._run_plan(plan, commit=commit)
        except Exception as exc:
            if not commit:
                raise
            self.env.cr.rollback()
            _logger.info("fleet import %s stopped: %s", self.id, exc)
            self.sudo().write(
                {"state": "failed", "failure": str(exc), "lease_until": False}
            )
            self.env.cr.commit()  # pylint: disable=invalid-commit

    def _run_plan(self, plan, commit):
        """Create the rows not imported yet, piece by piece; each piece
        commits with its external ids and the progress."""
        _kinds, models_of = self._import_kinds()
        # the look-ups of the check, made in this transaction
        known = plan.known or self._known(plan, models_of)
        links = ImportLinks(
            ids={ref: found[1] for ref, found in known.refs.items()},
            profiles=self._profile_ids_by_code(),
        )
        counts = {}
        done = sum(1 for row in plan.rows if row.existing)
        for piece in plan.pieces(self._get_piece_rows()):
            todo = [row for row in piece if not row.existing]
            if not todo:
                continue
            kind = todo[0].kind
            self._create_piece(kind, models_of[kind], todo, links)
            self.env.flush_all()
            # A piece's records are not needed again: keep the cache small.
            self.env.invalidate_all()
            counts[kind] = counts.get(kind, 0) + len(todo)
            done += len(todo)
            self.sudo().write({"rows_done": done, "failure": False})
            self._renew_lease()
            if commit:
                self.env.cr.commit()  # pylint: disable=invalid-commit
            self.env["ir.cron"]._notify_progress(
                done=done, remaining=len(plan.rows) - done
            )
        summary = "\n".join(
            self.env._("%(kind)s: %(count)s created", kind=kind, count=count)
            for kind, count in counts.items()
        )
        self.sudo().write(
            {
                "state": "done",
                "summary": summary or self.env._("Nothing new: every row was there."),
                "lease_until": False,
            }
        )
        self.sudo().message_post(
            body=self.env._(
                "Import finished: %(done)s of %(total)s rows are in the database.",
                done=done,
                total=len(plan.rows),
            )
        )
        if commit:
            self.env.cr.commit()  # pylint: disable=invalid-commit

    def _create_piece(self, kind, model, rows, links):
        """Create one piece's records and their external ids."""
        build = getattr(self, f"_import_vals_{kind}")
        vals_list = [build(row, links) for row in rows]
        records = self.env[model].with_context(**MUTE_CONTEXT).create(vals_list)
        self._insert_xmlids(model, rows, records)
        for row, record in zip(rows, records, strict=True):
            links.ids[row.ref] = record.id
        return records

    def _insert_xmlids(self, model, rows, records):
        """The external ids of one piece's new records, in one INSERT.

        (``ir.model.data._update_xmlids`` would also put every one of them in
        the worker's lookup cache: 200,000 entries for a big fleet, pushing
        out what the cache is for.) A ref that got an external id since the
        check (another import of the same rows) stops the piece: its records
        roll back with it."""
        refs = [row.ref for row in rows]
        uid = self.env.uid
        self.env.cr.execute(
            """
            INSERT INTO ir_model_data
                   (module, name, model, res_id, noupdate, create_uid, write_uid)
            SELECT %s, t.name, %s, t.res_id, false, %s, %s
              FROM unnest(%s::varchar[], %s::int[]) AS t(name, res_id)
                ON CONFLICT (module, name) DO NOTHING
            RETURNING name
            """,
            (XMLID_MODULE, model, uid, uid, refs, records.ids),
        )
        inserted = {name for (name,) in self.env.cr.fetchall()}
        taken = [ref for ref in refs if ref not in inserted]
        if taken:
            raise UserError(
                self.env._(
                    "Reference %(ref)s was imported meanwhile (another import "
                    "of the same rows?): this import stops here; start it again "
                    "to import the rows that are not there yet.",
                    ref=taken[0],
                )
            )

    def _import_vals_site(self, row, links):
        vals = dict(row.values, company_id=self.company_id.id)
        vals.setdefault("tz", self.user_id.tz or "UTC")
        return vals

    def _import_vals_building(self, row, links):
        return dict(row.values, site_id=links.ids[row.parent])

    def _import_vals_floor(self, row, links):
        return dict(row.values, building_id=links.ids[row.parent])

    def _import_vals_gateway(self, row, links):
        return dict(row.values, site_id=links.ids[row.parent])

    def _import_vals_room(self, row, links):
        return dict(row.values, floor_id=links.ids[row.parent])

    def _import_vals_meter(self, row, links):
        vals = dict(row.values, gateway_id=links.ids[row.parent])
        codes = vals.pop("profiles")
        vals["profile_ids"] = [Command.set([links.profiles[code] for code in codes])]
        room = vals.pop("room", None)
        if room:
            vals["room_id"] = links.ids[room]
        return vals

    def _profile_ids_by_code(self):
        profiles = (
            self.env["prepaid.register.profile"]
            .with_context(active_test=False)
            .search_fetch([], ["code"])
        )
        return {profile.code: profile.id for profile in profiles}
