"""One deadline per call: every wait gets what is left of it."""

from __future__ import annotations

import time

import pytest
from alphacut.deadlines import (
    ANSWER_MARGIN_SECONDS,
    GATEWAY_TIMEOUT_SECONDS,
    budget,
    deadline,
    passed,
    seconds_left,
    sync_call_deadline,
)
from alphacut.errors import DeadlineExceeded, http_status


def test_without_a_deadline_a_wait_gets_its_own_limit():
    assert seconds_left() is None and budget(10.0) == 10.0 and not passed()


def test_waits_share_one_deadline_and_none_is_left_after_it():
    with deadline(time.time() + 3):
        assert budget(10.0) <= 3.0
        assert budget(1.0) == 1.0
    with deadline(time.time() - 0.1):
        assert passed()
        with pytest.raises(DeadlineExceeded) as refused:
            budget(10.0)
    assert http_status(refused.value) == 504


def test_an_inner_deadline_never_extends_an_outer_one():
    with deadline(time.time() + 2), deadline(time.time() + 60):
        assert seconds_left() <= 2


def test_a_sync_call_ends_a_margin_before_the_gateways_29_s_counted_from_its_request():
    assert GATEWAY_TIMEOUT_SECONDS == 29.0
    received = 1_795_000_000.0
    assert sync_call_deadline(int(received * 1000)) == received + 29.0 - ANSWER_MARGIN_SECONDS
    assert sync_call_deadline(None, now=received) == received + 29.0 - ANSWER_MARGIN_SECONDS


def test_a_segment_step_fetch_gets_what_is_left_of_the_steps_deadline(monkeypatch):
    from alphacut import urlfetch
    from alphacut.settings import ServiceSettings

    timeouts = []
    monkeypatch.setattr(
        urlfetch, "fetch_image", lambda url, max_bytes, timeout, *a, **k: timeouts.append(timeout)
    )
    settings = ServiceSettings(fetch_timeout=10.0)
    with deadline(time.time() + 4):
        settings.fetch("https://example.com/a.jpg", 100)
        settings.fetch("https://example.com/b.jpg", 100, field="bg_image_url")
    settings.fetch("https://example.com/c.jpg", 100)
    assert timeouts[0] <= 4 and timeouts[1] <= 4 and timeouts[2] == 10.0
