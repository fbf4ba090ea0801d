from odoo import Command, fields

from odoo.addons.prepaid_metering.tests.common import MeteringCase

TOU_DAY = [
    ("valley", 0, 7),
    ("flat", 7, 8),
    ("peak", 8, 11),
    ("flat", 11, 17),
    ("peak", 17, 19),
    ("sharp", 19, 21),
    ("flat", 21, 23),
    ("valley", 23, 24),
]


class BillingCase(MeteringCase):
    """Accounting set-up, tariffs and helpers shared by the billing tests.

    Everything happens in a company of its own, so that wallets and the
    liability account compare to the cent whatever else the database holds.
    """

    @classmethod
    def _setup_company(cls):
        company = cls.env["res.company"].create(
            {
                "name": "Prepaid Test Co",
                "currency_id": cls.env.company.currency_id.id,
            }
        )
        cls.env.user.company_ids |= company
        cls.env = cls.env(
            context=dict(cls.env.context, allowed_company_ids=[company.id])
        )
        return company

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        company = cls.company
        Account = cls.env["account.account"]
        cls.liability = Account.create(
            {
                "name": "Test prepayments",
                "code": "TPP219",
                "account_type": "liability_current",
            }
        )
        cls.revenue = Account.create(
            {
                "name": "Test utility revenue",
                "code": "TPR419",
                "account_type": "income",
            }
        )
        cash_account = Account.create(
            {
                "name": "Test cash",
                "code": "TPC101",
                "account_type": "asset_cash",
            }
        )
        cls.cash = cls.env["account.journal"].create(
            {
                "name": "Test cash",
                "code": "TPCSH",
                "type": "cash",
                "default_account_id": cash_account.id,
            }
        )
        cls.misc = cls.env["account.journal"].create(
            {
                "name": "Test prepaid revenue",
                "code": "TPMSC",
                "type": "general",
            }
        )
        company.write(
            {
                "prepaid_liability_account_id": cls.liability.id,
                "prepaid_revenue_account_id": cls.revenue.id,
                "prepaid_journal_id": cls.misc.id,
                "prepaid_alarm1_amount": 50.0,
                "prepaid_alarm2_amount": 20.0,
                "prepaid_alarm3_amount": 5.0,
                "prepaid_alarm_times": 2,
                "prepaid_alarm_interval_hours": 12.0,
            }
        )
        cls.tenant = cls.env["res.partner"].create(
            {
                "name": "Tenant One",
                "email": "t1@example.com",
                "mobile": "+8613800000001",
            }
        )
        cls.flat = cls.make_tariff("Flat 0.80", kind="flat", price=0.8)
        cls.gateway = cls.make_gateway(port=1, name="Billing bus")

    @classmethod
    def make_meter(cls, gateway, device_id, kind="electric_1p", room=None, **vals):
        # The pricing tests read large steps (up to 141 kWh in an hour): their
        # meters are rated for it. The plausibility rule has tests of its own
        # (test_suspect_billing), with the default ratings.
        vals.setdefault("rated_power_kw", 0.0 if kind == "water" else 200.0)
        return super().make_meter(gateway, device_id, kind=kind, room=room, **vals)

    @classmethod
    def make_tariff(
        cls, name, utility="electricity", date_from="2020-01-01", **version
    ):
        if version.get("kind") == "tou" and "season_ids" not in version:
            version["season_ids"] = [
                Command.create(
                    {
                        "name": "All year",
                        "months": "1-12",
                        "period_ids": [
                            Command.create({"band": b, "hour_from": f, "hour_to": t})
                            for b, f, t in TOU_DAY
                        ],
                    }
                )
            ]
        return cls.env["prepaid.tariff"].create(
            {
                "name": name,
                "utility": utility,
                "version_ids": [Command.create({"date_from": date_from, **version})],
            }
        )

    @classmethod
    def make_tou(cls, name):
        """Time of use, all year: sharp 1.30, peak 1.10, flat 0.70, valley 0.35."""
        return cls.make_tariff(
            name,
            kind="tou",
            price_sharp=1.3,
            price_peak=1.1,
            price_flat=0.7,
            price_valley=0.35,
        )

    @classmethod
    def make_account(
        cls, meters, tariff=None, opening=0.0, water_tariff=None, open_it=True, **vals
    ):
        account = cls.env["prepaid.account"].create(
            {
                "partner_id": cls.tenant.id,
                "tariff_id": (tariff or cls.flat).id,
                "water_tariff_id": water_tariff.id if water_tariff else False,
                "opening_balance": opening,
                "meter_link_ids": [Command.set(meters.ids)],
                **vals,
            }
        )
        if open_it:
            account.with_context(prepaid_opening_journal_id=cls.cash.id)._open()
        return account

    def reading(self, meter, kwh, at, **bands):
        """A manual reading at UTC time ``at`` (the site is Asia/Shanghai)."""
        vals = {
            "meter_id": meter.id,
            "source": "import",
            "read_at": fields.Datetime.to_datetime(at),
        }
        if meter.meter_type == "water":
            vals["volume_m3"] = kwh
        else:
            vals["energy_total_kwh"] = kwh
        vals.update({f"energy_{band}_kwh": value for band, value in bands.items()})
        return self.env["prepaid.reading"].create(vals)

    def bill(self):
        """The billing job on this test's meters; returns readings charged."""
        return self.env["prepaid.billing.engine"]._cron_bill(meters=self.own_meters())

    def add_not_deducted(self):
        """The daily job for meters billing does not deduct, on this test's
        meters; returns readings added."""
        return self.env["prepaid.daily.usage"]._cron_not_deducted(
            meters=self.own_meters()
        )

    def consumption(self, account):
        return account.ledger_line_ids.filtered(
            lambda line: line.line_type == "consumption"
        ).sorted("id")

    def charges(self, meters):
        """The reading charges of ``meters``, oldest reading first."""
        return self.env["prepaid.reading.charge"].search(
            [("meter_id", "in", meters.ids)], order="id"
        )

    def assert_reconciled(self):
        result = self.env["prepaid.billing.engine"]._reconciliation(self.company)
        self.assertTrue(result["balanced"], result)
        return result
