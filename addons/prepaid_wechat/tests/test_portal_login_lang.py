import re

from odoo.tests import HttpCase, new_test_user, tagged

# the footer's language selector marks the language the page is in
ACTIVE = re.compile(r'js_change_lang active"[^>]*data-url_code="([^"]+)"')


@tagged("post_install", "-at_install")
class TestPortalLoginLanguage(HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["res.lang"]._activate_lang("zh_CN")
        new_test_user(
            cls.env, login="zh_tenant", groups="base.group_portal", lang="zh_CN"
        )
        new_test_user(
            cls.env, login="en_tenant", groups="base.group_portal", lang="en_US"
        )

    def _log_in(self, login):
        # a browser that has seen a public page before carries the default
        # language in the frontend_lang cookie
        self.opener.cookies.set("frontend_lang", "en_US", domain="127.0.0.1", path="/")
        page = self.url_open("/web/login")
        token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        return self.url_open(
            "/web/login",
            data={"login": login, "password": login, "csrf_token": token},
        )

    def _cookie(self):
        return [c.value for c in self.opener.cookies if c.name == "frontend_lang"]

    def test_a_tenant_lands_on_the_portal_in_their_own_language(self):
        landed = self._log_in("zh_tenant")
        self.assertEqual(landed.status_code, 200)
        self.assertIn("/my", landed.url)
        self.assertEqual(self._cookie(), ["zh_CN"])
        self.assertEqual(ACTIVE.findall(landed.text), ["zh_CN"])
        self.assertEqual(ACTIVE.findall(self.url_open("/my").text), ["zh_CN"])

    def test_a_tenant_in_the_default_language_keeps_it(self):
        landed = self._log_in("en_tenant")
        self.assertEqual(self._cookie(), ["en_US"])
        self.assertEqual(ACTIVE.findall(landed.text), ["en"])
