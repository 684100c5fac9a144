"""The Python client's sending rules, with a scripted session in place of the network."""

import json

import pytest
import requests
from alphacut_client import ApiError, Client
from alphacut_client.pacing import Pacer


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


class FakeTime:
    """A clock that moves only when something sleeps; the sleeps are kept."""

    def __init__(self):
        self.now, self.sleeps = 0.0, []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def wall(self) -> float:
        return 1_800_000_000.0 + self.now


def client_with(*answers, **settings):
    time = FakeTime()
    session = ScriptedSession(*answers)
    pacer = Pacer(time.clock, time.sleep, time.wall)
    client = Client(
        "http://api.test/", "key", session=session, sleep=time.sleep, pacer=pacer, backoff=0.5, **settings
    )
    return client, session, time.sleeps


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


def rate_policy(q: int, w: int = 1) -> dict[str, str]:
    return {"RateLimit-Policy": f'"rate";q={q};w={w}'}


def test_the_rate_the_service_states_spaces_every_send():
    time = FakeTime()
    pacer = Pacer(time.clock, time.sleep, time.wall)
    pacer.turn()
    pacer.learn(200, rate_policy(2))
    for _ in range(4):
        pacer.turn()
    assert pacer.rate_said and time.sleeps == pytest.approx([0.525] * 4)  # w/q with a 5 % margin


def test_a_429_holds_every_worker_until_retry_after_and_an_http_date_counts_too():
    time = FakeTime()
    pacer = Pacer(time.clock, time.sleep, time.wall)
    pacer.turn()
    assert pacer.learn(429, {"Retry-After": "4"}) == 4
    pacer.turn()
    assert time.sleeps == [4]
    date = "Tue, 15 Jan 2027 08:00:10 GMT"
    holds = pacer.learn(429, {"Retry-After": date})
    assert holds == pytest.approx(
        max(0.0, __import__("email.utils").utils.parsedate_to_datetime(date).timestamp() - time.wall())
    )


def test_without_a_stated_rate_429s_widen_the_spacing_and_successes_narrow_it():
    time = FakeTime()
    pacer = Pacer(time.clock, time.sleep, time.wall)
    pacer.learn(429, {"Retry-After": "1"})
    pacer.learn(429, {"Retry-After": "1"})
    widened = pacer.spacing
    assert widened == pytest.approx(0.1) and not pacer.rate_said
    pacer.learn(200, {})
    assert pacer.spacing < widened


def test_draft_seven_fields_and_remove_bgs_spent_window_are_read():
    time = FakeTime()
    pacer = Pacer(time.clock, time.sleep, time.wall)
    pacer.learn(200, {"RateLimit-Policy": "10;w=1"})
    assert pacer.spacing == pytest.approx(0.105)
    assert pacer.learn(200, {"RateLimit-Remaining": "0", "RateLimit-Reset": "7"}) == 7
    reset = str(int(time.wall() + 30))
    assert pacer.learn(200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}) == pytest.approx(30)
    assert pacer.learn(200, {"RateLimit": '"day";r=0;t=90'}) == 90


def test_the_first_request_goes_alone_and_its_answer_opens_the_gate():
    import threading

    time = FakeTime()
    pacer = Pacer(time.clock, time.sleep, time.wall)
    pacer.turn()  # the first, out alone
    order: list[str] = []
    second = threading.Thread(target=lambda: (pacer.turn(), order.append("second")))
    second.start()
    second.join(timeout=0.3)
    assert order == []  # still waiting for the first answer
    order.append("answer")
    pacer.learn(200, rate_policy(1))
    second.join(timeout=5)
    assert order == ["answer", "second"]


def test_limits_do_not_spend_an_items_retries():
    client, session, sleeps = client_with(*[THROTTLED] * 8, OK, retries=1)
    assert client.cutout(b"jpeg").charge
    assert len(session.sent) == 9 and len(sleeps) == 8 and min(sleeps) >= 3  # held the pace; no retry spent


def test_a_limit_that_lasts_past_the_deadline_fails_with_the_limits_own_error():
    day = (429, {"error": {"code": "quota_exceeded", "message": "spent"}}, {"Retry-After": "36000"})
    client, session, _ = client_with(day, max_limit_wait=60)
    with pytest.raises(ApiError) as error:
        client.cutout(b"jpeg")
    assert error.value.code == "quota_exceeded" and len(session.sent) == 1


def test_a_batch_item_not_sent_by_the_deadline_says_so(tmp_path):
    paths = [tmp_path / f"{n}.jpg" for n in range(3)]
    for path in paths:
        path.write_bytes(b"jpeg")
    slow = {"RateLimit-Policy": '"rate";q=1;w=10'}  # one call every 10.5 s
    client, session, _ = client_with((200, OK[1], slow), (200, OK[1], slow), OK)
    items = client.batch(paths, concurrency=1, deadline=15)
    assert [item.ok for item in items] == [True, True, False]
    assert items[2].error.code == "deadline_exceeded" and len(session.sent) == 2


def test_the_service_states_each_plans_limits_in_the_fields_the_client_reads():
    from alphacut.api.limit_fields import limit_fields, rate_window
    from alphacut.aws.ledger.plans import Plan

    midnight_minus_hour = 1_800_057_600 - 3600  # 2027-01-15 23:00 UTC
    quota_plan = Plan("p", "bulk", quota=500, rate_limit=2.5, burst=5)
    fields = limit_fields(quota_plan, 12, midnight_minus_hour)
    assert fields == {
        "RateLimit-Policy": '"rate";q=5;w=2, "day";q=500;w=86400',
        "RateLimit": '"day";r=12;t=3600',
    }
    assert rate_window(0.4) == (2, 5) and rate_window(10) == (10, 1) and rate_window(0.3333) == (1, 4)
    credits = limit_fields(Plan("c", "credits", quota=None, rate_limit=1.0, credit_based=True), 40, 0)
    assert credits == {"RateLimit-Policy": '"rate";q=1;w=1'}  # a balance is not a window
    time = FakeTime()
    pacer = Pacer(time.clock, time.sleep, time.wall)
    pacer.learn(200, fields)
    assert pacer.spacing == pytest.approx(0.4 * 1.05)


def test_at_a_stated_rate_faster_than_a_second_a_whole_second_retry_after_holds_one_slot():
    time = FakeTime()
    pacer = Pacer(time.clock, time.sleep, time.wall)
    pacer.learn(200, rate_policy(10))
    held = pacer.learn(429, {"Retry-After": "1", **rate_policy(10)})
    assert held == pytest.approx(0.105 * 1.1) and pacer.spacing == pytest.approx(0.105 * 1.1)
    for _ in range(20):  # successes bring the pace back toward the stated rate
        pacer.learn(200, rate_policy(10))
    assert pacer.spacing < 0.105 * 1.1
    assert pacer.learn(429, {"Retry-After": "30", **rate_policy(10)}) == 30  # a longer wait is held in full
