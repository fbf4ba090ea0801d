"""Webhook signatures: HMAC-SHA256 over timestamp and raw body."""

import pytest
from prepaid_billing_tools import webhook

SECRET = b"whsec_test"
BODY = b'{"event":"balance.low"}'
NOW = 1717000000
# printf '1717000000.{"event":"balance.low"}' | openssl dgst -sha256 -hmac whsec_test
EXPECTED = "d876498c1ebdcddbd2e79200274dbef5a29e20a7a451daa9848b77e1619e503d"


def test_sign_matches_an_independent_hmac():
    assert webhook.sign(SECRET, BODY, NOW) == EXPECTED


def test_headers_carry_timestamp_signature_and_event_id():
    assert webhook.headers(SECRET, BODY, NOW, "evt-42") == {
        "X-Prepaid-Signature": f"t={NOW},v1={EXPECTED}",
        "X-Prepaid-Event-Id": "evt-42",
    }


def _header(secret=SECRET, body=BODY, timestamp=NOW):
    return webhook.headers(secret, body, timestamp, "evt-1")["X-Prepaid-Signature"]


def test_verify_accepts_a_fresh_genuine_signature():
    assert webhook.verify(SECRET, BODY, _header(), now=NOW + 10)


def test_verify_rejects_a_tampered_body():
    assert not webhook.verify(SECRET, BODY + b" ", _header(), now=NOW)


def test_verify_rejects_a_wrong_secret():
    assert not webhook.verify(b"other", BODY, _header(), now=NOW)


def test_verify_rejects_a_changed_timestamp():
    forged = _header().replace(f"t={NOW}", f"t={NOW + 60}")
    assert not webhook.verify(SECRET, BODY, forged, now=NOW + 60)


@pytest.mark.parametrize("offset, accepted", [(300, True), (301, False), (-301, False)])
def test_verify_rejects_stale_or_future_timestamps(offset, accepted):
    assert webhook.verify(SECRET, BODY, _header(), now=NOW + offset) is accepted


@pytest.mark.parametrize(
    "header",
    [None, "", "garbage", f"v1={EXPECTED}", f"t={NOW}", f"t=soon,v1={EXPECTED}"],
)
def test_verify_rejects_malformed_headers(header):
    assert not webhook.verify(SECRET, BODY, header, now=NOW)


def test_verify_accepts_any_of_several_signatures_during_secret_rotation():
    old = webhook.sign(b"old-secret", BODY, NOW)
    header = f"t={NOW}, v1={old}, v1={EXPECTED}"
    assert webhook.verify(SECRET, BODY, header, now=NOW)


def test_text_secret_is_the_same_as_its_utf8_bytes():
    assert webhook.sign("whsec_test", BODY, NOW) == EXPECTED


def test_sign_refuses_a_decoded_body():
    with pytest.raises(TypeError):
        webhook.sign(SECRET, BODY.decode(), NOW)
