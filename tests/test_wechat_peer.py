"""The local WeChat Pay peer against the add-on's own APIv3 client."""

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from prepaid_wechat_tools import official_account as oa
from prepaid_wechat_tools import wechatpay as wx

from simulator.wechat_peer import Keys, WeChatPeer, pay_page_url

ROOT = Path(__file__).resolve().parent.parent


class Receiver:
    """A merchant notify_url: answers the queued statuses, then 200."""

    def __init__(self, statuses=()):
        self.statuses = list(statuses)
        self.received = []
        self.event = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                if status == 200:
                    receiver.event.set()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/notify"


@pytest.fixture(scope="module")
def peer():
    with WeChatPeer(retry_delays=(0, 0.05, 0.05, 0.05)) as running:
        yield running


@pytest.fixture(scope="module")
def client(peer):
    wiring = peer.keys.wiring()
    merchant = wx.Merchant(
        mchid=wiring["mchid"],
        serial=wiring["merchant_serial"],
        private_key=wx.load_private_key(wiring["merchant_private_key"]),
        platform_keys={
            wiring["platform_key_id"]: wx.load_public_key(wiring["platform_public_key"])
        },
        apiv3_key=wiring["apiv3_key"].encode(),
    )
    return wx.Client(peer.base_url, merchant)


def _order(peer, no, notify_url="http://127.0.0.1:9/notify", total=1000):
    return {
        "appid": peer.keys.appid,
        "mchid": peer.keys.mchid,
        "description": "Top-up",
        "out_trade_no": no,
        "notify_url": notify_url,
        "amount": {"total": total, "currency": "CNY"},
    }


def test_native_order_query_pay_and_notification_with_retries(peer, client):
    receiver = Receiver(statuses=[500, 503])
    answer = client.create_order("native", _order(peer, "NATIVE-0001", receiver.url))
    assert answer["code_url"].startswith("weixin://wxpay/bizpayurl?pr=")
    assert client.query("NATIVE-0001")["trade_state"] == "NOTPAY"
    page = requests.get(pay_page_url(peer.base_url, answer["code_url"]), timeout=5)
    assert "NATIVE-0001" in page.text and "10.00" in page.text
    requests.post(
        peer.base_url + "/peer/pay", data={"out_trade_no": "NATIVE-0001"}, timeout=5
    ).raise_for_status()
    assert receiver.event.wait(5)
    assert len(receiver.received) == 3  # two refusals, then accepted
    headers, body = receiver.received[-1]
    wiring = client.merchant
    wx.verify(wiring.platform_keys, wx.SignedHeaders.from_mapping(headers), body)
    notification = json.loads(body)
    assert notification["event_type"] == "TRANSACTION.SUCCESS"
    plain = wx.decrypt(wiring.apiv3_key, notification["resource"])
    assert plain["trade_state"] == "SUCCESS" and plain["amount"]["total"] == 1000
    assert plain["mchid"] == peer.keys.mchid and plain["transaction_id"]
    assert client.query("NATIVE-0001")["trade_state"] == "SUCCESS"


def test_jsapi_needs_an_openid(peer, client):
    with pytest.raises(wx.WeChatPayError) as err:
        client.create_order("jsapi", _order(peer, "JSAPI-0001"))
    assert err.value.status == 400 and err.value.code == "PARAM_ERROR"
    order = {**_order(peer, "JSAPI-0002"), "payer": {"openid": "oABC"}}
    assert client.create_order("jsapi", order)["prepay_id"].startswith("wx")


def test_close_then_pay_is_refused(peer, client):
    client.create_order("native", _order(peer, "CLOSE-0001"))
    assert client.close("CLOSE-0001") == {}
    assert client.query("CLOSE-0001")["trade_state"] == "CLOSED"
    answer = requests.post(
        peer.base_url + "/peer/pay", json={"out_trade_no": "CLOSE-0001"}, timeout=5
    )
    assert answer.status_code == 400


def test_refund_and_refund_notification(peer, client):
    receiver = Receiver()
    client.create_order("native", _order(peer, "REFUND-0001", receiver.url))
    peer.pay("REFUND-0001", notify=False)
    refund = {
        "out_trade_no": "REFUND-0001",
        "out_refund_no": "R-REFUND-0001",
        "reason": "moving out",
        "notify_url": receiver.url,
        "amount": {"refund": 400, "total": 1000, "currency": "CNY"},
    }
    assert client.refund(refund)["status"] == "PROCESSING"
    assert receiver.event.wait(5)
    notification = json.loads(receiver.received[-1][1])
    assert notification["event_type"] == "REFUND.SUCCESS"
    plain = wx.decrypt(client.merchant.apiv3_key, notification["resource"])
    assert plain["refund_status"] == "SUCCESS" and plain["amount"]["refund"] == 400
    too_much = {**refund, "out_refund_no": "R2", "amount": {**refund["amount"]}}
    too_much["amount"]["refund"] = 700
    with pytest.raises(wx.WeChatPayError, match="exceeds"):
        client.refund(too_much)


def test_request_with_a_foreign_key_is_refused(peer, client):
    forged = wx.Merchant(
        client.merchant.mchid,
        client.merchant.serial,
        wx.load_private_key(Keys().merchant_private_pem),
        client.merchant.platform_keys,
        client.merchant.apiv3_key,
    )
    with pytest.raises(wx.WeChatPayError) as err:
        wx.Client(peer.base_url, forged).query("NATIVE-0001")
    assert err.value.status == 401 and err.value.code == "SIGN_ERROR"


def test_answer_signed_by_another_platform_key_is_refused(peer, client):
    other = Keys()
    merchant = wx.Merchant(
        client.merchant.mchid,
        client.merchant.serial,
        client.merchant.private_key,
        {peer.keys.platform_key_id: other.platform_key.public_key()},
        client.merchant.apiv3_key,
    )
    with pytest.raises(wx.WeChatPayError, match="not authentic"):
        wx.Client(peer.base_url, merchant).query("NATIVE-0001")


class MemoryStore:
    def __init__(self):
        self.token = None
        self.fetches = 0

    def get(self):
        return self.token

    def put(self, token):
        self.fetches += 1
        self.token = token


def test_official_account_token_cached_template_and_oauth(peer):
    store = MemoryStore()
    account = oa.OfficialAccountClient(
        peer.base_url, peer.keys.appid, peer.keys.app_secret, store
    )
    assert account.send_template("oX", "TPL1", {"thing1": "low balance"})
    assert account.send_template("oX", "TPL1", {"thing1": "again"})
    assert store.fetches == 1
    assert peer.templates[-1]["data"]["thing1"] == {"value": "again"}
    redirect = requests.get(
        account.authorize_url(peer.base_url, peer.keys.appid, "http://x/cb", "s1"),
        allow_redirects=False,
        timeout=5,
    )
    code = redirect.headers["Location"].split("code=")[1].split("&")[0]
    assert account.openid_from_code(code) == peer.openid
    with pytest.raises(oa.OfficialAccountError, match="40029"):
        account.openid_from_code(code)  # a code is used once
    wrong = oa.OfficialAccountClient(
        peer.base_url, peer.keys.appid, "bad", MemoryStore()
    )
    with pytest.raises(oa.OfficialAccountError, match="40125"):
        wrong.access_token()


def test_command_line_prints_wiring(tmp_path):
    keys = tmp_path / "keys.json"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simulator.wechat_peer",
            "--port",
            "0",
            "--json",
            "--keys",
            str(keys),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        wiring = json.loads(process.stdout.readline())
        assert wiring["base_url"].startswith("http://127.0.0.1:")
        assert "BEGIN PRIVATE KEY" in wiring["merchant_private_key"]
        assert wiring["platform_key_id"].startswith("PUB_KEY_ID_")
        state = requests.get(wiring["base_url"] + "/peer/state", timeout=5)
        assert state.json() == {"orders": {}, "deliveries": [], "templates": []}
        assert json.loads(keys.read_text())["mchid"] == wiring["mchid"]
    finally:
        process.terminate()
        process.wait(5)
