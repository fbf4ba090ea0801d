from werkzeug.exceptions import NotFound

from odoo import http
from odoo.exceptions import AccessError, MissingError
from odoo.http import request

from odoo.addons.portal.controllers.portal import CustomerPortal


class TenancyPortal(CustomerPortal):
    """The tenant's tenancies: rooms, dates, deposit held and, after leaving,
    the settlement statement. Only the tenancy's own readings are shown,
    never the room's use after the tenant left."""

    def _prepare_home_portal_values(self, counters):
        values = super()._prepare_home_portal_values(counters)
        if "prepaid_tenancy_count" in counters:
            Tenancy = request.env["prepaid.tenancy"]
            values["prepaid_tenancy_count"] = (
                Tenancy.search_count([("state", "!=", "draft")])
                if Tenancy.has_access("read")
                else 0
            )
        return values

    def _tenancy(self, tenancy_id, access_token=None):
        try:
            return self._document_check_access(
                "prepaid.tenancy", tenancy_id, access_token=access_token
            )
        except (AccessError, MissingError) as err:
            raise NotFound() from err

    @http.route(["/my/tenancies"], type="http", auth="user", website=True)
    def portal_my_tenancies(self, **kwargs):
        tenancies = request.env["prepaid.tenancy"].search([("state", "!=", "draft")])
        values = self._prepare_portal_layout_values()
        values.update({"tenancies": tenancies.sudo(), "page_name": "tenancies"})
        return request.render("prepaid_tenancy.portal_my_tenancies", values)

    @http.route(
        ["/my/tenancies/<int:tenancy_id>"], type="http", auth="public", website=True
    )
    def portal_my_tenancy(self, tenancy_id, access_token=None, **kwargs):
        tenancy = self._tenancy(tenancy_id, access_token)
        if tenancy.state == "draft":
            raise NotFound()
        values = self._prepare_portal_layout_values()
        values.update(
            {
                "tenancy": tenancy,
                "page_name": "tenancy",
                "figures": tenancy._statement_figures()
                if tenancy.state in ("ending", "ended")
                else None,
                "readings": tenancy.reading_ids.filtered(lambda r: not r.cancelled),
            }
        )
        return request.render("prepaid_tenancy.portal_my_tenancy", values)

    @http.route(
        ["/my/tenancies/<int:tenancy_id>/statement"],
        type="http",
        auth="public",
        website=True,
    )
    def portal_my_tenancy_statement(self, tenancy_id, access_token=None, **kwargs):
        tenancy = self._tenancy(tenancy_id, access_token)
        if tenancy.state != "ended":
            raise NotFound()
        return self._show_report(
            tenancy,
            "pdf",
            "prepaid_tenancy.action_report_tenancy_statement",
            download=kwargs.get("download") == "true",
        )
