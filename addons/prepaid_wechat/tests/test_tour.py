from odoo.tests import new_test_user, tagged

from odoo.addons.prepaid_metering.tests.common import electric

from .common import WeChatCase


@tagged("post_install", "-at_install")
class TestTopUpTour(WeChatCase):
    def test_tenant_tops_up_in_the_browser_and_the_relay_closes(self):
        fleet = self.start_fresh_fleet(
            [("socket", [electric(7, energy_kwh=1000.0)])], [self.gateway]
        )
        sim = fleet.meter(0, 7)
        self.assertEqual(self.wallet.supply_state, "cut_off")
        self.process_commands()
        self.assertTrue(sim.relay_open, "cut off before the top-up")
        user = new_test_user(
            self.env,
            login="tour_tenant",
            groups="base.group_portal",
            company_id=self.company.id,
            company_ids=[self.company.id],
        )
        self.wallet.partner_id = user.partner_id
        self.peer.auto_notify = True
        self.addCleanup(setattr, self.peer, "auto_notify", False)
        self.start_tour(
            f"/my/prepaid/{self.wallet.id}", "prepaid_wechat_topup", login="tour_tenant"
        )
        self.wallet.invalidate_recordset()
        self.assertEqual(self.wallet.balance, 100.0)
        self.assertEqual(len(self.recharges()), 1)
        restore = self.restores()
        self.assertEqual(len(restore), 1)
        self.process_commands()
        self.assertEqual(restore.state, "done", restore.last_error)
        self.assertFalse(sim.relay_open, "the simulator's relay closed again")
