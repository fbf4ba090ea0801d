"""The peer's side of the APIv3 crypto: it signs with the platform key,
checks the merchant's signatures and encrypts notifications. Written apart
from the add-on's client on purpose, so a mistake is not shared by both."""

import base64
import json
import re
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SCHEMA = "WECHATPAY2-SHA256-RSA2048"


def generate_key():
    return rsa.generate_private_key(65537, 2048, default_backend())


def private_pem(key):
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def public_pem(key):
    return (
        key.public_key()
        .public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )
        .decode()
    )


def load_private(pem):
    return serialization.load_pem_private_key(pem.encode(), None, default_backend())


def load_public(pem):
    return serialization.load_pem_public_key(pem.encode(), default_backend())


def lines(*parts):
    return b"".join(
        (p if isinstance(p, bytes) else str(p).encode()) + b"\n" for p in parts
    )


def rsa_sign(key, data):
    signature = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode()


def rsa_verify(public_key, data, signature):
    try:
        public_key.verify(
            base64.b64decode(signature), data, padding.PKCS1v15(), hashes.SHA256()
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def parse_authorization(header):
    schema, _sep, rest = (header or "").partition(" ")
    if schema != SCHEMA:
        return None
    return dict(re.findall(r'(\w+)="([^"]*)"', rest))


def aes_encrypt(key, plaintext, associated_data):
    nonce = secrets.token_hex(6)
    cipher = AESGCM(key).encrypt(nonce.encode(), plaintext, associated_data.encode())
    return nonce, base64.b64encode(cipher).decode()


class Keys:
    """The peer's platform key and the merchant it serves.

    ``merchant_private_pem`` is only kept to be printed for wiring a demo;
    the peer itself needs the merchant's public key only.
    """

    def __init__(self, data=None):
        data = dict(data or {})
        platform = data.get("platform_private_key")
        self.platform_key = load_private(platform) if platform else generate_key()
        self.platform_key_id = data.get(
            "platform_key_id", "PUB_KEY_ID_01" + secrets.token_hex(14).upper()
        )
        merchant = data.get("merchant_private_key")
        self.merchant_private_pem = merchant or private_pem(generate_key())
        self.merchant_public = load_private(self.merchant_private_pem).public_key()
        if data.get("merchant_public_key"):
            self.merchant_public = load_public(data["merchant_public_key"])
        self.merchant_serial = data.get(
            "merchant_serial", secrets.token_hex(20).upper()
        )
        self.mchid = data.get("mchid", "1900000109")
        self.appid = data.get("appid", "wxd678efh567hg6787")
        self.app_secret = data.get("app_secret", secrets.token_hex(16))
        self.apiv3_key = data.get("apiv3_key", secrets.token_hex(16))

    @classmethod
    def from_file(cls, path):
        return cls(json.loads(Path(path).read_text()))

    def wiring(self):
        """What the merchant side needs to talk to this peer."""
        return {
            "mchid": self.mchid,
            "appid": self.appid,
            "app_secret": self.app_secret,
            "apiv3_key": self.apiv3_key,
            "merchant_serial": self.merchant_serial,
            "merchant_private_key": self.merchant_private_pem,
            "platform_key_id": self.platform_key_id,
            "platform_public_key": public_pem(self.platform_key),
        }

    def dump(self):
        """Everything, to keep a stable peer across restarts."""
        return {**self.wiring(), "platform_private_key": private_pem(self.platform_key)}
