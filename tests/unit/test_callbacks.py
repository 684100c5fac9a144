"""Callback signatures: what a receiver checks (alphacut.callbacks.verify)."""

from alphacut.callbacks import sign, verify

SECRET = b"stack-secret"
BODY = b'{"status":200,"data":{"task_id":"t","state":1}}'


def test_a_signed_body_verifies_and_nothing_else_does():
    headers = sign(SECRET, BODY, now=1_000_000)
    assert verify(SECRET, BODY, headers, now=1_000_100)
    assert not verify(SECRET, BODY + b" ", headers, now=1_000_100)
    assert not verify(b"other", BODY, headers, now=1_000_100)
    assert not verify(SECRET, BODY, headers, now=1_000_000 + 301)  # too old: a replay
    assert not verify(SECRET, BODY, {**headers, "X-Alphacut-Timestamp": "1000001"}, now=1_000_100)
    assert not verify(SECRET, BODY, {}, now=1_000_100)


def test_headers_are_read_case_insensitively():
    headers = {k.lower(): v for k, v in sign(SECRET, BODY, now=5).items()}
    assert verify(SECRET, BODY, headers, now=5)


def _receiver(status: int):
    """A callback receiver on loopback that answers ``status`` and counts what it got."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, received


def test_a_receiver_that_is_down_or_answers_5xx_408_429_is_tried_again_and_4xx_is_not():
    import pytest
    from alphacut.callbacks import CallbackFailed, deliver

    for status, retried in [(200, False), (204, False), (400, False), (503, True), (429, True), (408, True)]:
        server, received = _receiver(status)
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        try:
            if retried:
                with pytest.raises(CallbackFailed):
                    deliver(url, {"state": 1}, b"secret", allowed_hosts=("127.0.0.1",))
            else:
                assert deliver(url, {"state": 1}, b"secret", allowed_hosts=("127.0.0.1",)) == status
        finally:
            server.shutdown()
            server.server_close()
        assert len(received) == 1
    with pytest.raises(CallbackFailed):  # nobody listening
        deliver(url, {"state": 1}, b"secret", allowed_hosts=("127.0.0.1",))


def test_a_callback_to_a_private_loopback_or_metadata_address_is_refused_at_submission():
    import pytest
    from alphacut.errors import UrlNotAllowed
    from alphacut.urlfetch import check_callback_url

    for url in ("http://169.254.169.254/latest/meta-data", "http://127.0.0.1:9000/hook", "http://10.0.0.8/h",
                "http://[::1]:8080/h", "http://localhost/hook", "ftp://example.com/hook"):  # fmt: skip
        with pytest.raises(UrlNotAllowed) as refused:
            check_callback_url(url)
        assert refused.value.field == "callback_url", url
    check_callback_url("http://93.184.216.34:8443/hook")  # a public address, any port
    check_callback_url("http://127.0.0.1:9000/hook", allowed_hosts=("127.0.0.1",))  # explicitly allowed


def test_a_delivery_refused_by_the_address_rule_is_not_retried():
    import pytest
    from alphacut.callbacks import CallbackFailed, CallbackRefused, deliver

    server, received = _receiver(200)
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        with pytest.raises(CallbackRefused) as refused:  # DNS may have changed since submission
            deliver(url, {"state": 1}, b"secret")
        assert not isinstance(refused.value, CallbackFailed) and received == []
    finally:
        server.shutdown()
        server.server_close()


def test_the_notify_steps_retry_only_what_a_retry_can_mend():
    import json

    from alphacut_dev.template import ROOT

    states = json.loads((ROOT / "statemachine" / "task.asl.json").read_text())["States"]
    for name in ("NotifyDone", "NotifyFailure"):
        retried = {e for rule in states[name]["Retry"] for e in rule["ErrorEquals"]}
        assert (
            "CallbackFailed" in retried and "CallbackRefused" not in retried and "States.ALL" not in retried
        )
