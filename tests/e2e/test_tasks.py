"""Async tasks end to end on the local stack: API -> S3 + DynamoDB + SQS -> dispatch -> the real
state machine executed by moto -> the model on the CPU path (Segment step) or the GPU path (Submit
step -> the emulated asynchronous endpoint -> the container's server -> SNS -> SQS -> InferenceDone
-> Compose step) -> result in S3 -> GET /v1/tasks/{id}. Every failure ends in its PicWish-style
task state."""

from __future__ import annotations

import base64
import io
import json
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import numpy as np
import pytest
import requests
from alphacut.aws.tasks.async_inference import INVOCATION_TIMEOUT_SECONDS
from alphacut.aws.tasks.table import TaskTable
from alphacut.errors import NotFound
from alphacut.task_states import FAILURE_MESSAGES, TaskState
from alphacut_dev.local.endpoint import REALTIME_PAYLOAD_LIMIT
from alphacut_dev.local.stack import STACK_NAME
from alphacut_dev.template import ROOT
from botocore.exceptions import ClientError
from PIL import Image

from tests.stack_fixtures import pinned_path

FINAL_WAIT = 90


def template_parameter(name: str):
    from alphacut_dev.template import load_sam

    return load_sam()["Parameters"][name]["Default"]


def submit(api, photo: bytes | None = None, **fields) -> str:
    files = {"image_file": ("p.jpg", photo, "image/jpeg")} if photo is not None else None
    response = (
        api.post("/v1/tasks", files=files, data=fields) if files else api.post("/v1/tasks", json=fields)
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == 200 and body["data"]["state"] == 0 and body["data"]["created_at"] > 0
    return body["data"]["task_id"]


def until(condition, seconds: float = 60) -> bool:
    """Whether ``condition()`` came to hold within ``seconds`` (looked at every 0.1 s)."""
    deadline = time.time() + seconds
    while not condition():
        if time.time() >= deadline:
            return False
        time.sleep(0.1)
    return True


def wait_final(api, task_id: str, timeout: float = FINAL_WAIT, **query) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        response = api.get(f"/v1/tasks/{task_id}", params=query)
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        if data["state"] == 1 or data["state"] < 0:
            return data
        time.sleep(0.5)
    pytest.fail(f"task {task_id} did not reach a final state in {timeout} s: {data}")


def _image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_a_task_runs_to_done_with_urls_and_base64(api, photo):
    task_id = submit(api, photo, output="both", format="webp")
    data = wait_final(api, task_id)
    assert data["state"] == 1 and data["progress"] == 100
    assert data["created_at"] <= data["processed_at"] <= data["completed_at"]
    image = _image(requests.get(data["image"], timeout=30).content)
    mask = _image(requests.get(data["mask"], timeout=30).content)
    assert image.format == "WEBP" and image.mode == "RGBA" and mask.mode == "L" and image.size == (550, 830)
    inline = api.get(f"/v1/tasks/{task_id}", params={"return_type": "base64"}).json()["data"]
    assert _image(base64.b64decode(inline["image"])).size == (550, 830)


def test_sync_waits_for_the_result(api, photo):
    response = api.post(
        "/v1/tasks",
        files={"image_file": ("p.jpg", photo, "image/jpeg")},
        data={"sync": "1", "return_type": "base64", "output": "mask"},
    )
    data = response.json()["data"]
    assert data["state"] == 1 and _image(base64.b64decode(data["mask"])).mode == "L"


def test_a_task_takes_size_roi_and_a_background_file(api, photo):
    task_id = submit(api, photo, size="preview", roi="0% 0% 100% 50%", format="auto")
    plain = wait_final(api, task_id, return_type="base64")
    image = _image(base64.b64decode(plain["image"]))
    assert plain["state"] == 1 and image.format == "PNG" and image.width * image.height <= 250_000
    assert np.asarray(image)[image.height // 2 + 1 :, :, 3].max() == 0  # nothing kept below the region
    response = api.post(
        "/v1/tasks",
        files={
            "image_file": ("p.jpg", photo, "image/jpeg"),
            "bg_image_file": ("bg.jpg", photo, "image/jpeg"),
        },
        data={"sync": "1", "return_type": "base64", "format": "auto"},
    )
    data = response.json()["data"]
    assert data["state"] == 1 and _image(base64.b64decode(data["image"])).format == "JPEG"
    # a background that is no picture is refused when submitted, as the sync route refuses it (it
    # used to become a task that failed)
    refused = api.post(
        "/v1/tasks",
        files={
            "image_file": ("p.jpg", photo, "image/jpeg"),
            "bg_image_file": ("bg.jpg", b"not a picture", "image/jpeg"),
        },
    )
    assert refused.status_code == 415 and refused.json()["error"]["field"] == "bg_image_file", refused.text


def test_a_task_with_a_preset_and_a_shadow_ends_with_its_check_and_its_verdict(api, photo):
    data = wait_final(api, submit(api, photo, preset="ebay", shadow="contact"))
    assert data["state"] == 1 and (data["width"], data["height"]) == (1600, 1600)
    assert data["check"]["preset"] == "ebay" and data["check"]["passed"], data["check"]
    assert 0 <= data["confidence"] <= 1 and isinstance(data["reasons"], list)
    assert data["check"]["unsure"] is data["unsure"]
    assert _image(requests.get(data["image"], timeout=30).content).format == "JPEG"
    plain = wait_final(api, submit(api, photo, size="preview"))
    assert plain["state"] == 1 and "check" not in plain


def test_a_task_fetches_its_background_url_and_a_dead_one_ends_in_minus_3(api, photo, image_server):
    done = wait_final(
        api,
        submit(api, photo, bg_image_url=image_server.url("photo.jpg"), format="png"),
        return_type="base64",
    )
    assert (
        done["state"] == 1 and _image(base64.b64decode(done["image"])).mode == "RGB"
    )  # opaque over the picture
    failed = wait_final(api, submit(api, photo, bg_image_url=image_server.url("missing.jpg")))
    assert failed["state"] == -3
    # one that downloads and is no picture fails as an option, never as the photo (-7): it is refused
    # before this step's model, and where the endpoint ran the model before it, it counts as unpaid
    broken = wait_final(api, submit(api, photo, bg_image_url=image_server.url("broken.png")))
    assert broken["state"] == -1 and broken["error"]["name"] == "InvalidOption", broken


def test_another_key_gets_404(api, default_key_api, photo):
    task_id = submit(api, photo)
    response = default_key_api.get(f"/v1/tasks/{task_id}")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    wait_final(api, task_id)


@pytest.mark.slow
def test_twenty_tasks_at_once_all_finish(api, photo):
    with ThreadPoolExecutor(max_workers=20) as pool:
        task_ids = list(pool.map(lambda _: submit(api, photo, output="mask"), range(20)))
    started = time.time()
    states = [wait_final(api, task_id, timeout=180) for task_id in task_ids]
    print(f"20 tasks: all final {time.time() - started:.1f} s after the last submission")
    assert [s["state"] for s in states] == [1] * 20, [(s["state"], s.get("error")) for s in states]
    masks = {requests.get(s["mask"], timeout=30).content for s in states}
    assert len(masks) == 1  # the same image gives the same mask every time


def test_corrupt_image_ends_in_minus_7(api, photo):
    data = wait_final(api, submit(api, photo[: len(photo) // 3]))
    assert data["state"] == TaskState.INVALID_IMAGE == -7 and data["progress"] == 0
    assert data["error"] == {"name": "CorruptImage", "message": FAILURE_MESSAGES[TaskState.INVALID_IMAGE]}


def test_a_task_may_choose_its_model_and_one_the_registry_lacks_ends_failed_naming_the_error(
    api, stack, photo
):
    try:
        pinned_path(stack, "gpu")  # the endpoint runs it (the model named in its custom attributes)
        assert wait_final(api, submit(api, photo, model="u2netp"))["state"] == TaskState.DONE
    finally:
        pinned_path(stack, "cpu")
    assert wait_final(api, submit(api, photo, model="u2netp"))["state"] == TaskState.DONE
    # the tasks function has no models layer: the name is checked where the task runs
    data = wait_final(api, submit(api, photo, model="birefnet"))
    assert data["state"] == TaskState.FAILED and data["error"]["name"] == "InvalidOption"


def test_unreachable_url_ends_in_minus_3(api, image_server):
    assert wait_final(api, submit(api, image_url=image_server.url("missing.jpg")))["state"] == -3
    assert wait_final(api, submit(api, image_url="http://169.254.169.254/latest/"))["state"] == -3


def test_too_large_url_ends_in_minus_5(api, image_server):
    assert wait_final(api, submit(api, image_url=image_server.url("huge.jpg")))["state"] == -5


def test_the_same_message_twice_processes_the_task_once(api, stack, photo):
    task_id = submit(api, photo)
    sqs = stack.client("sqs")
    queue = stack.physical["TaskQueue"]
    for _ in range(2):
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"task_id": task_id}))
    assert wait_final(api, task_id)["state"] == 1
    time.sleep(3)  # let the duplicates be consumed
    executions = stack.client("stepfunctions").list_executions(
        stateMachineArn=stack.physical["TaskStateMachine"]
    )
    assert [e["name"] for e in executions["executions"]].count(task_id) == 1


def test_an_s3_upload_yields_its_result(stack):
    s3 = stack.client("s3")
    bucket = stack.physical["UploadsBucket"]
    page = Image.new("RGB", (300, 200), "white")
    from PIL import ImageDraw

    ImageDraw.Draw(page).ellipse((100, 50, 200, 150), outline=(210, 20, 20), width=8)
    buffer = io.BytesIO()
    page.save(buffer, "PNG")
    s3.put_object(
        Bucket=bucket,
        Key="incoming/seals/scan 1.png",
        Body=buffer.getvalue(),
        Metadata={"type": "stamp", "format": "webp", "crop": "1"},
    )
    deadline = time.time() + FINAL_WAIT
    while time.time() < deadline:
        listed = s3.list_objects_v2(Bucket=bucket, Prefix="results/").get("Contents", [])
        if any(o["Key"] == "results/seals/scan 1.webp" for o in listed):
            break
        time.sleep(0.5)
    else:
        pytest.fail("no result under results/")
    result = _image(s3.get_object(Bucket=bucket, Key="results/seals/scan 1.webp")["Body"].read())
    assert result.format == "WEBP" and result.size == (101, 101)
    record = TaskTable(stack.physical["TasksTable"], stack.resource("dynamodb")).by_source_key(
        "incoming/seals/scan 1.png"
    )
    assert record.state is TaskState.DONE and record.options["type"] == "stamp"


def test_an_oversized_s3_upload_ends_in_minus_5_and_a_folder_marker_is_no_task(stack):
    s3 = stack.client("s3")
    bucket = stack.physical["UploadsBucket"]
    s3.put_object(Bucket=bucket, Key="incoming/big/huge.jpg", Body=b"\xff\xd8" + b"\x00" * (16 * 1024 * 1024))
    s3.put_object(Bucket=bucket, Key="incoming/new folder/", Body=b"")
    table = TaskTable(stack.physical["TasksTable"], stack.resource("dynamodb"))
    deadline, record = time.time() + FINAL_WAIT, None
    while time.time() < deadline and not (record and record.state.is_final):
        try:
            record = table.by_source_key("incoming/big/huge.jpg")
        except NotFound:  # not dispatched yet
            pass
        time.sleep(0.5)
    assert record.state is TaskState.DOWNLOAD_TOO_LARGE and record.extra["error_name"] == "ImageTooLarge"
    with pytest.raises(NotFound):
        table.by_source_key("incoming/new folder/")


def test_a_container_down_keeps_its_requests_queued_until_it_is_back(api, stack, photo):
    pinned_path(stack, "gpu")
    stack.stop_model_server()
    try:
        task_id = submit(api, photo)
        time.sleep(3)
        assert api.get(f"/v1/tasks/{task_id}").json()["data"]["state"] == TaskState.WAITING
    finally:
        stack.start_model_server_on_same_port()
    assert wait_final(api, task_id)["state"] == 1


def test_a_request_that_outlives_its_time_in_the_endpoints_queue_ends_in_minus_8(api, stack, photo):
    """No instance ever takes it (the container is down for good): the request expires after its
    RequestTTLSeconds (AWS's least, 60 s, set for this test) and the task ends timed out. The
    endpoint's clock is held and moved on (``LocalEndpoint.held_clock``, ``advance``) instead of a
    minute's wait: exactly a second short of the TTL the request is still the endpoint's and the
    task waits, however long the looking takes; past it, it ends."""
    pinned_path(stack, "gpu")
    stack.set_function_env("SubmitFunction", GPU_REQUEST_TTL_SECONDS="60")
    stack.stop_model_server()
    endpoint = stack.endpoint
    try:
        with endpoint.held_clock():  # from before the request comes: it expires at now() + 60
            task_id = submit(api, photo)
            assert until(lambda: endpoint.queue or endpoint.running), "the request never reached the endpoint"
            endpoint.advance(59)  # exactly a second short of its TTL, however long the rest takes
            time.sleep(2.0)  # ten of the endpoint's ticks
            waiting = api.get(f"/v1/tasks/{task_id}").json()["data"]
            assert waiting["state"] == TaskState.WAITING, waiting
            assert endpoint.queue or endpoint.running, "expired a second early"
            endpoint.advance(1.5)
            data = wait_final(api, task_id, timeout=60)
        assert data["state"] == TaskState.TIMED_OUT == -8 and data["error"]["name"] == "ModelTimedOut"
    finally:
        stack.start_model_server_on_same_port()
        stack.set_function_env("SubmitFunction", GPU_REQUEST_TTL_SECONDS="21600")


def test_a_model_server_that_never_answers_ends_in_minus_8(api, stack, photo):
    """The container is replaced by one that accepts and never answers: the endpoint's
    InvocationTimeoutSeconds (30 s, the -8 rule) ends the request, and the task is timed out.
    The endpoint's clock is held and moved on instead of half a minute's wait: a second and a
    half short of the timeout the request still runs and the task is not final, however long
    the looking takes; past it, it ends."""
    pinned_path(stack, "gpu")
    stack.stop_model_server()
    port = int(stack.model_server_url.rsplit(":", 1)[1])
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((stack.host, port))
    listener.listen(8)
    held, done = [], threading.Event()

    def hold():
        listener.settimeout(0.5)
        while not done.is_set():
            try:
                connection, _ = listener.accept()
                held.append(connection)  # accept and never answer
            except OSError:
                continue

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    endpoint = stack.endpoint
    try:
        with endpoint.held_clock():  # from before the request comes: it times out at start + 30
            task_id = submit(api, photo)
            assert until(lambda: held), "the request never reached the container"
            endpoint.advance(INVOCATION_TIMEOUT_SECONDS - 1.5)
            time.sleep(2.0)  # ten of the endpoint's ticks
            running = api.get(f"/v1/tasks/{task_id}").json()["data"]
            assert not TaskState(running["state"]).is_final, running
            assert endpoint.running, "timed out early"
            endpoint.advance(2)
            data = wait_final(api, task_id, timeout=60)
        assert data["state"] == TaskState.TIMED_OUT == -8 and data["error"]["name"] == "ModelTimedOut"
    finally:
        done.set()
        holder.join(timeout=5)
        for connection in held:
            connection.close()
        listener.close()
        stack.start_model_server_on_same_port()


def test_a_lone_task_on_a_cold_endpoint_runs_on_the_cpu_and_the_endpoint_stays_cold(api, stack, photo):
    stack.endpoint.pin(0)
    stack.endpoint.pin(None)  # cold, and scaling by its backlog again
    notified = stack.endpoint.notifications
    assert wait_final(api, submit(api, photo))["state"] == 1
    assert stack.endpoint.notifications == notified and stack.endpoint.instances == 0


def test_a_backlog_above_the_threshold_wakes_the_cold_endpoint_and_the_task_waits_for_it(api, stack, photo):
    stack.endpoint.pin(0)
    stack.endpoint.pin(None)
    notified = stack.endpoint.notifications
    stack.set_function_env("DispatchFunction", GPU_BACKLOG_THRESHOLD="0")
    try:
        task_id = submit(api, photo)
        seen, deadline = [], time.time() + FINAL_WAIT
        while time.time() < deadline:
            state = api.get(f"/v1/tasks/{task_id}").json()["data"]["state"]
            seen.append(state)
            if state == 1 or state < 0:
                break
            time.sleep(0.3)
        assert seen[-1] == 1 and TaskState.WAITING in seen  # waited while the instance started
        assert stack.endpoint.instances == 1 and stack.endpoint.notifications == notified + 1
    finally:
        default = str(template_parameter("GpuBacklogThreshold"))
        stack.set_function_env("DispatchFunction", GPU_BACKLOG_THRESHOLD=default)
        stack.endpoint.pin(None)


def test_an_input_over_the_real_time_limit_completes_through_the_async_endpoint(api, stack):
    """InvokeEndpoint refuses a request over 6 MB (what the old Segment step sent); the task
    path sends the input's S3 location instead, so every size the task API accepts works."""
    noise = np.random.default_rng(7).integers(0, 256, (1600, 1600, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, "PNG")
    big = buffer.getvalue()
    assert REALTIME_PAYLOAD_LIMIT < len(big) < 10 * 1024 * 1024
    runtime = boto3.client(
        "sagemaker-runtime", **{**stack._moto_session_args(), "endpoint_url": stack.endpoint.url}
    )
    with pytest.raises(ClientError) as refused:
        runtime.invoke_endpoint(EndpointName=stack.endpoint.name, Body=big, ContentType="image/png")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    pinned_path(stack, "gpu")
    # a catalog photo put under incoming/ (a task's upload through the API stops at Lambda's 6 MB)
    s3, bucket = stack.client("s3"), stack.physical["UploadsBucket"]
    s3.put_object(Bucket=bucket, Key="incoming/catalog/big.png", Body=big)
    table = TaskTable(stack.physical["TasksTable"], stack.resource("dynamodb"))
    deadline, record = time.time() + 120, None
    while time.time() < deadline:
        try:
            record = table.by_source_key("incoming/catalog/big.png")
        except NotFound:
            record = None
        if record is not None and record.state.is_final:
            break
        time.sleep(0.5)
    assert record is not None and record.state is TaskState.DONE, record
    assert s3.head_object(Bucket=bucket, Key="results/catalog/big.png")["ContentLength"] > 0


def _posts_to(image_server, path: str, timeout: float = 15) -> list[dict]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = [body for where, body in image_server.posts if where == path]
        if found:
            time.sleep(1)  # a second delivery, if there were one, would arrive by now
            return [body for where, body in image_server.posts if where == path]
        time.sleep(0.3)
    return []


def test_callback_is_posted_once_with_the_final_task(api, image_server, photo):
    done = submit(api, photo, callback_url=image_server.url("hooks/done"))
    failed = submit(api, photo[:300], callback_url=image_server.url("hooks/failed"))
    assert wait_final(api, done)["state"] == 1 and wait_final(api, failed)["state"] == -7
    (done_post,) = _posts_to(image_server, "/hooks/done")
    assert done_post["data"]["task_id"] == done and done_post["data"]["state"] == 1
    assert "/v1/results/" in done_post["data"]["image"]  # the API's signed link, not a presigned URL
    assert _image(requests.get(done_post["data"]["image"], timeout=30).content).size == (550, 830)
    (failed_post,) = _posts_to(image_server, "/hooks/failed")
    assert failed_post["data"]["state"] == -7 and failed_post["data"]["error"]["name"] == "CorruptImage"


@pytest.mark.slow
def test_a_burst_of_final_tasks_to_a_slow_receiver_loses_no_callback(api, stack, image_server, photo):
    """30 tasks end at once (a damaged image fails in milliseconds) and their receiver takes a
    second a callback: more than the Notify function may run at once, and more than its retries
    would once have covered. Each callback waits in the callback queue until delivered; no queue
    mapping (task, Segment, callback) is throttled on the way, so no step is dead-lettered."""
    throttled = sum(poller.throttled for poller in stack.pollers)
    paths = [f"/slow/burst-{i}-{time.time_ns()}" for i in range(30)]
    task_ids = [submit(api, photo[:300], callback_url=image_server.url(path.lstrip("/"))) for path in paths]
    assert all(wait_final(api, task_id)["state"] == -7 for task_id in task_ids)
    deadline = time.time() + 120
    while time.time() < deadline and len({where for where, _ in image_server.posts} & set(paths)) < len(
        paths
    ):
        time.sleep(1)
    delivered = [body["data"]["task_id"] for where, body in image_server.posts if where in paths]
    assert sorted(delivered) == sorted(task_ids)  # each once
    assert sum(poller.throttled for poller in stack.pollers) == throttled


def test_callbacks_are_signed_for_their_key_so_no_other_key_can_forge_them(api, stack, image_server, photo):
    import subprocess

    from alphacut.callbacks import key_secret, legacy_key_secret, verify

    from tests.stack_fixtures import cli_env

    task_id = submit(api, photo, callback_url=image_server.url("hooks/signed"))
    assert wait_final(api, task_id)["state"] == 1
    assert _posts_to(image_server, "/hooks/signed")
    ((_, headers, body),) = [post for post in image_server.raw_posts if post[0] == "/hooks/signed"]
    handed = subprocess.run(
        [str(Path(sys.executable).with_name("alphacut")), "keys", "--stack", STACK_NAME]
        + ["callback-secret", "--key", "ktestsroomy"],
        env=cli_env(stack),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()  # what the operator gives this key's customer
    secret = handed.encode()
    assert json.loads(body)["key_id"] == headers["X-Alphacut-Key"] == "ktestsroomy"  # inside what is signed
    assert verify(secret, body, headers)
    assert not verify(secret, body.replace(b'"state":1', b'"state":0'), headers)  # a forged body
    shared = (
        stack.client("secretsmanager")
        .get_secret_value(SecretId=stack.physical["CallbackSigningSecret"])["SecretString"]
        .encode()
    )
    assert handed.startswith("cbk_") and not verify(
        legacy_key_secret(shared, "klocaldefault").encode(), body, headers
    )
    # a holder of the old shared secret derives no key's secret from it (its cbs_ one goes along only
    # until SharedCallbackSignatureUntil, for receivers that have not switched yet)
    assert not verify(key_secret(shared, "ktestsroomy").encode(), body, headers)
    assert not verify(secret, body, headers, now=int(headers["X-Alphacut-Timestamp"]) + 600)  # replayed later


def test_callback_rules(api, photo):
    response = api.post(
        "/v1/tasks",
        files={"image_file": ("p.jpg", photo, "image/jpeg")},
        data={"callback_url": "ftp://example.com/hook"},
    )
    assert response.status_code == 400 and response.json()["error"]["field"] == "callback_url"
    # the metadata address, a loopback name or a port other than 80 and 443 could never be called
    # back: refused at submission instead of a task whose callback is refused and retried for hours
    refusals = [
        ("http://169.254.169.254/hook", "public"),
        ("http://127.0.0.1:6379/", "port 6379"),
        ("http://localhost/x", "public"),
        ("http://example.com:8080/x", "port 8080"),
    ]
    for target, said in refusals:
        response = api.post(
            "/v1/tasks", files={"image_file": ("p.jpg", photo, "image/jpeg")}, data={"callback_url": target}
        )
        error = response.json()["error"]
        assert response.status_code == 400 and error["code"] == "url_not_allowed", target
        assert error["field"] == "callback_url" and said in error["message"], target


def test_a_task_whose_picture_has_no_subject_is_done_and_not_charged(admin, stack):
    from tests.conftest import image_bytes
    from tests.stack_fixtures import new_key

    key_api = new_key(admin, stack)
    blank = image_bytes(Image.new("RGB", (300, 200), (255, 255, 255)), "PNG")
    task_id = submit(key_api, blank)
    assert wait_final(key_api, task_id)["state"] == 1
    time.sleep(2)  # the Finish step charges after it marks the task done
    routes = key_api.get("/v1/usage").json()["days"][-1]["routes"]
    assert routes["/v1/tasks"]["charged"] == 0
    answer = key_api.post(
        "/v1/tasks", files={"image_file": ("b.png", blank, "image/png")}, data={"sync": "1"}
    )
    assert answer.json()["data"]["state"] == 1 and answer.headers["X-Alphacut-Charge"] == "false"


@pytest.mark.parametrize("path", ["cpu", "gpu"])
def test_each_kind_of_task_takes_the_transitions_the_cost_model_counts(api, stack, image_server, photo, path):
    """Every state entered is a billed transition: counted from the execution history of a done
    task, a done one with a callback and a failed one, and held to bench_capacity's TRANSITIONS."""
    import importlib.util

    from alphacut_dev.local.account import ACCOUNT, REGION

    spec = importlib.util.spec_from_file_location("bench_capacity", ROOT / "benchmarks" / "bench_capacity.py")
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # its dataclasses look their module up
    spec.loader.exec_module(bench)
    pinned_path(stack, path)
    try:
        tasks = {
            "done": submit(api, photo),
            "done_with_callback": submit(api, photo, callback_url=image_server.url("hooks/counted")),
            "failed": submit(api, photo[:300]),
        }
        for task_id in tasks.values():
            wait_final(api, task_id)
    finally:
        stack.endpoint.pin(None)
    sfn = stack.client("stepfunctions")
    counted = {}
    for kind, task_id in tasks.items():
        arn = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{STACK_NAME}-TaskStateMachine:{task_id}"
        deadline = time.time() + 30
        while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
            assert time.time() < deadline
            time.sleep(0.2)
        events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        counted[kind] = sum(1 for e in events if e["type"].endswith("StateEntered"))
    assert counted == bench.TRANSITIONS[path]


def test_a_task_touches_up_a_tasks_result_for_nothing_and_another_keys_id_is_a_404(admin, stack, photo):
    """A done task's answer carries the ``result_id`` its matte is kept under (24 h); a task with that
    id and strokes runs no model, is charged 0 (the balance unchanged, at 0 too) and applies them; a
    key of another account gets 404 when it submits, not a failed task later."""
    from tests.integration.test_credits import balance
    from tests.stack_fixtures import credit_key, new_key

    key_api = credit_key(admin, stack, "1")  # one plain task's price: the balance ends at 0
    first = key_api.post(
        "/v1/tasks",
        files={"image_file": ("p.jpg", photo, "image/jpeg")},
        data={"sync": "1", "return_type": "base64", "output": "mask"},
    ).json()["data"]
    assert first["state"] == 1 and first["result_id"].startswith("r_"), first
    assert until(lambda: balance(key_api) == 0, 10)
    mask = np.asarray(_image(base64.b64decode(first["mask"])).convert("L"), np.float32) / 255
    rows, columns = np.nonzero(mask > 0.9)
    y, x = int(np.median(rows)), int(np.median(columns))  # inside the subject: erased
    erase, keep = (x - 30, y - 30, x + 30, y + 30), (0, 0, 60, 60)  # a corner of background: kept
    assert mask[y - 30 : y + 30, x - 30 : x + 30].mean() > 0.8 and mask[:60, :60].mean() < 0.2
    strokes = Image.new("RGBA", (mask.shape[1], mask.shape[0]), (0, 0, 0, 0))
    strokes.paste((0, 0, 0, 255), erase)
    strokes.paste((255, 255, 255, 255), keep)
    refine = io.BytesIO()
    strokes.save(refine, "PNG")

    touched = key_api.post(
        "/v1/tasks",
        files={"refine": ("strokes.png", refine.getvalue(), "image/png")},
        data={"result_id": first["result_id"], "sync": "1", "return_type": "base64", "output": "mask"},
    )

    assert touched.status_code == 200, touched.text
    data = touched.json()["data"]
    assert data["state"] == 1 and data["result_id"] == first["result_id"] and data.get("cost", 0) == 0, data
    alpha = np.asarray(_image(base64.b64decode(data["mask"])).convert("L"), np.float32) / 255
    assert alpha[y - 30 : y + 30, x - 30 : x + 30].max() <= 0.02 and alpha[:60, :60].min() >= 0.98
    assert touched.headers["X-Alphacut-Charge"] == "0" and balance(key_api) == 0
    stranger = new_key(admin, stack).post("/v1/tasks", json={"result_id": first["result_id"]})
    assert stranger.status_code == 404 and stranger.json()["error"]["field"] == "result_id", stranger.text


def test_a_keys_recent_tasks_come_back_newest_first_in_pages_and_no_other_key_reads_them(admin, stack, photo):
    import base64 as b64

    from tests.stack_fixtures import new_key

    key_api, stranger = new_key(admin, stack), new_key(admin, stack)
    sent = []
    for n, size in enumerate(("preview", "medium", "preview")):
        sent.append(submit(key_api, photo, size=size, name=f"  summer/dress-{n}.jpg "))
        time.sleep(1.1)  # created_at is in seconds: the order is the index's
    first = key_api.get("/v1/tasks/recent", params={"limit": 2})
    assert first.status_code == 200, first.text
    page = first.json()["data"]
    assert [t["task_id"] for t in page["tasks"]] == sent[:0:-1] and page["next"]
    # listed by the names the store gave them, in any browser
    assert [t["name"] for t in page["tasks"]] == ["summer/dress-2.jpg", "summer/dress-1.jpg"]
    long_name = key_api.post(
        "/v1/tasks", files={"image_file": ("p.jpg", photo, "image/jpeg")}, data={"name": "x" * 201}
    )
    assert long_name.status_code == 400 and long_name.json()["error"]["field"] == "name", long_name.text
    assert (
        page["tasks"][0]["options"]["size"] == "preview" and page["tasks"][1]["options"]["size"] == "medium"
    )
    rest = key_api.get("/v1/tasks/recent", params={"limit": 2, "cursor": page["next"]}).json()["data"]
    assert [t["task_id"] for t in rest["tasks"]] == sent[:1] and rest["next"] is None
    assert stranger.get("/v1/tasks/recent").json()["data"] == {"tasks": [], "next": None}
    # another key's cursor (its owner swapped in) is refused, never a page of the other key's tasks
    padded = page["next"] + "=" * (-len(page["next"]) % 4)
    forged = json.loads(b64.urlsafe_b64decode(padded))
    forged["listed_owner"] = stranger.key_id
    token = b64.urlsafe_b64encode(json.dumps(forged).encode()).decode().rstrip("=")
    refused = stranger.get("/v1/tasks/recent", params={"cursor": token})
    assert refused.status_code == 200 and refused.json()["data"]["tasks"] == []  # its own part: nothing
    stolen = stranger.get("/v1/tasks/recent", params={"cursor": page["next"]})
    assert stolen.status_code == 400 and stolen.json()["error"]["field"] == "cursor", stolen.text
    assert key_api.get("/v1/tasks/recent", params={"limit": 51}).json()["error"]["field"] == "limit"
    done = wait_final(key_api, sent[-1])
    listed = key_api.get("/v1/tasks/recent", params={"limit": 1}).json()["data"]["tasks"][0]
    assert (
        listed["state"] == done["state"] == 1 and requests.get(listed["image"], timeout=30).status_code == 200
    )
