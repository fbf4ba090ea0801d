"""A local WeChat Pay APIv3 + official-account peer on 127.0.0.1.

It checks the merchant's request signatures, signs every answer with its
platform key, keeps orders in memory, lets a tester pay them (``/peer/pay``),
then posts signed, encrypted notifications to the order's ``notify_url`` and
retries them until the merchant answers 200/204.
"""

import html
import json
import logging
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from . import crypto

_logger = logging.getLogger(__name__)
CHINA = timezone(timedelta(hours=8))
TOLERANCE_S = 300
# WeChat retries over ~24 h; the peer keeps the count and shortens the waits.
DEFAULT_RETRY_DELAYS = (0, 1, 2, 4, 8, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)
TOKEN_TTL_S = 7200
ORDER_PATH = re.compile(r"^/v3/pay/transactions/out-trade-no/([^/]+)(/close)?$")


class PeerError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class Order:
    kind: str
    appid: str
    mchid: str
    out_trade_no: str
    description: str
    notify_url: str
    total: int
    currency: str = "CNY"
    openid: str = ""
    trade_state: str = "NOTPAY"
    transaction_id: str = ""
    success_time: str = ""
    code_token: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    refunded: int = 0

    def as_json(self):
        data = {
            "appid": self.appid,
            "mchid": self.mchid,
            "out_trade_no": self.out_trade_no,
            "trade_type": self.kind.upper(),
            "trade_state": self.trade_state,
            "trade_state_desc": self.trade_state,
            "amount": {
                "total": self.total,
                "payer_total": self.total,
                "currency": self.currency,
                "payer_currency": self.currency,
            },
        }
        if self.transaction_id:
            data["transaction_id"] = self.transaction_id
            data["success_time"] = self.success_time
            data["payer"] = {"openid": self.openid}
        return data


def _now_text():
    return datetime.now(CHINA).replace(microsecond=0).isoformat()


class WeChatPeer:
    """The peer's state and behaviour; :meth:`start` serves it over HTTP."""

    def __init__(
        self,
        keys=None,
        host="127.0.0.1",
        port=0,
        retry_delays=DEFAULT_RETRY_DELAYS,
        auto_notify=True,
        openid="oPEERtester0000000000000001",
    ):
        self.keys = keys or crypto.Keys()
        self.host = host
        self.port = port
        self.retry_delays = tuple(retry_delays)
        self.auto_notify = auto_notify
        self.openid = openid
        self.orders = {}
        self.refunds = {}
        self.deliveries = []  # (event id, url, HTTP status or error text)
        self.templates = []  # template messages received
        self.tokens = {}
        self.oauth_codes = {}
        self.fail_templates = False
        self._lock = threading.RLock()
        self._server = None
        self._thread = None
        self._stopping = threading.Event()

    # ------------------------------------------------------------------
    # life cycle
    # ------------------------------------------------------------------
    @property
    def base_url(self):
        return f"http://{self.host}:{self.port}"

    def start(self):
        peer = self

        class Handler(_Handler):
            pass

        Handler.peer = peer
        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="wechat-peer", daemon=True
        )
        self._thread.start()
        return self

    def stop(self):
        self._stopping.set()
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ------------------------------------------------------------------
    # signing
    # ------------------------------------------------------------------
    def signed_headers(self, body, timestamp=None, nonce=None):
        """The ``Wechatpay-*`` headers the platform puts on ``body``."""
        timestamp = str(int(time.time()) if timestamp is None else timestamp)
        nonce = nonce or secrets.token_hex(16)
        signature = crypto.rsa_sign(
            self.keys.platform_key, crypto.lines(timestamp, nonce, body)
        )
        return {
            "Wechatpay-Timestamp": timestamp,
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": signature,
            "Wechatpay-Serial": self.keys.platform_key_id,
        }

    def check_merchant(self, method, path, body, authorization):
        fields_ = crypto.parse_authorization(authorization)
        if not fields_:
            raise PeerError(401, "SIGN_ERROR", "missing or foreign Authorization")
        if fields_.get("mchid") != self.keys.mchid:
            raise PeerError(401, "SIGN_ERROR", "unknown mchid")
        if fields_.get("serial_no") != self.keys.merchant_serial:
            raise PeerError(401, "SIGN_ERROR", "unknown merchant certificate serial")
        timestamp = fields_.get("timestamp", "")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > TOLERANCE_S:
            raise PeerError(401, "SIGN_ERROR", "timestamp outside the window")
        data = crypto.lines(method, path, timestamp, fields_.get("nonce_str", ""), body)
        if not crypto.rsa_verify(
            self.keys.merchant_public, data, fields_.get("signature", "")
        ):
            raise PeerError(401, "SIGN_ERROR", "signature does not match")

    # ------------------------------------------------------------------
    # API
    # ------------------------------------------------------------------
    def create_order(self, kind, data):
        required = ["appid", "mchid", "description", "out_trade_no", "notify_url"]
        missing = [name for name in required if not data.get(name)]
        amount = data.get("amount") or {}
        if missing or not isinstance(amount.get("total"), int):
            raise PeerError(400, "PARAM_ERROR", f"missing {missing or 'amount'}")
        if data["mchid"] != self.keys.mchid or data["appid"] != self.keys.appid:
            raise PeerError(400, "PARAM_ERROR", "appid and mchid do not match")
        if not re.match(r"^[A-Za-z0-9_\-|*]{6,32}$", data["out_trade_no"]):
            raise PeerError(400, "PARAM_ERROR", "out_trade_no is malformed")
        if amount["total"] <= 0:
            raise PeerError(400, "PARAM_ERROR", "amount.total must be positive")
        openid = (data.get("payer") or {}).get("openid", "")
        if kind == "jsapi" and not openid:
            raise PeerError(400, "PARAM_ERROR", "payer.openid is required")
        with self._lock:
            existing = self.orders.get(data["out_trade_no"])
            if existing and existing.trade_state != "NOTPAY":
                raise PeerError(400, "ORDERPAID", "the order is already paid or closed")
            if existing and existing.total != amount["total"]:
                raise PeerError(
                    400, "INVALID_REQUEST", "same out_trade_no, other amount"
                )
            order = existing or Order(
                kind=kind,
                appid=data["appid"],
                mchid=data["mchid"],
                out_trade_no=data["out_trade_no"],
                description=data["description"],
                notify_url=data["notify_url"],
                total=amount["total"],
                currency=amount.get("currency", "CNY"),
                openid=openid,
            )
            self.orders[order.out_trade_no] = order
        if kind == "native":
            return {"code_url": f"weixin://wxpay/bizpayurl?pr={order.code_token}"}
        return {"prepay_id": f"wx{order.code_token}"}

    def order(self, out_trade_no):
        with self._lock:
            order = self.orders.get(out_trade_no)
        if not order:
            raise PeerError(404, "ORDER_NOT_EXIST", "order does not exist")
        return order

    def order_by_code(self, token):
        with self._lock:
            for order in self.orders.values():
                if order.code_token == token:
                    return order
        raise PeerError(404, "ORDER_NOT_EXIST", "order does not exist")

    def close(self, out_trade_no):
        order = self.order(out_trade_no)
        with self._lock:
            if order.trade_state == "SUCCESS":
                raise PeerError(400, "ORDERPAID", "the order is paid")
            order.trade_state = "CLOSED"

    def pay(self, out_trade_no, openid=None, notify=None):
        """A tester paid the order: SUCCESS, then (by default) notify."""
        order = self.order(out_trade_no)
        with self._lock:
            if order.trade_state == "NOTPAY":
                order.trade_state = "SUCCESS"
                order.transaction_id = "42000" + str(time.time_ns())[-23:]
                order.success_time = _now_text()
                order.openid = openid or order.openid or self.openid
            elif order.trade_state != "SUCCESS":
                raise PeerError(400, "ORDER_CLOSED", "the order is closed")
        if self.auto_notify if notify is None else notify:
            self.deliver_async(order.notify_url, self.notification(order))
        return order

    def refund(self, data):
        order = self.order(data.get("out_trade_no", ""))
        amount = data.get("amount") or {}
        refund = amount.get("refund")
        if not data.get("out_refund_no") or not isinstance(refund, int):
            raise PeerError(400, "PARAM_ERROR", "out_refund_no and amount.refund")
        with self._lock:
            if data["out_refund_no"] in self.refunds:
                return self.refunds[data["out_refund_no"]]
            if order.trade_state not in ("SUCCESS", "REFUND"):
                raise PeerError(400, "TRADE_NOT_PAID", "the order is not paid")
            if amount.get("total") != order.total:
                raise PeerError(400, "PARAM_ERROR", "amount.total is not the order's")
            if refund <= 0 or order.refunded + refund > order.total:
                raise PeerError(400, "NOT_ENOUGH", "refund exceeds what was paid")
            order.refunded += refund
            order.trade_state = "REFUND"
            answer = {
                "refund_id": "50000" + str(time.time_ns())[-23:],
                "out_refund_no": data["out_refund_no"],
                "transaction_id": order.transaction_id,
                "out_trade_no": order.out_trade_no,
                "status": "PROCESSING",
                "create_time": _now_text(),
                "amount": {
                    "total": order.total,
                    "refund": refund,
                    "payer_total": order.total,
                    "payer_refund": refund,
                    "currency": "CNY",
                },
            }
            self.refunds[data["out_refund_no"]] = answer
        notify_url = data.get("notify_url") or order.notify_url
        if self.auto_notify and notify_url:
            done = {**answer, "refund_status": "SUCCESS", "mchid": order.mchid}
            done.pop("status")
            self.deliver_async(
                notify_url, self.build_notification("REFUND.SUCCESS", "refund", done)
            )
        return answer

    # ------------------------------------------------------------------
    # notifications
    # ------------------------------------------------------------------
    def build_notification(self, event_type, original_type, payload):
        """The raw notification body for ``payload`` (encrypted)."""
        associated = original_type
        nonce, ciphertext = crypto.aes_encrypt(
            self.keys.apiv3_key.encode(), json.dumps(payload).encode(), associated
        )
        body = {
            "id": secrets.token_hex(16),
            "create_time": _now_text(),
            "event_type": event_type,
            "resource_type": "encrypt-resource",
            "summary": "",
            "resource": {
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": ciphertext,
                "nonce": nonce,
                "associated_data": associated,
                "original_type": original_type,
            },
        }
        return json.dumps(body).encode()

    def notification(self, order):
        """The TRANSACTION.SUCCESS body of a paid ``order``."""
        return self.build_notification(
            "TRANSACTION.SUCCESS", "transaction", order.as_json()
        )

    def deliver(self, url, body):
        """POST one signed notification; returns the HTTP status (or None)."""
        headers = {"Content-Type": "application/json", **self.signed_headers(body)}
        request = urllib.request.Request(url, data=body, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status = response.status
        except urllib.error.HTTPError as err:
            status = err.code
        except (urllib.error.URLError, OSError) as err:
            status = None
            _logger.info("notification to %s failed: %s", url, err)
        with self._lock:
            self.deliveries.append((json.loads(body)["id"], url, status))
        return status

    def deliver_async(self, url, body):
        """Deliver with retries in the background until 200/204."""

        def run():
            for delay in self.retry_delays:
                if self._stopping.wait(delay):
                    return
                if self.deliver(url, body) in (200, 204):
                    return

        threading.Thread(target=run, name="wechat-peer-notify", daemon=True).start()

    # ------------------------------------------------------------------
    # official account
    # ------------------------------------------------------------------
    def stable_token(self, data):
        if data.get("appid") != self.keys.appid or data.get("secret") != (
            self.keys.app_secret
        ):
            return {"errcode": 40125, "errmsg": "invalid appsecret"}
        with self._lock:
            token = secrets.token_urlsafe(24)
            self.tokens[token] = time.time() + TOKEN_TTL_S
        return {"access_token": token, "expires_in": TOKEN_TTL_S}

    def send_template(self, token, data):
        with self._lock:
            valid = self.tokens.get(token, 0) > time.time()
        if not valid:
            return {"errcode": 40001, "errmsg": "invalid credential"}
        if self.fail_templates:
            return {"errcode": 43004, "errmsg": "require subscribe"}
        if not data.get("touser") or not data.get("template_id"):
            return {"errcode": 40003, "errmsg": "invalid openid or template"}
        with self._lock:
            self.templates.append(data)
            msgid = len(self.templates)
        return {"errcode": 0, "errmsg": "ok", "msgid": msgid}

    def oauth_code(self, openid=None):
        code = secrets.token_urlsafe(12)
        with self._lock:
            self.oauth_codes[code] = openid or self.openid
        return code

    def oauth_exchange(self, query):
        if query.get("appid") != self.keys.appid or query.get("secret") != (
            self.keys.app_secret
        ):
            return {"errcode": 40125, "errmsg": "invalid appsecret"}
        with self._lock:
            openid = self.oauth_codes.pop(query.get("code", ""), None)
        if not openid:
            return {"errcode": 40029, "errmsg": "invalid code"}
        return {
            "access_token": secrets.token_urlsafe(16),
            "expires_in": 7200,
            "openid": openid,
            "scope": "snsapi_base",
        }


PAY_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>WeChat Pay (local peer)</title></head><body style="font-family:sans-serif">
<h1>WeChat Pay &mdash; local peer</h1>
<p>Order <b>{no}</b>: {description}</p><p class="amount">&yen; {amount}</p>
<p>State: <span class="state">{state}</span></p>
<form method="post" action="/peer/pay">
<input type="hidden" name="out_trade_no" value="{no}">
<input type="hidden" name="return_url" value="{return_url}">
<button type="submit" class="peer-pay" {disabled}>Pay</button></form></body></html>"""


class _Handler(BaseHTTPRequestHandler):
    peer = None
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        _logger.debug("peer: " + fmt, *args)

    # -- answers --------------------------------------------------------
    def _send(self, status, body=b"", content_type="application/json", extra=None):
        headers = dict(extra or {})
        if content_type == "application/json":
            headers.update(self.peer.signed_headers(body))
        self.send_response(status)
        if body or status != 204:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _json(self, status, data):
        self._send(status, json.dumps(data).encode() if data is not None else b"")

    def _error(self, err):
        self._json(err.status, {"code": err.code, "message": err.message})

    def _read(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    # -- routing --------------------------------------------------------
    def do_GET(self):
        self._route("GET")

    def do_POST(self):
        self._route("POST")

    def _route(self, method):
        raw = self._read()
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            if url.path.startswith("/v3/"):
                self.peer.check_merchant(
                    method, self.path, raw, self.headers.get("Authorization")
                )
                return self._v3(method, url.path, query, raw)
            if url.path.startswith(("/cgi-bin/", "/sns/", "/connect/")):
                return self._official(method, url.path, query, raw)
            if url.path.startswith("/peer/"):
                return self._tester(method, url.path, query, raw)
            raise PeerError(404, "NOT_FOUND", "no such endpoint")
        except PeerError as err:
            self._error(err)
        except (ValueError, KeyError, TypeError) as err:
            self._error(PeerError(400, "PARAM_ERROR", str(err)))

    def _v3(self, method, path, query, raw):
        peer = self.peer
        body = json.loads(raw) if raw else {}
        kind = {
            "/v3/pay/transactions/native": "native",
            "/v3/pay/transactions/jsapi": "jsapi",
        }.get(path)
        if method == "POST" and kind:
            return self._json(200, peer.create_order(kind, body))
        if method == "POST" and path == "/v3/refund/domestic/refunds":
            return self._json(200, peer.refund(body))
        match = ORDER_PATH.match(path)
        if match and match.group(2) and method == "POST":
            peer.close(match.group(1))
            return self._send(204)
        if match and method == "GET":
            if query.get("mchid") != peer.keys.mchid:
                raise PeerError(400, "PARAM_ERROR", "mchid does not match")
            return self._json(200, peer.order(match.group(1)).as_json())
        raise PeerError(404, "NOT_FOUND", "no such endpoint")

    def _official(self, method, path, query, raw):
        peer = self.peer
        if path == "/cgi-bin/stable_token" and method == "POST":
            return self._json(200, peer.stable_token(json.loads(raw or b"{}")))
        if path == "/cgi-bin/message/template/send" and method == "POST":
            answer = peer.send_template(
                query.get("access_token", ""), json.loads(raw or b"{}")
            )
            return self._json(200, answer)
        if path == "/sns/oauth2/access_token":
            return self._json(200, peer.oauth_exchange(query))
        if path == "/connect/oauth2/authorize":
            if query.get("appid") != peer.keys.appid or not query.get("redirect_uri"):
                raise PeerError(400, "PARAM_ERROR", "appid or redirect_uri")
            code = peer.oauth_code(query.get("openid"))
            sep = "&" if "?" in query["redirect_uri"] else "?"
            target = (
                query["redirect_uri"]
                + sep
                + urlencode({"code": code, "state": query.get("state", "")})
            )
            return self._send(302, b"", "text/plain", {"Location": target})
        raise PeerError(404, "NOT_FOUND", "no such endpoint")

    def _tester(self, method, path, query, raw):
        peer = self.peer
        if path == "/peer/pay" and method == "GET":
            if query.get("code_url"):
                token = parse_qs(urlsplit(query["code_url"]).query)["pr"][-1]
                order = peer.order_by_code(token)
            else:
                order = peer.order(query.get("out_trade_no", ""))
            page = PAY_PAGE.format(
                no=html.escape(order.out_trade_no),
                description=html.escape(order.description),
                amount=f"{order.total / 100:.2f}",
                state=order.trade_state,
                return_url=html.escape(query.get("return_url", ""), quote=True),
                disabled="" if order.trade_state == "NOTPAY" else "disabled",
            )
            return self._send(200, page.encode(), "text/html; charset=utf-8")
        if path == "/peer/pay" and method == "POST":
            form = (
                json.loads(raw)
                if raw.startswith(b"{")
                else {k: v[-1] for k, v in parse_qs(raw.decode()).items()}
            )
            order = peer.pay(form.get("out_trade_no", ""), form.get("openid"))
            if form.get("return_url", "").startswith(("http://", "https://")):
                return self._send(
                    303, b"", "text/plain", {"Location": form["return_url"]}
                )
            return self._json(200, order.as_json())
        if path == "/peer/state" and method == "GET":
            with peer._lock:
                state = {
                    "orders": {k: o.as_json() for k, o in peer.orders.items()},
                    "deliveries": peer.deliveries,
                    "templates": peer.templates,
                }
            return self._json(200, state)
        raise PeerError(404, "NOT_FOUND", "no such endpoint")


def pay_page_url(base_url, code_url, return_url=""):
    """The tester's page for an order's ``code_url``."""
    query = f"code_url={quote(code_url, safe='')}"
    if return_url:
        query += f"&return_url={quote(return_url, safe='')}"
    return f"{base_url}/peer/pay?{query}"
