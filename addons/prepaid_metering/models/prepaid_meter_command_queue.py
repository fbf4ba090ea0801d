import logging
import time
from datetime import timedelta
from typing import NamedTuple

import psycopg2.errors

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.modules import module as odoo_module

from ..drivers import bus
from ..tools.constants import SWITCH_COMMANDS
from ..tools.transactions import own_cursor, start_read_committed
from .prepaid_meter_command_wire import Outcome

_logger = logging.getLogger(__name__)

RETRY_DELAY = timedelta(seconds=30)
#: Queued commands that may be sent now (SQL on ``c``). With ``ids`` (Send
#: Now) only those, whatever their retry time; with ``gateways`` only those on
#: these gateways. A counted record waits for the older unsettled records of
#: its meter: two records are never in flight on one meter.
SENDABLE = """
    c.state = 'queued'
    AND (%(ids)s::int4[] IS NOT NULL OR c.next_attempt_at IS NULL
         OR c.next_attempt_at <= %(now)s)
    AND (%(ids)s::int4[] IS NULL OR c.id = ANY(%(ids)s::int4[]))
    AND (%(gateways)s::int4[] IS NULL OR c.gateway_id = ANY(%(gateways)s::int4[]))
    AND NOT (c.command_type = 'record_write' AND EXISTS (
        SELECT 1 FROM prepaid_meter_command o
         WHERE o.meter_id = c.meter_id
           AND o.command_type = 'record_write'
           AND o.state IN ('queued', 'sending')
           AND o.id < c.id))
"""
#: Commands a dead worker left sending (SQL on ``c``).
STUCK = "c.state = 'sending' AND c.claimed_at <= %(before)s"


def _unexpected(env, err, final=True):
    """The outcome of a command that raised what nobody expected."""
    return Outcome(False, env._("Unexpected error: %s", repr(err)), final=final)


class Progress:
    """How many claimed commands are settled, told to the cron runner."""

    def __init__(self, total):
        self.total, self.done = total, 0

    def step(self, env, count):
        self.done += count
        env["ir.cron"]._notify_progress(
            done=self.done, remaining=self.total - self.done
        )


class Claim(NamedTuple):
    """What a worker took: commands marked sending (their buses are held
    for it), and the gateways whose bus another worker holds (their commands
    stay for later)."""

    commands: models.BaseModel
    busy: models.BaseModel


class Sent(NamedTuple):
    """What :meth:`~PrepaidMeterCommandQueue.send_and_wait` gave: the
    command, its committed state (still "queued" or "sending" when the wait
    ended first), why it failed, and its gateway when its bus was busy (the
    command stays queued for the command job)."""

    command: models.BaseModel
    state: str
    error: str | None
    busy: models.BaseModel


class PrepaidMeterCommandQueue(models.AbstractModel):
    """How meter commands are claimed and sent: one worker at a time on a
    bus (the gateway's bus claim, shared with polling), one attempt at a
    time per command, each outcome kept whatever happens to the next one
    (mixed into ``prepaid.meter.command``)."""

    _name = "prepaid.meter.command.queue"
    _description = "Meter Command: queue and sending"

    # ------------------------------------------------------------------
    # Claims
    # ------------------------------------------------------------------
    @api.model
    def _claim_queued(self, limit, ids=None, gateways=None):
        """Claim up to ``limit`` sendable queued commands (``ids``: only
        those; ``gateways``: only on those) with their buses; returns a
        :class:`Claim`."""
        return self._claim_with_buses(
            SENDABLE, self._sendable_params(ids, gateways), limit
        )

    @api.model
    def _sendable_params(self, ids=None, gateways=None):
        """The parameters of :data:`SENDABLE` (``ids``, ``gateways``: only
        those; None: every command)."""
        return {
            "ids": ids,
            "gateways": gateways.ids if gateways is not None else None,
            "now": fields.Datetime.now(),
        }

    @api.model
    def _claim_stuck(self, before, limit):
        """Claim up to ``limit`` commands sending since before ``before``
        and not held by a live worker, with their buses."""
        return self._claim_with_buses(STUCK, {"before": before}, limit)

    @api.model
    def _claim_with_buses(self, condition, params, limit):
        """Claim the commands matching ``condition`` (SQL on ``c``) whose
        bus this worker can take, and mark them sending.

        First the buses of the gateways with matching commands, oldest
        command first (at most ``limit`` gateways, so that one busy bus does
        not hold up the others), then the commands on the buses taken
        (``FOR NO KEY UPDATE SKIP LOCKED``: a command another worker holds is left to
        it). Buses left without a command are released at once.
        """
        self.env.flush_all()
        params = dict(params, limit=limit)
        self.env.cr.execute(
            f"""
            SELECT c.gateway_id FROM prepaid_meter_command c
             WHERE {condition}
             GROUP BY c.gateway_id
             ORDER BY min(c.id)
             LIMIT %(limit)s
            """,
            params,
        )
        Gateway = self.env["prepaid.gateway"]
        wanted = Gateway.browse([row[0] for row in self.env.cr.fetchall()])
        buses = wanted._claim_bus("command")
        commands = self.browse()
        if buses:
            self.env.cr.execute(
                f"""
                SELECT c.id FROM prepaid_meter_command c
                 WHERE {condition}
                   AND c.gateway_id = ANY(%(buses)s)
                 ORDER BY c.id
                 LIMIT %(limit)s
                   FOR NO KEY UPDATE OF c SKIP LOCKED
                """,
                dict(params, buses=buses.ids),
            )
            commands = self.browse([row[0] for row in self.env.cr.fetchall()])
        (buses - commands.gateway_id)._release_bus("command")
        commands._mark_sending()
        return Claim(commands, wanted - buses)

    def _mark_sending(self):
        """Record the claim: state sending, one more attempt, since now."""
        if not self:
            return
        self.env.cr.execute(
            """
            UPDATE prepaid_meter_command
               SET state = 'sending', attempts = COALESCE(attempts, 0) + 1,
                   claimed_at = %s,
                   write_uid = %s, write_date = now() at time zone 'UTC'
             WHERE id = ANY(%s)
            """,
            (fields.Datetime.now(), self.env.uid, self.ids),
        )
        self.invalidate_recordset(["state", "attempts", "claimed_at"])

    # ------------------------------------------------------------------
    # Workers
    # ------------------------------------------------------------------
    def _trigger_processing(self):
        cron = self.env.ref(
            "prepaid_metering.ir_cron_meter_commands", raise_if_not_found=False
        )
        if cron:
            cron.sudo()._trigger()

    @api.model
    def _trigger_for_gateways(self, gateways):
        """Wake the command job up when commands wait on ``gateways`` (their
        bus was just freed)."""
        self.env.flush_all()
        self.env.cr.execute(
            """SELECT 1 FROM prepaid_meter_command
                WHERE state = 'queued' AND gateway_id = ANY(%s) LIMIT 1""",
            [gateways.ids],
        )
        if self.env.cr.fetchone():
            self._trigger_processing()

    @api.model
    def _cron_process(self, commit=None, limit=100, gateways=None):
        """Send queued commands; several workers never send the same one,
        and never talk on a bus another worker (a poll) holds. Returns how
        many were claimed.

        ``gateways``: only the commands on those (a test's own); the cron
        sends every command.
        """
        if commit is None:
            commit = not odoo_module.current_test
        if commit:
            start_read_committed(self.env.cr)
        commands = self._claim_queued(limit, gateways=gateways).commands
        if commit:
            # Deliberate: make the claims visible and release the row locks
            # before talking to slow meters.
            start_read_committed(self.env.cr)
        commands.with_context(prepaid_read_committed=commit)._execute_claimed(commit)
        # More waiting (a batch task of a thousand meters): Odoo runs the job
        # again at once instead of at its next interval.
        self.env["ir.cron"]._notify_progress(
            done=len(commands),
            remaining=self._count_sendable(gateways) if commands else 0,
        )
        return len(commands)

    @api.model
    def _count_sendable(self, gateways=None):
        """How many queued commands are due now (``gateways``: on those)."""
        self.env.flush_all()
        self.env.cr.execute(
            f"SELECT count(*) FROM prepaid_meter_command c WHERE {SENDABLE}",  # noqa: S608
            self._sendable_params(gateways=gateways),
        )
        return self.env.cr.fetchone()[0]

    @api.model
    def _process_in_own_cursor(self, ids):
        """Claim and send ``ids`` in a transaction of their own, committing
        as the command job does; returns the :class:`Claim` (in this
        environment): the commands this worker sent, and the gateways whose
        bus was busy (their commands stay queued for the job).

        A lock held too long (by this very caller's transaction, or another
        worker) is a :class:`UserError`, never a wait: what was committed
        stays, the command job and the recovery job finish the rest."""
        self.env.flush_all()
        registry = self.env.registry
        try:
            with own_cursor(registry, read_committed=True) as cr:
                Command = self.with_env(self.env(cr=cr))
                claim = Command._claim_queued(len(ids), ids=ids)
                # Deliberate: the claim is published before the meter is
                # spoken to.
                cr.commit()  # pylint: disable=invalid-commit
                claim.commands._execute_claimed(commit=True)
                sent, busy = claim.commands.ids, claim.busy.ids
        except psycopg2.errors.LockNotAvailable as err:
            raise UserError(
                self.env._(
                    "The meter command could not be sent now: another "
                    "transaction holds a record it needs. Nothing is lost: the "
                    "command job sends or settles it in a moment; follow it "
                    "under Commands."
                )
            ) from err
        self.env.invalidate_all()
        return Claim(self.browse(sent), self.env["prepaid.gateway"].browse(busy))

    @api.model
    def _create_in_own_cursor(self, vals):
        """Create a command and commit it at once, in a transaction of its
        own (outbox): whatever happens to the caller's transaction, the
        command exists. A ``request_key`` already used returns that command.
        Returns the command id."""
        key = vals.get("request_key")
        self.env.flush_all()
        try:
            with own_cursor(self.env.registry) as cr:
                Command = self.with_env(self.env(cr=cr))
                existing = key and Command.search([("request_key", "=", key)], limit=1)
                if existing:
                    return existing.id
                try:
                    with cr.savepoint():
                        command = Command.create(vals)
                except psycopg2.errors.UniqueViolation:
                    # Another click of the same request won the race.
                    return Command.search([("request_key", "=", key)], limit=1).id
                command._trigger_processing()
                return command.id
        except psycopg2.errors.LockNotAvailable as err:
            raise UserError(
                self.env._(
                    "The meter command could not be queued now: another "
                    "transaction holds a record it needs. Nothing was queued; "
                    "try again in a moment."
                )
            ) from err

    @api.model
    def send_and_wait(self, vals, timeout):
        """Create the command ``vals`` and commit it in a transaction of its
        own (an outbox: a ``request_key`` already used gives that command,
        never a second one), send it at once as the command job would, and
        wait up to ``timeout`` seconds until it is settled.

        The caller's transaction stays open and sees nothing of it: what the
        meter did is what the command says. Billing and WeChat use this for
        a meter-side recharge; they never talk to the meter themselves.

        :returns: a :class:`Sent`
        """
        command_id = self._create_in_own_cursor(vals)
        busy = self._process_in_own_cursor([command_id]).busy
        state = self._wait_settled([command_id], timeout)[command_id]
        error = self._read_error(command_id) if state == "failed" else None
        return Sent(self.browse(command_id), state, error, busy)

    @api.model
    def _read_error(self, command_id):
        """The committed reason a command failed (read from a fresh
        transaction)."""
        with own_cursor(self.env.registry) as cr:
            cr.execute(
                "SELECT last_error FROM prepaid_meter_command WHERE id = %s",
                [command_id],
            )
            return cr.fetchone()[0]

    @api.model
    def _read_states(self, ids):
        """{id: state} as committed now (read from a fresh transaction)."""
        with own_cursor(self.env.registry) as cr:
            cr.execute(
                "SELECT id, state FROM prepaid_meter_command WHERE id = ANY(%s)",
                [list(ids)],
            )
            return dict(cr.fetchall())

    @api.model
    def _wait_settled(self, ids, timeout):
        """Wait up to ``timeout`` seconds until the commands are settled;
        returns their committed states."""
        deadline = time.monotonic() + timeout
        while True:
            states = self._read_states(ids)
            pending = [s for s in states.values() if s in ("queued", "sending")]
            if not pending or time.monotonic() >= deadline:
                return states
            time.sleep(0.25)

    def _not_sent_message(self, busy):
        """Why these commands were not sent now: the bus of their gateway
        is busy (``busy``), or another worker sends them."""
        on_busy = self.filtered(lambda c: c.gateway_id in busy)
        lines = [
            self.env._(
                "The bus of gateway %(gateway)s is busy (%(activity)s): the "
                "command is queued and will be sent in a moment.",
                gateway=gateway.name,
                activity=activity,
            )
            for gateway, activity in on_busy.gateway_id._bus_activity().items()
        ]
        if self - on_busy:
            lines.append(
                self.env._(
                    "These commands are being sent by another worker; their "
                    "outcome shows here in a moment."
                )
            )
        return "\n".join(lines)

    # ------------------------------------------------------------------
    # Sending
    # ------------------------------------------------------------------
    def _commit(self):
        """Commit a step of sending (an outcome, a claim). The command and
        recovery jobs (context ``prepaid_read_committed``) run the next
        transaction in READ COMMITTED: polling and billing, on other workers
        or hosts, update the same meter and account rows meanwhile, and a
        follow-up in REPEATABLE READ would fail on them with a serialization
        error. Send Now keeps its request's isolation."""
        if self.env.context.get("prepaid_read_committed"):
            start_read_committed(self.env.cr)
        else:
            self.env.cr.commit()  # pylint: disable=invalid-commit

    def _execute_claimed(self, commit):
        """Send claimed commands; each command's outcome is kept (committed
        when ``commit``) whatever happens to the next one, and each bus is
        released after its last command.

        Relay and valve commands go out together (``_execute_switches``: the
        buses in parallel, each bus's commands in sequence on one connection);
        the others (counted records, parameters, reads) one at a time, bus by
        bus, each with its own commit.
        """
        switches = self.filtered(lambda c: c.command_type in SWITCH_COMMANDS)
        progress = Progress(len(self))
        for gateway, commands in (self - switches).grouped("gateway_id").items():
            for command in commands:
                gateway._renew_bus("command")
                command._execute_one(commit)
                if commit:
                    # Deliberate: keep each command's outcome even if a later
                    # one fails or the worker is killed.
                    self._commit()
                progress.step(self.env, 1)
            if gateway not in switches.gateway_id:
                gateway._release_bus("command")
                if commit:
                    self._commit()
        switches._execute_switches(commit, progress)

    def _execute_switches(self, commit, progress):
        """Send relay and valve commands: every bus at once, each bus's
        commands one after another over one connection, and record the
        outcomes in groups as they come back (the outcomes, commit, their
        follow-ups, commit). Switch commands are idempotent: a worker killed
        with commands on the wire leaves them sending, and the recovery job
        reads back and resends them."""
        if not self:
            return
        jobs = self._switch_jobs(commit, progress)
        buses, left = [], {}
        for gateway, commands in self.grouped("gateway_id").items():
            gateway_jobs = [jobs[c.id] for c in commands if c.id in jobs]
            if gateway_jobs:
                buses.append((gateway._driver_endpoint(), gateway_jobs))
                left[gateway.id] = len(gateway_jobs)
            else:
                gateway._release_bus("command")
        on_wire = self.browse(list(jobs))
        on_wire._lock()
        try:
            for results in bus.iter_writes(buses):
                settled = self.browse([job.key for job, _result in results])
                on_wire -= settled
                self._record_outcomes(
                    [
                        (command, command._switch_outcome(job, result))
                        for command, (job, result) in zip(settled, results, strict=True)
                    ],
                    commit,
                )
                left = self._hold_buses(left, settled)
                if commit:
                    self._commit()
                    # The commands still on the wire stay held for this worker.
                    on_wire._lock()
                progress.step(self.env, len(settled))
        except Exception as err:  # noqa: BLE001 - the claimed commands go on
            _logger.exception("sending %s switch commands failed", len(on_wire))
            if commit:
                self.env.cr.rollback()
            failed = [(c, _unexpected(self.env, err, final=False)) for c in on_wire]
            self._record_outcomes(failed, commit)
            self.env["prepaid.gateway"].browse(list(left))._release_bus("command")
            if commit:
                self._commit()

    def _switch_jobs(self, commit, progress):
        """{command id: driver write} of these switch commands; a command
        whose write cannot be built fails at once with the reason."""
        jobs, failed = {}, []
        for command in self:
            try:
                with self.env.cr.savepoint(flush=False):
                    jobs[command.id] = command._switch_job()
            except (UserError, ValidationError) as err:
                failed.append((command, Outcome(False, str(err), final=True)))
            except Exception as err:  # noqa: BLE001 - one command, not the queue
                _logger.exception("meter command %s failed unexpectedly", command.name)
                failed.append((command, _unexpected(self.env, err)))
        if failed:
            self._record_outcomes(failed, commit)
            progress.step(self.env, len(failed))
        return jobs

    def _hold_buses(self, left, settled):
        """Count ``settled`` off ``left`` ({gateway id: commands on the wire});
        release the buses that are done, renew the others; returns what is
        left."""
        left = dict(left)
        for command in settled:
            left[command.gateway_id.id] -= 1
        Gateway = self.env["prepaid.gateway"]
        Gateway.browse([g for g, n in left.items() if not n])._release_bus("command")
        left = {g: n for g, n in left.items() if n}
        Gateway.browse(list(left))._renew_bus("command")
        return left

    def _lock(self):
        """Hold these commands' rows while they are on the wire: the recovery
        job skips locked rows, so it never takes a command a live worker
        sends."""
        if self:
            self.env.cr.execute(
                "SELECT id FROM prepaid_meter_command WHERE id = ANY(%s) "
                "FOR NO KEY UPDATE",
                [self.ids],
            )

    def _record_outcomes(self, outcomes, commit):
        """Record ``(command, outcome)`` pairs, then their follow-ups (each
        step committed when ``commit``)."""
        for command, outcome in outcomes:
            command._record_outcome(outcome)
        if commit:
            # Deliberate: the outcomes are kept even if a follow-up fails.
            self._commit()
        self.browse([command.id for command, _outcome in outcomes])._run_followups()

    def _execute_one(self, commit):
        """Send one claimed command and record the outcome.

        Any exception of this command (a value the codec refuses, a database
        error) fails this command with the reason; the savepoint keeps the
        transaction usable for the next one.
        """
        self.ensure_one()
        self._lock()
        try:
            if self.command_type == "record_write" and not self.expected_count:
                with self.env.cr.savepoint():
                    outcome = self._prepare_record()
                if outcome is None and commit:
                    # Deliberate (outbox): the expected counter is committed
                    # before the first byte of the record is written.
                    self._commit()
                    self._lock()
            else:
                outcome = None
            if outcome is None:
                with self.env.cr.savepoint():
                    outcome = self._send()
        except (UserError, ValidationError) as err:
            outcome = Outcome(False, str(err), final=True)
        except Exception as err:  # noqa: BLE001 - one command, not the queue
            _logger.exception("meter command %s failed unexpectedly", self.name)
            outcome = _unexpected(self.env, err)
        self._record_outcome(outcome)
        if commit:
            # Deliberate: the outcome is kept even if its follow-up fails.
            self._commit()
        self._run_followups()

    def _record_outcome(self, outcome):
        self.ensure_one()
        ok, message = outcome.ok, outcome.message
        if ok:
            self._write_internal(
                {
                    "state": "done",
                    "done_at": fields.Datetime.now(),
                    "result": message,
                    "last_error": False,
                    "followup_pending": True,
                }
            )
            return
        if not outcome.final and self.attempts < self.max_attempts:
            self._write_internal(
                {
                    "state": "queued",
                    "last_error": message,
                    "next_attempt_at": fields.Datetime.now() + RETRY_DELAY,
                }
            )
        else:
            self._write_internal(
                {"state": "failed", "last_error": message, "followup_pending": True}
            )

    def _claim_followups(self):
        """These commands whose follow-up is still pending, locked until the
        transaction ends; a follow-up another worker is running (the sender
        and the recovery job, on two hosts) is left to it.

        The recovery job takes outcomes older than the sending timeout by
        their ``write_date`` (the database's clock) against a host's clock:
        a host whose clock is ahead, or a follow-up slower than the timeout,
        would otherwise run it twice.
        """
        if not self:
            return self
        self.flush_recordset(["followup_pending"])
        try:
            with self.env.cr.savepoint(flush=False):
                self.env.cr.execute(
                    """SELECT id FROM prepaid_meter_command
                        WHERE id = ANY(%s) AND followup_pending
                        ORDER BY id FOR NO KEY UPDATE SKIP LOCKED""",
                    [self.ids],
                )
                ids = [row[0] for row in self.env.cr.fetchall()]
        except psycopg2.errors.SerializationFailure:
            # another worker ran them after this transaction's snapshot
            return self.browse()
        self.invalidate_recordset(["followup_pending"])
        return self.browse(ids)

    def _run_followups(self):
        """Apply settled outcomes to what depends on them: all together in a
        savepoint, or, when that fails, each in its own; a follow-up that
        fails stays pending for the recovery job."""
        pending = self._claim_followups()
        if len(pending) > 1:
            try:
                with self.env.cr.savepoint():
                    pending._on_commands_settled()
                    pending._write_internal({"followup_pending": False})
                return
            except Exception:  # noqa: BLE001 - one by one below
                _logger.info(
                    "follow-ups of %s meter commands together failed; one by one",
                    len(pending),
                    exc_info=True,
                )
        for command in pending:
            try:
                with self.env.cr.savepoint():
                    command._on_commands_settled()
                    command._write_internal({"followup_pending": False})
            except Exception as err:  # noqa: BLE001 - retried by the recovery job
                _logger.warning(
                    "follow-up of meter command %s failed: %s",
                    command.name,
                    err,
                    exc_info=True,
                )
                command._write_internal(
                    {"result": self.env._("Follow-up pending: %s", err)}
                )
