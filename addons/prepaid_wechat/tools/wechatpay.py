"""WeChat Pay APIv3: request signing, answer/notification verification,
notification decryption and the one HTTP door to the API.

Built on ``cryptography`` (the version Odoo 18 pins) rather than the
``wechatpayv3`` SDK: see the module readme for why.

Message formats (docs/wechatpay-v3.md):

* request:  ``METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n``
* answer and notification: ``TIMESTAMP\\nNONCE\\nBODY\\n`` over the raw body
"""

import base64
import binascii
import json
import re
import secrets
import time
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import requests
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

AUTH_SCHEMA = "WECHATPAY2-SHA256-RSA2048"
TOLERANCE_S = 300
PROBE_PREFIX = "WECHATPAY/SIGNTEST/"
OUT_TRADE_NO = re.compile(r"^[A-Za-z0-9_\-|*]{6,32}$")


class WeChatPayError(Exception):
    """An answer WeChat Pay refused (``code``/``message``) or could not give."""

    def __init__(self, message, status=None, code=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class SignatureError(Exception):
    """A message whose signature, serial or timestamp does not hold."""


class DecryptError(Exception):
    """A notification resource that does not decrypt with the APIv3 key."""


@dataclass(frozen=True, slots=True)
class SignedHeaders:
    """The four ``Wechatpay-*`` headers of an answer or a notification."""

    timestamp: str
    nonce: str
    signature: str
    serial: str

    @classmethod
    def from_mapping(cls, headers):
        """Read them from any case-insensitive mapping (missing → empty)."""
        return cls(
            timestamp=headers.get("Wechatpay-Timestamp") or "",
            nonce=headers.get("Wechatpay-Nonce") or "",
            signature=headers.get("Wechatpay-Signature") or "",
            serial=headers.get("Wechatpay-Serial") or "",
        )


def load_private_key(pem):
    """Load an RSA private key from PEM text or bytes."""
    data = pem.encode() if isinstance(pem, str) else pem
    return serialization.load_pem_private_key(data, None, default_backend())


def load_public_key(pem):
    """Load an RSA public key (or the key of a certificate) from PEM."""
    data = pem.encode() if isinstance(pem, str) else pem
    if b"BEGIN CERTIFICATE" in data:
        from cryptography import x509

        return x509.load_pem_x509_certificate(data, default_backend()).public_key()
    return serialization.load_pem_public_key(data, default_backend())


def new_nonce():
    """A random 32-character nonce."""
    return secrets.token_hex(16)


def message(*parts):
    """Join the message lines, each ending with a newline, as bytes."""
    out = b""
    for part in parts:
        out += (part if isinstance(part, bytes) else str(part).encode()) + b"\n"
    return out


def sign(private_key, data):
    """SHA256withRSA (PKCS#1 v1.5) signature of ``data``, base64 text."""
    raw = private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(raw).decode()


def authorization(mchid, serial, private_key, method, path, body, timestamp, nonce):
    """The ``Authorization`` header of a request (``path`` with its query)."""
    signature = sign(private_key, message(method.upper(), path, timestamp, nonce, body))
    return (
        f'{AUTH_SCHEMA} mchid="{mchid}",nonce_str="{nonce}",'
        f'signature="{signature}",timestamp="{timestamp}",serial_no="{serial}"'
    )


def parse_authorization(header):
    """Split an ``Authorization`` header into its fields (``{}`` if foreign)."""
    schema, _sep, rest = (header or "").partition(" ")
    if schema != AUTH_SCHEMA:
        return {}
    return dict(re.findall(r'(\w+)="([^"]*)"', rest))


def verify(public_keys, headers, body, now=None, tolerance=TOLERANCE_S):
    """Check an answer's or a notification's signature over the raw ``body``.

    ``public_keys`` maps the platform key id / certificate serial to its
    public key; ``headers`` is a :class:`SignedHeaders`. Raises
    :class:`SignatureError` saying why; returns None when it holds.
    """
    if not isinstance(body, bytes | bytearray):
        raise TypeError("Verify the raw body bytes, not decoded text.")
    key = public_keys.get(headers.serial)
    if not headers.serial or key is None:
        raise SignatureError(f"unknown platform serial {headers.serial!r}")
    if not headers.timestamp.isdigit():
        raise SignatureError("missing or malformed Wechatpay-Timestamp")
    now = time.time() if now is None else now
    if abs(now - int(headers.timestamp)) > tolerance:
        raise SignatureError("timestamp outside the 5-minute window")
    if not headers.signature or headers.signature.startswith(PROBE_PREFIX):
        raise SignatureError("probe or empty signature")
    try:
        raw = base64.b64decode(headers.signature, validate=True)
        key.verify(
            raw,
            message(headers.timestamp, headers.nonce, bytes(body)),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except (InvalidSignature, binascii.Error, ValueError) as err:
        raise SignatureError("signature does not match the body") from err


def encrypt(apiv3_key, plaintext, nonce, associated_data):
    """AEAD_AES_256_GCM ciphertext (tag appended), base64 — the peer's side."""
    data = plaintext.encode() if isinstance(plaintext, str) else plaintext
    raw = AESGCM(_aes_key(apiv3_key)).encrypt(
        nonce.encode(), data, associated_data.encode()
    )
    return base64.b64encode(raw).decode()


def decrypt(apiv3_key, resource):
    """Decrypt a notification ``resource`` dict; returns the parsed JSON."""
    if (resource or {}).get("algorithm") != "AEAD_AES_256_GCM":
        raise DecryptError("unsupported resource algorithm")
    try:
        raw = AESGCM(_aes_key(apiv3_key)).decrypt(
            resource["nonce"].encode(),
            base64.b64decode(resource["ciphertext"], validate=True),
            (resource.get("associated_data") or "").encode(),
        )
        return json.loads(raw)
    except (InvalidTag, KeyError, TypeError, binascii.Error, ValueError) as err:
        raise DecryptError("the resource does not decrypt with the APIv3 key") from err


def _aes_key(apiv3_key):
    key = apiv3_key.encode() if isinstance(apiv3_key, str) else apiv3_key
    if len(key) != 32:
        raise DecryptError("the APIv3 key must be 32 bytes")
    return key


def to_fen(amount):
    """Yuan (Decimal, float or str) to integer fen, half up."""
    value = Decimal(str(amount)) * 100
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def jsapi_pay_params(appid, prepay_id, private_key, timestamp=None, nonce=None):
    """Parameters of ``WeixinJSBridge.invoke('getBrandWCPayRequest', …)``."""
    timestamp = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or new_nonce()
    package = f"prepay_id={prepay_id}"
    return {
        "appId": appid,
        "timeStamp": timestamp,
        "nonceStr": nonce,
        "package": package,
        "signType": "RSA",
        "paySign": sign(private_key, message(appid, timestamp, nonce, package)),
    }


@dataclass(frozen=True, slots=True)
class Merchant:
    """What signs requests and checks answers for one merchant."""

    mchid: str
    serial: str
    private_key: object
    platform_keys: dict
    apiv3_key: bytes


class Client:
    """The one door to the WeChat Pay APIv3 (signed requests, verified
    answers). ``base_url`` is the production host or a local peer."""

    def __init__(self, base_url, merchant, timeout=10.0, session=None):
        self.base_url = base_url.rstrip("/")
        self.merchant = merchant
        self.timeout = timeout
        self.session = session or requests

    def request(self, method, path, payload=None):
        """Send a signed request; return the verified JSON answer (or {})."""
        body = "" if payload is None else json.dumps(payload, separators=(",", ":"))
        merchant = self.merchant
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/json",
            "Authorization": authorization(
                merchant.mchid,
                merchant.serial,
                merchant.private_key,
                method,
                path,
                body,
                int(time.time()),
                new_nonce(),
            ),
        }
        try:
            response = self.session.request(
                method,
                self.base_url + path,
                data=body.encode() or None,
                headers=headers,
                timeout=self.timeout,
            )
        except requests.RequestException as err:
            raise WeChatPayError(f"WeChat Pay cannot be reached: {err}") from err
        try:
            verify(
                merchant.platform_keys,
                SignedHeaders.from_mapping(response.headers),
                response.content,
            )
        except SignatureError as err:
            raise WeChatPayError(
                f"the answer of WeChat Pay is not authentic ({err})",
                status=response.status_code,
            ) from err
        data = _json(response.content)
        if response.status_code >= 300:
            raise WeChatPayError(
                data.get("message") or f"HTTP {response.status_code}",
                status=response.status_code,
                code=data.get("code"),
            )
        return data

    def _mchid_query(self):
        return f"?mchid={self.merchant.mchid}"

    def create_order(self, kind, payload):
        """Create a ``native`` (→ code_url) or ``jsapi`` (→ prepay_id) order."""
        if kind not in ("native", "jsapi"):
            raise ValueError(f"unknown order kind {kind!r}")
        if not OUT_TRADE_NO.match(payload.get("out_trade_no", "")):
            raise ValueError("out_trade_no must be 6-32 letters, digits or _-|*")
        return self.request("POST", f"/v3/pay/transactions/{kind}", payload)

    def query(self, out_trade_no):
        """The order as WeChat Pay knows it (``trade_state`` …)."""
        return self.request(
            "GET",
            f"/v3/pay/transactions/out-trade-no/{out_trade_no}{self._mchid_query()}",
        )

    def close(self, out_trade_no):
        """Close an unpaid order."""
        return self.request(
            "POST",
            f"/v3/pay/transactions/out-trade-no/{out_trade_no}/close",
            {"mchid": self.merchant.mchid},
        )

    def refund(self, payload):
        """Ask for a refund (``status`` SUCCESS / PROCESSING / …)."""
        return self.request("POST", "/v3/refund/domestic/refunds", payload)


def _json(content):
    try:
        data = json.loads(content or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
