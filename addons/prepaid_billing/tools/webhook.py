"""Signing of outgoing webhook notifications (and checking them on receipt).

The signature is an HMAC-SHA256 over ``"<timestamp>." + raw body`` so that a
receiver can reject both a changed body and an old message replayed later.
Header format, in the style of Stripe's::

    X-Prepaid-Signature: t=1717000000,v1=<hex digest>
    X-Prepaid-Event-Id: <id, for idempotent handling on the receiver's side>
"""

import hashlib
import hmac

SIGNATURE_HEADER = "X-Prepaid-Signature"
EVENT_ID_HEADER = "X-Prepaid-Event-Id"
DEFAULT_TOLERANCE = 300


def _key(secret):
    return secret.encode() if isinstance(secret, str) else bytes(secret)


def sign(secret, body, timestamp):
    """Return the hex HMAC-SHA256 of ``body`` at ``timestamp`` (Unix seconds).

    ``body`` must be the raw bytes sent on the wire: signing re-encoded JSON
    would not match what the receiver hashes.
    """
    if not isinstance(body, bytes | bytearray):
        raise TypeError("Sign the raw body bytes, not a decoded text or object.")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise TypeError("The timestamp must be whole Unix seconds (int).")
    message = f"{timestamp}.".encode() + bytes(body)
    return hmac.new(_key(secret), message, hashlib.sha256).hexdigest()


def headers(secret, body, timestamp, event_id):
    """Return the headers that authenticate ``body`` sent at ``timestamp``."""
    return {
        SIGNATURE_HEADER: f"t={timestamp},v1={sign(secret, body, timestamp)}",
        EVENT_ID_HEADER: str(event_id),
    }


def _parse(header):
    """Return ``(timestamp, [v1 signatures])`` or None if malformed."""
    if not isinstance(header, str):
        return None
    timestamp = None
    signatures = []
    for item in header.split(","):
        name, _sep, value = item.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1" and value:
            signatures.append(value)
    if timestamp is None or not signatures:
        return None
    return timestamp, signatures


def verify(secret, body, header, now, tolerance=DEFAULT_TOLERANCE):
    """Return True if ``header`` signs ``body`` with ``secret`` recently enough.

    Rejects a malformed header, a timestamp more than ``tolerance`` seconds
    from ``now`` (either way: replays and clock-skewed forgeries), and any
    signature that does not match; several ``v1`` entries are accepted so a
    sender can sign with an old and a new secret while rotating.  Digests are
    compared in constant time.
    """
    parsed = _parse(header)
    if parsed is None:
        return False
    timestamp, signatures = parsed
    if abs(now - timestamp) > tolerance:
        return False
    expected = sign(secret, body, timestamp).encode()
    return any(
        hmac.compare_digest(expected, signature.encode()) for signature in signatures
    )
