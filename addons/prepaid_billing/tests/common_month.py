from datetime import date

from freezegun import freeze_time

from odoo import Command

from .common import BillingCase


class MonthCase(BillingCase):
    """Services, two shops with tenants and meters, accounts opened on
    2025-12-20 (before the month the tests bill)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        Product = cls.env["product.product"]
        cls.fee = Product.create(
            {
                "name": "Property fee",
                "type": "service",
                "taxes_id": [Command.clear()],
                "property_account_income_id": cls.revenue.id,
            }
        )
        cls.rent = Product.create(
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
        cls.tenant2 = cls.env["res.partner"].create(
            {"name": "Tenant Two", "email": "t2@example.com"}
        )
        cls.meter1 = cls.make_meter(cls.gateway, 1, room=cls.room)
        cls.meter2 = cls.make_meter(cls.gateway, 2, room=cls.room2)

    @classmethod
    def open_account(cls, meters, opening=500.0, partner=None, **vals):
        with freeze_time("2025-12-20 02:00:00"):
            return cls.make_account(
                meters,
                opening=opening,
                partner_id=(partner or cls.tenant).id,
                **vals,
            )

    def make_item(self, **vals):
        return self.env["prepaid.charge.item"].create(
            {
                "name": "Property fee",
                "product_id": self.fee.id,
                "amount_type": "per_m2",
                "rate_m2": 2.0,
                "recurrence": "monthly",
                "date_start": date(2026, 1, 1),
                "target_type": "building",
                "building_ids": [Command.set(self.building.ids)],
                **vals,
            }
        )

    def generate(self, items, today):
        return self.env["prepaid.charge.line"]._generate(items, today=today)


class PostpaidCase(MonthCase):
    """Both shops' tenants postpaid, a sales journal and a receivable."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.account1 = cls.open_account(cls.meter1, opening=0.0, mode="postpaid")
        cls.account2 = cls.open_account(
            cls.meter2, opening=0.0, partner=cls.tenant2, mode="postpaid"
        )
        cls.sale = cls.env["account.journal"].create(
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
        (cls.tenant | cls.tenant2).property_account_receivable_id = receivable
        cls.cash.inbound_payment_method_line_ids.payment_account_id = (
            cls.cash.default_account_id
        )

    def january(self, meter, start=100.0, used=250.0):
        self.reading(meter, start, "2025-12-31 12:00:00")
        self.reading(meter, start + used / 2, "2026-01-15 04:00:00")
        self.reading(meter, start + used, "2026-01-31 12:00:00")

    def january_rent(self):
        """Rent of 1000.00 on the first shop's invoice, generated for
        January."""
        rent = self.make_item(
            name="Rent",
            product_id=self.rent.id,
            amount_type="fixed",
            amount=1000.0,
            collection="invoice",
            target_type="room",
            room_ids=[Command.set(self.room.ids)],
        )
        self.generate(rent, date(2026, 1, 1))
        return rent

    def new_run(self, date_from=date(2026, 1, 1), date_to=date(2026, 1, 31)):
        return self.env["prepaid.bill.run"].create(
            {"date_from": date_from, "date_to": date_to}
        )

    def confirm(self, run, when="2026-02-01"):
        with freeze_time(when):
            run.action_confirm()
