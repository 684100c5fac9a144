"""The stack's secrets as the functions read them (alphacut.aws.secrets), against moto's Secrets
Manager: kept once read, except one read before the operator put its value."""

from __future__ import annotations

import json
import uuid

import boto3
import pytest
from alphacut.aws import secrets
from alphacut.billing.settings import BillingSettings
from alphacut.errors import BillingUnavailable

from tests.unit.moto_table import usage_table


@pytest.fixture
def stripe_secret(monkeypatch):
    with usage_table(monkeypatch, "secrets-tests"):
        yield boto3.client("secretsmanager").create_secret(
            Name=f"stripe-{uuid.uuid4().hex[:6]}", SecretString="{}"
        )["ARN"]


def test_stripe_keys_put_after_a_warm_container_read_them_empty_are_used_a_minute_later(
    stripe_secret, monkeypatch
):
    # the template makes StripeKeys "{}"; the operator puts the keys after the deploy
    clock = [1000.0]
    monkeypatch.setattr(secrets, "now", lambda: clock[0])
    settings = BillingSettings(stripe_secret_arn=stripe_secret)
    with pytest.raises(BillingUnavailable):
        _ = settings.stripe_keys
    keys = {"secret_key": "sk_test_1", "webhook_secret": "whsec_1", "publishable_key": "pk_test_1"}
    boto3.client("secretsmanager").put_secret_value(SecretId=stripe_secret, SecretString=json.dumps(keys))
    clock[0] += 30
    with pytest.raises(BillingUnavailable):  # within the minute: no read per call of a stranger's
        _ = settings.stripe_keys
    clock[0] += 31
    assert settings.stripe_keys.secret_key == "sk_test_1"


def test_a_secret_with_a_value_is_read_once(stripe_secret, monkeypatch):
    boto3.client("secretsmanager").put_secret_value(SecretId=stripe_secret, SecretString="a-signing-key")
    assert secrets.secret_bytes(stripe_secret) == b"a-signing-key"
    boto3.client("secretsmanager").put_secret_value(SecretId=stripe_secret, SecretString="changed")
    monkeypatch.setattr(secrets, "now", lambda: 10**9)
    assert secrets.secret_bytes(stripe_secret) == b"a-signing-key"
