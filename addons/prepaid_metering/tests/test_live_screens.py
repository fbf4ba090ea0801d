import json
from unittest.mock import patch

from odoo.tests import HttpCase, new_test_user, tagged

from odoo.addons.bus.models.bus import channel_with_db, json_dump
from odoo.addons.bus.tests.common import WebsocketCase
from odoo.addons.bus.websocket import WebsocketConnectionHandler

from ..models.prepaid_meter_command import SETTLED_NOTIFICATION
from .common import MeteringCase, electric


class LiveCase(MeteringCase):
    """One electric meter in Shop 1 on a simulated bus, an operator."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.room.name = "Live Shop"
        cls.gateway = cls.make_gateway(port=1, name="Live bus")
        cls.meter = cls.make_meter(cls.gateway, 1, room=cls.room, name="Live meter")
        cls.meter.switch_state = "on"
        cls.operator = new_test_user(
            cls.env,
            login="live_operator",
            groups="base.group_user,prepaid_metering.group_metering_user",
        )
        cls.users_group = cls.env.ref("prepaid_metering.group_metering_user")

    def setUp(self):
        super().setUp()
        self.fleet = self.start_fresh_fleet([("socket", [electric(1)])], [self.gateway])

    def cut_as_operator(self):
        command = (
            self.env["prepaid.meter.command"]
            .with_user(self.operator)
            .create({"meter_id": self.meter.id, "command_type": "relay_off"})
        )
        command.action_send_now()
        return command


@tagged("post_install", "-at_install")
class TestSettledNotification(LiveCase):
    def test_a_settled_command_notifies_the_metering_users(self):
        command = self.cut_as_operator()
        self.assertEqual(command.state, "done", command.last_error)
        self.env.cr.precommit.run()
        channel = json_dump(channel_with_db(self.env.cr.dbname, self.users_group))
        notes = self.env["bus.bus"].search([("channel", "=", channel)])
        messages = [json.loads(note.message) for note in notes]
        self.assertIn(
            {
                "type": SETTLED_NOTIFICATION,
                "payload": {"meter_ids": [self.meter.id], "room_ids": [self.room.id]},
            },
            messages,
        )


@tagged("post_install", "-at_install")
class TestSettledOverWebsocket(WebsocketCase, LiveCase):
    def test_an_operator_s_browser_hears_the_settled_command(self):
        self.authenticate("live_operator", "live_operator")
        websocket = self.websocket_connect(cookie=f"session_id={self.session.sid}")
        self.subscribe(websocket, [], self.env["bus.bus"]._bus_last_id())
        self.cut_as_operator()
        self.trigger_notification_dispatching([self.users_group])
        received = [
            note["message"]
            for note in json.loads(websocket.recv())
            if note["message"]["type"] == SETTLED_NOTIFICATION
        ]
        self.assertEqual(
            received[0]["payload"],
            {"meter_ids": [self.meter.id], "room_ids": [self.room.id]},
        )


@tagged("post_install", "-at_install")
class TestLiveMeterFormTour(HttpCase, LiveCase):
    """The meter form offers Cut while the supply is on and, when the cut
    settles, reloads by itself and offers Restore."""

    def test_meter_form_follows_the_command(self):
        # Tests forbid websockets by default; this one needs the browser's.
        self.startPatcher(
            patch.object(
                WebsocketConnectionHandler, "websocket_allowed", return_value=True
            )
        )
        self.start_tour(
            f"/odoo/action-prepaid_metering.prepaid_meter_action/{self.meter.id}",
            "prepaid_meter_live_form",
            login="live_operator",
        )
        self.assertEqual(self.meter.switch_state, "off")

    def test_room_board_follows_the_command(self):
        self.startPatcher(
            patch.object(
                WebsocketConnectionHandler, "websocket_allowed", return_value=True
            )
        )
        self.start_tour(
            "/odoo/action-prepaid_metering.prepaid_room_monitoring_action",
            "prepaid_room_live_board",
            login="live_operator",
        )
        self.assertEqual(self.meter.switch_state, "off")
