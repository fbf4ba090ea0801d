from odoo import fields
from odoo.exceptions import UserError
from odoo.tests import tagged

from .common import BillingCase


@tagged("post_install", "-at_install")
class TestSuspectBilling(BillingCase):
    """Suspect readings are never money; accepted ones are billed once."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # the default rating of a single-phase meter: 15 kW x 1.5 = 22.5 kWh
        # credible per hour
        cls.meter = cls.make_meter(cls.gateway, 1, rated_power_kw=15.0)
        cls.account = cls.make_account(cls.meter, opening=100.0)

    def review(self, readings, decision, reason="checked on site"):
        self.env["prepaid.reading.review.wizard"].create(
            {
                "reading_ids": [(6, 0, readings.ids)],
                "decision": decision,
                "reason": reason,
            }
        ).action_confirm()

    def billed_kwh(self):
        return sum(self.charges(self.meter).mapped("quantity"))

    def test_spike_is_not_charged(self):
        first = self.reading(self.meter, 1000.0, "2026-03-02 02:00:00")
        spike = self.reading(self.meter, 5000.0, "2026-03-02 03:00:00")
        self.assertEqual(spike.review_state, "suspect")
        self.assertEqual(self.bill(), 0)
        self.assertFalse(self.charges(self.meter))
        self.assertEqual(self.account.balance, 100.0)
        self.assertEqual(self.meter.billed_reading_id, first)

    def test_spike_then_smooth_reading_bills_the_smooth_delta_once(self):
        self.reading(self.meter, 1000.0, "2026-03-02 02:00:00")
        spike = self.reading(self.meter, 5000.0, "2026-03-02 03:00:00")
        self.assertEqual(self.bill(), 0, "billed while the spike is pending")
        smooth = self.reading(self.meter, 1002.0, "2026-03-02 04:00:00")
        self.assertEqual(spike.review_state, "rejected")
        self.assertEqual(self.bill(), 1)
        self.assertEqual(self.bill(), 0)
        charges = self.charges(self.meter)
        self.assertEqual(charges.reading_id, smooth)
        self.assertEqual((charges.quantity, charges.amount), (2.0, 1.6))
        self.assertEqual(self.account.balance, 98.4)
        self.assertEqual(self.meter.billed_reading_id, smooth)
        self.assert_reconciled()

    def test_permanent_jump_is_billed_once_when_accepted(self):
        self.reading(self.meter, 1000.0, "2026-03-02 02:00:00")
        jump = self.reading(self.meter, 1100.0, "2026-03-02 02:05:00")
        later = self.reading(self.meter, 1100.5, "2026-03-02 03:00:00")
        self.assertEqual((jump.review_state, later.review_state), ("suspect",) * 2)
        self.assertEqual(self.bill(), 0)
        self.review(jump, "accept", "display checked: 1100 kWh")
        self.assertEqual(later.review_state, False, "re-assessed: plausible now")
        self.assertEqual(self.bill(), 2)
        self.assertEqual(self.bill(), 0)
        charges = self.charges(self.meter)
        self.assertEqual(charges.reading_id, jump | later)
        self.assertEqual(charges.mapped("quantity"), [100.0, 0.5])
        self.assertEqual(self.account.balance, 19.6)  # 100.5 kWh x 0.80
        self.assertEqual(self.meter.billed_reading_id, later)
        self.assert_reconciled()

    def test_jump_near_the_top_of_the_register_is_not_charged_twice(self):
        # UINT32 at 0.01 kWh wraps at 42,949,672.96 kWh
        self.reading(self.meter, 100.0, "2026-03-02 02:00:00")
        near_top = self.reading(self.meter, 42949670.0, "2026-03-02 02:05:00")
        back = self.reading(self.meter, 101.0, "2026-03-02 03:00:00")
        self.assertEqual(near_top.review_state, "rejected")
        self.assertEqual(back.anomaly, "none", "no rollover from the spike")
        self.bill()
        self.assertEqual(self.billed_kwh(), 1.0)
        self.assertEqual(self.account.balance, 99.2)

    def test_genuine_rollover_is_billed_across_the_wrap(self):
        self.reading(self.meter, 42949670.0, "2026-03-02 02:00:00")
        rollover = self.reading(self.meter, 3.0, "2026-03-02 03:00:00")
        self.assertEqual((rollover.anomaly, rollover.review_state), ("rollover", False))
        self.bill()
        self.assertAlmostEqual(self.billed_kwh(), 5.96, places=2)

    def test_rejected_reading_leaves_the_baseline_and_bills_from_the_last_good(self):
        self.reading(self.meter, 1000.0, "2026-03-02 02:00:00")
        spike = self.reading(self.meter, 5000.0, "2026-03-02 03:00:00")
        self.review(spike, "reject", "bus noise")
        self.assertAlmostEqual(self.meter.energy_baseline_kwh, 1000.0, places=2)
        self.assertFalse(self.meter.suspect_reading_id)
        self.assertEqual(self.bill(), 0)
        self.reading(self.meter, 1003.0, "2026-03-02 04:00:00")
        self.bill()
        self.assertEqual(self.billed_kwh(), 3.0)
        self.assertEqual(self.account.balance, 97.6)

    def test_replacement_bills_the_old_counter_to_its_end_and_the_new_from_start(self):
        self.reading(self.meter, 1000.0, "2026-03-02 02:00:00")
        self.bill()
        self.env["prepaid.meter.replace.wizard"].create(
            {
                "meter_id": self.meter.id,
                "replaced_at": fields.Datetime.to_datetime("2026-03-02 03:00:00"),
                "final_value": 1010.0,
                "initial_value": 0.5,
            }
        ).action_confirm()
        self.reading(self.meter, 2.0, "2026-03-02 04:00:00")
        self.bill()
        self.assertEqual(self.bill(), 0)
        # 10 kWh on the old counter + 1.5 kWh on the new one, x 0.80
        self.assertEqual(self.charges(self.meter).mapped("quantity"), [10.0, 1.5])
        self.assertEqual(self.account.balance, 90.8)
        self.assert_reconciled()

    def test_reading_dated_before_the_last_billed_one_is_refused(self):
        self.reading(self.meter, 1000.0, "2026-03-02 02:00:00")
        billed = self.reading(self.meter, 1010.0, "2026-03-02 04:00:00")
        self.bill()
        self.assertEqual(self.meter.billed_reading_id, billed)
        count = len(self.meter.reading_ids)
        for at in ("2026-03-02 03:00:00", "2026-03-02 04:00:00"):
            with self.assertRaises(UserError) as caught:
                self.reading(self.meter, 1005.0, at)
            self.assertIn("billed up to", str(caught.exception))
        self.assertEqual(len(self.meter.reading_ids), count)
        self.assertEqual(self.billed_kwh(), 10.0)

    def test_account_opened_on_a_suspect_reading_bills_it_once_accepted(self):
        meter = self.make_meter(self.gateway, 2, rated_power_kw=15.0)
        good = self.reading(meter, 1000.0, "2026-03-02 02:00:00")
        jump = self.reading(meter, 1100.0, "2026-03-02 02:05:00")
        self.assertEqual(jump.review_state, "suspect")
        account = self.make_account(meter, opening=100.0)
        self.assertEqual(meter.billed_reading_id, good, "the last good reading")
        self.assertEqual(self.bill(), 0, "nothing billed while it is pending")
        self.review(jump, "accept", "display checked: 1100 kWh")
        self.assertEqual(self.bill(), 1)
        self.assertEqual(self.bill(), 0)
        charges = self.charges(meter)
        self.assertEqual(charges.reading_id, jump)
        self.assertEqual((charges.quantity, charges.amount), (100.0, 80.0))
        self.assertEqual(account.balance, 20.0)
        self.assertEqual(meter.billed_reading_id, jump)
        self.assert_reconciled()

    def test_account_opened_after_a_rejected_reading_starts_at_the_last_good(self):
        meter = self.make_meter(self.gateway, 3, rated_power_kw=15.0)
        good = self.reading(meter, 1000.0, "2026-03-02 02:00:00")
        spike = self.reading(meter, 5000.0, "2026-03-02 03:00:00")
        self.review(spike, "reject", "bus noise")
        account = self.make_account(meter, opening=100.0)
        self.assertEqual(meter.billed_reading_id, good)
        self.reading(meter, 1003.0, "2026-03-02 04:00:00")
        self.assertEqual(self.bill(), 1)
        self.assertEqual(self.charges(meter).mapped("quantity"), [3.0])
        self.assertEqual(account.balance, 97.6)
        self.assert_reconciled()
