from odoo.http import request

from odoo.addons.portal.controllers.web import Home


class PrepaidHome(Home):
    def _login_redirect(self, uid, redirect=None):
        """Open the portal in the tenant's own language at once.

        The portal's pages take their language from the ``frontend_lang``
        cookie, which the login page (public, default language) has just set:
        without this, a tenant who chose 中文 would land on English pages
        until they picked the language again in the footer."""
        lang = request.env["res.users"].sudo().browse(uid).lang
        if lang and request.env["ir.http"].get_nearest_lang(lang) == lang:
            request.future_response.set_cookie("frontend_lang", lang)
        return super()._login_redirect(uid, redirect=redirect)
