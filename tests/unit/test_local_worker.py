"""The local stack's Lambda workers keep Lambda's limits: an answer over 6 MB is an error (API
Gateway then answers 502), as on AWS; a function runs on as many instances as it is given and
throttles a call past them."""

from __future__ import annotations

from alphacut.api.responses import LAMBDA_ANSWER_LIMIT
from alphacut_dev.local.functions import FunctionWorker
from alphacut_dev.local.worker import FunctionSpec

HANDLER = """
def handler(event, context):
    return {"statusCode": 200, "body": "x" * event["size"]}
"""


def test_an_answer_over_six_megabytes_is_a_function_error(tmp_path):
    (tmp_path / "app.py").write_text(HANDLER)
    worker = FunctionWorker(
        FunctionSpec(name="Big", code_dir=tmp_path, handler="app.handler", timeout=20, memory=128)
    )
    worker.start()
    try:
        kind, result = worker.invoke({"size": LAMBDA_ANSWER_LIMIT - 1000}, "small")
        assert kind == "ok" and len(result["body"]) == LAMBDA_ANSWER_LIMIT - 1000
        kind, result = worker.invoke({"size": LAMBDA_ANSWER_LIMIT + 1}, "big")
        assert kind == "error" and result["errorType"] == "Function.ResponseSizeTooLarge"
    finally:
        worker.stop()


SLOW_HANDLER = """
import time

def handler(event, context):
    time.sleep(event["seconds"])
    return {"statusCode": 200, "body": "late"}
"""


def test_the_gateway_answers_504_at_its_timeout_while_the_function_runs_on(tmp_path, monkeypatch):
    import time

    from alphacut_dev.local import gateway

    assert gateway.GATEWAY_TIMEOUT_SECONDS == 29.0  # API Gateway's integration timeout
    monkeypatch.setattr(gateway, "GATEWAY_TIMEOUT_SECONDS", 1.0)
    (tmp_path / "app.py").write_text(SLOW_HANDLER)
    worker = FunctionWorker(
        FunctionSpec(name="Slow", code_dir=tmp_path, handler="app.handler", timeout=20, memory=128)
    )
    worker.start()
    try:
        started = time.monotonic()
        assert gateway.invoke_within(worker, {"seconds": 3}, "slow") == ("timeout", None)
        assert time.monotonic() - started < 2.5
        kind, _ = worker.invoke({"seconds": 0}, "next")  # waits for the first to finish
        assert kind == "ok" and time.monotonic() - started >= 3
        assert gateway.invoke_within(worker, {"seconds": 0}, "quick")[0] == "ok"
    finally:
        worker.stop()


def test_a_function_with_two_instances_answers_two_calls_at_once_and_throttles_a_third(tmp_path):
    import threading
    import time

    from alphacut_dev.local.functions import FunctionInstances

    (tmp_path / "app.py").write_text(SLOW_HANDLER)
    function = FunctionInstances(
        FunctionSpec(name="Pair", code_dir=tmp_path, handler="app.handler", timeout=20, memory=128), 2
    )
    function.start()
    try:
        answers: list[tuple[str, object]] = []
        calls = [
            threading.Thread(target=lambda: answers.append(function.invoke({"seconds": 2}, None)))
            for _ in range(2)
        ]
        started = time.monotonic()
        for call in calls:
            call.start()
        time.sleep(0.5)
        # both instances busy: a call that may wait 0.5 s for one is throttled, as past concurrency
        assert function.invoke({"seconds": 0}, None, wait=0.5) == ("throttled", None)
        for call in calls:
            call.join()
        assert [kind for kind, _ in answers] == ["ok", "ok"]
        assert time.monotonic() - started < 3.5  # side by side, not one after the other (4 s)
        assert function.invoke({"seconds": 0}, None, wait=0.5)[0] == "ok"  # free again
    finally:
        function.stop()
