import logging
from datetime import date
from unittest.mock import patch

from freezegun import freeze_time

from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import new_test_user, tagged

from .common import BillingCase

FEB28, MAR1, MAR2 = date(2026, 2, 28), date(2026, 3, 1), date(2026, 3, 2)


@tagged("post_install", "-at_install")
class TestDailyRebuild(BillingCase):
    """The "Rebuild daily use" wizard (site in Asia/Shanghai, UTC+8)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tou = cls.make_tou("TOU rebuild")
        cls.meter = cls.make_meter(cls.gateway, 1)
        cls.other = cls.make_meter(cls.gateway, 2, room=cls.room2)
        cls.make_account(cls.meter, tariff=cls.tou, opening=500.0)
        cls.make_account(cls.other, opening=500.0)
        cls.building2 = cls.env["prepaid.building"].create(
            {"name": "Tower 2", "site_id": cls.site.id}
        )
        floor2 = cls.env["prepaid.floor"].create(
            {"name": "T2 F1", "level": 1, "building_id": cls.building2.id}
        )
        room3 = cls.env["prepaid.room"].create(
            {"name": "Shop 3", "floor_id": floor2.id}
        )
        cls.far = cls.make_meter(cls.gateway, 3, room=room3)
        cls.make_account(cls.far, opening=500.0)
        cls.postpaid = cls.make_meter(cls.gateway, 4, room=cls.room2)
        cls.make_account(cls.postpaid, opening=0.0, mode="postpaid")
        cls.loose = cls.make_meter(cls.gateway, 5, room=cls.room2)  # no account
        cls.empty_building = cls.env["prepaid.building"].create(
            {"name": "Tower 3 (empty)", "site_id": cls.site.id}
        )
        cls.meters = cls.meter | cls.other | cls.far | cls.postpaid | cls.loose
        company = {"company_id": cls.company.id, "company_ids": [cls.company.id]}
        cls.manager = new_test_user(
            cls.env,
            login="rebuild_manager",
            groups="prepaid_billing.group_billing_manager",
            **company,
        )
        cls.accountant = new_test_user(
            cls.env,
            login="rebuild_accountant",
            groups="prepaid_billing.group_billing_user",
            **company,
        )
        cls.operator = new_test_user(
            cls.env,
            login="rebuild_operator",
            groups="prepaid_metering.group_metering_user",
            **company,
        )

    def setUp(self):
        super().setUp()
        # local 22:00 Feb 28 (the baseline) and 23:30, then March 1st at 01:00
        # (valley), 11:00 (peak) and 19:30 (sharp)
        for total, at, bands in (
            (100.0, "2026-02-28 14:00:00", (10, 20, 30, 40)),
            (102.0, "2026-02-28 15:30:00", (10, 20, 31, 41)),
            (105.0, "2026-02-28 17:00:00", (10, 20, 31, 44)),
            (109.0, "2026-03-01 03:00:00", (10, 24, 31, 44)),
            (111.0, "2026-03-01 11:30:00", (12, 24, 31, 44)),
        ):
            sharp, peak, flat, valley = bands
            self.reading(
                self.meter, total, at, sharp=sharp, peak=peak, flat=flat, valley=valley
            )
        for meter, first in ((self.other, 50.0), (self.far, 10.0)):
            self.reading(meter, first, "2026-02-28 14:00:00")
            self.reading(meter, first + 1.5, "2026-02-28 15:50:00")
            self.reading(meter, first + 3.5, "2026-03-01 01:00:00")
            self.reading(meter, first + 5.0, "2026-03-02 01:00:00")
        for meter in (self.postpaid, self.loose):
            self.reading(meter, 100.0, "2026-02-28 14:00:00")  # 22:00 local
            self.reading(meter, 103.0, "2026-02-28 17:00:00")  # 01:00 Mar 1
            self.reading(meter, 107.5, "2026-03-01 03:00:00")  # 11:00 Mar 1
        self.bill()
        self.add_not_deducted()

    # ------------------------------------------------------------------
    # Helpers
    # ------------------------------------------------------------------
    def snapshot(self):
        """Every stored column of the meters' days (but the row id), by
        (meter, day)."""
        self.env.flush_all()
        cr = self.env.cr
        cr.execute(
            "SELECT * FROM prepaid_daily_usage WHERE meter_id = ANY(%s)",
            [self.meters.ids],
        )
        names = [column.name for column in cr.description]
        rows = {}
        for values in cr.fetchall():
            row = dict(zip(names, values, strict=True))
            del row["id"]
            rows[(row["meter_id"], row["date"])] = row
        return rows

    def damage(self):
        """Delete or zero some days of every meter, with SQL."""
        cr = self.env.cr
        cr.execute(
            "DELETE FROM prepaid_daily_usage WHERE meter_id = ANY(%s) AND date = %s",
            [[self.meter.id, self.postpaid.id], MAR1],
        )
        cr.execute(
            "UPDATE prepaid_daily_usage SET energy_kwh = 0, amount = 0, "
            "peak_kwh = 0, last_energy_kwh = 0 WHERE meter_id = ANY(%s)",
            [(self.meters - self.postpaid).ids],
        )
        self.env["prepaid.daily.usage"].invalidate_model()

    def wizard(self, user=None, **vals):
        vals.setdefault("date_from", FEB28)
        vals.setdefault("date_to", MAR1)
        Wizard = self.env["prepaid.daily.rebuild.wizard"]
        return Wizard.with_user(user or self.manager).create(vals)

    def assert_days(self, found, expected, keys):
        for key in keys:
            self.assertEqual(found.get(key), expected[key], key)

    # ------------------------------------------------------------------
    # Tests
    # ------------------------------------------------------------------
    def test_wizard_rebuilds_a_damaged_range_as_it_was(self):
        before = self.snapshot()
        self.assertEqual(len(before), 12)
        self.damage()
        self.assertNotEqual(self.snapshot(), before)
        wizard = self.wizard(scope="company", date_from=FEB28, date_to=date(2026, 3, 2))
        logger = "odoo.addons.prepaid_billing.wizards.prepaid_daily_rebuild_wizard"
        # (logging.INFO: Odoo names its RUNBOT level "INFO" too)
        with self.assertLogs(logger, logging.INFO) as logged:
            result = wizard.action_rebuild()
        self.assertEqual(self.snapshot(), before)
        self.assertIn("5 meters, 2026-02-28 to 2026-03-02, 12 days", logged.output[0])
        self.assertEqual(result["tag"], "display_notification")
        self.assertEqual(
            result["params"]["message"],
            "12 days of 5 meters rewritten from their readings "
            "(02/28/2026 to 03/02/2026).",
        )
        # the cost of the days is what the wallets paid
        mar1 = before[(self.meter.id, MAR1)]
        self.assertEqual((mar1["energy_kwh"], mar1["amount"]), (9, 8.05))

    def test_only_the_range_and_buildings_asked_for_are_touched(self):
        before = self.snapshot()
        self.damage()
        damaged = self.snapshot()
        self.wizard(
            scope="building",
            building_ids=[self.building.id],
            date_from=MAR1,
            date_to=MAR1,
        ).action_rebuild()
        after = self.snapshot()
        in_scope = self.meters - self.far
        self.assert_days(after, before, [(m.id, MAR1) for m in in_scope])
        # another day of the same meters, the same day of another building
        self.assert_days(after, damaged, [(m.id, FEB28) for m in in_scope])
        self.assert_days(after, damaged, [(self.far.id, MAR1), (self.other.id, MAR2)])

    def test_chosen_meters_from_the_meter_list_only(self):
        action = self.env.ref(
            "prepaid_billing.prepaid_daily_rebuild_wizard_action_meters"
        )
        self.assertEqual(action.binding_model_id.model, "prepaid.meter")
        self.assertIn(
            self.env.ref("prepaid_billing.group_billing_manager"), action.groups_id
        )
        before = self.snapshot()
        self.damage()
        damaged = self.snapshot()
        Wizard = (
            self.env["prepaid.daily.rebuild.wizard"]
            .with_user(self.manager)
            .with_context(default_scope="meter", default_meter_ids=self.other.ids)
        )
        wizard = Wizard.create({"date_from": FEB28, "date_to": MAR2})
        self.assertEqual(wizard.meter_ids, self.other)
        wizard.action_rebuild()
        after = self.snapshot()
        self.assert_days(after, before, [(self.other.id, d) for d in (FEB28, MAR1)])
        self.assert_days(after, damaged, [(self.meter.id, FEB28), (self.far.id, MAR1)])

    def test_a_site_is_rebuilt_piece_by_piece_like_in_one_go(self):
        before = self.snapshot()
        self.damage()
        Daily = type(self.env["prepaid.daily.usage"])
        Wizard = type(self.env["prepaid.daily.rebuild.wizard"])
        rebuild, calls = Daily._rebuild, []

        def spy(model, meter_ids, date_from, date_to):
            calls.append((len(meter_ids), date_from, date_to))
            return rebuild(model, meter_ids, date_from, date_to)

        with (
            patch.object(Daily, "_rebuild", spy),
            patch.object(Wizard, "_rebuild_meters_per_piece", 2),
            patch.object(Wizard, "_rebuild_meter_days_per_piece", 4),
        ):
            result = self.wizard(
                scope="site", site_id=self.site.id, date_to=MAR2
            ).action_rebuild()
        self.assertEqual(self.snapshot(), before)
        # 5 meters in chunks of 2, 2 and 1; 2 meters: 2 days a piece
        self.assertEqual(
            calls,
            [(2, FEB28, MAR1), (2, MAR2, MAR2)] * 2 + [(1, FEB28, MAR2)],
        )
        self.assertIn("12 days of 5 meters", result["params"]["message"])

    def test_postpaid_and_unassigned_meters_get_back_their_days(self):
        maintained = self.snapshot()
        for meter in (self.postpaid, self.loose):
            mar1 = maintained[(meter.id, MAR1)]
            self.assertEqual(
                (mar1["energy_kwh"], mar1["first_energy_kwh"], mar1["last_energy_kwh"]),
                (7.5, 103.0, 107.5),
            )
            self.assertEqual((mar1["amount"], mar1["charge_count"]), (0, 0))
        self.damage()
        self.wizard(
            scope="meter", meter_ids=(self.postpaid | self.loose).ids
        ).action_rebuild()
        after = self.snapshot()
        keys = [(m.id, d) for m in (self.postpaid, self.loose) for d in (FEB28, MAR1)]
        self.assert_days(after, maintained, keys)

    def test_reversed_dates_are_refused(self):
        with self.assertRaisesRegex(ValidationError, "before the first day"):
            self.wizard(scope="company", date_from=MAR1, date_to=FEB28)

    @freeze_time("2026-03-01 10:00:00")  # 18:00 on March 1st at the site
    def test_a_future_start_is_refused_and_changes_nothing(self):
        self.damage()
        damaged = self.snapshot()
        wizard = self.wizard(scope="company", date_from=MAR2, date_to=MAR2)
        with self.assertRaisesRegex(UserError, "in the future"):
            wizard.action_rebuild()
        self.assertEqual(self.snapshot(), damaged)

    @freeze_time("2026-02-28 17:00:00")  # 01:00 on March 1st at the site
    def test_a_future_end_stops_at_the_sites_today(self):
        before = self.snapshot()
        self.damage()
        damaged = self.snapshot()
        result = self.wizard(
            scope="company", date_from=MAR1, date_to=date(2026, 3, 31)
        ).action_rebuild()
        self.assertIn("(03/01/2026 to 03/01/2026)", result["params"]["message"])
        after = self.snapshot()
        self.assert_days(after, before, [(m.id, MAR1) for m in self.meters])
        self.assert_days(after, damaged, [(self.other.id, MAR2), (self.far.id, MAR2)])

    def test_an_empty_scope_is_refused_and_changes_nothing(self):
        self.damage()
        damaged = self.snapshot()
        for vals, message in (
            (
                {"scope": "building", "building_ids": [self.empty_building.id]},
                "No meter to rebuild",
            ),
            ({"scope": "building"}, "at least one building"),
            ({"scope": "site"}, "Choose the site"),
            ({"scope": "meter"}, "at least one meter"),
        ):
            with self.subTest(vals=vals), self.assertRaisesRegex(UserError, message):
                self.wizard(**vals).action_rebuild()
        self.assertEqual(self.snapshot(), damaged)

    def test_only_billing_managers_may_rebuild(self):
        self.damage()
        damaged = self.snapshot()
        for user in (self.operator, self.accountant):
            with self.subTest(user=user.login):
                with self.assertRaises(AccessError):
                    self.wizard(user=user, scope="company")
                # the action's own check, before it reads anything
                wizard = self.wizard(scope="company")
                with self.assertRaisesRegex(AccessError, "may rebuild the daily use"):
                    wizard.with_user(user).action_rebuild()
        self.assertEqual(self.snapshot(), damaged)

    # ------------------------------------------------------------------
    # Large scopes: a batch task
    # ------------------------------------------------------------------
    def test_a_large_scope_becomes_a_batch_task_the_cron_runs(self):
        before = self.snapshot()
        self.damage()
        damaged = self.snapshot()
        Wizard = type(self.env["prepaid.daily.rebuild.wizard"])
        # 5 meters x 3 days: above 10 meter-days it is not the request's work
        with patch.object(Wizard, "_inline_meter_days", 10):
            result = self.wizard(scope="company", date_to=MAR2).action_rebuild()
        self.assertEqual(self.snapshot(), damaged, "nothing rebuilt in the request")
        self.assertEqual(result["res_model"], "prepaid.batch.job")
        job = self.env["prepaid.batch.job"].browse(result["res_id"])
        self.assertEqual(
            (job.operation, job.state, job.rebuild_from, job.rebuild_to),
            ("rebuild_daily", "scheduled", FEB28, MAR2),
        )
        self.assertEqual(job.meter_ids, self.meters)
        self.env["prepaid.batch.job"]._cron_run()
        self.assertEqual(job.state, "done")
        self.assertEqual(job.done_count, 5)
        self.assertEqual(self.snapshot(), before)

    def test_rebuild_tasks_check_their_days_and_their_users(self):
        Job = self.env["prepaid.batch.job"]
        vals = {
            "operation": "rebuild_daily",
            "meter_ids": [(6, 0, self.meters.ids)],
            "rebuild_from": MAR2,
            "rebuild_to": MAR1,
        }
        with self.assertRaisesRegex(ValidationError, "first and last day"):
            Job.with_user(self.manager).create(vals)
        vals["rebuild_from"] = FEB28
        for user in (self.accountant, self.operator):
            with self.subTest(user=user.login), self.assertRaises(AccessError):
                Job.with_user(user).create(vals)
        self.assertTrue(Job.with_user(self.manager).create(vals))

    @freeze_time("2026-02-28 17:00:00")  # 01:00 on March 1st at the site
    def test_a_rebuild_task_stops_at_the_sites_today(self):
        before = self.snapshot()
        self.damage()
        damaged = self.snapshot()
        job = self.env["prepaid.batch.job"].create(
            {
                "operation": "rebuild_daily",
                "meter_ids": [(6, 0, self.meters.ids)],
                "rebuild_from": MAR1,
                "rebuild_to": date(2026, 3, 31),
            }
        )
        job.action_run_now()
        self.env["prepaid.batch.job"]._cron_run()
        self.assertEqual(job.state, "done")
        self.assertIn("2026-03-01 to 2026-03-01", job.line_ids[0].result)
        after = self.snapshot()
        self.assert_days(after, before, [(m.id, MAR1) for m in self.meters])
        self.assert_days(after, damaged, [(self.other.id, MAR2), (self.far.id, MAR2)])
