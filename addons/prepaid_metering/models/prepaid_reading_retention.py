"""Raw readings are kept for a number of months, then removed in pieces.

Part of ``prepaid.reading``. Which readings are safe to remove is one rule
with three hooks: :meth:`_retention_done_sql` (what later work has used up:
billing and the daily aggregates override it), :meth:`_retention_released_references`
(references to a reading that do not keep it) and
:meth:`_retention_before_delete` (what a piece keeps of its readings before
they go).
"""

import logging
from datetime import datetime

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.modules import module as odoo_module
from odoo.tools import SQL, format_date

from ..tools import retention

_logger = logging.getLogger(__name__)

RETENTION_PARAM = "prepaid_metering.reading_retention_months"
PIECE_PARAM = "prepaid_metering.reading_purge_piece"
#: Set by the purge: readings of local days before this date may be gone.
REMOVED_BEFORE_PARAM = "prepaid_metering.readings_removed_before"
DEFAULT_PIECE = 10000
#: Before any reading.
EPOCH = datetime(1970, 1, 1)
#: Meters whose old readings are looked for together.
METER_CHUNK = 500


class PrepaidReading(models.Model):
    _inherit = "prepaid.reading"

    # ------------------------------------------------------------------
    # Hooks
    # ------------------------------------------------------------------
    @api.model
    def _retention_done_sql(self, meter):
        """SQL: the reading id of the prepaid_meter row ``meter`` below which
        its readings were used by everything that needs them (this reading
        itself is kept). Metering alone: its last reading."""
        return SQL(
            "(SELECT max(h.id) FROM prepaid_reading h WHERE h.meter_id = %s)",
            SQL.identifier(meter, "id"),
        )

    @api.model
    def _retention_released_references(self):
        """``{(table, column)}``: foreign keys to prepaid_reading that do not
        keep a reading. Every other reference keeps the reading it points
        at (a module that adds one needs nothing more to be safe)."""
        # the review wizard's selection (a transient record)
        return {
            (
                "prepaid_reading_prepaid_reading_review_wizard_rel",
                "prepaid_reading_id",
            )
        }

    @api.model
    def _retention_before_delete(self, reading_ids):
        """Keep what must outlive the readings ``reading_ids`` (about to be
        deleted, in this transaction)."""

    # ------------------------------------------------------------------
    # The job
    # ------------------------------------------------------------------
    @api.model
    def _retention_months(self):
        """The retention setting; ``None``: unreadable (nothing is removed)."""
        value = self.env["ir.config_parameter"].sudo().get_param(RETENTION_PARAM)
        return retention.months_setting(value)

    @api.model
    def _retention_cutoffs(self, now):
        """``{tz: naive UTC cutoff}`` for the time zones of the sites (and
        UTC, for meters without a site)."""
        months = self._retention_months()
        if months is None:
            return {}
        self.env.cr.execute("SELECT DISTINCT tz FROM prepaid_site WHERE tz IS NOT NULL")
        zones = [tz for (tz,) in self.env.cr.fetchall()] + ["UTC"]
        return retention.cutoffs(now, zones, months)

    @api.model
    def _cron_purge_old(self, commit=None, meters=None, now=None, piece=None):
        """Remove raw readings older than the retention (Settings, months in
        the site's local calendar), piece by piece, each piece committed;
        returns readings removed.

        Only readings every later job is done with go: below the meter's
        :meth:`_retention_done_sql` watermark (never its last reading, never
        one still to bill or to add to the daily use), not pending review,
        and not referenced by any record (bills, events, ...) except through
        :meth:`_retention_released_references`. A crash loses at most the
        piece in progress; the next run simply goes on (what is left is
        what is still to remove).

        ``meters``: only theirs (a test's own); ``now``: the time the
        retention counts from (default: now).
        """
        if commit is None:
            commit = not odoo_module.current_test
        months = self._retention_months()
        if months is None:
            _logger.warning(
                "reading retention: the setting %s is not a number of months; "
                "nothing removed",
                RETENTION_PARAM,
            )
            return 0
        now = now or fields.Datetime.now()
        cutoffs = self._retention_cutoffs(now)
        first_kept = max(retention.first_kept_day(now, tz, months) for tz in cutoffs)
        piece = piece or int(
            self.env["ir.config_parameter"].sudo().get_param(PIECE_PARAM, DEFAULT_PIECE)
        )
        self.env.flush_all()
        keep = self._retention_keep_sql("r")
        done, after = 0, 0
        while True:
            meter_ids = self._retention_meters(after, meters)
            if not meter_ids:
                break
            after = meter_ids[-1]
            # Where each meter's next piece starts (read_at): the rows a
            # piece deleted stay in the index until VACUUM, so a scan from
            # the oldest each time would grow with every piece.
            starts = dict.fromkeys(meter_ids, EPOCH)
            while True:
                rows = self._retention_candidates(cutoffs, starts, piece, keep)
                ids = [row[0] for row in rows if not row[3]]
                for _id, meter_id, read_at, _referenced in rows:
                    starts[meter_id] = max(starts[meter_id], read_at)
                if ids:
                    self._retention_delete(ids, first_kept)
                    done += len(ids)
                if commit:
                    # Each piece is committed: a crash or a timeout keeps
                    # the pieces removed, and the next run starts from what
                    # is left.
                    self.env.cr.commit()  # pylint: disable=invalid-commit
                self.env["ir.cron"]._notify_progress(done=done, remaining=0)
                if len(rows) < piece:
                    break
        if done:
            _logger.info("reading retention: %s readings removed", done)
        return done

    @api.model
    def _retention_meters(self, after_id, meters=None, limit=METER_CHUNK):
        """The next ``limit`` meter ids after ``after_id`` (archived ones
        too: their readings age as well)."""
        scope = SQL("AND id = ANY(%s)", meters.ids) if meters is not None else SQL()
        self.env.cr.execute(
            SQL(
                "SELECT id FROM prepaid_meter WHERE id > %s %s ORDER BY id LIMIT %s",
                after_id,
                scope,
                limit,
            )
        )
        return [meter_id for (meter_id,) in self.env.cr.fetchall()]

    @api.model
    def _retention_keep_sql(self, alias):
        """SQL: the prepaid_reading row ``alias`` is referenced by no record
        through a foreign key that keeps it (every one but
        :meth:`_retention_released_references`). One anti-join each: an
        index on the referencing column or one pass over its table."""
        self.env.cr.execute(
            """
            SELECT cl.relname, a.attname
              FROM pg_constraint c
              JOIN pg_class cl ON cl.oid = c.conrelid
              JOIN pg_attribute a ON a.attrelid = c.conrelid
                                 AND a.attnum = c.conkey[1]
             WHERE c.contype = 'f' AND c.confrelid = 'prepaid_reading'::regclass
             ORDER BY 1, 2
            """
        )
        released = self._retention_released_references()
        conditions = [
            SQL(
                "NOT EXISTS (SELECT 1 FROM %s k WHERE k.%s = %s)",
                SQL.identifier(table),
                SQL.identifier(column),
                SQL.identifier(alias, "id"),
            )
            for table, column in self.env.cr.fetchall()
            if (table, column) not in released
        ]
        return SQL(" AND ").join(conditions) if conditions else SQL("TRUE")

    @api.model
    def _retention_candidates(self, cutoffs, starts, limit, keep):
        """Up to ``limit`` readings old enough and used up of the meters of
        ``starts`` (``{meter id: read_at}``: each after that time, oldest
        first; one at the very time of the last one seen waits for the next
        run), as ``(id, meter id, read_at, kept)``: ``kept`` when a record
        still points at it (one statement)."""
        if not cutoffs:
            return []
        self.env.cr.execute(
            SQL(
                """
            SELECT r.id, r.meter_id, r.read_at, NOT (%s)
              FROM (SELECT m.id, m.suspect_reading_id AS suspect, c.cutoff,
                           k.start, %s AS done
                      FROM unnest(%s::int4[], %s::timestamp[]) AS k(meter_id, start)
                      JOIN prepaid_meter m ON m.id = k.meter_id
                      LEFT JOIN prepaid_site s ON s.id = m.site_id
                      JOIN unnest(%s::text[], %s::timestamp[]) AS c(tz, cutoff)
                           ON c.tz = COALESCE(s.tz, 'UTC')) m
             CROSS JOIN LATERAL (
                   SELECT r.id, r.meter_id, r.read_at
                     FROM prepaid_reading r
                    WHERE r.meter_id = m.id AND r.read_at > m.start
                      AND r.read_at < m.cutoff AND r.id < m.done
                      AND r.review_state IS DISTINCT FROM 'suspect'
                      AND r.id IS DISTINCT FROM m.suspect
                    ORDER BY r.read_at
                    LIMIT %s) r
             LIMIT %s
            """,
                keep,
                self._retention_done_sql("m"),
                list(starts),
                list(starts.values()),
                list(cutoffs),
                list(cutoffs.values()),
                limit,
                limit,
            )
        )
        return self.env.cr.fetchall()

    @api.model
    def _retention_delete(self, ids, first_kept):
        """Delete the readings ``ids`` (set-based, past the ORM's guard on
        billed readings: their evidence was kept by the hooks first) and
        remember that the local days before ``first_kept`` may miss
        readings."""
        self._retention_before_delete(ids)
        self.env.cr.execute("DELETE FROM prepaid_reading WHERE id = ANY(%s)", [ids])
        Param = self.env["ir.config_parameter"].sudo()
        before = Param.get_param(REMOVED_BEFORE_PARAM)
        if not before or fields.Date.to_date(before) < first_kept:
            Param.set_param(REMOVED_BEFORE_PARAM, fields.Date.to_string(first_kept))
        self.invalidate_model()

    @api.model
    def _check_readings_kept(self, day, what):
        """Raise when readings of the local ``day`` may have been removed
        by the retention: ``what`` cannot be made from them."""
        before = self.env["ir.config_parameter"].sudo().get_param(REMOVED_BEFORE_PARAM)
        if before and fields.Date.to_date(day) < fields.Date.to_date(before):
            raise UserError(
                self.env._(
                    "%(what)s needs the readings from %(day)s on, but the raw "
                    "readings before %(before)s were removed after the retention "
                    "period (Settings > Prepaid Metering > Reading retention). "
                    "Choose %(before)s or a later day.",
                    what=what,
                    day=format_date(self.env, fields.Date.to_date(day)),
                    before=format_date(self.env, fields.Date.to_date(before)),
                )
            )
