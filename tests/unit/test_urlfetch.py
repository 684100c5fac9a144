"""The image_url fetcher: what the URL alone gets wrong is said (400), every refusal or failure on
the network gets one answer (a caller cannot map hosts or ports), and the whole fetch has one
deadline (a real server that drips its answer on loopback)."""

import ipaddress
import socket
import threading
import time

import pytest
from alphacut.errors import UrlFetchFailed, UrlNotAllowed
from alphacut.urlfetch import GENERIC_FAILURE, fetch_image, is_public, parse_url, post_json


@pytest.mark.parametrize(
    "url",
    [
        "gopher://example.com/",
        "file:///etc/passwd",
        "//no-scheme/x",
        "http://host:99999/x.jpg",
        "http://host:-1/",
        "http://example.com:8080/x.jpg",
        "http://" + "a" * 10_000 + ".com/",
        "http://" + "b" * 64 + ".com/",
        "http://a..b/",
        "http://[::1/",
        "http://exa mple.com/",
        "http:///x.jpg",
        "http://\udcff.com/",
        "https://example.com/x#\ud905\udcca0",  # a lone surrogate: no URI holds it
        "https://example.com/caf\u00e9.jpg",  # unencoded: RFC 3986 wants %C3%A9
        "https://example.com/x#a#b",  # a second # belongs percent-encoded
        "https://example.com/100%.jpg",  # a % that starts no %XX
        "https://example.com/x?list=[1]",
    ],
)
def test_urls_that_may_not_be_fetched_are_named(url):
    with pytest.raises(UrlNotAllowed) as error:
        fetch_image(url, max_bytes=1000, timeout=2)
    assert error.value.field == "image_url"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://localhost/x.jpg",
        "http://10.1.2.3/",
        "http://192.168.0.1/",
        "http://172.16.5.4/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://[fe80::1]/",
        "http://0.0.0.0/",
        "http://[::ffff:127.0.0.1]/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://[2002:a9fe:a9fe::]/",
        "http://[::10.0.0.1]/",
        "http://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/",
        "http://no-such-host.invalid/",
    ],
)
def test_private_targets_and_dead_names_get_the_same_answer(url):
    with pytest.raises(UrlFetchFailed) as error:
        fetch_image(url, max_bytes=1000, timeout=2)
    assert error.value.field == "image_url" and error.value.message == GENERIC_FAILURE


@pytest.mark.parametrize(
    "address, public",
    [
        ("64:ff9b::808:808", True),
        ("64:ff9b::a00:1", False),
        ("2002:808:808::1", True),
        ("2002:c0a8:101::", False),
        ("::ffff:8.8.8.8", True),
        ("::ffff:10.0.0.1", False),
        ("::192.168.1.1", False),
        ("2606:4700::1111", True),
        ("64:ff9b:1::808:808", False),  # local-use NAT64: a network's own translator, whatever it carries
        ("64:ff9b:1::a00:1", False),
        ("::ffff:0:808:808", False),  # SIIT's IPv4-translated form
        ("::ffff:0:a00:1", False),
    ],
)
def test_ipv6_forms_that_carry_an_ipv4_address_are_judged_by_it(address, public):
    assert is_public(ipaddress.ip_address(address)) is public


def test_a_port_can_be_allowed_by_setting():
    assert parse_url("http://example.com:8080/x.jpg", allowed_ports=(8080,)) == ("http", "example.com", 8080)


HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\n"
DRIPS = {
    # (what is sent at once, what is then sent a byte at a time for ever)
    "body": (HEAD + b"Content-Length: 100000\r\n\r\n", b"\xff"),
    "headers": (b"HTTP/1.1 200 OK\r\n", b"X"),  # one header that never ends
    "chunk size line": (HEAD + b"Transfer-Encoding: chunked\r\n\r\n", b"0"),  # 000000... never ends
    "status line": (b"", b"H"),
    "TLS handshake": (b"\x16\x03\x03\x40\x00", b"\x00"),  # a 16 KB handshake record, a byte at a time
}


def _dripping_server(first: bytes, drip: bytes, interval: float, stop: threading.Event) -> int:
    """Sends ``first`` after the request, then ``drip`` every ``interval`` seconds, for ever."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def serve():
        connection, _ = listener.accept()
        connection.settimeout(0.05)
        try:
            connection.recv(65536)
        except OSError:
            pass  # a TLS client waits for us first
        connection.sendall(first)
        while not stop.is_set():
            try:
                connection.sendall(drip)
            except OSError:
                break
            time.sleep(interval)
        connection.close()
        listener.close()

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1]


@pytest.mark.parametrize("where", sorted(DRIPS))
def test_a_server_that_drips_any_part_of_its_answer_is_cut_off_at_the_deadline(where):
    first, drip = DRIPS[where]
    stop = threading.Event()
    port = _dripping_server(
        first, drip, 0.2, stop
    )  # each read gets a byte in time: a per-read timeout never fires
    scheme = "https" if where == "TLS handshake" else "http"
    started = time.monotonic()
    try:
        with pytest.raises(UrlFetchFailed):
            fetch_image(
                f"{scheme}://127.0.0.1:{port}/x.jpg",
                max_bytes=1_000_000,
                timeout=1.5,
                allowed_hosts=("127.0.0.1",),
            )
    finally:
        stop.set()
    assert time.monotonic() - started < 2.5


def test_a_callback_receiver_that_drips_its_answer_is_cut_off_at_the_deadline():
    stop = threading.Event()
    port = _dripping_server(*DRIPS["headers"], 0.2, stop)
    started = time.monotonic()
    try:
        with pytest.raises(UrlFetchFailed):
            post_json(
                f"http://127.0.0.1:{port}/hook", {"state": 1}, timeout=1.5, allowed_hosts=("127.0.0.1",)
            )
    finally:
        stop.set()
    assert time.monotonic() - started < 2.5


def test_a_refused_fetch_or_callback_logs_the_urls_origin_never_its_path_or_query(caplog):
    """Presigned URLs and webhook tokens live in paths and queries: logs (kept 30 days) get the
    scheme, host and port only."""
    import logging

    from alphacut.callbacks import CallbackFailed, deliver

    caplog.set_level(logging.INFO)
    secret = "X-Amz-Signature=deadbeefcafe"
    with pytest.raises(UrlFetchFailed):  # nobody listens on port 9: the connection fails
        fetch_image(f"http://127.0.0.1:9/a.jpg?{secret}", 100, timeout=1, allowed_hosts=("127.0.0.1",))
    with pytest.raises(CallbackFailed) as failed:
        deliver(f"http://127.0.0.1:9/hooks/{secret}", {"state": 1}, None, allowed_hosts=("127.0.0.1",))
    logged = caplog.text + str(failed.value)
    assert "127.0.0.1" in str(failed.value) and secret not in logged and "/hooks/" not in logged
