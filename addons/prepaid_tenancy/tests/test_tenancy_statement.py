from lxml import html as lxml_html

from odoo.tests import tagged

from .test_tenancy_debt_retention import DebtRetentionCase

REPORT = "prepaid_tenancy.action_report_tenancy_statement"


def table(page, css):
    """The rows of the table of class ``css`` in ``page``: lists of the
    cells' texts, whitespace (non-breaking too) folded."""
    return [
        [" ".join(cell.text_content().split()) for cell in row.xpath("./td")]
        for row in page.xpath(f"//table[contains(@class, '{css}')]/tbody/tr")
    ]


def amount(text):
    """``"$ 1,234.50"`` (any symbol, either side) -> 1234.5"""
    digits = "".join(c for c in text if c.isdigit() or c in ".-")
    return float(digits)


class StatementCase(DebtRetentionCase):
    def settled_tenancy(self):
        """Moved in with a deposit of 500.00, 300.00 recharged, a debt of
        30.00, 100 kWh used; 20.00 of the deposit retained for cleaning."""
        tenancy = self.move_in(deposit_amount=500.0)
        self.recharge(tenancy, 300.0)
        self.add_debt(tenancy, 30.0)
        self.sim.energy_total = 1100.0
        self.move_out(
            tenancy, deposit_retained=20.0, retention_reason="Cleaning the carpet"
        )
        return tenancy

    def render(self, tenancy):
        body = self.env["ir.actions.report"]._render_qweb_html(REPORT, tenancy.ids)[0]
        return lxml_html.fromstring(body.decode())


@tagged("post_install", "-at_install")
class TestTenancyStatement(StatementCase):
    def test_every_figure_of_the_statement_with_its_source(self):
        tenancy = self.settled_tenancy()
        # hand computation: wallet 300.00 - 210.00 rent (21 days) - 80.00
        # (100 kWh at 0.80) + 100.00 rent credited (10 days) = 110.00;
        # + 500.00 deposit - 20.00 retained - 30.00 debt = 560.00 refunded
        self.assertEqual(tenancy.settle_refund, 560.0)
        page = self.render(tenancy)
        text = " ".join(page.text_content().split())
        self.assertIn(f"Settlement Statement {tenancy.name}", text)
        # Shanghai time of the opening and final readings
        self.assertIn("Moved in 2026-01-11 07:00, moved out 2026-01-21 07:00", text)
        self.assertNotIn("Not settled yet", text)
        self.assertEqual(
            table(page, "o_tenancy_readings"),
            [
                [
                    self.meter.name,
                    "1000.00 kWh 2026-01-11 07:00",
                    "1100.00 kWh 2026-01-21 07:00",
                    "100.00 kWh",
                ]
            ],
        )
        # the wallet before the settlement, by kind of line (the ledger)
        wallet = {
            row[0]: (int(row[1]), amount(row[2]))
            for row in table(page, "o_tenancy_wallet")
        }
        self.assertEqual(
            wallet,
            {
                "Recharge": (1, 300.0),
                "Charge": (2, -110.0),  # 210.00 charged, 100.00 credited
                "Consumption": (1, -80.0),
            },
        )
        self.assertEqual(sum(value for _count, value in wallet.values()), 110.0)
        # the debt, from the debt ledger (without the settlement's payment)
        self.assertEqual(
            [(row[0], amount(row[2])) for row in table(page, "o_tenancy_debt")],
            [("Earlier Tenancy", 30.0)],
        )
        self.assertEqual(table(page, "o_tenancy_invoices"), [])
        self.assertIn("Unpaid invoices None.", text)
        rows = [
            (row[0], amount(row[1]) if row[1] else None)
            for row in table(page, "o_tenancy_settlement")
        ]
        self.assertEqual(
            rows,
            [
                ("Wallet balance (wallet lines above)", 110.0),
                ("+ Deposit held (tenant deposits account)", 500.0),
                ("- Deposit retained: Cleaning the carpet", 20.0),
                ("= Deposit returned", 480.0),
                ("- Unpaid invoices (listed above)", 0.0),
                ("- Debt owed (debt ledger above)", 30.0),
                ("Refunded to the tenant", 560.0),
            ],
        )

    def test_the_statement_in_the_tenants_language(self):
        tenancy = self.settled_tenancy()
        self.env["res.lang"]._activate_lang("zh_CN")
        self.env["ir.module.module"].search(
            [("name", "in", ("prepaid_billing", "prepaid_tenancy"))]
        )._load_module_terms(["prepaid_billing", "prepaid_tenancy"], ["zh_CN"])
        self.tenant.lang = "zh_CN"
        # printed by a user in English: the tenant's language wins
        self.assertEqual(self.env.lang or "en_US", "en_US")
        page = self.render(tenancy)
        text = " ".join(page.text_content().split())
        self.assertIn(f"结算单 {tenancy.name}", text)
        self.assertIn("表计读数", text)
        self.assertNotIn("Settlement Statement", text)
        self.assertNotIn("Meter readings", text)
        wallet = {row[0]: amount(row[2]) for row in table(page, "o_tenancy_wallet")}
        self.assertEqual(wallet, {"充值": 300.0, "费用": -110.0, "用量扣费": -80.0})
        rows = table(page, "o_tenancy_settlement")
        self.assertEqual(rows[0][0], "钱包余额（见上方钱包明细）")
        self.assertEqual(rows[1][0], "+ 押金余额（租户押金科目）")
        self.assertEqual(
            [amount(row[1]) for row in rows],
            [110.0, 500.0, 20.0, 480.0, 0.0, 30.0, 560.0],
        )
        self.assertIn("Cleaning the carpet", rows[2][0])
        self.assertEqual(
            table(page, "o_tenancy_readings")[0][1:],
            [
                "1000.00 kWh 2026-01-11 07:00",
                "1100.00 kWh 2026-01-21 07:00",
                "100.00 kWh",
            ],
        )

    def test_the_statement_before_settlement_says_so(self):
        tenancy = self.move_in(charge_item_ids=[])
        self.move_out(tenancy, settle=False)
        text = " ".join(self.render(tenancy).text_content().split())
        self.assertIn("Not settled yet", text)
