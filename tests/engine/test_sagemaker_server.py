"""The SageMaker inference server over real HTTP: the container contract (/ping, /invocations),
and the runtime API through a plain boto3 sagemaker-runtime client against the local stack's
emulated endpoint in front of it."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import boto3
import numpy as np
import pytest
import requests
from alphacut.options import Quality, SubjectType
from alphacut_dev.local.stack import free_port
from alphacut_dev.template import ROOT
from botocore.exceptions import ClientError
from PIL import Image


def start_server(env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """serve.py as SageMaker starts it, once its /ping answers (healthy or not)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "sagemaker" / "serve.py"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            requests.get(url + "/ping", timeout=1)
            return process, url
        except requests.RequestException:  # refused, or queued until a worker has its models
            time.sleep(0.3)
    process.kill()
    pytest.fail("model server did not start: " + (process.stdout.read() if process.stdout else ""))


@pytest.fixture(scope="module")
def model_server():
    process, url = start_server({"ALPHACUT_REQUIRE_GPU": "0"})
    assert requests.get(url + "/ping", timeout=5).status_code == 200
    yield url
    process.terminate()
    process.wait(timeout=10)


def test_a_gpu_instance_whose_models_run_on_the_cpu_answers_ping_unhealthy_with_the_reason():
    # what the template sets on a GPU instance type; here, as there with a CUDA mismatch, the models
    # can only run on the CPU, so SageMaker must never take this instance into service
    process, url = start_server({"ALPHACUT_REQUIRE_GPU": "1"})
    try:
        ping = requests.get(url + "/ping", timeout=5)
        assert ping.status_code == 503
        assert ping.json()["status"] == "unhealthy" and "CUDA" in ping.json()["reason"]
        refused = requests.post(url + "/invocations", data=b"x", timeout=5)
        assert refused.status_code == 503 and refused.json()["code"] == "gpu_unavailable"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_invocations_returns_the_pipelines_matte(model_server, photo_bytes, pipeline):
    response = requests.post(
        model_server + "/invocations",
        data=photo_bytes,
        headers={"Content-Type": "image/jpeg", "X-Amzn-SageMaker-Custom-Attributes": "type=person"},
        timeout=120,
    )
    assert response.status_code == 200 and response.headers["Content-Type"] == "image/png"
    served = np.asarray(Image.open(io.BytesIO(response.content)))
    image = pipeline.decode(photo_bytes)
    # quality=auto is what Quality.on says for a person on this engine
    default = Quality.AUTO.on(pipeline.models.engine.cheap_model, SubjectType.PERSON)
    expected = (pipeline.matte(image, SubjectType.PERSON, quality=default) * 255 + 0.5).astype(np.uint8)
    assert served.shape == expected.shape
    assert np.abs(served.astype(int) - expected).max() <= 1

    def served_matte(quality: str) -> np.ndarray:
        answer = requests.post(
            model_server + "/invocations",
            data=photo_bytes,
            timeout=120,
            headers={"X-Amzn-SageMaker-Custom-Attributes": f"type=person&quality={quality}"},
        )
        return np.asarray(Image.open(io.BytesIO(answer.content))).astype(int)

    once = (pipeline.matte(image, SubjectType.PERSON) * 255 + 0.5).astype(np.uint8)
    mirrored = (pipeline.matte(image, SubjectType.PERSON, quality=Quality.BEST) * 255 + 0.5).astype(np.uint8)
    assert np.abs(served_matte("fast") - once).max() <= 1
    assert np.abs(served_matte("best") - mirrored).max() <= 1
    assert np.abs(once.astype(int) - mirrored).max() > 1  # the mirror does change the matte


def test_runtime_api_through_boto3(model_server, photo_bytes):
    from alphacut_dev.local.endpoint import LocalEndpoint

    endpoint = LocalEndpoint(client=None, name="alphacut", async_config={})
    endpoint.start(container_url=model_server)
    try:
        client = boto3.client(
            "sagemaker-runtime",
            endpoint_url=endpoint.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        answer = client.invoke_endpoint(
            EndpointName="alphacut",
            Body=photo_bytes,
            ContentType="image/jpeg",
            CustomAttributes="type=object",
        )
        mask = Image.open(io.BytesIO(answer["Body"].read()))
        assert mask.mode == "L" and mask.size == (550, 830)
        with pytest.raises(ClientError) as error:
            client.invoke_endpoint(EndpointName="alphacut", Body=photo_bytes[:300], ContentType="image/jpeg")
        assert error.value.response["Error"]["Code"] == "ModelError"
        assert error.value.response.get("OriginalStatusCode") == 422
    finally:
        endpoint.stop()


def test_a_body_over_the_limit_or_a_bad_length_is_refused_before_reading(model_server):
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(model_server)
    for declared in (b"99999999999", b"-1", b"abc"):
        with socket.create_connection((parts.hostname, parts.port), timeout=10) as connection:
            connection.sendall(
                b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: " + declared + b"\r\n\r\n"
            )
            answer = _read_answer(connection)
        status = int(answer.split(b"\r\n")[0].split()[1])
        assert 400 <= status < 500, answer[:200]
        assert b"Content-Length" in answer.split(b"\r\n\r\n", 1)[1]  # the error names the header


def _read_answer(connection) -> bytes:
    """Status line, headers and the whole body (Content-Length of them), however it arrives."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += connection.recv(4096)
    head, body = data.split(b"\r\n\r\n", 1)
    length = int(
        next(
            line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
        )
    )
    while len(body) < length:
        body += connection.recv(4096)
    return head + b"\r\n\r\n" + body


def test_invocations_sent_all_at_once_are_each_answered(model_server):
    # SageMaker sends up to MaxConcurrentInvocationsPerInstance at once: the standard library's
    # listen queue of 5 reset connections past it (seen on an H200 at 32)
    from concurrent.futures import ThreadPoolExecutor

    buffer = io.BytesIO()
    Image.new("RGB", (320, 240), (200, 30, 30)).save(buffer, format="PNG")

    def invoke(_: int) -> int:
        answer = requests.post(
            model_server + "/invocations",
            data=buffer.getvalue(),
            headers={"Content-Type": "image/png", "X-Amzn-SageMaker-Custom-Attributes": "quality=fast"},
            timeout=300,
        )
        return answer.status_code

    with ThreadPoolExecutor(48) as pool:
        assert list(pool.map(invoke, range(48))) == [200] * 48


def test_each_worker_answers_on_the_one_port_and_one_that_dies_stops_the_server():
    # SAGEMAKER_MODEL_SERVER_WORKERS processes share the socket: with one worker stopped, the other
    # answers everything; a worker that dies takes the server (and the container) down with it
    import signal

    process, url = start_server({"ALPHACUT_REQUIRE_GPU": "0", "SAGEMAKER_MODEL_SERVER_WORKERS": "2"})
    try:
        workers = _workers_of(process.pid, count=2)
        for stopped, serving in (workers, workers[::-1]):
            os.kill(stopped, signal.SIGSTOP)
            try:
                answers = {
                    requests.get(url + "/ping", timeout=10).headers["X-Alphacut-Worker"] for _ in range(4)
                }
            finally:
                os.kill(stopped, signal.SIGCONT)
            assert answers == {str(serving)}
        os.kill(workers[0], signal.SIGKILL)
        assert process.wait(timeout=30) != 0
        assert not _alive(workers[1])
    finally:
        process.kill()
        process.wait(timeout=10)


def _workers_of(parent: int, count: int) -> list[int]:
    """The server's worker processes, once each answers /ping (its models loaded)."""
    deadline = time.time() + 120
    while time.time() < deadline:
        children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        if len(children) == count:
            return [int(pid) for pid in children]
        time.sleep(0.2)
    pytest.fail(f"the server has {children} workers, not {count}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_the_server_runs_numpys_blas_on_one_thread_per_request_thread():
    # a BLAS pool per call spun 12.5 of an H200 machine's 16 cores for one picture at a time
    check = (
        "import ctypes, importlib.util, sys\n"
        "spec = importlib.util.spec_from_file_location('serve', sys.argv[1])\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "blas = next(line.split()[-1] for line in open('/proc/self/maps') if 'openblas' in line)\n"
        "print(ctypes.CDLL(blas).scipy_openblas_get_num_threads64_())\n"
    )
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
    }
    done = subprocess.run(
        [sys.executable, "-c", check, str(ROOT / "sagemaker" / "serve.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-1] == "1"
