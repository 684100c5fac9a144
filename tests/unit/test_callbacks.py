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
