"""A key's states under races (alphacut.aws.keys.store, issue 90), against moto's DynamoDB: a
suspension and a rotation in every order of their calls, a rotation meeting a revocation's
transaction in flight, and what a rotation, a revocation and a suspension cost however often the
key rotated."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from alphacut.aws.keys.store import MAX_IN_GRACE, KeyStore
from alphacut.errors import Conflict, NotFound, http_status
from alphacut_dev.local.dynamodb_transactions import TransactionConflicts

from tests.unit.moto_table import usage_table

TABLE = "key-races-tests"
SECRET = b"a-hashing-key-of-the-stack-for-these-tests"
GRACE = 3600


@pytest.fixture
def aws(monkeypatch):
    with usage_table(monkeypatch, TABLE):
        yield


class Turns:
    """Two functions on threads, each DynamoDB call of theirs taken in turn: one call at a time, the
    thread that goes at each step is ``choices[step]`` (beyond them, the first waiting). ``trace``:
    who went at each step; ``waiting``: who could have gone."""

    def __init__(self, choices: list[int]):
        self.choices, self.trace, self.waiting = choices, [], []
        self._ready: set[int] = set()
        self._done: set[int] = set()
        self._granted: int | None = None
        self._turn = threading.Condition()

    def client(self, me: int, real: Any) -> Any:
        turns = self

        class Taken:
            exceptions = real.exceptions

            def __getattr__(self, name: str) -> Callable[..., Any]:
                def call(**request: Any) -> Any:
                    with turns._turn:
                        turns._ready.add(me)
                        turns._turn.notify_all()
                        turns._turn.wait_for(lambda: turns._granted == me)
                        turns._granted = None
                        turns._ready.discard(me)
                    return getattr(real, name)(**request)

                return call

        return Taken()

    def run(self, functions: list[Callable[[Any], Any]]) -> list[Any]:
        real = boto3.client("dynamodb")
        answers: list[Any] = [None] * len(functions)

        def thread(me: int) -> None:
            try:
                answers[me] = functions[me](self.client(me, real))
            except Exception as error:  # noqa: BLE001 (what it answered, for the test to judge)
                answers[me] = error
            finally:
                with self._turn:
                    self._done.add(me)
                    self._turn.notify_all()

        threads = [threading.Thread(target=thread, args=(n,)) for n in range(len(functions))]
        for started in threads:
            started.start()
        settled = lambda: self._granted is None and len(self._ready) + len(self._done) == len(functions)
        with self._turn:
            while True:
                self._turn.wait_for(settled)
                ready = sorted(self._ready)
                if not ready:
                    break
                step = len(self.trace)
                goes = self.choices[step] if step < len(self.choices) else ready[0]
                self.trace.append(goes)
                self.waiting.append(ready)
                self._granted = goes
                self._turn.notify_all()
        for started in threads:
            started.join()
        return answers


def every_interleaving(
    race: Callable[[], tuple[list[Callable[[Any], Any]], Callable[[list[Any]], None]]],
) -> int:
    """Run ``race()``'s functions in every order of their DynamoDB calls (each order once, found
    depth first) and check each outcome with its checker: the orders run."""
    orders, pending = 0, [[]]
    while pending:
        choices = pending.pop()
        functions, check = race()
        turns = Turns(choices)
        answers = turns.run(functions)
        check(answers)
        orders += 1
        for step in range(len(choices), len(turns.trace)):
            pending += [
                turns.trace[:step] + [other] for other in turns.waiting[step] if other != turns.trace[step]
            ]
    return orders


def test_a_suspension_covers_every_value_of_the_key_in_every_order_of_its_calls_and_a_rotations(aws):
    store = KeyStore(TABLE, SECRET)

    def race():
        made = store.create("acme-shoes", "credits")
        key_id = made.key.key_id
        before = [made.value, store.rotate(key_id, GRACE).value]  # the current one, and one in grace

        def rotate(db):
            return KeyStore(TABLE, SECRET, db=db).rotate(key_id, GRACE)

        def suspend(db):
            return KeyStore(TABLE, SECRET, db=db).suspend(key_id, "disputed")

        def check(answers):
            rotated, suspended = answers
            assert not isinstance(suspended, Exception), suspended
            assert isinstance(rotated, (Conflict, NotFound)) or rotated.value, rotated
            new = [rotated.value] if not isinstance(rotated, Exception) else []
            assert [value for value in [*before, *new] if store.find(value) is not None] == []
            store.reinstate(key_id)
            assert all(store.find(value) is not None for value in [before[-1], *new])
            again = store.rotate(key_id, GRACE)  # the key rotates as before: nothing left half done
            assert store.find(again.value) is not None and store.find([*before, *new][-1]) is not None

        return [rotate, suspend], check

    # every order of the rotation's calls (read, key, new value, old value's end) and the
    # suspension's (the key, its two values, a stub): a rotation that reads the key suspended or
    # finds it changed stops early, one whose new value a suspension ended first unlists it
    assert every_interleaving(race) == 26


def test_a_rotation_meeting_a_revocations_transaction_in_flight_answers_409_and_leaves_no_value_working(aws):
    store = KeyStore(TABLE, SECRET)
    made = store.create("acme-shoes", "credits")
    conflicts = TransactionConflicts(
        seconds=0.5
    )  # as DynamoDB: a single write to an item it holds is refused
    conflicts.apply()
    try:
        revoking = threading.Thread(target=store.revoke, args=(made.key.key_id,))
        revoking.start()
        while not conflicts._taken:  # the revocation's transaction holds the key's item
            time.sleep(0.001)
        with pytest.raises(Conflict) as refused:
            store.rotate(made.key.key_id, GRACE)
        revoking.join()
    finally:
        conflicts.restore()
    assert conflicts.conflicts == 1 and http_status(refused.value) == 409
    assert "changed meanwhile" in refused.value.message and refused.value.field == "key_id"
    assert store.get(made.key.key_id).status == "revoked" and store.find(made.value) is None


def test_a_suspension_meeting_a_revocations_transaction_in_flight_waits_for_it_and_finds_the_key_revoked(aws):
    store = KeyStore(TABLE, SECRET)
    made = store.create("acme-shoes", "credits")
    conflicts = TransactionConflicts(seconds=0.1)
    conflicts.apply()
    try:
        revoking = threading.Thread(target=store.revoke, args=(made.key.key_id,))
        revoking.start()
        while not conflicts._taken:
            time.sleep(0.001)
        with pytest.raises(NotFound):  # what a dispute's suspension of the account's keys passes over
            store.suspend(made.key.key_id, "disputed")
        revoking.join()
    finally:
        conflicts.restore()
    assert conflicts.conflicts >= 1 and store.get(made.key.key_id).status == "revoked"
    assert store.find(made.value) is None


class Counted:
    """The key store's DynamoDB client, counting the calls made through it."""

    def __init__(self):
        self.real, self.calls = boto3.client("dynamodb"), 0
        self.exceptions = self.real.exceptions

    def __getattr__(self, name):
        def counted(**request):
            self.calls += 1
            return getattr(self.real, name)(**request)

        return counted


def costs_after(rotations: int) -> dict[str, int]:
    """The DynamoDB calls of one more rotation, a suspension, a reinstatement and a revocation of a
    key rotated ``rotations`` times with a grace (each value still in its grace)."""
    now = [1_900_000_000.0]
    db = Counted()
    store = KeyStore(TABLE, SECRET, clock=lambda: now[0], db=db)
    key_id = store.create("acme-shoes", "credits").key.key_id
    for _ in range(rotations):
        store.rotate(key_id, GRACE)
        now[0] += 60
    cost = {}
    for verb, act in (
        ("rotate", lambda: store.rotate(key_id, GRACE)),
        ("suspend", lambda: store.suspend(key_id, "disputed")),
        ("reinstate", lambda: store.reinstate(key_id)),
        ("revoke", lambda: store.revoke(key_id)),
    ):
        before = db.calls
        act()
        cost[verb] = db.calls - before
    return cost


def test_a_rotation_a_suspension_and_a_revocation_cost_as_much_after_50_graced_rotations_as_after_10(aws):
    assert costs_after(50) == costs_after(10)


def test_a_key_rotated_before_graces_were_kept_keeps_its_newest_values_in_grace_and_a_revocation_ends_all(
    aws,
):
    now = [1_900_000_000.0]
    store = KeyStore(TABLE, SECRET, clock=lambda: now[0])
    made = store.create("acme-shoes", "credits")
    key_id, values = made.key.key_id, [made.value]
    for n in range(12):
        values.append(store.rotate(key_id, GRACE if n else 60).value)  # the first value's grace: a minute
        now[0] += 60
    # as the code before kept it: every value listed, each one's end on its own item only
    db = boto3.client("dynamodb")
    hashes = [store.fingerprint(value) for value in reversed(values)]
    db.update_item(
        TableName=TABLE,
        Key={"pk": {"S": f"key#{key_id}"}, "sk": {"S": "-"}},
        UpdateExpression="SET hashes = :all REMOVE graces",
        ExpressionAttributeValues={":all": {"L": [{"S": h} for h in hashes]}},
    )
    for n, value in enumerate(values[1:-1], start=1):  # rotated out at its rotation's time, for an hour
        db.update_item(
            TableName=TABLE,
            Key={"pk": {"S": f"apikey#{store.fingerprint(value)}"}, "sk": {"S": "-"}},
            UpdateExpression="SET valid_until = :until",
            ExpressionAttributeValues={":until": {"N": str(1_900_000_000 + 60 * n + GRACE)}},
        )
    working = lambda: [value for value in values if store.find(value) is not None]
    assert working() == values[1:]  # the first value's grace is over: the other twelve work
    values.append(store.rotate(key_id, GRACE).value)
    assert working() == values[-1 - MAX_IN_GRACE :]  # the newest value and 4 in grace
    values.append(store.rotate(key_id, GRACE).value)
    assert len(store.get(key_id).hashes) <= MAX_IN_GRACE + 2 and working() == values[-1 - MAX_IN_GRACE :]
    store.revoke(key_id)
    assert working() == []


def test_a_rotation_stopped_before_its_old_value_got_an_end_leaves_it_listed_and_a_revocation_ends_it(aws):
    """Passes on the code before too (it listed every value forever): it guards the new one, whose
    rotations drop values past their grace by the key's own map."""
    now = [1_900_000_000.0]
    store = KeyStore(TABLE, SECRET, clock=lambda: now[0])
    made = store.create("acme-shoes", "credits")
    key_id = made.key.key_id

    def killed(**request):  # the function stops before it writes the old value's end
        if "valid_until" in request.get("UpdateExpression", ""):
            raise RuntimeError("the function was stopped here")

    stopped = KeyStore(TABLE, SECRET, clock=lambda: now[0], db=Calling(killed))
    with pytest.raises(RuntimeError):
        stopped.rotate(key_id, 60)
    now[0] += 3 * GRACE  # long past the grace the key's map gives the old value
    store.rotate(key_id, GRACE)
    assert store.find(made.value) is not None  # it has an end only now, an hour on
    store.revoke(key_id)
    assert store.find(made.value) is None


class Calling:
    """The key store's DynamoDB client, calling ``before(**request)`` before each call."""

    def __init__(self, before):
        self.real, self.before = boto3.client("dynamodb"), before
        self.exceptions = self.real.exceptions

    def __getattr__(self, name):
        def call(**request):
            self.before(**request)
            return getattr(self.real, name)(**request)

        return call
