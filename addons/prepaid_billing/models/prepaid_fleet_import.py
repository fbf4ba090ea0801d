from odoo import Command, fields, models

from odoo.addons.prepaid_metering.tools import fleet_import as fi

#: Rows billing adds to the fleet table: tenants (partners) and their prepaid
#: accounts, opened with their opening balance.
NO_JOURNAL = "no_journal"
BILLING_KINDS = {
    "tenant": fi.Kind(
        "tenant",
        0,
        None,
        ("name",),
        {"name": fi.text, "email": fi.text, "phone": fi.text},
    ),
    "account": fi.Kind(
        "account",
        5,
        "tenant",
        ("meters",),
        {
            "meters": fi.words,
            "tariff": fi.text,
            "water_tariff": fi.text,
            "opening_balance": fi.number(0),
        },
        refs={"meters": "meter", "tariff": "tariff", "water_tariff": "tariff"},
    ),
}


class PrepaidFleetImport(models.Model):
    """Tenants and prepaid accounts in the fleet table.

    An account row names its tenant (parent), its meters and tariffs (refs or
    external ids) and an opening balance. Accounts are created and opened
    through the accounts' own opening (``_open``) in the piece that creates
    them: the opening balance is posted to the wallet ledger and the journal
    of the task, once (its idempotency key is the account).
    """

    _inherit = "prepaid.fleet.import"

    opening_journal_id = fields.Many2one(
        "account.journal",
        string="Opening Balance Journal",
        domain=[("type", "in", ("cash", "bank", "general"))],
        check_company=True,
        help="Where the opening balances of imported accounts come from (cash "
        "received, or a transfer account from the previous system).",
    )

    def _import_kinds(self):
        kinds, models_of = super()._import_kinds()
        kinds.update(BILLING_KINDS)
        models_of.update(
            tenant="res.partner", account="prepaid.account", tariff="prepaid.tariff"
        )
        return kinds, models_of

    def _read_plan(self):
        plan = super()._read_plan()
        if not self.opening_journal_id:
            plan.issues.extend(
                fi.Issue(row.line, NO_JOURNAL, {})
                for row in plan.rows
                if row.kind == "account" and row.values.get("opening_balance")
            )
            plan.issues.sort(key=lambda issue: issue.line)
        return plan

    def _issue_message(self, issue):
        if issue.code == NO_JOURNAL:
            return self.env._(
                "An opening balance needs the Opening Balance Journal of the import."
            )
        return super()._issue_message(issue)

    def _import_vals_tenant(self, row, links):
        return dict(row.values, company_id=self.company_id.id)

    def _import_vals_account(self, row, links):
        vals = {
            "partner_id": links.ids[row.parent],
            "company_id": self.company_id.id,
            "opening_balance": row.values.get("opening_balance", 0.0),
            "meter_link_ids": [
                Command.set([links.ids[ref] for ref in row.values["meters"]])
            ],
        }
        for column, field in (
            ("tariff", "tariff_id"),
            ("water_tariff", "water_tariff_id"),
        ):
            if row.values.get(column):
                vals[field] = links.ids[row.values[column]]
        return vals

    def _create_piece(self, kind, model, rows, links):
        records = super()._create_piece(kind, model, rows, links)
        if kind == "account":
            records.with_context(
                prepaid_opening_journal_id=self.opening_journal_id.id
            )._open()
        return records
