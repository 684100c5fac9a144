"""The local SES holds sends to the quotas its GetAccount reports, as SES does: 1 message a second
and 200 in any 24 hours for a new account, past either ``ThrottlingException`` ("Maximum sending
rate exceeded", "Daily message quota exceeded"); a paused account refuses every send."""

from __future__ import annotations

import boto3
import pytest
from alphacut_dev.local.aws_rules import AwsRules
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

SENDER, TO = "billing@shop.example", "owner@shop.example"


@pytest.fixture
def ses(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    now = [1_900_000_000.0]
    rules = AwsRules(clock=lambda: now[0])
    with mock_aws():
        rules.apply()
        try:
            client = boto3.client(
                "sesv2",
                region_name="us-east-1",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
                config=Config(retries={"total_max_attempts": 1}),  # each refusal seen
            )
            for identity in (SENDER, TO):
                client.create_email_identity(EmailIdentity=identity)
            yield client, rules, now
        finally:
            rules.restore()


def send(client) -> str:
    try:
        client.send_email(
            FromEmailAddress=SENDER,
            Destination={"ToAddresses": [TO]},
            Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "t"}}}},
        )
    except ClientError as error:
        return f"{error.response['Error']['Code']}: {error.response['Error']['Message']}"
    return "sent"


def test_the_local_ses_holds_sends_to_the_rate_and_daily_quota_its_account_reports(ses):
    client, _, now = ses
    quota = client.get_account()["SendQuota"]
    assert quota["MaxSendRate"] == 1 and quota["Max24HourSend"] == 200  # a new account's, in the sandbox
    assert [send(client), send(client)] == ["sent", "ThrottlingException: Maximum sending rate exceeded."]
    for _ in range(199):
        now[0] += 1.0
        assert send(client) == "sent"
    now[0] += 1.0
    assert send(client) == "ThrottlingException: Daily message quota exceeded."
    assert client.get_account()["SendQuota"]["SentLast24Hours"] == 200
    now[0] += 86400 - 199  # the first message's 24 hours are over
    assert send(client) == "sent"


def test_a_paused_ses_account_refuses_every_send_and_says_so(ses):
    client, rules, _ = ses
    rules.ses_sending_paused = True
    assert client.get_account()["SendingEnabled"] is False
    assert send(client).startswith("SendingPausedException")


def test_a_hard_bounce_lists_the_address_where_its_configuration_set_suppresses_bounces(ses):
    client, rules, now = ses
    rules.ses_sandbox = False  # production access: any recipient
    client.create_configuration_set(
        ConfigurationSetName="mail", SuppressionOptions={"SuppressedReasons": ["BOUNCE"]}
    )
    for name in ("mail", ""):
        now[0] += 1.0
        client.send_email(
            FromEmailAddress=SENDER,
            Destination={"ToAddresses": [TO if name else "other@shop.example"]},
            Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "t"}}}},
            **({"ConfigurationSetName": name} if name else {}),
        )
    assert not rules.ses_feedback(TO, "COMPLAINT")  # not a reason this configuration set suppresses
    with pytest.raises(ClientError) as unlisted:
        client.get_suppressed_destination(EmailAddress=TO)
    assert unlisted.value.response["Error"]["Code"] == "NotFoundException"
    assert rules.ses_feedback(TO, "BOUNCE") and not rules.ses_feedback("other@shop.example", "BOUNCE")
    listed = client.get_suppressed_destination(EmailAddress=TO)["SuppressedDestination"]
    assert listed["EmailAddress"] == TO and listed["Reason"] == "BOUNCE"
