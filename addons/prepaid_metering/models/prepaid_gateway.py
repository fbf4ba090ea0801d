import logging
import time
from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.modules import module as odoo_module

from ..drivers import modbus
from ..tools.tables import set_fillfactor
from ..tools.transactions import start_read_committed

_logger = logging.getLogger(__name__)

#: How long a claimed bus stays reserved for the worker using it (a sweep, or
#: meter commands: renewed before each one); a worker that dies frees it after
#: this.
BUS_CLAIM = timedelta(minutes=5)
#: What a worker holding a bus does on it.
BUS_USES = [("poll", "Polling"), ("command", "Sending commands")]

PROTOCOLS = [
    ("modbus_tcp", "Modbus TCP"),
    ("rtu_over_tcp", "Modbus RTU over TCP"),
    ("serial_rtu", "Modbus RTU on a serial port"),
]
DRIVER_PROTOCOL = {
    "modbus_tcp": "tcp",
    "rtu_over_tcp": "rtu_over_tcp",
    "serial_rtu": "serial",
}


class PrepaidGateway(models.Model):
    _name = "prepaid.gateway"
    _description = "Meter Gateway (RS-485 bus)"
    _inherit = ["mail.thread"]
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
    baudrate = fields.Integer(default=9600)
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

    @api.constrains("protocol", "host", "port", "serial_port", "baudrate")
    def _check_connection(self):
        for gateway in self:
            if gateway.protocol == "serial_rtu":
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
        return modbus.Endpoint(
            protocol=DRIVER_PROTOCOL[self.protocol],
            host=self.host or "",
            port=self.port,
            serial_port=self.serial_port or "",
            baudrate=self.baudrate,
            timeout=self.timeout_s,
            retries=self.retries,
            key=self.id,
        )

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
        """Poll every due gateway, batch by batch, committing between them."""
        if commit is None:
            commit = not odoo_module.current_test
        done = 0
        batch = self._get_batch_size()
        while True:
            if commit:
                start_read_committed(self.env.cr)
            gateways = self._claim_due_gateways(batch)
            if not gateways:
                break
            if commit:
                # Deliberate: publish the claimed batch (next_poll_at) to other
                # cron workers and release its row locks before the slow sweep.
                # The chunks are stored in READ COMMITTED too: billing (another
                # worker) updates the same meter rows (its own columns) and
                # commits meanwhile; in REPEATABLE READ the store's UPDATE of
                # those rows would fail with a serialization error.
                start_read_committed(self.env.cr)
            gateways._poll_now(
                on_stored=(lambda: start_read_committed(self.env.cr))
                if commit
                else None
            )
            gateways._release_bus("poll")
            done += len(gateways)
            self.env["ir.cron"]._notify_progress(done=done, remaining=0)
        return done

    def _poll_now(self, on_stored=None):
        """Sweep these gateways' meters once and store what came back.

        All buses are read in parallel; results are stored in chunks as the
        buses finish, so storage overlaps the buses still on the wire.
        ``on_stored`` is called after each stored chunk (the cron commits
        there).
        """
        meters = self.env["prepaid.meter"].search_fetch(
            [("gateway_id", "in", self.ids), ("profile_ids", "!=", False)],
            ["gateway_id", "device_id", "profile_ids"],
            order="gateway_id, device_id",
        )
        polls_by_gateway, profiles_by_meter, plans = {}, {}, {}
        for meter in meters:
            profiles = meter.profile_ids
            if profiles not in plans:
                plans[profiles] = profiles._read_plan()
            profiles_by_meter[meter.id] = profiles
            polls_by_gateway.setdefault(meter.gateway_id.id, []).append(
                modbus.MeterPoll(
                    key=meter.id, device_id=meter.device_id, blocks=plans[profiles]
                )
            )
        gateways = list(self)
        jobs = [
            (gw._driver_endpoint(), polls_by_gateway.get(gw.id, [])) for gw in gateways
        ]
        chunk_size = self._get_store_chunk()
        started = time.monotonic()
        chunk, pending, durations = [], 0, {}
        Reading = self.env["prepaid.reading"]
        for index, results in modbus.iter_sweep(jobs):
            gateway = gateways[index]
            durations[gateway.id] = time.monotonic() - started
            chunk.append((gateway, results))
            pending += len(results)
            if pending >= chunk_size:
                Reading._store_poll_results(chunk, durations, profiles_by_meter)
                if on_stored:
                    on_stored()
                chunk, pending = [], 0
        if chunk:
            Reading._store_poll_results(chunk, durations, profiles_by_meter)
            if on_stored:
                on_stored()
        return len(meters)

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
        ok, message = modbus.check_connection(self._driver_endpoint())
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
