import math
from urllib.parse import quote

from werkzeug.exceptions import NotFound

from odoo import http
from odoo.exceptions import AccessError, MissingError, UserError, ValidationError
from odoo.http import request
from odoo.tools import format_amount

from odoo.addons.portal.controllers.portal import CustomerPortal
from odoo.addons.portal.controllers.portal import pager as portal_pager

from .. import const

LEDGER_PAGE_SIZE = 30
BILL_PAGE_SIZE = 20


def parse_amount(text):
    """The amount in ``text`` (a form field; empty is 0) as a finite float.

    :raises ValueError: for text that is no number, and for NaN and infinity,
        which ``float`` accepts (``"nan"``, ``"inf"``, ``"1e400"``)
    """
    value = float(text or 0)
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    return value


def _presets(text):
    """The provider's preset amounts (comma-separated), those that parse."""
    presets = []
    for part in (text or "").split(","):
        try:
            presets.append(parse_amount(part.strip()))
        except ValueError:
            continue
    return [value for value in presets if value > 0]


class PrepaidPortal(CustomerPortal):
    def _prepare_home_portal_values(self, counters):
        values = super()._prepare_home_portal_values(counters)
        if "prepaid_account_count" in counters:
            Account = request.env["prepaid.account"]
            values["prepaid_account_count"] = (
                Account.search_count([("state", "!=", "draft")])
                if Account.has_access("read")
                else 0
            )
        if "prepaid_bill_count" in counters:
            Bill = request.env["prepaid.bill"]
            values["prepaid_bill_count"] = (
                Bill.search_count([("state", "=", "confirmed")])
                if Bill.has_access("read")
                else 0
            )
        return values

    def _prepaid_account(self, account_id):
        """The account if the user may read it (record rules), else 404.

        The page's times are then shown in the account's time zone."""
        try:
            account = self._document_check_access("prepaid.account", account_id)
        except (AccessError, MissingError) as err:
            raise NotFound() from err
        request.update_context(tz=account._portal_tz().zone)
        return account

    @staticmethod
    def _has_invoices():
        """Whether the user has an invoice to see on /my/invoices."""
        Move = request.env["account.move"]
        return Move.has_access("read") and bool(
            Move.search_count(
                [
                    ("move_type", "in", ("out_invoice", "out_refund")),
                    ("state", "=", "posted"),
                ],
                limit=1,
            )
        )

    def _wechat_provider(self, account):
        """The WeChat Pay provider offered to ``account`` (CNY only)."""
        if account.currency_id.name not in const.SUPPORTED_CURRENCIES:
            return request.env["payment.provider"]
        domain = [
            ("code", "=", const.PROVIDER_CODE),
            ("state", "in", ("enabled", "test")),
            ("company_id", "=", account.company_id.id),
        ]
        if not request.env.user._is_internal():
            domain.append(("is_published", "=", True))
        return request.env["payment.provider"].sudo().search(domain, limit=1)

    @http.route(["/my/prepaid"], type="http", auth="user", website=True)
    def portal_my_prepaid_accounts(self, **kwargs):
        accounts = request.env["prepaid.account"].search([("state", "!=", "draft")])
        values = self._prepare_portal_layout_values()
        values.update({"accounts": accounts.sudo(), "page_name": "prepaid_accounts"})
        return request.render("prepaid_wechat.portal_my_prepaid_accounts", values)

    @http.route(
        ["/my/prepaid/<int:account_id>"], type="http", auth="user", website=True
    )
    def portal_my_prepaid_account(self, account_id, error=None, **kwargs):
        account = self._prepaid_account(account_id)
        provider = self._wechat_provider(account)
        presets = _presets(provider.wechatpay_topup_presets) if provider else []
        # Below the restore line the tenant needs the amount that brings
        # the supply back, not "0 days left".
        topup_advice = account._portal_topup_advice()
        state_label, state_color = account._portal_state()
        values = self._prepare_portal_layout_values()
        values.update(
            {
                "account": account,
                "page_name": "prepaid_account",
                "account_title": account._portal_title(),
                "state_label": state_label,
                "state_color": state_color,
                "supplies": account._portal_supplies(),
                "topup_advice": topup_advice,
                "days_left": None if topup_advice else account._days_of_credit_left(),
                "has_invoices": self._has_invoices(),
                "lines": request.env["prepaid.ledger.line"]
                .sudo()
                .search([("account_id", "=", account.id)], limit=5),
                "provider": provider,
                "presets": presets,
                "topup_range": self._topup_range(account, provider)
                if provider
                else (0.0, 0.0),
                # the debt and what a top-up (the first preset) recovers of it
                "debt_note": account._debt_note(*presets[:1]),
                "emergency_amount": account._emergency_amount(),
                "error": error,
            }
        )
        return request.render("prepaid_wechat.portal_my_prepaid_account", values)

    @http.route(
        ["/my/prepaid/<int:account_id>/usage"], type="http", auth="user", website=True
    )
    def portal_my_prepaid_usage(self, account_id, **kwargs):
        account = self._prepaid_account(account_id)
        daily = account._portal_usage_series("day")
        monthly = account._portal_usage_series("month")
        values = self._prepare_portal_layout_values()
        values.update(
            {
                "account": account,
                "page_name": "prepaid_usage",
                "account_title": account._portal_title(),
                "daily_charts": account._portal_usage_charts(daily, label_every=7),
                "monthly_charts": account._portal_usage_charts(monthly),
                "monthly": monthly,
            }
        )
        return request.render("prepaid_wechat.portal_my_prepaid_usage", values)

    @http.route(
        [
            "/my/prepaid/<int:account_id>/ledger",
            "/my/prepaid/<int:account_id>/ledger/page/<int:page>",
        ],
        type="http",
        auth="user",
        website=True,
    )
    def portal_my_prepaid_ledger(self, account_id, page=1, **kwargs):
        account = self._prepaid_account(account_id)
        Line = request.env["prepaid.ledger.line"]
        domain = [("account_id", "=", account.id)]
        pager = portal_pager(
            url=f"/my/prepaid/{account.id}/ledger",
            total=Line.search_count(domain),
            page=page,
            step=LEDGER_PAGE_SIZE,
        )
        lines = Line.search(
            domain, limit=LEDGER_PAGE_SIZE, offset=pager["offset"]
        ).sudo()
        values = self._prepare_portal_layout_values()
        values.update(
            {
                "account": account,
                "account_title": account._portal_title(),
                "lines": lines,
                "pager": pager,
                "page_name": "prepaid_ledger",
            }
        )
        return request.render("prepaid_wechat.portal_my_prepaid_ledger", values)

    @http.route(
        ["/my/prepaid/bills", "/my/prepaid/bills/page/<int:page>"],
        type="http",
        auth="user",
        website=True,
    )
    def portal_my_prepaid_bills(self, page=1, **kwargs):
        """The tenant's issued bills (postpaid), newest first."""
        Bill = request.env["prepaid.bill"]
        domain = [("state", "=", "confirmed")]
        pager = portal_pager(
            url="/my/prepaid/bills",
            total=Bill.search_count(domain),
            page=page,
            step=BILL_PAGE_SIZE,
        )
        bills = Bill.search(
            domain,
            order="date_to desc, id desc",
            limit=BILL_PAGE_SIZE,
            offset=pager["offset"],
        )
        values = self._prepare_portal_layout_values()
        values.update(
            {"bills": bills.sudo(), "pager": pager, "page_name": "prepaid_bills"}
        )
        return request.render("prepaid_wechat.portal_my_prepaid_bills", values)

    @http.route(
        ["/my/prepaid/bill/<int:bill_id>"], type="http", auth="user", website=True
    )
    def portal_my_prepaid_bill(self, bill_id, **kwargs):
        try:
            bill = self._document_check_access("prepaid.bill", bill_id)
        except (AccessError, MissingError) as err:
            raise NotFound() from err
        values = self._prepare_portal_layout_values()
        values.update({"bill": bill, "page_name": "prepaid_bill"})
        return request.render("prepaid_wechat.portal_my_prepaid_bill", values)

    @http.route(
        ["/my/prepaid/meter/<int:meter_id>"], type="http", auth="user", website=True
    )
    def portal_my_prepaid_meter(self, meter_id, **kwargs):
        try:
            meter = self._document_check_access("prepaid.meter", meter_id)
        except (AccessError, MissingError) as err:
            raise NotFound() from err
        account = meter.billing_account_id
        if account:
            request.update_context(tz=account._portal_tz().zone)
        else:
            request.update_context(tz=meter.site_id.tz or request.env.user.tz or "UTC")
        readings = request.env["prepaid.reading"].search(
            [("meter_id", "=", meter.id)], limit=20, order="read_at desc"
        )
        values = self._prepare_portal_layout_values()
        values.update(
            {
                "meter": meter,
                "account": account,
                "account_title": account._portal_title() if account else "",
                "readings": readings.sudo(),
                "page_name": "prepaid_meter",
            }
        )
        return request.render("prepaid_wechat.portal_my_prepaid_meter", values)

    @http.route(
        ["/my/prepaid/<int:account_id>/topup"],
        type="http",
        auth="user",
        methods=["POST"],
        website=True,
    )
    def portal_my_prepaid_topup(self, account_id, amount=None, **kwargs):
        """Create the top-up transaction and send the tenant to WeChat Pay."""
        account = self._prepaid_account(account_id)
        provider = self._wechat_provider(account)
        if not provider:
            raise NotFound()
        try:
            tx = self._create_topup(account, provider, amount)
        except (UserError, ValidationError) as err:
            return request.redirect(f"/my/prepaid/{account.id}?error={quote(str(err))}")
        rendering = tx._get_specific_rendering_values({})
        return request.redirect(
            f"{rendering['api_url']}?reference={tx.reference}"
            f"&access_token={rendering['access_token']}"
        )

    @http.route(
        ["/my/prepaid/<int:account_id>/emergency"],
        type="http",
        auth="user",
        methods=["POST"],
        website=True,
    )
    def portal_my_prepaid_emergency(self, account_id, **kwargs):
        """The tenant takes the emergency credit on offer."""
        account = self._prepaid_account(account_id)
        try:
            account._take_emergency_credit(request.env.user.partner_id)
        except UserError as err:
            return request.redirect(f"/my/prepaid/{account.id}?error={quote(str(err))}")
        return request.redirect(f"/my/prepaid/{account.id}")

    @staticmethod
    def _topup_range(account, provider):
        """(smallest, largest) top-up: the provider's, within billing's cap."""
        high = provider.wechatpay_topup_max
        cap = account.company_id.prepaid_max_recharge_amount
        if cap and account.currency_id.compare_amounts(cap, high) < 0:
            high = cap
        return provider.wechatpay_topup_min, high

    def _create_topup(self, account, provider, amount):
        currency = account.currency_id
        env = request.env
        try:
            value = currency.round(parse_amount(amount))
        except ValueError as err:
            raise UserError(env._("Enter an amount, e.g. 100.")) from err
        low, high = self._topup_range(account, provider)
        if currency.compare_amounts(value, low) < 0 or (
            currency.compare_amounts(value, high) > 0
        ):
            raise UserError(
                env._(
                    "Top up between %(low)s and %(high)s.",
                    low=format_amount(env, low, currency),
                    high=format_amount(env, high, currency),
                )
            )
        if account.state != "open":
            raise UserError(env._("This account is not open."))
        Tx = env["payment.transaction"].sudo()
        tx = Tx.create(
            {
                "provider_id": provider.id,
                "payment_method_id": env.ref("payment.payment_method_wechat_pay").id,
                "reference": Tx._compute_reference(
                    const.PROVIDER_CODE, prefix=f"TOPUP-{account.id}"
                ),
                "amount": value,
                "currency_id": currency.id,
                "partner_id": account.partner_id.id,
                "prepaid_account_id": account.id,
                "operation": "online_redirect",
                "landing_route": f"/my/prepaid/{account.id}",
            }
        )
        return tx
