"""Callback signatures: what a receiver checks (alphacut.callbacks.verify), each key's own secret,
the shared one's transition, and the address and port rules of delivery."""

import pytest
from alphacut.callbacks import Signing, key_secret, legacy_key_secret, sign, verify

SECRET = b"stack-secret"
BODY = b'{"status":200,"data":{"task_id":"t","state":1}}'
MASTER = b"the-stack-key-master"  # no customer is given it
SHARED = b"the-old-shared-secret"  # customers were given it (v1)


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


@pytest.mark.parametrize(
    "timestamp, given",
    [
        ("1000000", "v2=\u00e9\u00e9"),  # non-ASCII: compare_digest would raise TypeError
        ("1000000", "v2=" + "\U0001f600" * 64),
        ("\u00b2", "v2=00"),  # a digit to isdigit, not to int
        ("\u0661\u0662", "v2=00"),
        ("9" * 400, "v2=00"),  # a number time.time() cannot be compared with
        ("1000000", "v2"),
        ("1000000", ""),
        ("", "v2=00"),
        ("1000000", "v1=" + "0" * 64),  # the shared version is not a key's signature
    ],
)
def test_a_malformed_signature_header_is_false_not_an_error(timestamp, given):
    headers = {"X-Alphacut-Timestamp": timestamp, "X-Alphacut-Key-Signature": given}
    assert verify(SECRET, BODY, headers, now=1_000_000) is False


def test_a_callback_signed_for_one_key_fails_with_another_keys_secret():
    headers = Signing(MASTER, "kaaaaaaaaaaaa").headers(BODY, now=1_000_000)
    mine, theirs = key_secret(MASTER, "kaaaaaaaaaaaa"), key_secret(MASTER, "kbbbbbbbbbbbb")
    assert mine != theirs and mine.startswith("cbk_") and MASTER.decode() not in mine
    assert headers["X-Alphacut-Key"] == "kaaaaaaaaaaaa"
    assert verify(mine.encode(), BODY, headers, now=1_000_000)
    assert not verify(theirs.encode(), BODY, headers, now=1_000_000)
    # what key B's holder signs with B's secret does not pass for A's
    forged = Signing(MASTER, "kbbbbbbbbbbbb").headers(BODY, now=1_000_000)
    assert not verify(mine.encode(), BODY, forged, now=1_000_000)


def test_the_shared_signatures_go_along_until_their_day_and_then_no_more():
    until = 1_000_000
    signing = Signing(MASTER, "kaaaaaaaaaaaa", shared=SHARED, shared_until=until)
    during = signing.headers(BODY, now=until - 1)
    old_check = during["X-Alphacut-Signature"].removeprefix("v1=")
    shared = {
        "X-Alphacut-Timestamp": during["X-Alphacut-Timestamp"],
        "X-Alphacut-Key-Signature": f"v2={old_check}",
    }
    assert during["X-Alphacut-Signature"].startswith("v1=")
    assert verify(SHARED, BODY, shared, now=until - 1)  # the old receivers' check still passes
    first = legacy_key_secret(SHARED, "kaaaaaaaaaaaa").encode()  # the cbs_ secret first handed out
    assert verify(first, BODY, during, now=until - 1)
    after = signing.headers(BODY, now=until)
    assert "X-Alphacut-Signature" not in after and not verify(first, BODY, after, now=until)
    assert verify(key_secret(MASTER, "kaaaaaaaaaaaa").encode(), BODY, after, now=until)


def test_a_holder_of_the_old_shared_secret_cannot_derive_a_keys_secret():
    headers = Signing(MASTER, "kaaaaaaaaaaaa", shared=SHARED, shared_until=0).headers(BODY, now=1_000_000)
    for derived in (key_secret(SHARED, "kaaaaaaaaaaaa"), legacy_key_secret(SHARED, "kaaaaaaaaaaaa")):
        assert not verify(derived.encode(), BODY, headers, now=1_000_000)  # past the v1 date: nothing
    assert verify(key_secret(MASTER, "kaaaaaaaaaaaa").encode(), BODY, headers, now=1_000_000)


def test_a_rotated_secret_signs_beside_the_old_one_for_its_grace_only():
    old, new = key_secret(MASTER, "kaaaaaaaaaaaa", 0), key_secret(MASTER, "kaaaaaaaaaaaa", 1)
    rotated = Signing(MASTER, "kaaaaaaaaaaaa", generation=1, previous_until=1_000_000)
    during = rotated.headers(BODY, now=999_999)
    assert during["X-Alphacut-Key-Signature"].count("v2=") == 2
    assert verify(old.encode(), BODY, during, now=999_999) and verify(new.encode(), BODY, during, now=999_999)
    after = rotated.headers(BODY, now=1_000_000)
    assert not verify(old.encode(), BODY, after, now=1_000_000) and verify(
        new.encode(), BODY, after, now=1_000_000
    )


def test_the_delivered_body_names_its_key():
    import json

    server, received = _receiver(200)
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        from alphacut.callbacks import deliver

        deliver(url, {"state": 1}, Signing(MASTER, "kaaaaaaaaaaaa"), allowed_hosts=("127.0.0.1",))
    finally:
        server.shutdown()
        server.server_close()
    assert json.loads(received[0]) == {"state": 1, "key_id": "kaaaaaaaaaaaa"}


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
                    deliver(url, {"state": 1}, Signing(MASTER, "k1"), allowed_hosts=("127.0.0.1",))
            else:
                assert (
                    deliver(url, {"state": 1}, Signing(MASTER, "k1"), allowed_hosts=("127.0.0.1",)) == status
                )
        finally:
            server.shutdown()
            server.server_close()
        assert len(received) == 1
    with pytest.raises(CallbackFailed):  # nobody listening
        deliver(url, {"state": 1}, Signing(MASTER, "k1"), allowed_hosts=("127.0.0.1",))


def test_a_callback_to_a_private_loopback_or_metadata_address_is_refused_at_submission():
    import pytest
    from alphacut.errors import UrlNotAllowed
    from alphacut.urlfetch import CALLBACK_REFUSED, check_callback_url

    for url in ("http://169.254.169.254/latest/meta-data", "http://127.0.0.1/hook", "http://10.0.0.8/h",
                "http://[::1]/h", "http://localhost/hook", "http://no-such-host.invalid/hook"):  # fmt: skip
        with pytest.raises(UrlNotAllowed) as refused:
            check_callback_url(url)
        assert refused.value.field == "callback_url", url
        assert refused.value.message == CALLBACK_REFUSED, url  # one answer: nothing of where a name points
    for url in ("ftp://example.com/hook", "http://93.184.216.34:8443/hook", "https://93.184.216.34:22/"):
        with pytest.raises(UrlNotAllowed):  # said as it is: the URL alone is wrong
            check_callback_url(url)
    check_callback_url("http://93.184.216.34/hook")  # a public address on port 80
    check_callback_url("http://127.0.0.1:9000/hook", allowed_hosts=("127.0.0.1",))  # explicitly allowed


def test_a_delivery_refused_by_the_address_rule_is_not_retried():
    import pytest
    from alphacut.callbacks import CallbackFailed, CallbackRefused, deliver

    server, received = _receiver(200)
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        with pytest.raises(CallbackRefused) as refused:  # DNS may have changed since submission
            deliver(url, {"state": 1}, Signing(MASTER, "k1"))
        assert not isinstance(refused.value, CallbackFailed) and received == []
    finally:
        server.shutdown()
        server.server_close()


class _Record:
    """An SQS record as Powertools gives it to a record handler."""

    def __init__(self, body: dict, receives: int):
        import json
        from types import SimpleNamespace

        self.body = json.dumps(body)
        self.receipt_handle = "handle-1"
        self.attributes = SimpleNamespace(approximate_receive_count=str(receives))


class _Queue:
    """Records the visibility changes a delivery asks SQS for."""

    def __init__(self):
        self.changes: list[dict] = []

    def change_message_visibility(self, **call):
        self.changes.append(call)


def test_a_queued_callback_a_retry_may_mend_comes_back_later_with_backoff():
    import pytest
    from alphacut.aws.callbacks.queue import CallbackDelivery, retry_delay
    from alphacut.callbacks import CallbackFailed

    def down(task_id, url):
        raise CallbackFailed(f"{url} answered 503")

    queue = _Queue()
    delivery = CallbackDelivery(down, queue, "queue-url")
    for receives in (1, 3):
        with pytest.raises(CallbackFailed):  # the mapping keeps the message: it comes back
            delivery.handle(_Record({"task_id": "t", "callback_url": "https://x.example/h"}, receives))
    assert [c["VisibilityTimeout"] for c in queue.changes] == [45, 180] == [retry_delay(1), retry_delay(3)]
    assert queue.changes[0]["ReceiptHandle"] == "handle-1" and queue.changes[0]["QueueUrl"] == "queue-url"
    assert retry_delay(40) == 12 * 3600  # SQS's longest visibility timeout


def test_a_queued_callback_no_retry_can_deliver_is_dropped_and_a_delivered_one_done():
    from alphacut.aws.callbacks.queue import CallbackDelivery
    from alphacut.callbacks import CallbackRefused
    from alphacut.errors import NotFound

    sent = []

    def refused(task_id, url):
        raise CallbackRefused(f"{url}: points to 10.0.0.8")

    def gone(task_id, url):
        raise NotFound("no task t")

    for send in (refused, gone, lambda task_id, url: sent.append(task_id) or 200):
        queue = _Queue()
        CallbackDelivery(send, queue, "queue-url").handle(_Record({"task_id": "t", "callback_url": "u"}, 1))
        assert queue.changes == []  # returns: the message is deleted, never tried again
    assert sent == ["t"]


def test_the_state_machine_queues_callbacks_instead_of_calling_the_receiver():
    import json

    from alphacut_dev.template import ROOT, load_sam

    states = json.loads((ROOT / "statemachine" / "task.asl.json").read_text())["States"]
    assert not any(
        s.get("Resource", "").startswith("arn:aws:states:::sqs:sendMessage") and "Callback" in json.dumps(s)
        for s in states.values()
    )
    # the last step's function queues them (alphacut.aws.tasks.end), to the callback queue
    charge = load_sam()["Resources"]["EndTaskFunction"]["Properties"]
    assert charge["Environment"]["Variables"]["CALLBACK_QUEUE_URL"] == {"Ref": "CallbackQueue"}


def test_a_key_may_have_so_many_callbacks_in_flight_and_a_finished_or_expired_one_frees_its_slot(monkeypatch):
    import pytest
    from alphacut.aws.callbacks.slots import SLOT_SECONDS, CallbackSlots
    from alphacut.errors import TooManyCallbacks

    from tests.unit.moto_table import usage_table

    now = [1_795_780_800.0]
    with usage_table(monkeypatch, "tests-usage"):
        slots = CallbackSlots("tests-usage", limit=3, clock=lambda: now[0])
        for task in ("t1", "t2", "t3"):
            slots.take("ka", task)
        with pytest.raises(TooManyCallbacks) as refused:
            slots.take("ka", "t4")
        assert refused.value.field == "callback_url" and refused.value.limit == 3
        slots.take("kb", "t5")  # another key: its own slots
        slots.give_back("ka", "t1")  # delivered
        slots.take("ka", "t4")
        now[0] += SLOT_SECONDS + 1  # a slot a killed function never gave back frees itself
        assert slots.in_flight("ka") == 0
        slots.take("ka", "t6")


def test_a_callback_gives_its_slot_back_when_delivered_dropped_or_tried_the_last_time_only():
    from alphacut.aws.callbacks.queue import MAX_RECEIVES, CallbackDelivery
    from alphacut.callbacks import CallbackFailed, CallbackRefused

    def down(task_id, url):
        raise CallbackFailed("503")

    def refused(task_id, url):
        raise CallbackRefused("points to 10.0.0.8")

    for send, receives, freed in [
        (lambda task_id, url: 200, 1, True),
        (refused, 1, True),
        (down, 1, False),
        (down, MAX_RECEIVES - 1, False),
        (down, MAX_RECEIVES, True),  # the dead-letter queue has it next
    ]:
        done = []
        delivery = CallbackDelivery(send, _Queue(), "queue-url", done.append)
        try:
            delivery.handle(_Record({"task_id": "t", "callback_url": "u"}, receives))
        except CallbackFailed:
            assert send is down
        assert done == (["t"] if freed else []), (send, receives)


def test_a_delivered_callback_whose_slot_cannot_be_given_back_is_not_sent_again():
    from alphacut.aws.callbacks.queue import CallbackDelivery

    def broken(task_id):
        raise RuntimeError("the usage table is unreachable")

    queue = _Queue()
    CallbackDelivery(lambda task_id, url: 200, queue, "queue-url", broken).handle(
        _Record({"task_id": "t", "callback_url": "u"}, 1)
    )  # returns: the message is deleted, the callback not posted twice
    assert queue.changes == []


def test_rotating_a_keys_secret_makes_a_new_one_and_keeps_the_old_for_its_grace():
    import boto3
    from alphacut.aws.callbacks.secrets import CallbackSecrets

    from tests.unit.moto_table import usage_table

    with pytest.MonkeyPatch.context() as patch, usage_table(patch, "usage"):
        boto3.client("dynamodb").put_item(
            TableName="usage", Item={"pk": {"S": "key#kaaaaaaaaaaaa"}, "sk": {"S": "-"}}
        )
        now = [1_000_000.0]
        secrets = CallbackSecrets("usage", MASTER, clock=lambda: now[0])
        first = secrets.secret("kaaaaaaaaaaaa")
        second = secrets.rotate("kaaaaaaaaaaaa", grace_seconds=3600)
        assert first != second and secrets.secret("kaaaaaaaaaaaa") == second
        signing = secrets.signing("kaaaaaaaaaaaa")
        during = signing.headers(BODY, now=now[0] + 10)
        assert verify(first.encode(), BODY, during, now=now[0] + 10)  # the old receiver still passes
        after = signing.headers(BODY, now=now[0] + 3600)
        assert not verify(first.encode(), BODY, after, now=now[0] + 3600)
        assert verify(second.encode(), BODY, after, now=now[0] + 3600)


def test_an_accounts_webhook_verifies_with_its_own_secret_and_the_owner_keys_only_while_given():
    from alphacut.callbacks import WebhookSigning, account_secret

    account = account_secret(MASTER, "k0123456789ab").encode()
    owner = key_secret(MASTER, "k0123456789ab").encode()
    assert account != owner and account.startswith(b"cba_")  # no key's secret is the account's
    with_owner = WebhookSigning(MASTER, "k0123456789ab", owner=Signing(MASTER, "k0123456789ab"))
    headers = with_owner.headers(BODY, now=1_000_000)
    assert headers["X-Alphacut-Account"] == "k0123456789ab"
    assert verify(account, BODY, headers, now=1_000_000) and verify(owner, BODY, headers, now=1_000_000)
    alone = WebhookSigning(MASTER, "k0123456789ab").headers(BODY, now=1_000_000)
    assert verify(account, BODY, alone, now=1_000_000) and not verify(owner, BODY, alone, now=1_000_000)


def test_a_rotated_account_secret_signs_beside_the_old_one_for_its_grace_only():
    from alphacut.callbacks import WebhookSigning, account_secret

    old, new = (account_secret(MASTER, "acct", generation).encode() for generation in (0, 1))
    signing = WebhookSigning(MASTER, "acct", generation=1, previous_until=2_000)
    assert verify(old, BODY, signing.headers(BODY, now=1_999), now=1_999)
    assert not verify(old, BODY, signing.headers(BODY, now=2_000), now=2_000)
    assert verify(new, BODY, signing.headers(BODY, now=2_000), now=2_000)


def test_the_revoked_status_the_secrets_read_is_the_key_stores():
    from alphacut.aws.callbacks import secrets
    from alphacut.aws.keys import store

    assert secrets.REVOKED == store.REVOKED


def test_the_low_balance_functions_last_receive_is_its_queues():
    from alphacut.billing.low_balance import LAST_RECEIVE
    from alphacut_dev.template import load_sam

    queue = load_sam()["Resources"]["LowBalanceQueue"]["Properties"]
    assert LAST_RECEIVE == queue["RedrivePolicy"]["maxReceiveCount"]
