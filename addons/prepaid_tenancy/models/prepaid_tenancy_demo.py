import base64

from odoo import api, fields, models

# A 1x1 PNG: the demo's "photo" of a meter display read by hand.
DEMO_PHOTO = base64.b64encode(
    base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA"
        "60e6kgAAAABJRU5ErkJggg=="
    )
)


class PrepaidTenancy(models.Model):
    _inherit = "prepaid.tenancy"  # pylint: disable=consider-merging-classes-inherited

    @api.model
    def _demo_create_tenancies(self):
        """Demo data: a tenancy for every open demo account (its rooms, its
        opening), then one room handed over to a next tenant: the previous
        tenancy ends with a settlement statement."""
        site = self.env.ref("prepaid_metering.demo_site", raise_if_not_found=False)
        if not site or self.search_count([]):
            return
        accounts = self.env["prepaid.account"].search(
            [("state", "=", "open"), ("meter_ids.site_id", "=", site.id)],
            order="id",
        )
        Reading = self.env["prepaid.reading"]
        tenancies = self.browse()
        for account in accounts:
            rooms = account.meter_ids.room_id
            lines = []
            for meter in account.meter_ids:
                reading = Reading.search(
                    [("meter_id", "=", meter.id), ("read_at", "<=", account.opened_at)],
                    limit=1,
                ) or Reading.search([("meter_id", "=", meter.id)], order="id", limit=1)
                if reading:
                    lines.append(
                        fields.Command.create(
                            {
                                "kind": "opening",
                                "meter_id": meter.id,
                                "reading_id": reading.id,
                            }
                        )
                    )
            tenancies |= self.create(
                {
                    "partner_id": account.partner_id.id,
                    "company_id": account.company_id.id,
                    "room_ids": [fields.Command.set(rooms.ids)],
                    "mode": account.mode,
                    "tariff_id": account.tariff_id.id,
                    "water_tariff_id": account.water_tariff_id.id,
                    "account_id": account.id,
                    "state": "active",
                    "date_start": account.opened_at,
                    "reading_ids": lines,
                }
            )
        # A room whose meters have readings (the hand-over continues from
        # them: no drop, no jump for the demo fleet's next poll).
        self.env.flush_all()
        self.env.cr.execute(
            """SELECT DISTINCT ON (meter_id) meter_id, id FROM prepaid_reading
                WHERE meter_id = ANY(%s) ORDER BY meter_id, read_at DESC, id DESC""",
            [accounts.meter_ids.ids],
        )
        last = {meter: Reading.browse(rid) for meter, rid in self.env.cr.fetchall()}
        candidates = tenancies.filtered(
            lambda t: (
                len(t.room_ids) == 1
                and t.account_id.meter_ids
                and all(
                    m.billing_mode == "server" and m.id in last
                    for m in t.account_id.meter_ids
                )
            )
        )
        # A prepaid room when one has readings already; otherwise (a fresh
        # demo: only the postpaid meters have this month's readings) a
        # postpaid one, whose statement then shows its final bill.
        handed_over = (
            candidates.filtered(lambda t: t.mode == "prepaid") or candidates
        )[-1:]
        if not handed_over:
            return
        journal = self.env["account.journal"].search(
            [("type", "=", "cash"), ("company_id", "=", handed_over.company_id.id)],
            limit=1,
        )
        now = fields.Datetime.now()
        specs = []
        for meter in handed_over.account_id.meter_ids:
            reading = last[meter.id]
            water = meter.meter_type == "water"
            specs.append(
                {
                    "meter": meter,
                    "manual": True,
                    "value": reading.volume_m3 if water else reading.energy_total_kwh,
                    "read_at": max(now, reading.read_at),
                    "photo": DEMO_PHOTO,
                    "photo_name": "meter.png",
                }
            )
        handed_over._transfer(
            specs,
            {
                "partner_id": self.env.ref(
                    "prepaid_tenancy.demo_partner_next_tenant"
                ).id,
                "mode": "prepaid",
                "tariff_id": handed_over.tariff_id.id,
                "water_tariff_id": handed_over.water_tariff_id.id,
                "deposit_amount": 500.0,
            },
            deposit_mode="receive",
            deposit_journal=journal,
        )
        handed_over._settle(journal)
