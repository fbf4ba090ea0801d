"""Outgoing webhook notifications: signing, destination checks and sending.

The signature is an HMAC-SHA256 over ``"<timestamp>." + raw body`` so that a
receiver can reject both a changed body and an old message replayed later.
Header format, in the style of Stripe's::

    X-Prepaid-Signature: t=1717000000,v1=<hex digest>
    X-Prepaid-Event-Id: <id, for idempotent handling on the receiver's side>

A webhook URL is typed by a person and the request leaves from the Odoo
server, so a URL must not reach what only the server can reach (loopback,
the private network, link-local cloud metadata addresses): :func:`check_url`
resolves the host name and refuses every such address unless the
administrator allows private addresses.  :func:`post` checks again at send
time and connects to the very address it checked, so a DNS answer that
changes between the check and the connection (DNS rebinding) gains nothing;
it never follows a redirect.
"""

import hashlib
import hmac
import ipaddress
import socket
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import urlsplit

import requests
import urllib3

SIGNATURE_HEADER = "X-Prepaid-Signature"
EVENT_ID_HEADER = "X-Prepaid-Event-Id"
DEFAULT_TOLERANCE = 300
MIN_TIMEOUT_S = 1.0
MAX_TIMEOUT_S = 30.0
DEFAULT_PORTS = {"http": 80, "https": 443}
# IPv6 prefix of NAT64 gateways: the last 32 bits are the IPv4 address reached.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

# Reasons of :class:`UnsafeUrl`, for the caller's (translated) message.
BAD_SCHEME = "scheme"
BAD_HOST = "host"
CREDENTIALS = "credentials"
UNRESOLVED = "resolve"
PRIVATE = "private"


class UnsafeUrl(ValueError):
    """A URL webhooks may not be sent to; ``reason`` is one of the constants
    above and ``detail`` the offending part (scheme, host or address)."""

    def __init__(self, reason, detail=""):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Destination:
    """A checked webhook URL and the addresses its host resolved to."""

    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple

    @property
    def host_header(self):
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.port == DEFAULT_PORTS[self.scheme]:
            return host
        return f"{host}:{self.port}"


class Reply(NamedTuple):
    """What the receiver answered; anything but 2xx is a failure."""

    status: int

    @property
    def ok(self):
        return 200 <= self.status < 300


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


def _is_public_ip(ip):
    return ip.is_global and not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def is_public_address(address):
    """Return True if ``address`` (IPv4 or IPv6 text) is a public unicast one.

    An IPv6 address that carries an IPv4 one (mapped ``::ffff:a.b.c.d``, 6to4,
    NAT64) is judged by the IPv4 address it reaches as well.
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 6:
        if ip.ipv4_mapped:
            return _is_public_ip(ip.ipv4_mapped)
        if ip in _NAT64:
            return _is_public_ip(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip.sixtofour and not _is_public_ip(ip.sixtofour):
            return False
    return _is_public_ip(ip)


def resolve(host, port, getaddrinfo=socket.getaddrinfo):
    """Return every address ``host`` resolves to (literal IPs stay as they are).

    :raises UnsafeUrl: (``UNRESOLVED``) when the name does not resolve
    """
    try:
        infos = getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as err:
        raise UnsafeUrl(UNRESOLVED, host) from err
    addresses = []
    for _family, _type, _proto, _canonname, sockaddr in infos:
        if sockaddr[0] not in addresses:
            addresses.append(sockaddr[0])
    if not addresses:
        raise UnsafeUrl(UNRESOLVED, host)
    return tuple(addresses)


def check_url(url, allow_private=False, getaddrinfo=socket.getaddrinfo):
    """Return the :class:`Destination` of ``url`` if webhooks may go there.

    http and https only, a host and no user name or password in the URL; the
    host is resolved and every address it resolves to must be public unless
    ``allow_private``.

    :raises UnsafeUrl: saying why the URL is refused
    """
    parts = urlsplit((url or "").strip())
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise UnsafeUrl(BAD_SCHEME, parts.scheme)
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl(CREDENTIALS, parts.hostname or "")
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError as err:
        raise UnsafeUrl(BAD_HOST, parts.netloc) from err
    host = parts.hostname
    if not host:
        raise UnsafeUrl(BAD_HOST, parts.netloc)
    addresses = resolve(host, port, getaddrinfo)
    if not allow_private:
        for address in addresses:
            if not is_public_address(address):
                raise UnsafeUrl(PRIVATE, f"{host} ({address})")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Destination(scheme, host, port, path, addresses)


def check_timeout(timeout_s):
    """Raise ValueError unless ``timeout_s`` is within the allowed bounds."""
    if not MIN_TIMEOUT_S <= timeout_s <= MAX_TIMEOUT_S:
        raise ValueError(
            f"The timeout must be between {MIN_TIMEOUT_S:g} and "
            f"{MAX_TIMEOUT_S:g} seconds, got {timeout_s!r}."
        )


def _pool(destination, address, timeout_s):
    timeout = urllib3.Timeout(connect=timeout_s, read=timeout_s)
    if destination.scheme == "http":
        return urllib3.HTTPConnectionPool(
            address, destination.port, timeout=timeout, retries=False, maxsize=1
        )
    # Connect to the checked address, but present and verify the host name.
    return urllib3.HTTPSConnectionPool(
        address,
        destination.port,
        timeout=timeout,
        retries=False,
        maxsize=1,
        cert_reqs="CERT_REQUIRED",
        ca_certs=requests.certs.where(),
        assert_hostname=destination.host,
        server_hostname=destination.host,
    )


def post(
    url, body, headers, timeout_s, allow_private=False, getaddrinfo=socket.getaddrinfo
):
    """POST ``body`` to ``url`` and return the :class:`Reply`.

    The URL is checked (:func:`check_url`) now, not only when it was saved,
    and the connection goes to an address that passed the check.  Redirects
    are not followed: a 3xx comes back as it is, a failure for the caller.

    :raises UnsafeUrl: if the URL may not receive webhooks (now)
    :raises ValueError: if ``timeout_s`` is out of bounds
    :raises urllib3.exceptions.HTTPError: if no address could be reached
    """
    check_timeout(timeout_s)
    destination = check_url(url, allow_private, getaddrinfo)
    headers = {**headers, "Host": destination.host_header}
    error = None
    for address in destination.addresses:
        with _pool(destination, address, timeout_s) as pool:
            try:
                response = pool.urlopen(
                    "POST",
                    destination.path,
                    body=body,
                    headers=headers,
                    redirect=False,
                    retries=False,
                    assert_same_host=False,
                    preload_content=False,
                )
            except (
                urllib3.exceptions.NewConnectionError,
                urllib3.exceptions.ConnectTimeoutError,
            ) as err:
                error = err
                continue
            response.close()
            return Reply(response.status)
    raise error
