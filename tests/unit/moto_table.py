"""The usage table in moto's in-process DynamoDB, with the process's AWS clients pointed at it.

Usage::

    offline_aws(monkeypatch)                     # the process's clients made for moto in-process
    with unretried_table("tests-usage") as db:   # a client whose every refusal is seen, none retried
        ...

    @pytest.fixture
    def meter(monkeypatch):
        with usage_table(monkeypatch, "tests-usage"):
            yield UsageMeter("tests-usage")
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import boto3
import pytest
from alphacut_dev.local.dynamodb_consistency import serialise_dynamodb_writes
from alphacut_dev.template import table_definition
from botocore.config import Config
from moto import mock_aws


def offline_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process's AWS clients made afresh for moto in-process: a region, dummy credentials, no
    endpoint of a running stack."""
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    from alphacut.aws import clients

    clients.client.cache_clear()


@contextmanager
def usage_table(monkeypatch: pytest.MonkeyPatch, name: str) -> Iterator[None]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    from alphacut.aws import clients

    clients.client.cache_clear()
    # DynamoDB writes an item atomically; moto in-process, under threads, does not (a conditional ADD
    # from 16 threads let 26 of a quota of 25 through once): the local stack's lock restores it
    undo = serialise_dynamodb_writes()
    try:
        with mock_aws():
            boto3.client("dynamodb").create_table(**table_definition("UsageTable", name))
            yield
    finally:
        undo()
        clients.client.cache_clear()


@contextmanager
def unretried_table(name: str) -> Iterator[object]:
    """The usage table's definition under ``name`` in moto's in-process DynamoDB, and a client that
    retries nothing (each refusal seen, none retried). The caller unsets AWS_ENDPOINT_URL."""
    with mock_aws():
        db = boto3.client(
            "dynamodb",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"total_max_attempts": 1}),
        )
        db.create_table(**table_definition("UsageTable", name))
        yield db
