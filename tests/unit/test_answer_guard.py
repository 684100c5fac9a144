"""An answer Lambda could not return (over 6 MB as a proxy answer) is refused with a 413 before
anything keeps or charges it; every failure becomes its answer."""

from __future__ import annotations

import json

import pytest
from alphacut.api.responses import (
    LAMBDA_ANSWER_LIMIT,
    ensure_deliverable,
    error_response,
    make_answer_guard,
    proxy_answer_bytes,
)
from alphacut.errors import InvalidOption, ResponseTooLarge
from aws_lambda_powertools.event_handler import Response


def test_binary_answers_count_as_base64():
    response = Response(status_code=200, content_type="image/png", body=b"\0" * 3000)
    assert 4000 <= proxy_answer_bytes(response) < 4500


def test_a_binary_answer_just_under_the_limit_passes_and_one_over_is_refused():
    fits = Response(
        status_code=200, content_type="image/png", body=b"\0" * (LAMBDA_ANSWER_LIMIT * 3 // 4 - 4096)
    )
    assert ensure_deliverable(fits) is fits
    too_big = Response(status_code=200, content_type="image/png", body=b"\0" * (LAMBDA_ANSWER_LIMIT * 3 // 4))
    with pytest.raises(ResponseTooLarge) as refused:
        ensure_deliverable(too_big)
    assert refused.value.field == "return" and refused.value.limit == LAMBDA_ANSWER_LIMIT
    assert "return=url" in refused.value.message


def test_json_answers_count_their_escapes():
    quoted = Response(status_code=200, content_type="application/json", body='"' * (LAMBDA_ANSWER_LIMIT // 2))
    with pytest.raises(ResponseTooLarge):
        ensure_deliverable(quoted)


def test_the_guard_turns_failures_and_oversized_answers_into_error_answers():
    guard = make_answer_guard(lambda error: error_response(error, "req-1"))

    def failing(app):
        raise InvalidOption("must be png", field="format")

    def oversized(app):
        return Response(status_code=200, content_type="image/png", body=b"\0" * LAMBDA_ANSWER_LIMIT)

    refused = guard(None, failing)
    assert refused.status_code == 400 and json.loads(refused.body)["error"]["field"] == "format"
    too_big = guard(None, oversized)
    assert too_big.status_code == 413 and json.loads(too_big.body)["error"]["code"] == "response_too_large"
