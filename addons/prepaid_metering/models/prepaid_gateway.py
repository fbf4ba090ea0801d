import logging
import time
from datetime import timedelta
from typing import NamedTuple

import pytz

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.modules import module as odoo_module

from ..drivers import bus, dlt645
from ..tools.precompute import forget_inverses
from ..tools.tables import set_fillfactor
from ..tools.transactions import start_read_committed

_logger = logging.getLogger(__name__)

#: How long a claimed bus stays reserved for the worker using it (a sweep, or
#: meter commands: renewed before each one); a worker that dies frees it after
#: this.
BUS_CLAIM = timedelta(minutes=5)
#: What a worker holding a bus does on it.
BUS_USES = [("poll", "Polling"), ("command", "Sending commands")]

#: A gateway that answered nothing last sweep is given up for this sweep
#: after this many silent meters in a row, so a dead bus costs a few timeouts,
#: not one per meter, and does not hold up the gateways polled after it.
SILENT_BUS_METERS = 3

PROTOCOLS = [
    ("modbus_tcp", "Modbus TCP"),
    ("rtu_over_tcp", "Modbus RTU over TCP"),
    ("serial_rtu", "Modbus RTU on a serial port"),
    ("dlt645_tcp", "DL/T 645 through a transparent TCP gateway"),
    ("dlt645_serial", "DL/T 645 on a serial port"),
]
DRIVER_PROTOCOL = {
    "modbus_tcp": "tcp",
    "rtu_over_tcp": "rtu_over_tcp",
    "serial_rtu": "serial",
    "dlt645_tcp": "dlt645_tcp",
    "dlt645_serial": "dlt645_serial",
}
SERIAL_PROTOCOLS = ("serial_rtu", "dlt645_serial")
DLT645_PROTOCOLS = ("dlt645_tcp", "dlt645_serial")
#: DL/T 645 meters leave the factory at 2,400 baud 8E1.
DLT645_LINE = {"baudrate": 2400, "parity": "E", "bytesize": 8, "stopbits": 1}
PARITIES = [("N", "None"), ("E", "Even"), ("O", "Odd")]


class PlannedSweep(NamedTuple):
    """A sweep on the wire (``bus.Sweep``) and what storing it needs."""

    sweep: object
    profiles: dict
    meter_count: int
    started: float


class PrepaidGateway(models.Model):
    _name = "prepaid.gateway"
    _description = "Meter Gateway (RS-485 bus)"
    _inherit = ["mail.thread", "prepaid.bulk.create"]
    _order = "site_id, name"
    _check_company_auto = True

    name = fields.Char(required=True, tracking=True)
    active = fields.Boolean(default=True)
    site_id = fields.Many2one(
        "prepaid.site", required=True, ondelete="restrict", check_company=True
    )
    company_id = fields.Many2one(
        related="site_id.company_id", store=True, index=True, precompute=True
    )
    protocol = fields.Selection(
        PROTOCOLS, required=True, default="modbus_tcp", tracking=True
    )
    host = fields.Char(tracking=True)
    port = fields.Integer(default=502, tracking=True)
    serial_port = fields.Char(
        string="Serial Device", help="For example /dev/ttyUSB0", tracking=True
    )
    baudrate = fields.Integer(
        default=9600,
        help="Line speed of the RS-485 bus (DL/T 645 meters: 2,400 by default). "
        "A transparent gateway is set to the same speed on its own page.",
    )
    parity = fields.Selection(PARITIES, default="N", required=True)
    bytesize = fields.Integer(string="Data Bits", default=8)
    stopbits = fields.Integer(string="Stop Bits", default=1)
    is_dlt645 = fields.Boolean(
        string="DL/T 645 Line", compute="_compute_is_dlt645", store=True
    )
    sweep_count = fields.Integer(
        readonly=True,
        copy=False,
        help="Sweeps done on this bus; DL/T 645 event counters and clocks are "
        "read every N sweeps (Settings).",
    )
    last_clock_sync_at = fields.Datetime(
        string="Last Clock Sync",
        readonly=True,
        copy=False,
        help="When the meters of this DL/T 645 line last got the time "
        "(broadcast, they do not answer).",
    )
    timeout_s = fields.Float(
        string="Timeout (s)",
        default=1.0,
        help="How long to wait for one meter's reply before counting it as missing.",
    )
    retries = fields.Integer(default=0, help="Extra attempts per request.")
    poll_interval_min = fields.Integer(
        string="Polling Interval (min)",
        help="Leave 0 to use the interval of the Settings.",
    )
    state = fields.Selection(
        [("new", "New"), ("online", "Online"), ("offline", "Offline")],
        default="new",
        required=True,
        readonly=True,
        copy=False,
    )
    last_contact = fields.Datetime(readonly=True, copy=False)
    last_error = fields.Char(readonly=True, copy=False)
    last_poll_at = fields.Datetime(readonly=True, copy=False)
    last_poll_duration_s = fields.Float(
        string="Last Sweep (s)", readonly=True, copy=False, digits=(16, 3)
    )
    next_poll_at = fields.Datetime(
        copy=False, index=True, help="Empty means: poll at the next cron run."
    )
    bus_claimed_until = fields.Datetime(
        readonly=True,
        copy=False,
        help="A worker uses this bus (a sweep or meter commands) until then, or "
        "until it is done: no other worker talks on it meanwhile.",
    )
    bus_claimed_by = fields.Selection(BUS_USES, readonly=True, copy=False)
    meter_ids = fields.One2many("prepaid.meter", "gateway_id", string="Meters")
    meter_count = fields.Integer(compute="_compute_meter_count")

    @api.depends("protocol")
    def _compute_is_dlt645(self):
        for gateway in self:
            gateway.is_dlt645 = gateway.protocol in DLT645_PROTOCOLS

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if vals.get("protocol") in DLT645_PROTOCOLS:
                for name, value in DLT645_LINE.items():
                    vals.setdefault(name, value)
        # One read of the parents instead of Odoo's precompute on new
        # records, which is quadratic in the batch (see tools/precompute).
        return super().create(forget_inverses(self, vals_list))

    @api.onchange("protocol")
    def _onchange_protocol_line(self):
        if self.protocol in DLT645_PROTOCOLS:
            self.update(DLT645_LINE)

    def init(self):
        # Every claim and every poll rewrites the gateway's row (see
        # set_fillfactor).
        set_fillfactor(self.env.cr, "prepaid_gateway", 70)

    @api.depends("meter_ids")
    def _compute_meter_count(self):
        counts = dict(
            self.env["prepaid.meter"]._read_group(
                [("gateway_id", "in", self.ids)], ["gateway_id"], ["__count"]
            )
        )
        for gateway in self:
            gateway.meter_count = counts.get(gateway, 0)

    @api.constrains("baudrate", "bytesize", "stopbits")
    def _check_line(self):
        for gateway in self:
            if gateway.bytesize not in (7, 8) or gateway.stopbits not in (1, 2):
                raise ValidationError(
                    self.env._(
                        "Gateway %s: a line has 7 or 8 data bits and 1 or 2 stop bits.",
                        gateway.name,
                    )
                )

    @api.constrains("protocol", "host", "port", "serial_port", "baudrate")
    def _check_connection(self):
        for gateway in self:
            if gateway.protocol in SERIAL_PROTOCOLS:
                if not gateway.serial_port:
                    raise ValidationError(
                        self.env._(
                            "Gateway %s: enter the serial device, e.g. /dev/ttyUSB0.",
                            gateway.name,
                        )
                    )
                if gateway.baudrate <= 0:
                    raise ValidationError(
                        self.env._(
                            "Gateway %s: the baud rate must be positive.", gateway.name
                        )
                    )
                continue
            if not gateway.host:
                raise ValidationError(
                    self.env._(
                        "Gateway %s: enter the host name or IP address.", gateway.name
                    )
                )
            if not 1 <= gateway.port <= 65535:
                raise ValidationError(
                    self.env._(
                        "Gateway %(name)s: port %(port)s is outside 1-65535.",
                        name=gateway.name,
                        port=gateway.port,
                    )
                )

    @api.constrains("timeout_s", "retries", "poll_interval_min")
    def _check_timing(self):
        for gateway in self:
            if gateway.timeout_s <= 0 or gateway.timeout_s > 60:
                raise ValidationError(
                    self.env._(
                        "Gateway %s: the timeout must be between 0 and 60 seconds.",
                        gateway.name,
                    )
                )
            if gateway.retries < 0 or gateway.poll_interval_min < 0:
                raise ValidationError(
                    self.env._(
                        "Gateway %s: retries and polling interval cannot be negative.",
                        gateway.name,
                    )
                )

    # ------------------------------------------------------------------
    # Driver glue
    # ------------------------------------------------------------------
    def _driver_endpoint(self):
        """The driver's view of this gateway."""
        self.ensure_one()
        return bus.Endpoint(
            protocol=DRIVER_PROTOCOL[self.protocol],
            host=self.host or "",
            port=self.port,
            serial_port=self.serial_port or "",
            baudrate=self.baudrate,
            timeout=self.timeout_s,
            retries=self.retries,
            key=self.id,
            bytesize=self.bytesize,
            parity=self.parity,
            stopbits=self.stopbits,
            give_up_after=SILENT_BUS_METERS if self.state == "offline" else 0,
        )

    @api.model
    def _get_event_every(self):
        """Sweeps between two reads of the meters' event counters and
        clocks (DL/T 645 profiles)."""
        value = (
            self.env["ir.config_parameter"]
            .sudo()
            .get_param("prepaid_metering.event_every_sweeps", "12")
        )
        try:
            every = int(value)
        except ValueError:
            return 12
        return every if every > 0 else 12

    @api.model
    def _get_poll_interval(self):
        """Minutes between two sweeps of a gateway without its own interval.

        Settings refuse an interval under one minute; a value set around them
        (system parameters) that is not a positive number falls back to 5, so
        the gateways are never polled on every cron run.
        """
        value = (
            self.env["ir.config_parameter"]
            .sudo()
            .get_param("prepaid_metering.poll_interval_min", "5")
        )
        try:
            minutes = int(value)
        except ValueError:
            return 5
        return minutes if minutes > 0 else 5

    @api.model
    def _get_batch_size(self):
        return int(
            self.env["ir.config_parameter"]
            .sudo()
            .get_param("prepaid_metering.poll_batch_gateways", 200)
        )

    @api.model
    def _get_store_chunk(self):
        return int(
            self.env["ir.config_parameter"]
            .sudo()
            .get_param("prepaid_metering.store_chunk_meters", 2000)
        )

    # ------------------------------------------------------------------
    # Polling
    # ------------------------------------------------------------------
    @api.model
    def _claim_due_gateways(self, limit):
        """Claim the buses of up to ``limit`` due gateways for polling and push
        their next poll time.

        ``FOR NO KEY UPDATE SKIP LOCKED`` makes concurrent workers take disjoint
        gateways and skip a bus another worker holds in its transaction; once
        the caller commits, the claim (``bus_claimed_until``) keeps the others
        (pollers and command senders) away until it is released or runs out,
        and the pushed ``next_poll_at`` until the next interval.
        """
        self.env.flush_all()
        now = fields.Datetime.now()
        self.env.cr.execute(
            """
            SELECT id, poll_interval_min FROM prepaid_gateway
             WHERE active AND (next_poll_at IS NULL OR next_poll_at <= %s)
               AND (bus_claimed_until IS NULL OR bus_claimed_until <= %s)
             ORDER BY next_poll_at NULLS FIRST, id
             LIMIT %s
               FOR NO KEY UPDATE SKIP LOCKED
            """,
            (now, now, limit),
        )
        rows = self.env.cr.fetchall()
        if not rows:
            return self.browse()
        default = self._get_poll_interval()
        by_interval = {}
        for gateway_id, interval in rows:
            by_interval.setdefault(interval or default, []).append(gateway_id)
        for interval, ids in by_interval.items():
            self.env.cr.execute(
                """UPDATE prepaid_gateway SET next_poll_at = %s,
                          bus_claimed_until = %s, bus_claimed_by = 'poll'
                    WHERE id = ANY(%s)""",
                (now + timedelta(minutes=interval), now + BUS_CLAIM, ids),
            )
        self.invalidate_model(["next_poll_at", "bus_claimed_until", "bus_claimed_by"])
        return self.browse([row[0] for row in rows])

    def _claim_bus(self, use):
        """Take these gateways' buses for ``use`` (``"poll"`` or
        ``"command"``) unless another worker holds them: its row lock
        (SKIP LOCKED) or its claim that has not run out. Returns the gateways
        taken.

        The claim is a row lock until the transaction ends and, once
        committed, an expiry: a worker that dies frees the bus after
        ``BUS_CLAIM``.
        """
        if not self:
            return self
        self.env.flush_all()
        now = fields.Datetime.now()
        self.env.cr.execute(
            """
            UPDATE prepaid_gateway SET bus_claimed_until = %s, bus_claimed_by = %s
             WHERE id IN (
                 SELECT id FROM prepaid_gateway
                  WHERE id = ANY(%s)
                    AND (bus_claimed_until IS NULL OR bus_claimed_until <= %s)
                  ORDER BY id
                    FOR NO KEY UPDATE SKIP LOCKED)
            RETURNING id
            """,
            (now + BUS_CLAIM, use, self.ids, now),
        )
        taken = self.browse([row[0] for row in self.env.cr.fetchall()])
        self.invalidate_recordset(["bus_claimed_until", "bus_claimed_by"])
        return taken

    def _renew_bus(self, use):
        """Keep holding these buses for another ``BUS_CLAIM`` (a long run of
        commands renews before each one)."""
        self.env.cr.execute(
            """UPDATE prepaid_gateway SET bus_claimed_until = %s
                WHERE id = ANY(%s) AND bus_claimed_by = %s""",
            (fields.Datetime.now() + BUS_CLAIM, self.ids, use),
        )
        self.invalidate_recordset(["bus_claimed_until"])

    def _release_bus(self, use):
        """Free the buses this worker holds for ``use``. A bus freed by a
        poll wakes the command job up when commands wait for it."""
        if not self:
            return
        self.env.cr.execute(
            """UPDATE prepaid_gateway
                  SET bus_claimed_until = NULL, bus_claimed_by = NULL
                WHERE id = ANY(%s) AND bus_claimed_by = %s""",
            (self.ids, use),
        )
        self.invalidate_recordset(["bus_claimed_until", "bus_claimed_by"])
        if use == "poll":
            self.env["prepaid.meter.command"]._trigger_for_gateways(self)

    def _bus_activity(self):
        """{gateway: what the worker holding its bus does}, as committed (a
        worker holding a bus in its open transaction shows as another
        worker)."""
        self.invalidate_recordset(["bus_claimed_until", "bus_claimed_by"])
        labels = {
            "poll": self.env._("being polled"),
            "command": self.env._("sending meter commands"),
        }
        now = fields.Datetime.now()
        return {
            gateway: labels[gateway.bus_claimed_by]
            if gateway.bus_claimed_by
            and gateway.bus_claimed_until
            and gateway.bus_claimed_until > now
            else self.env._("in use by another worker")
            for gateway in self
        }

    @api.model
    def _cron_poll(self, commit=None):
        """Poll every due gateway, batch by batch, committing between them.

        Pipelined: once the buses of a batch have all been read, the next
        batch is claimed (committed) and its buses are read in the driver's
        thread while this one stores the batch read before. Each batch's
        readings are stored once, in chunks that commit; a crash loses the
        results not stored yet (their meters are read again next interval),
        never stores one twice.
        """
        if commit is None:
            commit = not odoo_module.current_test
        done = 0
        batch = self._get_batch_size()

        def claim_and_start():
            if commit:
                start_read_committed(self.env.cr)
            gateways = self._claim_due_gateways(batch)
            if not gateways:
                return None
            if commit:
                # Deliberate: publish the claimed batch (next_poll_at) to other
                # cron workers and release its row locks before the slow sweep.
                # The chunks are stored in READ COMMITTED too: billing (another
                # worker) updates the same meter rows (its own columns) and
                # commits meanwhile; in REPEATABLE READ the store's UPDATE of
                # those rows would fail with a serialization error.
                start_read_committed(self.env.cr)
            return gateways, gateways._start_sweep()

        on_stored = (lambda: start_read_committed(self.env.cr)) if commit else None
        current = claim_and_start()
        while current:
            gateways, sweep = current
            following = []

            def read_next(following=following):
                # the buses of this batch are all read: put the next batch on
                # the wire while this one is stored
                if not following:
                    following.append(claim_and_start())

            try:
                gateways._store_sweep(sweep, on_stored, on_wire_done=read_next)
            except Exception:
                gateways._free_after_failed_store(following, commit)
                raise
            gateways._release_bus("poll")
            done += len(gateways)
            self.env["ir.cron"]._notify_progress(done=done, remaining=0)
            if not following:
                read_next()
            current = following[0]
        return done

    def _free_after_failed_store(self, following, commit):
        """A sweep of these gateways could not be stored: roll back what was
        not committed and free their buses, and those of the batch
        ``following`` it already put on the wire (``[(gateways, sweep)]`` or
        empty), now (committed) rather than at the end of their claims, so
        that commands and the next poll reach them at once; the meters not
        stored are read again at the next interval. If even that fails (the
        database gone), the claims run out."""
        held = self
        if following and following[0]:
            # claimed and on the wire: let it end (not stored either)
            following[0][1].sweep.join()
            held |= following[0][0]
        if not commit:
            return  # a test's transaction: the caller rolls back
        try:
            self.env.cr.rollback()
            held._release_bus("poll")
            self.env.cr.commit()  # pylint: disable=invalid-commit
        except Exception:  # noqa: BLE001 - the store's error is the one raised
            _logger.warning(
                "gateways %s: buses not freed after a failed store; their "
                "claims run out within %s",
                held.ids,
                BUS_CLAIM,
                exc_info=True,
            )

    def _poll_now(self, on_stored=None):
        """Sweep these gateways' meters once and store what came back.

        All buses are read in parallel; results are stored in chunks as the
        buses finish, so storage overlaps the buses still on the wire.
        ``on_stored`` is called after each stored chunk (the cron commits
        there).
        """
        return self._store_sweep(self._start_sweep(), on_stored)

    def _start_sweep(self):
        """Plan the reads of these gateways' meters and put them on the wire
        (the driver's thread); :meth:`_store_sweep` stores what comes back."""
        meters = self._sweep_meters()
        every = self._get_event_every()
        endpoints = {gw.id: gw._driver_endpoint() for gw in self}
        # the slow values (event counters, clocks) ride along every N sweeps
        slow = {gw.id: gw.sweep_count % every == 0 for gw in self}
        polls_by_gateway, profiles_by_meter, plans = {}, {}, {}
        for meter_id, gateway_id, device_id, address, profiles in meters:
            plan_key = (profiles, slow[gateway_id])
            if plan_key not in plans:
                plans[plan_key] = profiles._read_plan(with_slow=slow[gateway_id])
            profiles_by_meter[meter_id] = profiles
            polls_by_gateway.setdefault(gateway_id, []).append(
                bus.meter_poll(
                    endpoints[gateway_id],
                    meter_id,
                    device_id,
                    address,
                    plans[plan_key],
                )
            )
        if self:
            self.env.cr.execute(
                "UPDATE prepaid_gateway SET sweep_count = COALESCE(sweep_count, 0) + 1"
                " WHERE id = ANY(%s)",
                [self.ids],
            )
            self.invalidate_recordset(["sweep_count"])
        jobs = [(endpoints[gw.id], polls_by_gateway.get(gw.id, [])) for gw in self]
        return PlannedSweep(
            bus.start_sweep(jobs), profiles_by_meter, len(meters), time.monotonic()
        )

    def _sweep_meters(self):
        """``(id, gateway id, device id, address, profiles)`` of the meters of
        these gateways that have a profile, in bus order: the meters a
        ``search`` returns (active, record rules), read in two statements and
        no ORM record per meter (a batch holds tens of thousands)."""
        Meter = self.env["prepaid.meter"]
        query = Meter._search(
            [("gateway_id", "in", self.ids), ("profile_ids", "!=", False)],
            order="gateway_id, device_id",
        )
        self.env.cr.execute(
            query.select(
                "prepaid_meter.id",
                "prepaid_meter.gateway_id",
                "prepaid_meter.device_id",
                "prepaid_meter.address",
            )
        )
        rows = self.env.cr.fetchall()
        # the profiles in their model's order (name, id), as meter.profile_ids
        # lists them (English names; recordsets compare as sets anyway)
        self.env.cr.execute(
            """SELECT r.prepaid_meter_id,
                      array_agg(p.id ORDER BY p.name->>'en_US', p.id)
                 FROM prepaid_meter_prepaid_register_profile_rel r
                 JOIN prepaid_register_profile p
                   ON p.id = r.prepaid_register_profile_id
                WHERE r.prepaid_meter_id = ANY(%s)
                GROUP BY r.prepaid_meter_id""",
            [[row[0] for row in rows]],
        )
        profile_ids = dict(self.env.cr.fetchall())
        # one recordset per combination (the plans and the store's caches key
        # on it), all prefetched together, as the ORM's would be
        every_profile = sorted({i for ids in profile_ids.values() for i in ids})
        Profile = self.env["prepaid.register.profile"]
        combos = {}
        meters = []
        for meter_id, gateway_id, device_id, address in rows:
            key = tuple(profile_ids[meter_id])
            profiles = combos.get(key)
            if profiles is None:
                profiles = Profile.browse(key).with_prefetch(every_profile)
                combos[key] = profiles
            meters.append((meter_id, gateway_id, device_id, address, profiles))
        return meters

    def _store_sweep(self, planned, on_stored=None, on_wire_done=None):
        """Store the results of ``planned`` (:meth:`_start_sweep` of these
        gateways) in chunks as the buses finish. ``on_stored`` is called
        after each stored chunk, ``on_wire_done`` once, before the first
        chunk stored after the last bus was read. Returns the meters polled."""
        chunk_size = self._get_store_chunk()
        chunk, pending, durations = [], 0, {}
        gateways = list(self)
        Reading = self.env["prepaid.reading"]
        sweep = planned.sweep
        left = len(gateways)
        for index, results in sweep:
            gateway = gateways[index]
            durations[gateway.id] = time.monotonic() - planned.started
            chunk.append((gateway, results))
            pending += len(results)
            left -= 1
            if pending >= chunk_size:
                if on_wire_done and not left:
                    # every bus is read: the next batch may go on the wire
                    on_wire_done()
                    on_wire_done = None
                Reading._store_poll_results(chunk, durations, planned.profiles)
                if on_stored:
                    on_stored()
                chunk, pending = [], 0
        if on_wire_done:
            on_wire_done()
        if chunk:
            Reading._store_poll_results(chunk, durations, planned.profiles)
            if on_stored:
                on_stored()
        return planned.meter_count

    def action_poll_now(self):
        """Button: sweep now, through the same bus claim as the polling and
        command jobs, so that two workers never talk on one bus."""
        self.check_access("write")
        claimed = self._claim_bus("poll")
        busy = self - claimed
        if busy:
            raise UserError(
                "\n".join(
                    self.env._(
                        "The bus of gateway %(gateway)s is busy (%(activity)s); "
                        "poll it again in a moment.",
                        gateway=gateway.name,
                        activity=activity,
                    )
                    for gateway, activity in busy._bus_activity().items()
                )
            )
        claimed._poll_now()
        claimed._release_bus("poll")
        return True

    def action_test_connection(self):
        self.ensure_one()
        self.check_access("read")
        ok, message = bus.check_connection(self._driver_endpoint())
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": self.env._("Connection test"),
                "message": message,
                "type": "success" if ok else "danger",
                "sticky": not ok,
            },
        }

    # ------------------------------------------------------------------
    # DL/T 645: clock sync and address scan
    # ------------------------------------------------------------------
    def _site_now(self):
        """The site's local time now (meters keep local time)."""
        self.ensure_one()
        tz = pytz.timezone(self.site_id.tz or "UTC")
        return (
            pytz.utc.localize(fields.Datetime.now()).astimezone(tz).replace(tzinfo=None)
        )

    def _sync_clocks(self):
        """Broadcast the site's local time to the meters of these DL/T 645
        lines, each through the bus claim. Returns {gateway: (ok, message)};
        a busy bus is skipped (the next run catches it)."""
        outcome = {}
        lines = self.filtered("is_dlt645")
        claimed = lines._claim_bus("command")
        for gateway in lines - claimed:
            outcome[gateway] = (False, self.env._("the bus is busy"))
        for gateway in claimed:
            local = gateway._site_now()
            try:
                ok, message = dlt645.sync_time(gateway._driver_endpoint(), local)
            finally:
                gateway._release_bus("command")
            if ok:
                gateway.last_clock_sync_at = fields.Datetime.now()
                message = self.env._(
                    "Time %(time)s sent to the meters of %(gateway)s.",
                    time=local.strftime("%Y-%m-%d %H:%M:%S"),
                    gateway=gateway.name,
                )
            outcome[gateway] = (ok, message)
        return outcome

    @api.model
    def _cron_sync_clocks(self, gateway_ids=None):
        """Scheduled broadcast time sync of every DL/T 645 line (or of
        ``gateway_ids``): time-of-use meters bill by their own clock."""
        domain = [("is_dlt645", "=", True)]
        if gateway_ids is not None:
            domain.append(("id", "in", list(gateway_ids)))
        gateways = self.search(domain)
        outcome = gateways._sync_clocks()
        for gateway, (ok, message) in outcome.items():
            if not ok:
                _logger.info("clock sync of gateway %s: %s", gateway.id, message)
        return outcome

    def action_sync_clock(self):
        """Button: broadcast the time to this line's meters now."""
        self.ensure_one()
        self.check_access("write")
        ok, message = self._sync_clocks()[self]
        return self._notify(self.env._("Clock sync"), message, ok)

    def action_scan_address(self):
        """Button: ask the one meter on this line for its address (0x13 to
        AA...AA) and say which meter record has it."""
        self.ensure_one()
        self.check_access("write")
        if not self.is_dlt645:
            raise UserError(
                self.env._("Only a DL/T 645 line can be scanned for a meter address.")
            )
        if not self._claim_bus("command"):
            raise UserError(
                self.env._(
                    "The bus of gateway %(gateway)s is busy (%(activity)s); scan "
                    "it again in a moment.",
                    gateway=self.name,
                    activity=self._bus_activity()[self],
                )
            )
        try:
            address, message = dlt645.scan(self._driver_endpoint())
        finally:
            self._release_bus("command")
        if not address:
            return self._notify(
                self.env._("Scan"), self.env._("No meter address: %s", message), False
            )
        meter = self.env["prepaid.meter"].search(
            [("gateway_id", "=", self.id), ("address", "=", address)], limit=1
        )
        if meter:
            text = self.env._(
                "Meter address %(address)s: it is meter %(meter)s.",
                address=address,
                meter=meter.name,
            )
        else:
            text = self.env._(
                "Meter address %s: no meter of this gateway has it yet; create "
                "one with this address.",
                address,
            )
        return self._notify(self.env._("Scan"), text, True)

    def _notify(self, title, message, ok):
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": title,
                "message": message,
                "type": "success" if ok else "danger",
                "sticky": not ok,
            },
        }
