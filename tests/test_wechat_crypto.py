"""WeChat Pay APIv3 crypto core: signing, verification, decryption."""

import base64
import json
import time

import pytest
from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from prepaid_wechat_tools import wechatpay as wx

APIV3 = b"0123456789abcdef0123456789abcdef"
NOW = 1_790_000_000


@pytest.fixture(scope="module")
def platform():
    return rsa.generate_private_key(65537, 2048, default_backend())


@pytest.fixture(scope="module")
def other():
    return rsa.generate_private_key(65537, 2048, default_backend())


def _signed(key, body, timestamp=NOW, serial="PUB_KEY_ID_1", nonce="n0nce"):
    signature = wx.sign(key, wx.message(str(timestamp), nonce, body))
    return wx.SignedHeaders(str(timestamp), nonce, signature, serial)


def test_message_lines_each_end_with_newline_and_get_keeps_empty_body():
    assert wx.message("GET", "/v3/x?mchid=1", 1, "n", "") == (
        b"GET\n/v3/x?mchid=1\n1\nn\n\n"
    )


def test_good_signature_passes(platform):
    body = b'{"a": 1}'
    keys = {"PUB_KEY_ID_1": platform.public_key()}
    assert wx.verify(keys, _signed(platform, body), body, now=NOW + 299) is None


def test_forged_signature_fails(platform, other):
    body = b'{"a": 1}'
    keys = {"PUB_KEY_ID_1": platform.public_key()}
    with pytest.raises(wx.SignatureError, match="does not match"):
        wx.verify(keys, _signed(other, body), body, now=NOW)


def test_changed_body_fails(platform):
    keys = {"PUB_KEY_ID_1": platform.public_key()}
    with pytest.raises(wx.SignatureError):
        wx.verify(keys, _signed(platform, b'{"a": 1}'), b'{"a":1}', now=NOW)


def test_unknown_serial_fails(platform):
    keys = {"PUB_KEY_ID_1": platform.public_key()}
    headers = _signed(platform, b"{}", serial="PUB_KEY_ID_2")
    with pytest.raises(wx.SignatureError, match="unknown platform serial"):
        wx.verify(keys, headers, b"{}", now=NOW)


@pytest.mark.parametrize("skew", [301, -301])
def test_stale_or_future_timestamp_fails(platform, skew):
    keys = {"PUB_KEY_ID_1": platform.public_key()}
    with pytest.raises(wx.SignatureError, match="5-minute"):
        wx.verify(keys, _signed(platform, b"{}"), b"{}", now=NOW + skew)


def test_probe_signature_fails(platform):
    keys = {"PUB_KEY_ID_1": platform.public_key()}
    headers = wx.SignedHeaders(str(NOW), "n", "WECHATPAY/SIGNTEST/abc", "PUB_KEY_ID_1")
    with pytest.raises(wx.SignatureError, match="probe"):
        wx.verify(keys, headers, b"{}", now=NOW)


def test_verify_refuses_decoded_text(platform):
    keys = {"PUB_KEY_ID_1": platform.public_key()}
    with pytest.raises(TypeError):
        wx.verify(keys, _signed(platform, b"{}"), "{}", now=NOW)


def _resource(plaintext, key=APIV3, nonce="abcdefghijkl", ad="transaction"):
    return {
        "algorithm": "AEAD_AES_256_GCM",
        "ciphertext": wx.encrypt(key, plaintext, nonce, ad),
        "nonce": nonce,
        "associated_data": ad,
        "original_type": "transaction",
    }


def test_decrypt_round_trip():
    plain = {"out_trade_no": "T0001", "amount": {"total": 1234}}
    assert wx.decrypt(APIV3, _resource(json.dumps(plain))) == plain


def test_tampered_ciphertext_fails():
    resource = _resource('{"amount": {"total": 1}}')
    raw = bytearray(base64.b64decode(resource["ciphertext"]))
    raw[3] ^= 0x01
    resource["ciphertext"] = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(wx.DecryptError):
        wx.decrypt(APIV3, resource)


def test_changed_associated_data_or_key_fails():
    resource = _resource("{}")
    with pytest.raises(wx.DecryptError):
        wx.decrypt(APIV3, {**resource, "associated_data": "refund"})
    with pytest.raises(wx.DecryptError):
        wx.decrypt(b"f" * 32, resource)


def test_authorization_header_verifies_with_merchant_public_key(platform):
    header = wx.authorization(
        "1900000109",
        "SERIAL1",
        platform,
        "POST",
        "/v3/pay/transactions/native",
        '{"x":1}',
        NOW,
        "nonce1",
    )
    assert header.startswith('WECHATPAY2-SHA256-RSA2048 mchid="1900000109",')
    fields = wx.parse_authorization(header)
    assert fields["serial_no"] == "SERIAL1" and fields["timestamp"] == str(NOW)
    # the peer's side checks the same message with the public key
    expected = wx.message(
        "POST", "/v3/pay/transactions/native", NOW, "nonce1", '{"x":1}'
    )
    platform.public_key().verify(
        base64.b64decode(fields["signature"]),
        expected,
        wx.padding.PKCS1v15(),
        wx.hashes.SHA256(),
    )


def test_to_fen_rounds_half_up():
    assert wx.to_fen("12.345") == 1235
    assert wx.to_fen(0.1 + 0.2) == 30
    assert wx.to_fen(100) == 10000


def test_jsapi_pay_sign_covers_appid_time_nonce_package(platform):
    params = wx.jsapi_pay_params("wxAPP", "wx123", platform, timestamp=NOW, nonce="n")
    assert params["package"] == "prepay_id=wx123"
    assert params["signType"] == "RSA"
    platform.public_key().verify(
        base64.b64decode(params["paySign"]),
        f"wxAPP\n{NOW}\nn\nprepay_id=wx123\n".encode(),
        wx.padding.PKCS1v15(),
        wx.hashes.SHA256(),
    )


def test_load_keys_from_pem(platform):
    pem = platform.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = platform.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    body = b"{}"
    headers = _signed(wx.load_private_key(pem), body, timestamp=int(time.time()))
    assert (
        wx.verify({"PUB_KEY_ID_1": wx.load_public_key(public)}, headers, body) is None
    )
