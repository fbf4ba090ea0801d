/** @odoo-module **/

import { registry } from "@web/core/registry";

registry.category("web_tour.tours").add("prepaid_wechat_topup", {
    steps: () => [
        {
            content: "The tenant sees the empty balance and the cut supply",
            trigger: ".o_prepaid_balance:contains(0.00)",
        },
        {
            trigger: ".o_prepaid_state:contains(Supply cut off)",
        },
        {
            content: "The tenant is told the top-up that restores the supply",
            trigger: ".o_prepaid_days_left:contains(to restore supply)",
        },
        {
            content: "Top up 100 with a preset",
            trigger: "button.o_prepaid_preset[value='100.0']",
            run: "click",
        },
        {
            content: "The WeChat Pay QR code is shown",
            trigger: "img.o_wechatpay_qr",
        },
        {
            content: "Pay on the local WeChat Pay peer",
            trigger: "button.o_wechatpay_peer_pay",
            run: "click",
        },
        {
            content: "Back on the account once the notification credited the wallet",
            trigger: ".o_prepaid_balance:contains(100.00)",
        },
        {
            trigger: ".o_prepaid_state:contains(Normal)",
        },
    ],
});
