"""A process that plays one Lambda instance of the cutout function: the real handler (its own
models, its own AWS clients), calls one at a time, for tests/api/test_credits_in_parallel.py.

Usage::

    multiprocessing.get_context("spawn").Process(
        target=make_calls, args=(50, key_id, photo, "worker-1", 90, ready, start, results)
    )
"""

from __future__ import annotations

import os


def make_calls(count, key_id, photo, prefix, hold_seconds, ready, start, results) -> None:
    os.environ["CREDIT_HOLD_SECONDS"] = str(hold_seconds)
    from alphacut.api import app, services
    from alphacut.settings import ServiceSettings

    from tests.api.conftest import CREDITS_PLAN, KEY_PLANS, LambdaContext, header, rest_event

    KEY_PLANS[key_id] = CREDITS_PLAN  # this process's own: the authorizer let the key in on it

    app.metrics.namespace, app.metrics.service = "Alphacut", "alphacut"
    services.configure(ServiceSettings.from_env())
    handler = app.make_handler()
    services.pipeline().warm_up(("isnet",))
    ready.put(prefix)
    start.wait()
    for number in range(count):
        event = rest_event(
            "POST", "/v1/cutout", body=photo, headers={"Content-Type": "image/png"}, key_id=key_id
        )
        event["requestContext"]["requestId"] = f"{prefix}-{number}"
        answer = handler(event, LambdaContext())
        results.put((prefix, answer["statusCode"], header(answer, "X-Alphacut-Charge")))
