"""Webhooks: HMAC-SHA256 signatures, destination checks and sending."""

import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

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


# --- destination checks -------------------------------------------------------


def _resolver(*answers):
    """A getaddrinfo stand-in answering ``answers`` in turn (no real DNS)."""
    calls = iter(answers)

    def getaddrinfo(host, port, type=0):  # noqa: A002 - socket's signature
        addresses = next(calls)
        if isinstance(addresses, Exception):
            raise addresses
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, type, 6, "", (a, port))
            for a in addresses
        ]

    return getaddrinfo


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://127.8.0.1:8069/hook",
        "http://localhost:8069/hook",
        "http://10.1.2.3/hook",
        "http://172.16.0.1/hook",
        "http://192.168.1.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://100.64.0.1/hook",
        "http://0.0.0.0/hook",
        "http://224.0.0.1/hook",
        "http://240.0.0.1/hook",
        "http://255.255.255.255/hook",
        "http://[::1]/hook",
        "http://[::]/hook",
        "http://[fe80::1]/hook",
        "http://[fc00::1]/hook",
        "http://[ff02::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "http://[2002:7f00:1::]/hook",
        "http://[64:ff9b::a9fe:a9fe]/hook",
    ],
)
def test_private_loopback_link_local_and_special_addresses_are_refused(url):
    with pytest.raises(webhook.UnsafeUrl) as caught:
        webhook.check_url(url)
    assert caught.value.reason == webhook.PRIVATE


@pytest.mark.parametrize(
    "url",
    [
        "https://8.8.8.8/hook",
        "http://1.1.1.1:8080/hook",
        "https://[2001:4860:4860::8888]/hook",
        "https://[64:ff9b::808:808]/hook",
    ],
)
def test_public_addresses_are_accepted(url):
    assert webhook.check_url(url).addresses


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8069/hook", "http://localhost/hook", "http://[::1]/"]
)
def test_private_addresses_pass_when_the_administrator_allows_them(url):
    assert webhook.check_url(url, allow_private=True).addresses


@pytest.mark.parametrize(
    "url, reason",
    [
        ("ftp://8.8.8.8/hook", webhook.BAD_SCHEME),
        ("file:///etc/passwd", webhook.BAD_SCHEME),
        ("gopher://8.8.8.8/", webhook.BAD_SCHEME),
        ("8.8.8.8/hook", webhook.BAD_SCHEME),
        ("", webhook.BAD_SCHEME),
        (None, webhook.BAD_SCHEME),
        ("http:///hook", webhook.BAD_HOST),
        ("http://8.8.8.8:99999/hook", webhook.BAD_HOST),
        ("https://user:pw@8.8.8.8/hook", webhook.CREDENTIALS),
    ],
)
def test_malformed_urls_are_refused_with_their_reason(url, reason):
    with pytest.raises(webhook.UnsafeUrl) as caught:
        webhook.check_url(url, allow_private=True)
    assert caught.value.reason == reason


def test_a_name_with_one_private_address_among_public_ones_is_refused():
    resolver = _resolver(["93.184.216.34", "10.0.0.7"])
    with pytest.raises(webhook.UnsafeUrl) as caught:
        webhook.check_url("https://hooks.example/x", getaddrinfo=resolver)
    assert caught.value.reason == webhook.PRIVATE
    assert "10.0.0.7" in caught.value.detail


def test_a_name_that_does_not_resolve_is_refused():
    resolver = _resolver(socket.gaierror(socket.EAI_NONAME, "unknown"))
    with pytest.raises(webhook.UnsafeUrl) as caught:
        webhook.check_url("https://nowhere.example/x", getaddrinfo=resolver)
    assert caught.value.reason == webhook.UNRESOLVED


def test_destination_keeps_path_query_and_host_header():
    destination = webhook.check_url("https://[2001:4860:4860::8888]:8443/a/b?c=1&d=2")
    assert destination.path == "/a/b?c=1&d=2"
    assert destination.host_header == "[2001:4860:4860::8888]:8443"
    assert webhook.check_url("https://8.8.8.8").host_header == "8.8.8.8"
    assert webhook.check_url("https://8.8.8.8").path == "/"


@pytest.mark.parametrize("timeout", [0, 0.5, 30.5, 600])
def test_post_refuses_a_timeout_out_of_bounds(timeout):
    with pytest.raises(ValueError):
        webhook.post("http://8.8.8.8/", b"{}", {}, timeout, allow_private=True)


# --- sending to a receiver on loopback -----------------------------------------


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server API
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((self.path, dict(self.headers), body))
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", "/elsewhere")
        else:
            self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        return


@pytest.fixture
def receiver():
    server = HTTPServer(("127.0.0.1", 0), _Handler)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_post_delivers_when_private_addresses_are_allowed(receiver):
    url = f"http://127.0.0.1:{receiver.server_port}/hook?x=1"
    headers = webhook.headers(SECRET, BODY, NOW, "evt-9")
    reply = webhook.post(url, BODY, headers, 2.0, allow_private=True)
    assert reply == webhook.Reply(204)
    assert reply.ok
    path, received_headers, body = receiver.received[0]
    assert (path, body) == ("/hook?x=1", BODY)
    assert received_headers["X-Prepaid-Event-Id"] == "evt-9"


def test_post_to_loopback_is_refused_by_default_and_sends_nothing(receiver):
    with pytest.raises(webhook.UnsafeUrl):
        webhook.post(f"http://127.0.0.1:{receiver.server_port}/hook", BODY, {}, 2.0)
    assert receiver.received == []


def test_post_does_not_follow_a_redirect(receiver):
    url = f"http://127.0.0.1:{receiver.server_port}/redirect"
    reply = webhook.post(url, BODY, {}, 2.0, allow_private=True)
    assert reply.status == 302
    assert not reply.ok
    assert [path for path, _headers, _body in receiver.received] == ["/redirect"]


def test_post_checks_the_address_again_at_send_time():
    # Public when the channel was saved, loopback when the alarm is sent.
    resolver = _resolver(["93.184.216.34"], ["127.0.0.1"])
    webhook.check_url("https://rebind.example/x", getaddrinfo=resolver)
    with pytest.raises(webhook.UnsafeUrl) as caught:
        webhook.post("https://rebind.example/x", BODY, {}, 2.0, getaddrinfo=resolver)
    assert caught.value.reason == webhook.PRIVATE


def test_post_connects_to_the_checked_address_and_names_the_host(receiver):
    resolver = _resolver(["127.0.0.1"])
    url = f"http://hooks.example:{receiver.server_port}/hook"
    reply = webhook.post(url, BODY, {}, 2.0, allow_private=True, getaddrinfo=resolver)
    assert reply.status == 204
    _path, received_headers, _body = receiver.received[0]
    assert received_headers["Host"] == f"hooks.example:{receiver.server_port}"
