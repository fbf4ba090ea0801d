from lxml import etree

from odoo.tests import TransactionCase, tagged


@tagged("post_install", "-at_install")
class TestSettingsView(TransactionCase):
    def test_every_alarm_input_has_a_label_of_its_own(self):
        arch = self.env["res.config.settings"].get_views([(False, "form")])["views"][
            "form"
        ]["arch"]
        form = etree.fromstring(arch)
        for name in (
            "prepaid_alarm1_amount",
            "prepaid_alarm2_amount",
            "prepaid_alarm3_amount",
            "prepaid_alarm_times",
            "prepaid_alarm_interval_hours",
        ):
            with self.subTest(field=name):
                [label] = form.xpath(f"//label[@for='{name}']")
                self.assertTrue(label.get("string"))
                # one field a row: nothing shares its line and gets clipped
                [field] = form.xpath(f"//field[@name='{name}']")
                self.assertEqual(field.getparent(), label.getparent())
                self.assertEqual(len(field.getparent()), 2)
