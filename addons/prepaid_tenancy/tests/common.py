import base64
from datetime import date

from freezegun import freeze_time

from odoo import Command

from odoo.addons.prepaid_billing.tests.common import BillingCase
from odoo.addons.prepaid_metering.tests.common import electric

PHOTO = base64.b64encode(b"\x89PNG\r\n\x1a\n a photo of the display")

# Shanghai is UTC+8: 23:00 UTC is 07:00 of the next local day.
MOVE_IN = "2026-01-10 23:00:00"  # 2026-01-11 07:00 in Shanghai
MOVE_OUT = "2026-01-20 23:00:00"  # 2026-01-21 07:00 in Shanghai


class TenancyCase(BillingCase):
    """A shop with one live meter (simulated, 1000.00 kWh), a flat tariff of
    0.80 per kWh, a monthly rent of 310.00 (10.00 a day in January), a sales
    journal and a receivable for invoices."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        Product = cls.env["product.product"]
        cls.rent_product = Product.create(
            {
                "name": "Rent",
                "type": "service",
                "taxes_id": [Command.clear()],
                "property_account_income_id": cls.revenue.id,
            }
        )
        cls.power = Product.create(
            {
                "name": "Electricity",
                "type": "service",
                "taxes_id": [Command.clear()],
                "property_account_income_id": cls.revenue.id,
            }
        )
        cls.flat.product_id = cls.power
        cls.rent = cls.env["prepaid.charge.item"].create(
            {
                "name": "Rent",
                "product_id": cls.rent_product.id,
                "amount_type": "fixed",
                "amount": 310.0,
                "recurrence": "monthly",
                "date_start": date(2026, 1, 1),
                "target_type": "account",
            }
        )
        cls.meter = cls.make_meter(cls.gateway, 1, room=cls.room)
        cls.env["account.journal"].create(
            {"name": "Test sales", "code": "TSAL", "type": "sale"}
        )
        receivable = cls.env["account.account"].create(
            {
                "name": "Test receivable",
                "code": "TRC121",
                "account_type": "asset_receivable",
                "reconcile": True,
            }
        )
        cls.tenant2 = cls.env["res.partner"].create({"name": "Tenant Two"})
        (cls.tenant | cls.tenant2).property_account_receivable_id = receivable
        cls.Tenancy = cls.env["prepaid.tenancy"]

    def setUp(self):
        super().setUp()
        self.fleet = self.start_fresh_fleet(
            [("socket", [electric(1, energy_kwh=1000.0)])], [self.gateway]
        )
        self.sim = self.fleet.meter(0, 1)

    # ------------------------------------------------------------------
    def move_in(self, when=MOVE_IN, manual=None, partner=None, **vals):
        """The move-in wizard; ``manual``: the value entered by hand (with a
        photo) instead of the live reading."""
        with freeze_time(when):
            wizard = self.env["prepaid.tenancy.move.in.wizard"].create(
                {
                    "partner_id": (partner or self.tenant).id,
                    "room_ids": [Command.set(self.room.ids)],
                    "tariff_id": self.flat.id,
                    "charge_item_ids": [Command.set(self.rent.ids)],
                    "journal_id": self.cash.id,
                    **vals,
                }
            )
            wizard._onchange_room_ids()
            if manual is not None:
                wizard.line_ids.write(self.manual_vals(manual, when))
            action = wizard.action_move_in()
        return self.Tenancy.browse(action["res_id"])

    def manual_vals(self, value, when):
        return {
            "manual": True,
            "value": value,
            "read_at": when,
            "photo": PHOTO,
            "photo_name": "display.png",
        }

    def move_out(self, tenancy, when=MOVE_OUT, manual=None, settle=True, **vals):
        with freeze_time(when):
            wizard = (
                self.env["prepaid.tenancy.move.out.wizard"]
                .with_context(default_tenancy_id=tenancy.id)
                .create({"settle_now": settle, "journal_id": self.cash.id, **vals})
            )
            if manual is not None:
                wizard.line_ids.write(self.manual_vals(manual, when))
            return wizard.action_confirm()

    def settle(self, tenancy, when=MOVE_OUT):
        with freeze_time(when):
            wizard = (
                self.env["prepaid.tenancy.move.out.wizard"]
                .with_context(default_tenancy_id=tenancy.id, default_step="settle")
                .create({"journal_id": self.cash.id})
            )
            return wizard.action_confirm()

    def recharge(self, tenancy, amount, when=MOVE_IN):
        with freeze_time(when):
            tenancy.account_id._recharge(amount, self.cash, f"t:{amount}", "cash")

    def lines(self, tenancy, line_type):
        return tenancy.account_id.ledger_line_ids.filtered(
            lambda line: line.line_type == line_type
        ).sorted("id")

    def deposit_balance(self):
        account = self.company.prepaid_deposit_account_id
        lines = self.env["account.move.line"].search(
            [("account_id", "=", account.id), ("parent_state", "=", "posted")]
        )
        return round(sum(lines.mapped("balance")) * -1, 2)
