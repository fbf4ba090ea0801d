from contextlib import contextmanager

from freezegun import freeze_time

from odoo import Command
from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged

from odoo.addons.prepaid_metering.tests.common import electric

from .common import MOVE_IN, MOVE_OUT, PHOTO, TenancyCase


@tagged("post_install", "-at_install")
class TestTenancyMoves(TenancyCase):
    def test_prepaid_move_in_and_out_with_a_deposit_refunds_to_the_cent(self):
        tenancy = self.move_in(deposit_amount=500.0)
        self.assertEqual(tenancy.state, "active")
        (opening,) = tenancy.opening_reading_ids
        self.assertFalse(opening.manual)
        self.assertEqual(opening.value, 1000.0)
        self.assertEqual(self.room.tenancy_id, tenancy)
        self.assertEqual(self.room.tenant_id, self.tenant)
        # moved in on 2026-01-11 at 07:00 in Shanghai (the 10th in UTC): the
        # rent counts 21 days of 31, not 22
        (charge,) = self.env["prepaid.charge.line"].search(
            [("account_id", "=", tenancy.account_id.id)]
        )
        self.assertEqual((charge.days, charge.amount), (21, 210.0))
        self.assertEqual(tenancy.deposit_held, 500.0)
        self.assertEqual(self.deposit_balance(), 500.0)
        # a new company gets its tenant deposits account at its first deposit
        deposits = self.company.prepaid_deposit_account_id
        self.assertEqual(deposits.account_type, "liability_current")
        self.recharge(tenancy, 300.0)
        self.assertEqual(tenancy.account_id.balance, 90.0)
        self.sim.energy_total = 1100.0  # 100 kWh at 0.80: 80.00
        self.move_out(tenancy)
        self.assertEqual(tenancy.state, "ended")
        self.assertEqual(self.lines(tenancy, "consumption").mapped("amount"), [-80.0])
        # left on 2026-01-21 at 07:00 local (the 20th in UTC): the 21st was
        # used and is paid, the 10 days after it are credited
        self.assertEqual(charge.credit_amount, 100.0)
        # 90.00 - 80.00 + 100.00 = 110.00 wallet, + 500.00 deposit
        self.assertEqual(
            (
                tenancy.settle_wallet,
                tenancy.settle_deposit,
                tenancy.settle_unpaid,
                tenancy.settle_refund,
                tenancy.settle_owed,
            ),
            (110.0, 500.0, 0.0, 610.0, 0.0),
        )
        self.assertEqual(self.lines(tenancy, "refund").amount, -610.0)
        self.assertEqual(tenancy.account_id.balance, 0.0)
        self.assertEqual(tenancy.deposit_held, 0.0)
        self.assertEqual(self.deposit_balance(), 0.0)
        self.assertFalse(tenancy.account_id.meter_ids)
        self.assertFalse(self.room.tenant_id)
        self.assertFalse(self.room.tenancy_id)
        # the charge job finds nothing more to credit: nothing is stranded
        with freeze_time("2026-02-01 02:00:00"):
            self.env["prepaid.charge.line"]._cron_generate(commit=False)
        self.assertEqual(tenancy.account_id.balance, 0.0)
        result = self.assert_reconciled()
        self.assertEqual(result["deposits"], 0.0)

    def test_arrears_beyond_the_deposit_are_invoiced_with_a_manual_reading(self):
        tenancy = self.move_in(deposit_amount=100.0)
        self.assertEqual(tenancy.account_id.balance, -210.0)
        self.move_out(tenancy, manual=1050.0)  # 50 kWh: 40.00
        (final,) = tenancy.final_reading_ids
        self.assertTrue(final.manual)
        self.assertEqual(final.reading_id.source, "manual")
        self.assertEqual(base_64(final.photo_id), PHOTO)
        # -210.00 - 40.00 + 100.00 credit = -150.00; + 100.00 deposit
        self.assertEqual(tenancy.settle_wallet, -150.0)
        self.assertEqual(tenancy.settle_owed, 50.0)
        self.assertEqual(tenancy.settle_refund, 0.0)
        owed = tenancy.owed_move_id
        self.assertEqual((owed.move_type, owed.amount_total), ("out_invoice", 50.0))
        self.assertEqual(owed.partner_id, self.tenant)
        self.assertEqual(tenancy.account_id.balance, 0.0)
        self.assertEqual(self.deposit_balance(), 0.0)
        self.assert_reconciled()

    def test_postpaid_final_bill_is_paid_from_the_deposit(self):
        tenancy = self.move_in(mode="postpaid", deposit_amount=500.0)
        (charge,) = self.env["prepaid.charge.line"].search(
            [("account_id", "=", tenancy.account_id.id)]
        )
        self.assertEqual((charge.collection, charge.amount), ("invoice", 210.0))
        self.sim.energy_total = 1100.0
        self.move_out(tenancy)
        (bill,) = self.env["prepaid.bill"].search(
            [("account_id", "=", tenancy.account_id.id)]
        )
        # 100 kWh at 0.80 + 210.00 rent - 100.00 of it credited
        self.assertEqual(bill.amount_total, 190.0)
        self.assertEqual(bill.move_id.amount_total, 190.0)
        self.assertEqual(bill.move_id.payment_state, "paid")
        self.assertEqual(
            (
                tenancy.settle_wallet,
                tenancy.settle_deposit,
                tenancy.settle_unpaid,
                tenancy.settle_refund,
            ),
            (0.0, 500.0, 190.0, 310.0),
        )
        self.assertEqual(tenancy.settle_invoice_ids, bill.move_id)
        self.assertEqual(tenancy.account_id.balance, 0.0)
        self.assert_reconciled()

    def test_invoice_charges_of_a_prepaid_tenant_are_billed_at_move_out(self):
        rent = self.rent.copy({"collection": "invoice"})
        tenancy = self.move_in(charge_item_ids=[Command.set(rent.ids)])
        self.recharge(tenancy, 300.0)
        self.move_out(tenancy)
        (bill,) = self.env["prepaid.bill"].search(
            [("account_id", "=", tenancy.account_id.id)]
        )
        self.assertEqual(bill.amount_total, 110.0)  # 210.00 - 100.00 credited
        self.assertEqual(bill.move_id.payment_state, "paid")
        # 300.00 wallet - 110.00 invoice
        self.assertEqual(tenancy.settle_refund, 190.0)
        self.assert_reconciled()

    def test_an_invoiced_deposit_left_unpaid_is_netted_at_settlement(self):
        tenancy = self.move_in(
            deposit_amount=300.0, deposit_mode="invoice", charge_item_ids=[]
        )
        (deposit_invoice,) = tenancy.move_ids
        self.assertEqual(deposit_invoice.amount_residual, 300.0)
        self.assertEqual(tenancy.deposit_held, 300.0)
        self.recharge(tenancy, 50.0)
        self.sim.energy_total = 1010.0  # 8.00
        self.move_out(tenancy)
        # 42.00 wallet + 300.00 deposit - 300.00 deposit invoice unpaid
        self.assertEqual(tenancy.settle_refund, 42.0)
        self.assertEqual(deposit_invoice.payment_state, "paid")
        self.assert_reconciled()

    def test_without_a_deposit_the_wallet_alone_is_refunded(self):
        tenancy = self.move_in(charge_item_ids=[])
        self.assertFalse(tenancy.move_ids)
        self.recharge(tenancy, 50.0)
        self.sim.energy_total = 1010.0
        self.move_out(tenancy)
        self.assertEqual(
            (tenancy.settle_wallet, tenancy.settle_deposit, tenancy.settle_refund),
            (42.0, 0.0, 42.0),
        )
        self.assert_reconciled()

    def test_cancelled_move_out_opens_the_account_again_and_recharges_credits(self):
        tenancy = self.move_in()
        self.recharge(tenancy, 300.0)
        self.move_out(tenancy, settle=False)
        self.assertEqual(tenancy.state, "ending")
        self.assertEqual(tenancy.account_id.balance, 190.0)  # 90 + 100 credit
        self.assertEqual(tenancy.preview_net, 190.0)
        with freeze_time(MOVE_OUT):
            tenancy.action_cancel_move_out()
        account = tenancy.account_id
        self.assertEqual((tenancy.state, account.state), ("active", "open"))
        self.assertEqual(account.meter_ids, self.meter)
        self.assertEqual(account.balance, 90.0)
        self.assertEqual(self.room.tenancy_id, tenancy)
        self.assertTrue(tenancy.reading_ids.filtered("cancelled"))
        # moving out for good five days later credits 5 days (not 10 again)
        self.move_out(tenancy, when="2026-01-25 23:00:00")
        self.assertEqual(tenancy.settle_refund, 140.0)  # 90 + 50.00
        self.assertEqual(account.balance, 0.0)
        self.assert_reconciled()

    def test_a_settlement_is_reversed_by_entries_and_can_be_made_again(self):
        tenancy = self.move_in(deposit_amount=500.0)
        self.recharge(tenancy, 300.0)
        self.move_out(tenancy)
        # 90.00 + 100.00 credited + 500.00 deposit
        self.assertEqual(tenancy.settle_refund, 690.0)
        settled_lines = tenancy.settle_line_ids
        with freeze_time(MOVE_OUT):
            tenancy.action_reverse_settlement()
        self.assertEqual(tenancy.state, "ending")
        reversals = self.lines(tenancy, "reversal")
        self.assertEqual(
            sorted(reversals.mapped("reversed_line_id").ids), sorted(settled_lines.ids)
        )
        self.assertTrue(all(line.move_id for line in reversals))
        self.assertEqual(tenancy.account_id.balance, 190.0)
        self.assertEqual(tenancy.deposit_held, 500.0)
        self.assert_reconciled()
        self.settle(tenancy)
        self.assertEqual((tenancy.state, tenancy.settle_refund), ("ended", 690.0))
        self.assertEqual(tenancy.account_id.balance, 0.0)
        self.assert_reconciled()

    def test_transfer_ends_and_starts_at_the_same_reading(self):
        tenancy = self.move_in(charge_item_ids=[])
        self.recharge(tenancy, 100.0)
        self.sim.energy_total = 1020.0
        with freeze_time(MOVE_OUT):
            wizard = (
                self.env["prepaid.tenancy.move.out.wizard"]
                .with_context(default_tenancy_id=tenancy.id)
                .create(
                    {
                        "transfer": True,
                        "journal_id": self.cash.id,
                        "next_partner_id": self.tenant2.id,
                        "next_tariff_id": self.flat.id,
                        "next_deposit_amount": 200.0,
                        "next_journal_id": self.cash.id,
                    }
                )
            )
            action = wizard.action_confirm()
        following = self.Tenancy.browse(action["res_id"])
        self.assertEqual((tenancy.state, following.state), ("ended", "active"))
        self.assertEqual(following.previous_tenancy_id, tenancy)
        self.assertEqual(
            tenancy.final_reading_ids.reading_id,
            following.opening_reading_ids.reading_id,
        )
        self.assertEqual(tenancy.settle_refund, 84.0)  # 100 - 20 kWh x 0.80
        self.assertEqual(self.meter.billing_account_id, following.account_id)
        self.assertEqual(self.room.tenant_id, self.tenant2)
        self.assertEqual(following.deposit_held, 200.0)
        # the next reading is the next tenant's, and only theirs
        self.sim.energy_total = 1030.0
        self.age_baselines(self.meter)
        with freeze_time("2026-01-21 02:00:00"):
            self.meter.action_read_now()
            self.process_commands()
            self.bill()
        self.assertEqual(self.lines(tenancy, "consumption").mapped("amount"), [-16.0])
        self.assertEqual(self.lines(following, "consumption").mapped("amount"), [-8.0])
        self.assert_reconciled()

    def test_batch_moves_read_every_meter_once_and_move_each_tenancy(self):
        self.fleet = self.start_fresh_fleet(
            [
                (
                    "socket",
                    [electric(1, energy_kwh=1000.0), electric(2, energy_kwh=500.0)],
                )
            ],
            [self.gateway],
        )
        self.sim = self.fleet.meter(0, 1)
        meter2 = self.make_meter(self.gateway, 2, room=self.room2)
        leaving = self.move_in(charge_item_ids=[])
        self.recharge(leaving, 20.0)
        self.sim.energy_total = 1010.0
        arriving = self.Tenancy.create(
            {
                "partner_id": self.tenant2.id,
                "room_ids": [Command.set(self.room2.ids)],
                "tariff_id": self.flat.id,
                "deposit_amount": 300.0,
            }
        )
        with freeze_time(MOVE_OUT):
            out, inn, refused = self.Tenancy._batch_moves(
                leaving, arriving, deposit_journal=self.cash
            )
        self.assertEqual((out, inn, refused), (leaving, arriving, []))
        self.assertEqual(leaving.state, "ending")
        self.assertEqual(leaving.final_reading_ids.value, 1010.0)
        self.assertEqual(leaving.account_id.balance, 12.0)  # 20 - 10 x 0.80
        self.assertEqual(arriving.state, "active")
        self.assertEqual(arriving.opening_reading_ids.value, 500.0)
        self.assertEqual(meter2.billing_account_id, arriving.account_id)
        self.assertEqual(arriving.deposit_held, 300.0)
        self.assert_reconciled()


@tagged("post_install", "-at_install")
class TestTenancyRefusals(TenancyCase):
    @contextmanager
    def refused(self, text):
        """A UserError saying ``text``; what the call wrote is rolled back
        (the savepoint of assertRaises), as the request's transaction is."""
        with self.assertRaises(UserError) as caught:
            yield
        self.assertIn(text, str(caught.exception))

    def readings(self):
        return self.env["prepaid.reading"].search_count(
            [("meter_id", "=", self.meter.id)]
        )

    def test_a_final_reading_below_the_previous_one_is_refused(self):
        tenancy = self.move_in()
        before = self.readings()
        with self.refused("below its previous reading"):
            self.move_out(tenancy, manual=999.0)
        self.assertEqual(self.readings(), before)
        self.assertEqual(tenancy.state, "active")

    def test_a_move_out_before_the_last_reading_is_refused(self):
        tenancy = self.move_in()
        with self.refused("before the meter's last reading"):
            with freeze_time(MOVE_OUT):
                wizard = (
                    self.env["prepaid.tenancy.move.out.wizard"]
                    .with_context(default_tenancy_id=tenancy.id)
                    .create({"journal_id": self.cash.id})
                )
                wizard.line_ids.write(self.manual_vals(1001.0, "2026-01-09 00:00:00"))
                wizard.action_confirm()
        self.assertEqual(tenancy.state, "active")
        self.assertFalse(tenancy.final_reading_ids)

    def test_a_manual_reading_without_a_photo_is_refused(self):
        with self.refused("needs a photo"):
            with freeze_time(MOVE_IN):
                wizard = self.env["prepaid.tenancy.move.in.wizard"].create(
                    {
                        "partner_id": self.tenant.id,
                        "room_ids": [Command.set(self.room.ids)],
                        "tariff_id": self.flat.id,
                    }
                )
                wizard._onchange_room_ids()
                wizard.line_ids.write({"manual": True, "value": 1000.0})
                wizard.action_move_in()
        self.assertFalse(self.Tenancy.search([("room_ids", "in", self.room.ids)]))

    def test_a_second_active_tenancy_on_a_room_is_refused(self):
        first = self.move_in(charge_item_ids=[])
        second = self.Tenancy.create(
            {"partner_id": self.tenant2.id, "room_ids": [Command.set(self.room.ids)]}
        )
        with self.assertRaises(ValidationError):
            second.write({"state": "active"})
        with self.refused("move the previous tenant out"):
            second._move_in([])
        self.assertEqual(self.room.tenancy_id, first)

    def test_a_deposit_refund_above_what_is_held_is_refused(self):
        tenancy = self.move_in(deposit_amount=100.0, charge_item_ids=[])
        self.move_out(tenancy, settle=False)
        with self.refused("is held for tenancy"):
            tenancy._refund_deposit(100.01)
        self.assertEqual(tenancy.deposit_held, 100.0)

    def test_an_unreachable_meter_changes_nothing(self):
        self.fleet.stop()
        with self.refused("enter the reading by hand"):
            self.move_in()
        self.assertFalse(self.meter.billing_account_id)
        self.assertFalse(self.Tenancy.search([("room_ids", "in", self.room.ids)]))


def base_64(attachment):
    return attachment.datas
