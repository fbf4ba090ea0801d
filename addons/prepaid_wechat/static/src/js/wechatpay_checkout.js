/** @odoo-module **/
// WeChat Pay checkout page: JSAPI payment inside WeChat, then poll the
// transaction's state and go to the landing page once it is settled.

function poll(root) {
    const query = new URLSearchParams({
        reference: root.dataset.reference,
        access_token: root.dataset.accessToken,
    });
    fetch(`/payment/wechatpay/status?${query}`, { credentials: "same-origin" })
        .then((response) => response.json())
        .then((status) => {
            if (status.state === "pending" || status.state === "draft") {
                setTimeout(() => poll(root), 1500);
            } else {
                window.location.assign(status.landing_route);
            }
        })
        .catch(() => setTimeout(() => poll(root), 3000));
}

function payInWeChat(params) {
    if (window.WeixinJSBridge) {
        window.WeixinJSBridge.invoke("getBrandWCPayRequest", params, () => {});
    }
}

function start() {
    const root = document.querySelector(".o_wechatpay_checkout");
    if (!root) {
        return;
    }
    const button = root.querySelector(".o_wechatpay_jsapi_pay");
    if (button && root.dataset.jsapi) {
        const params = JSON.parse(root.dataset.jsapi);
        button.addEventListener("click", () => payInWeChat(params));
        payInWeChat(params);
    }
    poll(root);
}

if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
} else {
    start();
}
