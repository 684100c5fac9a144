"""One Stripe attempt ends within what the call's deadline reserves for it (``TIMEOUT_SECONDS``),
against a real HTTP server slow at both ends: it takes a second to let the connection in (its
backlog is full, so the kernel drops the first SYN and the client sends it again after 1 s) and
then a while to answer. requests' timeout is per socket operation: one figure for both let the
attempt run that figure twice."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from alphacut.billing import stripe_account
from alphacut.billing.settings import BillingSettings, StripeKeys
from alphacut.billing.stripe_account import StripeAccount
from alphacut.deadlines import deadline
from alphacut.errors import BillingUnavailable

RESERVED, CONNECT = 1.5, 1.2  # the deadline's reservation for an attempt, scaled down; its connect share
ANSWER_AFTER = 1.3  # once connected: past what is left of the attempt, inside the old per-read timeout


@pytest.fixture
def slow_stripe():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    plugs = [socket.socket(), socket.socket()]  # fill the backlog: the next connection waits on a SYN retry
    plugs[0].connect(("127.0.0.1", port))
    plugs[1].setblocking(False)
    plugs[1].connect_ex(("127.0.0.1", port))
    time.sleep(0.1)

    def serve() -> None:
        time.sleep(0.3)
        taken = [listener.accept()[0] for _ in plugs]
        connection, _ = listener.accept()
        connection.recv(65536)
        time.sleep(ANSWER_AFTER)
        body = b'{"id": "pi_1", "object": "payment_intent", "amount": 800, "currency": "usd"}'
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        try:
            connection.sendall(head.encode() + body)
        except OSError:
            pass  # the client gave up
        for one in [*taken, connection]:
            one.close()

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.join(5)
    for one in [*plugs, listener]:
        one.close()


def test_a_stripe_attempt_slow_to_connect_and_to_answer_ends_within_what_the_deadline_reserves(
    slow_stripe, monkeypatch
):
    monkeypatch.setattr(stripe_account, "TIMEOUT_SECONDS", RESERVED)
    monkeypatch.setattr(stripe_account, "CONNECT_SECONDS", CONNECT, raising=False)
    settings = BillingSettings(
        stripe_api_base=slow_stripe, environment_keys=StripeKeys(secret_key="sk_test_1")
    )
    account = StripeAccount(settings)
    started = time.monotonic()
    with deadline(time.time() + 2 * RESERVED), pytest.raises(BillingUnavailable, match="did not answer"):
        account.intent("pi_1")  # one attempt: no second one fits the deadline
    assert time.monotonic() - started < RESERVED + 0.15
