{
    "name": "Prepaid WeChat: Pay, Official Account, Tenant Portal",
    "summary": "WeChat Pay APIv3 top-ups, official-account template messages and "
    "the tenants' self-service portal for prepaid accounts",
    "version": "18.0.1.0.0",
    "category": "Accounting/Payment Providers",
    "license": "LGPL-3",
    "author": "Prepaid Metering Contributors",
    "website": "https://github.com/prepaid-metering/odoo-prepaid",
    "development_status": "Beta",
    "depends": ["prepaid_billing", "payment", "account_payment", "portal"],
    "external_dependencies": {"python": ["cryptography", "requests"]},
    "data": [
        "security/prepaid_wechat_security.xml",
        "security/ir.model.access.csv",
        "views/payment_wechatpay_templates.xml",
        "views/payment_provider_views.xml",
        "views/res_partner_views.xml",
        "views/prepaid_account_views.xml",
        "views/prepaid_notification_channel_views.xml",
        "views/portal_templates.xml",
        "data/payment_provider_data.xml",
        "data/ir_cron_data.xml",
    ],
    "demo": ["demo/prepaid_wechat_demo.xml"],
    "assets": {
        "web.assets_frontend": [
            "prepaid_wechat/static/src/js/wechatpay_checkout.js",
        ],
        "web.assets_tests": [
            "prepaid_wechat/static/tests/tours/*.js",
        ],
    },
    "post_init_hook": "post_init_hook",
    "uninstall_hook": "uninstall_hook",
}
