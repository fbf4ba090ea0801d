import json
import threading
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from unittest.mock import patch

from freezegun import freeze_time

from odoo import fields
from odoo.tests import tagged

from odoo.addons.prepaid_metering.tests.common import electric

from ..tools import webhook
from .common import BillingCase


class _Receiver(BaseHTTPRequestHandler):
    received = []

    def do_POST(self):  # noqa: N802 - http.server API
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        return


@tagged("post_install", "-at_install")
class TestAlarmsAndCutoff(BillingCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.meter = cls.make_meter(cls.gateway, 1)
        cls.account = cls.make_account(cls.meter, opening=60.0)
        cls.Notice = cls.env["prepaid.alarm.notice"]

    def setUp(self):
        super().setUp()
        self.fleet = self.start_fresh_fleet(
            [("socket", [electric(1, energy_kwh=1000.0)])], [self.gateway]
        )

    def use(self, kwh_from, kwh_to, at):
        self.reading(self.meter, kwh_from, at)
        self.reading(self.meter, kwh_to, at.replace("00:00", "30:00"))
        self.bill()

    def notices(self, event=None):
        domain = [("account_id", "=", self.account.id)]
        if event:
            domain.append(("event", "=", event))
        return self.Notice.search(domain)

    def test_three_levels_fire_once_each_and_repeat_the_set_number_of_times(self):
        # 06:00 local (22:00 UTC the day before) is outside the night here
        self.use(1000.0, 1020.0, "2026-03-02 02:00:00")  # 60 - 16 = 44: level 1
        self.assertEqual(self.account.alarm_level, 1)
        self.assertEqual(self.account.balance_state, "alarm1")
        self.use(1020.0, 1021.0, "2026-03-02 03:00:00")  # 43.2: still level 1
        self.assertEqual(len(self.notices("alarm1")), 1)
        self.use(1021.0, 1050.0, "2026-03-02 04:00:00")  # 20.0: level 2
        self.use(1050.0, 1070.0, "2026-03-02 05:00:00")  # 4.0: level 3
        self.assertEqual(self.notices().mapped("event"), ["alarm3", "alarm2", "alarm1"])
        notices = self.notices()
        self.Notice._cron_send(notices=self.notices())
        self.assertEqual(notices.mapped("sent_count"), [1, 1, 1])
        self.Notice._cron_send(notices=self.notices())
        self.assertEqual(
            notices.mapped("sent_count"), [1, 1, 1], "the next repeat is 12 hours later"
        )
        with freeze_time(fields.Datetime.now() + timedelta(hours=13)):
            self.Notice._cron_send(notices=self.notices())
        self.assertEqual(notices.mapped("sent_count"), [2, 2, 2])
        with freeze_time(fields.Datetime.now() + timedelta(hours=26)):
            self.Notice._cron_send(notices=self.notices())
        self.assertEqual(notices.mapped("sent_count"), [2, 2, 2], "two times each")
        self.assertEqual(set(notices.mapped("state")), {"done"})
        mails = self.env["mail.mail"].search(
            [("model", "=", "prepaid.alarm.notice"), ("res_id", "in", notices.ids)]
        )
        self.assertEqual(len(mails), 6)
        self.assertIn(self.tenant, mails.recipient_ids)
        sms = self.env["sms.sms"].search([("partner_id", "=", self.tenant.id)])
        self.assertEqual(len(sms), 6)
        self.assertEqual(set(sms.mapped("number")), {"+8613800000001"})
        self.assertIn(self.account.name, sms[0].body)

    def test_an_accounts_own_thresholds_replace_its_companys(self):
        self.account.write(
            {
                "alarm_override": True,
                "alarm1_amount": 30.0,
                "alarm2_amount": 10.0,
                "alarm3_amount": 2.0,
            }
        )
        self.assertEqual(self.account._alarm_amounts(), (30.0, 10.0, 2.0))
        self.use(1000.0, 1020.0, "2026-03-02 02:00:00")  # 44: above its 30
        self.assertEqual(self.account.alarm_level, 0)
        self.account.alarm_override = False
        self.assertEqual(self.account._alarm_amounts(), (50.0, 20.0, 5.0))
        self.env["prepaid.supply.control"]._after_balance_change(self.account)
        self.assertEqual(self.account.alarm_level, 1, "44 is below the company's 50")

    def test_alarm_levels_follow_the_billable_account_rule(self):
        self.env.cr.execute(
            "UPDATE prepaid_account SET balance = 10 WHERE id = %s", [self.account.id]
        )
        Account = type(self.env["prepaid.account"])
        billable = Account._get_billable_account_domain
        supply = self.env["prepaid.supply.control"]
        with patch.object(
            Account,
            "_get_billable_account_domain",
            lambda model: [*billable(model), ("id", "!=", self.account.id)],
        ):
            supply._after_balance_change(self.account)
        self.assertEqual(self.account.alarm_level, 0, "not billable: no alarm")
        supply._after_balance_change(self.account)
        self.assertEqual(self.account.alarm_level, 2)

    def test_alarm_messages_say_how_many_days_the_balance_lasts(self):
        with freeze_time("2026-03-02 06:00:00"):
            self.use(1000.0, 1020.0, "2026-03-02 02:00:00")  # 60 - 16 = 44: level 1
            (notice,) = self.notices("alarm1")
            # 16 charged over the last 7 days: 2.29 a day, 44 lasts 19 days
            self.assertEqual(self.account._days_of_credit_left(), 19)
            self.assertEqual(
                notice.days_left_note, "About 19 days left at your recent use."
            )
            self.Notice._cron_send(notices=self.notices())
        mail = self.env["mail.mail"].search(
            [("model", "=", "prepaid.alarm.notice"), ("res_id", "=", notice.id)]
        )
        self.assertIn("About 19 days left at your recent use.", mail.body_html)
        sms = self.env["sms.sms"].search([("partner_id", "=", self.tenant.id)])
        self.assertIn("About 19 days left at your recent use.", sms.body)
        # no forecast without use in the last 7 days
        with freeze_time("2026-03-12 06:00:00"):
            self.assertIsNone(self.account._days_of_credit_left())
            notice.invalidate_recordset(["days_left_note"])
            self.assertEqual(notice.days_left_note, "")

    def test_days_left_count_metered_use_not_charge_items(self):
        with freeze_time("2026-03-02 06:00:00"):
            self.use(1000.0, 1010.0, "2026-03-02 02:00:00")  # 60 - 8 = 52
            self.env["prepaid.ledger.line"]._post(
                [
                    {
                        "account_id": self.account.id,
                        "line_type": "charge",
                        "amount": -30.0,
                        "name": "Property fee (March)",
                    }
                ]
            )
            # 8 used over the last 7 days: 1.14 a day, 22 lasts 19 days;
            # the monthly fee is no rate of use (with it: 38 a week, 4 days)
            self.assertEqual(self.account.balance, 22.0)
            self.assertEqual(self.account._days_of_credit_left(), 19)

    def test_days_left_of_a_new_account_count_the_days_it_has_been_open(self):
        with freeze_time("2026-03-02 06:00:00"):
            self.env.cr.execute(
                "UPDATE prepaid_account SET opened_at = %s WHERE id = %s",
                ["2026-03-01 06:00:00", self.account.id],
            )
            self.account.invalidate_recordset(["opened_at"])
            self.use(1000.0, 1010.0, "2026-03-02 02:00:00")  # 60 - 8 = 52
            # 8 used in the one day it has been open, not over 7 days:
            # 52 lasts 6 days (at 8/7 a day it would say 45)
            self.assertEqual(self.account._days_of_credit_left(), 6)

    def test_recharge_resets_the_alarms(self):
        self.use(1000.0, 1050.0, "2026-03-02 02:00:00")  # 20.0: level 2
        self.assertEqual(self.account.alarm_level, 2)
        self.account._recharge(100.0, self.cash, "reset", "cash")
        self.assertEqual(self.account.alarm_level, 0)
        self.assertEqual(self.account.balance_state, "normal")
        self.assertEqual(set(self.notices().mapped("state")), {"reset"})
        self.use(1050.0, 1130.0, "2026-03-02 03:00:00")  # 56: level 0 -> 1 at 50
        self.assertEqual(self.account.alarm_level, 0)
        self.use(1130.0, 1140.0, "2026-03-02 04:00:00")  # 48: level 1 again
        self.assertEqual(
            len(self.notices("alarm1").filtered(lambda n: n.state == "pending")), 1
        )

    # Modbus traffic runs outside freeze_time: asyncio needs a moving clock.
    def test_exhausted_balance_cuts_the_relay_and_recharge_restores_it(self):
        sim = self.fleet.meter(0, 1)
        with freeze_time("2026-03-02 04:00:00"):  # 12:00 local
            self.use(1000.0, 1080.0, "2026-03-02 03:00:00")  # 60 - 64 = -4
        self.assertEqual(self.account.supply_state, "cut_off")
        self.assertEqual(self.account.balance_state, "cut_off")
        command = self.meter.command_ids
        self.assertEqual(command.command_type, "relay_off")
        self.assertEqual(self.process_commands(), 1)
        self.assertEqual(command.state, "done", command.last_error)
        self.assertTrue(sim.relay_open, "the simulator's relay really opened")
        self.assertTrue(self.notices("cutoff"))
        self.account._recharge(50.0, self.cash, "restore", "cash")
        self.assertEqual(self.account.supply_state, "on")
        restore = self.meter.command_ids.filtered(
            lambda c: c.command_type == "relay_on"
        )
        self.process_commands()
        self.assertEqual(restore.state, "done", restore.last_error)
        self.assertFalse(sim.relay_open)
        self.assertTrue(self.notices("restore"))

    def test_recharge_below_zero_does_not_restore(self):
        with freeze_time("2026-03-02 04:00:00"):
            self.use(1000.0, 1100.0, "2026-03-02 03:00:00")  # -20
            self.account._recharge(10.0, self.cash, "partial", "cash")  # -10
        self.assertEqual(self.account.supply_state, "cut_off")

    def test_protection_period_defers_the_cutoff_until_it_ends(self):
        self.env["prepaid.protection.period"].create(
            {"name": "Night", "kind": "night", "hour_from": 22, "hour_to": 7}
        )
        sim = self.fleet.meter(0, 1)
        engine = self.env["prepaid.billing.engine"]
        with freeze_time("2026-03-02 15:30:00"):  # 23:30 local: night
            self.use(1000.0, 1080.0, "2026-03-02 15:00:00")
            self.assertEqual(self.account.supply_state, "cut_pending")
            self.assertFalse(self.meter.command_ids)
            # the chatter says when the night ends (07:00 local)
            self.assertTrue(
                any(
                    "until 2026-03-03 07:00" in str(message.body)
                    for message in self.account.message_ids
                ),
                self.account.message_ids.mapped("body"),
            )
            self.assertEqual(
                engine._cron_deferred_cutoffs(self.account), 0, "still night"
            )
        with freeze_time("2026-03-02 23:05:00"):  # 07:05 local
            self.assertEqual(engine._cron_deferred_cutoffs(self.account), 1)
        self.assertEqual(self.account.supply_state, "cut_off")
        self.process_commands()
        self.assertTrue(sim.relay_open)

    @freeze_time("2026-03-02 04:00:00")  # no Modbus traffic in this test
    def test_protected_account_and_manual_keep_on_are_never_cut(self):
        self.account.protected = True
        self.use(1000.0, 1080.0, "2026-03-02 03:00:00")
        self.assertEqual(self.account.supply_state, "cut_pending")
        self.account.protected = False
        wizard = self.env["prepaid.supply.override.wizard"].create(
            {
                "account_id": self.account.id,
                "action": "keep_on",
                "keep_on_until": datetime(2026, 3, 3),
                "reason": "tenant in hospital",
            }
        )
        wizard.action_apply()
        self.assertEqual(self.account.supply_state, "on")
        self.assertIn("tenant in hospital", self.account.message_ids[0].body)
        self.env["prepaid.billing.engine"]._cron_deferred_cutoffs(self.account)
        self.assertNotEqual(self.account.supply_state, "cut_off")

    def test_manual_cut_and_restore_switch_the_meter_and_are_logged(self):
        sim = self.fleet.meter(0, 1)
        Wizard = self.env["prepaid.supply.override.wizard"]
        Wizard.create(
            {"account_id": self.account.id, "action": "cut", "reason": "tampering"}
        ).action_apply()
        self.process_commands()
        self.assertTrue(sim.relay_open)
        self.assertEqual(self.account.supply_state, "cut_off")
        Wizard.create(
            {"account_id": self.account.id, "action": "restore", "reason": "checked"}
        ).action_apply()
        self.process_commands()
        self.assertFalse(sim.relay_open)
        self.assertIn("checked", self.account.message_ids[0].body)

    def test_webhook_channel_posts_a_signed_json_body(self):
        server = HTTPServer(("127.0.0.1", 0), _Receiver)
        _Receiver.received = []
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        # The receiver is on loopback: only allowed when Settings say so.
        self.env["ir.config_parameter"].sudo().set_param(
            "prepaid_billing.webhook_allow_private", "True"
        )
        channel = self.env["prepaid.notification.channel"].create(
            {
                "name": "Voice call service",
                "channel_type": "webhook",
                "webhook_url": f"http://127.0.0.1:{server.server_port}/hook",
                "webhook_secret": "s3cret",
            }
        )
        self.use(1000.0, 1020.0, "2026-03-02 02:00:00")
        notice = self.notices("alarm1")
        report = notice._send()
        self.assertTrue(any(r.startswith("Voice call service: ok") for r in report))
        headers, body = _Receiver.received[0]
        payload = json.loads(body)
        self.assertEqual(payload["event"], "alarm1")
        self.assertEqual(payload["balance"], 44.0)
        self.assertTrue(
            webhook.verify(
                b"s3cret",
                body,
                headers["X-Prepaid-Signature"],
                int(datetime.now().timestamp()),
            )
        )
        self.assertFalse(
            webhook.verify(
                b"wrong",
                body,
                headers["X-Prepaid-Signature"],
                int(datetime.now().timestamp()),
            )
        )
        channel.webhook_url = f"http://127.0.0.1:{server.server_port + 1}/none"
        self.assertFalse(channel._dispatch(notice)[0], "a dead endpoint is reported")
