from freezegun import freeze_time

from odoo import Command
from odoo.tests import tagged

from odoo.addons.prepaid_metering.tests.common import electric

from .common import MOVE_IN, MOVE_OUT, TenancyCase


@tagged("post_install", "-at_install")
class TestTenancyBatch(TenancyCase):
    """The batch task moves tenants with the same figures as the wizards:
    two tenants, one moved by the wizards' methods, the other by the batch,
    on identical meters, tariffs, rent, deposit and recharges."""

    def setUp(self):
        super().setUp()
        self.fleet = self.start_fresh_fleet(
            [
                (
                    "socket",
                    [
                        electric(1, energy_kwh=1000.0),
                        electric(2, energy_kwh=1000.0),
                        electric(3, energy_kwh=700.0),
                        electric(4, energy_kwh=400.0),
                    ],
                )
            ],
            [self.gateway],
        )
        self.sim = self.fleet.meter(0, 1)
        rooms = self.env["prepaid.room"].create(
            [{"name": f"Shop {n}", "floor_id": self.floor.id} for n in ("3", "4", "5")]
        )
        self.room3, self.room4, self.room_dead = rooms
        self.meter2 = self.make_meter(self.gateway, 2, room=self.room2)
        self.meter3 = self.make_meter(self.gateway, 3, room=self.room3)
        self.meter4 = self.make_meter(self.gateway, 4, room=self.room4)
        # no such device on the simulated bus: it never answers
        self.meter_dead = self.make_meter(self.gateway, 9, room=self.room_dead)
        self.tenant3, self.tenant4, self.tenant5 = self.env["res.partner"].create(
            [{"name": f"Tenant {n}"} for n in ("Three", "Four", "Five")]
        )

    def draft(self, partner, room, deposit=500.0, rent=True):
        return self.Tenancy.create(
            {
                "partner_id": partner.id,
                "room_ids": [Command.set(room.ids)],
                "tariff_id": self.flat.id,
                "charge_item_ids": [Command.set(self.rent.ids if rent else [])],
                "deposit_amount": deposit,
            }
        )

    def gl(self):
        """Balance of every account over all posted entries, to the cent."""
        groups = self.env["account.move.line"]._read_group(
            [("parent_state", "=", "posted")], ["account_id"], ["balance:sum"]
        )
        return {account.code: round(total, 2) for account, total in groups}

    def delta(self, before, after):
        return {
            code: round(after.get(code, 0.0) - before.get(code, 0.0), 2)
            for code in set(before) | set(after)
            if round(after.get(code, 0.0) - before.get(code, 0.0), 2)
        }

    def figures(self, tenancy):
        account = tenancy.account_id
        return {
            "state": tenancy.state,
            "balance": account.balance,
            "deposit_held": tenancy.deposit_held,
            "ledger": sorted(
                (line.line_type, line.amount) for line in account.ledger_line_ids
            ),
            "charges": sorted(
                (line.days, line.amount, line.credit_amount)
                for line in self.env["prepaid.charge.line"].search(
                    [("account_id", "=", account.id)]
                )
            ),
            "readings": sorted((line.kind, line.value) for line in tenancy.reading_ids),
            "account_state": account.state,
            "meters": len(account.meter_ids),
        }

    def test_the_batch_gives_the_figures_of_the_wizards_to_the_cent(self):
        single = self.draft(self.tenant, self.room)
        batched = self.draft(self.tenant2, self.room2)
        # move-in: the wizard's method, then the batch, on equal meters
        before = self.gl()
        with freeze_time(MOVE_IN):
            single._move_in(
                [{"meter": self.meter}],
                deposit_mode="receive",
                deposit_journal=self.cash,
            )
        middle = self.gl()
        with freeze_time(MOVE_IN):
            out, inn, refused = self.Tenancy._batch_moves(
                self.Tenancy, batched, deposit_journal=self.cash
            )
        after = self.gl()
        self.assertEqual((out, inn, refused), (self.Tenancy, batched, []))
        self.assertEqual(self.delta(before, middle), self.delta(middle, after))
        self.assertEqual(self.figures(single), self.figures(batched))
        self.assertEqual(batched.deposit_held, 500.0)
        for tenancy in single | batched:
            with freeze_time(MOVE_IN):
                tenancy.account_id._recharge(
                    300.0, self.cash, f"batch-test:{tenancy.id}", "cash"
                )
        # 100 kWh each at 0.80
        self.sim.energy_total = 1100.0
        self.fleet.meter(0, 2).energy_total = 1100.0
        before = self.gl()
        with freeze_time(MOVE_OUT):
            single._move_out([{"meter": self.meter}])
        middle = self.gl()
        with freeze_time(MOVE_OUT):
            out, inn, refused = self.Tenancy._batch_moves(
                batched, self.Tenancy, deposit_journal=self.cash
            )
        after = self.gl()
        self.assertEqual((out, inn, refused), (batched, self.Tenancy, []))
        self.assertEqual(self.delta(before, middle), self.delta(middle, after))
        figures = self.figures(batched)
        self.assertEqual(self.figures(single), figures)
        # 300.00 - 210.00 rent - 80.00 usage + 100.00 of the rent credited
        self.assertEqual(figures["balance"], 110.0)
        self.assertEqual(figures["state"], "ending")
        self.assertFalse(self.room2.tenant_id)
        self.assertFalse(self.meter2.billing_account_id)
        # and their settlements too
        with freeze_time(MOVE_OUT):
            single._settle(self.cash)
            batched._settle_batch(self.cash)
        self.assertEqual(
            self.figures(single) | {"refund": single.settle_refund},
            self.figures(batched) | {"refund": batched.settle_refund},
        )
        self.assertEqual(batched.settle_refund, 610.0)
        self.assert_reconciled()

    def test_a_meter_not_answering_leaves_its_tenancy_untouched(self):
        with freeze_time(MOVE_IN):
            leaving = self.move_in(deposit_amount=0.0, charge_item_ids=[])
            stuck_in = self.draft(self.tenant5, self.room_dead)
            arriving = self.draft(self.tenant3, self.room3, deposit=300.0)
        # ticking: the driver's timeout runs on the event loop's clock
        with freeze_time(MOVE_OUT, tick=True):
            out, inn, refused = self.Tenancy._batch_moves(
                leaving, stuck_in | arriving, deposit_journal=self.cash
            )
        self.assertEqual((out, inn), (leaving, arriving))
        self.assertEqual([t for t, _reason in refused], [stuck_in])
        self.assertEqual(leaving.state, "ending")
        self.assertEqual(arriving.state, "active")
        self.assertEqual(arriving.deposit_held, 300.0)
        # the refused one: as it was, nothing written for it
        self.assertEqual(stuck_in.state, "draft")
        self.assertFalse(stuck_in.account_id)
        self.assertFalse(stuck_in.reading_ids)
        self.assertEqual(stuck_in.deposit_held, 0.0)
        self.assertFalse(self.meter_dead.billing_account_id)
        self.assertFalse(self.room_dead.tenant_id)
        self.assertFalse(
            self.env["account.move.line"].search([("partner_id", "=", self.tenant5.id)])
        )
        self.assert_reconciled()

    def test_one_deposit_entry_per_batch_reconciles(self):
        with freeze_time(MOVE_IN):
            first = self.draft(self.tenant3, self.room3, deposit=300.0, rent=False)
            second = self.draft(self.tenant4, self.room4, deposit=200.0, rent=False)
            without = self.draft(self.tenant5, self.room2, deposit=0.0, rent=False)
            _out, inn, _refused = self.Tenancy._batch_moves(
                self.Tenancy, first | second | without, deposit_journal=self.cash
            )
        self.assertEqual(inn, first | second | without)
        deposits = self.company.prepaid_deposit_account_id
        lines = self.env["account.move.line"].search([("account_id", "=", deposits.id)])
        move = lines.move_id
        self.assertEqual(len(move), 1)
        self.assertEqual(move.state, "posted")
        self.assertEqual(
            sorted(
                (line.prepaid_tenancy_id, line.partner_id, line.credit)
                for line in lines
            ),
            sorted([(first, self.tenant3, 300.0), (second, self.tenant4, 200.0)]),
        )
        (cash_line,) = move.line_ids - lines
        self.assertEqual(cash_line.debit, 500.0)
        self.assertEqual(
            (first.deposit_held, second.deposit_held, without.deposit_held),
            (300.0, 200.0, 0.0),
        )
        result = self.assert_reconciled()
        self.assertEqual(
            (result["deposits"], result["deposit_account"]), (500.0, 500.0)
        )
        # the reconciliation report shows the same
        report = self.env["prepaid.wallet.reconciliation"].search(
            [("company_id", "=", self.company.id)]
        )
        self.assertEqual(report.deposit_total, 500.0)
        self.assertEqual(report.deposit_difference, 0.0)
        # the first leaves: its deposit goes back, the second's stays held
        with freeze_time(MOVE_OUT):
            out, _inn, _refused = self.Tenancy._batch_moves(
                first, self.Tenancy, deposit_journal=self.cash
            )
            out._settle_batch(self.cash)
        self.assertEqual(first.settle_deposit, 300.0)
        self.assertEqual((first.deposit_held, second.deposit_held), (0.0, 200.0))
        result = self.assert_reconciled()
        self.assertEqual(result["deposits"], 200.0)
        self.assertEqual(self.deposit_balance(), 200.0)
        # the portal's figure and the statement's come from the same field
        self.assertEqual(second.with_user(self.env.user).deposit_held, 200.0)
        self.assertEqual(first._statement_figures()["deposit"], 300.0)

    def test_a_batch_settlement_is_reversed_one_tenancy_at_a_time(self):
        with freeze_time(MOVE_IN):
            first = self.draft(self.tenant3, self.room3, deposit=300.0, rent=False)
            second = self.draft(self.tenant4, self.room4, deposit=200.0, rent=False)
            both = first | second
            self.Tenancy._batch_moves(self.Tenancy, both, deposit_journal=self.cash)
            for tenancy in both:
                tenancy.account_id._recharge(
                    50.0, self.cash, f"batch-test:{tenancy.id}", "cash"
                )
        with freeze_time(MOVE_OUT):
            out, _inn, _refused = self.Tenancy._batch_moves(
                both, self.Tenancy, deposit_journal=self.cash
            )
            out._settle_batch(self.cash)
        self.assertEqual(both.mapped("state"), ["ended", "ended"])
        self.assertEqual(both.mapped("settle_refund"), [350.0, 250.0])
        self.assertEqual(both.mapped("settle_deposit"), [300.0, 200.0])
        # one entry for the deposits returned, one for the refunds
        self.assertEqual(first.settle_line_ids.move_id, second.settle_line_ids.move_id)
        self.assertEqual(len(first.settle_line_ids.move_id), 2)
        self.assertEqual(both.account_id.mapped("balance"), [0.0, 0.0])
        self.assertEqual(self.deposit_balance(), 0.0)
        self.assert_reconciled()
        with freeze_time(MOVE_OUT):
            first._reverse_settlement()
        self.assertEqual((first.state, second.state), ("ending", "ended"))
        self.assertEqual(first.account_id.balance, 50.0)
        self.assertEqual((first.deposit_held, second.deposit_held), (300.0, 0.0))
        self.assertEqual(second.account_id.balance, 0.0)
        self.assertEqual(self.deposit_balance(), 300.0)
        self.assert_reconciled()
        with freeze_time(MOVE_OUT):
            first._settle(self.cash)
        self.assertEqual(first.settle_refund, 350.0)
        self.assertEqual(first.deposit_held, 0.0)
        result = self.assert_reconciled()
        self.assertEqual(result["deposits"], 0.0)
