"""Lifetimes AWS applies and moto does not, emulated by the local stack (``stack.expiry``: S3
lifecycle rules and DynamoDB TTL, run with a clock moved ahead): a done task answers its results
for as long as it says it is done, and a result that is gone is a 410 ``result_expired``."""

from __future__ import annotations

import base64
import time
import uuid

import requests

from tests.e2e.test_tasks import submit, wait_final

DAY = 86400


def _task_keys(stack, task_id: str) -> list[str]:
    listed = stack.client("s3").list_objects_v2(
        Bucket=stack.physical["ResultsBucket"], Prefix=f"tasks/{task_id}"
    )
    return [item["Key"] for item in listed.get("Contents", [])]


def test_a_done_task_answers_its_results_until_its_record_expires(api, stack, photo):
    task_id = submit(api, photo, output="both")
    assert wait_final(api, task_id)["state"] == 1
    stack.expiry.run(now=time.time() + 2 * DAY)  # past the one day every result used to get
    assert len(_task_keys(stack, task_id)) == 2
    data = api.get(f"/v1/tasks/{task_id}", params={"return_type": "base64"}).json()["data"]
    assert base64.b64decode(data["image"])[:4] == b"\x89PNG"
    linked = api.get(f"/v1/tasks/{task_id}").json()["data"]["image"]
    assert requests.get(linked, timeout=30).status_code == 200
    stack.expiry.run(now=time.time() + 7 * DAY + 3600)  # the record's TTL has passed
    assert api.get(f"/v1/tasks/{task_id}").status_code == 404
    stack.expiry.run(now=time.time() + 9 * DAY)
    assert _task_keys(stack, task_id) == []


def test_a_done_task_whose_result_is_gone_answers_410_result_expired(api, stack, photo):
    task_id = submit(api, photo)
    assert wait_final(api, task_id)["state"] == 1
    link = api.get(f"/v1/tasks/{task_id}").json()["data"]["image"]
    for key in _task_keys(stack, task_id):
        stack.client("s3").delete_object(Bucket=stack.physical["ResultsBucket"], Key=key)
    for return_type in ("base64", "url"):
        answer = api.get(f"/v1/tasks/{task_id}", params={"return_type": return_type})
        assert answer.status_code == 410, answer.text
        error = answer.json()["error"]
        assert error["code"] == "result_expired" and task_id in error["message"]
    followed = requests.get(link, allow_redirects=False, timeout=30)
    assert followed.status_code == 410 and followed.json()["error"]["code"] == "result_expired"


def test_a_replay_whose_stored_answer_is_gone_answers_410_result_expired(api, stack, photo):
    headers = {"Idempotency-Key": f"lifetimes-{uuid.uuid4()}", "Content-Type": "image/jpeg"}
    first = api.post("/v1/cutout", data=photo, headers=headers)
    assert first.status_code == 200
    s3 = stack.client("s3")
    bucket = stack.physical["ResultsBucket"]
    for item in s3.list_objects_v2(Bucket=bucket, Prefix="idempotency/").get("Contents", []):
        s3.delete_object(Bucket=bucket, Key=item["Key"])
    replay = api.post("/v1/cutout", data=photo, headers=headers)
    assert replay.status_code == 410 and replay.json()["error"]["code"] == "result_expired"
    assert replay.headers["X-Alphacut-Charge"] == "false"
