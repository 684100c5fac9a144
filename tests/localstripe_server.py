"""localstripe (PyPI: a stateful Stripe server others wrote) for the billing tests: started on a free
port from scratch, its signed webhooks pointed where a test says, and a receiver that keeps what
it was sent (the exact bytes and headers, to hand on to the service or to replay).

Usage::

    with LocalStripe() as stripe_server:
        stripe_server.send_webhooks_to(url, secret, ["payment_intent.succeeded"])
        stripe_server.api          # "http://127.0.0.1:<port>" for ALPHACUT_STRIPE_API_BASE
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self

SECRET_KEY = "sk_test_alphacut_tests"
PUBLISHABLE_KEY = "pk_test_alphacut_tests"
WEBHOOK_SECRET = "whsec_alphacut_tests"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LocalStripe:
    def __init__(self) -> None:
        self.port = free_port()
        self.api = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        executable = Path(sys.executable).with_name("localstripe")
        self.process = subprocess.Popen(
            [str(executable), "--port", str(self.port), "--from-scratch"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.api}/js.stripe.com/v3/", timeout=1).read()
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("localstripe did not start within 30 s")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)

    def send_webhooks_to(
        self, url: str, secret: str = WEBHOOK_SECRET, events: list[str] | None = None, hook: str = "alphacut"
    ) -> None:
        """Register a webhook endpoint (localstripe's /_config/webhooks), which signs each event with
        ``secret``."""
        fields = [("url", url), ("secret", secret)] + [("events[]", e) for e in events or []]
        body = "&".join(f"{k}={urllib.request.quote(v, safe='')}" for k, v in fields).encode()
        request = urllib.request.Request(f"{self.api}/_config/webhooks/{hook}", data=body, method="POST")
        urllib.request.urlopen(request, timeout=5).read()


@dataclass
class Delivery:
    body: bytes
    headers: dict[str, str]


@dataclass
class WebhookReceiver:
    """An HTTP server that keeps every POST it gets (and answers ``status``)."""

    status: int = 200
    host: str = "127.0.0.1"
    received: list[Delivery] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.received.append(Delivery(body, dict(self.headers.items())))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((self.host, 0), Handler)
        self.url = f"http://{self.host}:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 15.0) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.received

    def close(self) -> None:
        self.server.shutdown()
