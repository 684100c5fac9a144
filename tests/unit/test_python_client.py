"""The Python client's sending rules, with a scripted session in place of the network."""

import json

import pytest
import requests
from alphacut_client import ApiError, Client


class ScriptedSession:
    """Answers each request with the next scripted (status, body, headers), or raises it."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.sent: list[dict] = []

    def prepare_request(self, request):
        return request.prepare()

    def send(self, prepared, timeout=None):
        self.sent.append(
            {
                "method": prepared.method,
                "url": prepared.url,
                "headers": dict(prepared.headers),
                "body": prepared.body,
            }
        )
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        status, body, extra = answer
        response = requests.Response()
        response.status_code, response._content = status, json.dumps(body).encode()
        response.headers.update({"Content-Type": "application/json", **extra})
        return response


OK = (
    200,
    {
        "request_id": "r",
        "width": 1,
        "height": 1,
        "found": True,
        "bbox": None,
        "image": None,
        "mask": {"content_type": "image/png", "base64": "AAAA"},
        "charge": True,
        "remain": 5,
    },
    {},
)
THROTTLED = (
    429,
    {"message": "Too Many Requests", "error": {"code": "rate_limited", "message": "slow down"}},
    {"Retry-After": "3"},
)
UNAVAILABLE = (503, {"message": "Service Unavailable"}, {})
IN_PROGRESS = (409, {"error": {"code": "request_in_progress", "message": "still running"}}, {})


def client_with(*answers):
    sleeps: list[float] = []
    session = ScriptedSession(*answers)
    return (
        Client("http://api.test/", "key", session=session, sleep=sleeps.append, backoff=0.5),
        session,
        sleeps,
    )


def test_429_and_5xx_are_retried_with_one_idempotency_key_and_retry_after_is_honoured():
    client, session, sleeps = client_with(
        THROTTLED, UNAVAILABLE, requests.ConnectionError("reset"), IN_PROGRESS, OK
    )
    result = client.cutout(b"jpeg", output="mask")
    assert result.mask == b"\x00\x00\x00" and result.charge and result.remain == 5
    keys = {sent["headers"]["Idempotency-Key"] for sent in session.sent}
    assert len(session.sent) == 5 and len(keys) == 1  # every retry is the same request to the API
    assert len({sent["body"] for sent in session.sent}) == 1  # byte for byte: the multipart boundary too
    assert sleeps[0] >= 3 and all(s <= 30 for s in sleeps)  # Retry-After first, then jittered backoff


def test_two_calls_get_two_idempotency_keys():
    client, session, _ = client_with(OK, OK)
    client.cutout(b"a")
    client.cutout(b"b")
    assert session.sent[0]["headers"]["Idempotency-Key"] != session.sent[1]["headers"]["Idempotency-Key"]


def test_a_client_error_is_raised_at_once_with_code_field_and_limit():
    refused = (
        400,
        {
            "request_id": "r1",
            "error": {
                "code": "invalid_option",
                "message": "format: must be png",
                "field": "format",
                "limit": ["png"],
            },
        },
        {},
    )
    client, session, sleeps = client_with(refused)
    with pytest.raises(ApiError) as error:
        client.cutout(b"jpeg", format="gif")
    assert (error.value.status, error.value.code, error.value.field, error.value.limit) == (
        400,
        "invalid_option",
        "format",
        ["png"],
    )
    assert error.value.request_id == "r1" and len(session.sent) == 1 and sleeps == []


def test_retries_end_with_the_last_error():
    client, session, sleeps = client_with(*[UNAVAILABLE] * 3)
    client.retries = 2
    with pytest.raises(ApiError) as error:
        client.usage()
    assert error.value.status == 503 and len(session.sent) == 3 and len(sleeps) == 2


def test_backoff_doubles_up_to_the_ceiling_with_full_jitter():
    client = Client("http://x", "k", backoff=1.0, max_backoff=8.0)
    for attempt, ceiling in ((1, 1.0), (2, 2.0), (4, 8.0), (9, 8.0)):
        delays = [client.delay(attempt, None) for _ in range(200)]
        assert 0 <= min(delays) and max(delays) <= ceiling and max(delays) > ceiling / 2
    assert client.delay(1, 5.0) >= 5.0


def test_a_batch_keeps_failures_in_their_items(tmp_path):
    good, missing = tmp_path / "a.jpg", tmp_path / "gone.jpg"
    good.write_bytes(b"jpeg")
    client, _, _ = client_with(OK)
    seen = []
    items = client.batch(
        [good, missing], concurrency=1, progress=lambda done, total, item: seen.append((done, total))
    )
    assert items[0].ok and items[1].error.code == "file_error" and seen == [(1, 2), (2, 2)]


SPENT = (
    402,
    {"error": {"code": "insufficient_credits", "message": "credits: 0 left", "field": "credits", "limit": 1}},
    {},
)


def test_402_raises_insufficient_credits_at_once_and_a_credit_charge_is_a_number():
    from alphacut_client import InsufficientCredits

    client, session, sleeps = client_with(SPENT)
    with pytest.raises(InsufficientCredits) as raised:
        client.cutout(b"jpeg")
    assert raised.value.status == 402 and raised.value.limit == 1 and not raised.value.retryable
    assert len(session.sent) == 1 and sleeps == []
    status, body, headers = OK
    client, _, _ = client_with((status, {**body, "charge": 0.25, "remain": 36.75}, headers))
    result = client.cutout(b"jpeg", size="preview")
    assert (result.charge, result.remain) == (0.25, 36.75)


def test_a_batch_sends_nothing_more_once_the_credits_are_spent(tmp_path):
    paths = [tmp_path / f"{n}.jpg" for n in range(4)]
    for path in paths:
        path.write_bytes(b"jpeg")
    client, session, _ = client_with(OK, SPENT)
    items = client.batch(paths, concurrency=1)
    assert items[0].ok and all(item.error.code == "insufficient_credits" for item in items[1:])
    assert len(session.sent) == 2
