"""The Segment step retries only what a retry can mend: the endpoint's answers classified, and a
model server that never answers ends the task as timed out (a real socket that accepts and holds)."""

from __future__ import annotations

import socket
import threading

import pytest
from alphacut import errors
from alphacut.aws import segment_step
from alphacut.aws.segment_step import (
    ModelRequestRejected,
    ModelServerUnavailable,
    ModelTimedOut,
    SageMakerMatting,
    endpoint_failure,
)
from alphacut.options import SubjectType
from botocore.exceptions import ClientError


def client_error(code: str, status: int, **extra) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}, **extra},
        "InvokeEndpoint",
    )


@pytest.mark.parametrize(
    "code, status",
    [
        ("ValidationError", 400),
        ("AccessDeniedException", 403),
        ("ValidationError", 413),
        ("ResourceNotFound", 404),
    ],
)
def test_a_refusal_by_the_endpoint_is_not_retried(code, status):
    assert type(endpoint_failure(client_error(code, status), "ep")) is ModelRequestRejected


@pytest.mark.parametrize(
    "code, status",
    [
        ("ThrottlingException", 400),
        ("ServiceUnavailable", 503),
        ("InternalFailure", 500),
        ("ModelNotReadyException", 429),
    ],
)
def test_throttling_and_server_errors_are_retried(code, status):
    assert type(endpoint_failure(client_error(code, status), "ep")) is ModelServerUnavailable


def test_the_model_servers_own_verdicts_keep_their_meaning():
    refused = client_error(
        "ModelError",
        424,
        OriginalStatusCode=422,
        OriginalMessage='{"code": "image_too_small", "message": "is 20 px", "field": "image"}',
    )
    assert type(endpoint_failure(refused, "ep")) is errors.ImageTooSmall
    crashed = client_error("ModelError", 424, OriginalStatusCode=500, OriginalMessage="{}")
    assert type(endpoint_failure(crashed, "ep")) is ModelServerUnavailable


def test_an_endpoint_that_never_answers_is_a_timeout_not_a_retry(monkeypatch):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    held: list[socket.socket] = []
    threading.Thread(target=lambda: held.append(listener.accept()[0]), daemon=True).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", f"http://127.0.0.1:{listener.getsockname()[1]}")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setattr(segment_step, "MODEL_READ_TIMEOUT", 1)
    try:
        with pytest.raises(ModelTimedOut):
            SageMakerMatting("ep").matte(b"\xff\xd8", SubjectType.OBJECT, None, None)
    finally:
        for connection in held:
            connection.close()
        listener.close()


def test_every_timeout_ends_inside_the_steps_limit():
    """The model read, inside the function's timeout, inside the step's 30 s."""
    from tests.unit.test_task_states import asl_states, template_function

    step_limit = asl_states()["Segment"]["TimeoutSeconds"]
    function_limit = template_function("SegmentFunction")["Timeout"]
    assert segment_step.MODEL_CONNECT_TIMEOUT + segment_step.MODEL_READ_TIMEOUT < function_limit < step_limit
