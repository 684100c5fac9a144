"""SnapStart hooks: registered with the runtime's registry, and a restore refreshes connections and seeds."""

import random

import snapshot_restore_py
from alphacut.api import services, snapstart
from alphacut.aws import clients


def test_the_hooks_are_registered_where_the_runtime_offers_them():
    before = len(snapshot_restore_py.get_before_snapshot()), len(snapshot_restore_py.get_after_restore())
    assert snapstart.register()
    assert len(snapshot_restore_py.get_before_snapshot()) == before[0] + 1
    assert len(snapshot_restore_py.get_after_restore()) == before[1] + 1


def test_a_restore_forgets_aws_clients_and_reseeds_but_keeps_the_pipeline(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    sentinel = object()
    services._state["pipeline"] = sentinel
    services._state["task_service"] = object()
    first = clients.client("sqs")
    random.seed(7)
    snapshot_copy = random.random()
    random.seed(7)
    try:
        snapstart.after_restore()
        assert random.random() != snapshot_copy  # not the snapshot's sequence any more
        assert "task_service" not in services._state and services._state["pipeline"] is sentinel
        assert clients.client("sqs") is not first
    finally:
        services._state.pop("pipeline", None)
