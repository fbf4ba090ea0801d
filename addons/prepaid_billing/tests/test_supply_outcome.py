from odoo.tests import new_test_user, tagged

from odoo.addons.prepaid_metering.tests.common import electric

from .common import BillingCase


@tagged("post_install", "-at_install")
class TestSupplyOutcome(BillingCase):
    """A cut-off or restore that fails is visible on the account and the
    board, with a to-do; a relay that contradicts the supply state is
    flagged."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.meter = cls.make_meter(cls.gateway, 1)
        cls.account = cls.make_account(cls.meter, opening=60.0)
        cls.operator = new_test_user(
            cls.env,
            login="supply_op",
            groups="base.group_user,prepaid_billing.group_billing_manager",
            company_id=cls.company.id,
            company_ids=[cls.company.id],
        )
        cls.Command = cls.env["prepaid.meter.command"]

    def setUp(self):
        super().setUp()
        self.fleet = self.start_fresh_fleet(
            [("socket", [electric(1, energy_kwh=1000.0)])], [self.gateway]
        )
        self.sim = self.fleet.meter(0, 1)
        self.env["prepaid.register.profile"].browse(
            self.profile_acrel.id
        ).settle_timeout_s = 0.3

    def override(self, action, user=None):
        env = self.env(user=user) if user else self.env
        env["prepaid.supply.override.wizard"].create(
            {"account_id": self.account.id, "action": action, "reason": "test"}
        ).action_apply()
        self.process_commands()

    def todos(self):
        return self.account.activity_ids.filtered(
            lambda a: a.activity_type_id == self.env.ref("mail.mail_activity_data_todo")
        )

    def test_failed_cut_off_shows_and_a_later_success_clears_it(self):
        self.sim.inject("stuck_relay")
        self.override("cut", user=self.operator)
        self.assertEqual(self.account.supply_state, "cut_failed")
        todo = self.todos()
        self.assertEqual(len(todo), 1)
        self.assertIn(self.meter.name, todo.summary)
        self.assertEqual(todo.user_id, self.operator, "the one who asked")
        self.assertEqual(self.room.supply_alert, "Cut-off Failed")
        Room = self.env["prepaid.room"]
        self.assertIn(self.room, Room.search([("has_supply_alert", "=", True)]))
        self.sim.clear_faults()
        failed = self.Command.search(
            [("meter_id", "=", self.meter.id), ("state", "=", "failed")]
        )
        failed.action_retry()
        self.process_commands()
        self.assertEqual(failed.state, "done", failed.last_error)
        self.assertEqual(self.account.supply_state, "cut_off")
        self.assertTrue(self.sim.relay_open)
        self.assertFalse(self.room.supply_alert)

    def test_failed_restore_shows_with_a_todo_for_the_administrator(self):
        self.override("cut")
        self.assertEqual(self.account.supply_state, "cut_off")
        self.sim.inject("stuck_relay")
        self.override("restore")
        self.assertEqual(self.account.supply_state, "restore_failed")
        self.assertEqual(self.todos().user_id, self.env.ref("base.user_admin"))
        self.assertIn(
            self.account,
            self.env["prepaid.account"].search(
                [("supply_state", "in", ("cut_failed", "restore_failed"))]
            ),
        )

    def test_outcome_of_an_outdated_command_changes_nothing(self):
        self.sim.inject("stuck_relay")
        self.env["prepaid.supply.override.wizard"].create(
            {"account_id": self.account.id, "action": "cut", "reason": "x"}
        ).action_apply()
        # Restored by hand before the cut-off was even sent.
        self.account._write_guarded({"supply_state": "on"})
        self.process_commands()
        self.assertEqual(self.account.supply_state, "on")
        self.assertFalse(self.todos())

    def test_a_cut_made_by_a_person_is_no_contradiction(self):
        # The operator cuts the room's supply on the board: the account still
        # says "On", but the relay is off on purpose.
        self.meter.with_user(self.operator).action_switch_off()
        self.Command._cron_process()
        self.env.invalidate_all()
        self.assertTrue(self.sim.relay_open)
        self.assertEqual(self.meter.switch_state, "off")
        self.assertEqual(self.account.supply_state, "on")
        self.assertFalse(self.account.supply_mismatch)
        self.assertFalse(self.room.supply_alert)
        # Restored by the system, a relay then read off again is flagged.
        self.meter.action_switch_on()
        self.Command._cron_process()
        self.env.cr.execute(
            "UPDATE prepaid_meter SET switch_state = 'off' WHERE id = %s",
            [self.meter.id],
        )
        self.env.invalidate_all()
        self.assertTrue(self.account.supply_mismatch)

    def test_relay_contradicting_the_supply_state_is_flagged(self):
        Account = self.env["prepaid.account"]
        self.assertFalse(self.account.supply_mismatch)
        # A poll reads the relay open while the account should be supplied.
        self.env.cr.execute(
            "UPDATE prepaid_meter SET switch_state = 'off' WHERE id = %s",
            [self.meter.id],
        )
        self.env.invalidate_all()
        self.assertTrue(self.account.supply_mismatch)
        self.assertIn(self.account, Account.search([("supply_mismatch", "=", True)]))
        self.assertNotIn(
            self.account, Account.search([("supply_mismatch", "=", False)])
        )
        self.assertIn("Relay contradicts supply", self.room.supply_alert)
        # A restore on its way is not a contradiction; once done, all agree.
        self.meter.action_switch_on()
        self.env.invalidate_all()
        self.assertFalse(self.account.supply_mismatch)
        self.process_commands()
        self.env.invalidate_all()
        self.assertEqual(self.meter.switch_state, "on")
        self.assertFalse(self.account.supply_mismatch)
        self.assertFalse(self.room.supply_alert)
