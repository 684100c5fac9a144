"""Mail on the local stack through Amazon SES's rules (moto's SES with the sandbox a new account is
in): a sign-up the deployment cannot mail is a clear 503 before anything is counted or stored, and
once the sender and the recipient are verified the link goes out."""

from __future__ import annotations

import json
import time

from tests.stack_fixtures import request_from

SENDER = "billing@shop-mail.example"
SOURCE = "127.0.0.9"


def signup_items(stack) -> list[dict]:
    """Every sign-up count and link in the usage table (a scan: a test's view, never the service's)."""
    pages = stack.client("dynamodb").get_paginator("scan").paginate(TableName=stack.physical["UsageTable"])
    return sorted(
        (
            item
            for page in pages
            for item in page["Items"]
            if item["pk"]["S"].startswith(("signups#", "signup#"))
        ),
        key=lambda item: (item["pk"]["S"], item["sk"]["S"]),
    )


class Answer:
    def __init__(self, status: int, body: bytes):
        self.status_code, self.text = status, body.decode()

    def json(self) -> dict:
        return json.loads(self.text)


def sign_up(stack, address: str) -> Answer:
    """A sign-up from a client address of its own (the suite's other sign-ups from 127.0.0.1 may
    have spent that address's asks of the hour)."""
    body = json.dumps({"email": address}).encode()
    return Answer(
        *request_from(SOURCE, "POST", f"{stack.url}/v1/signup", body, {"Content-Type": "application/json"})
    )


def fresh_container(stack) -> None:
    """A new instance of the billing function: a warm one keeps SES's "no" 30 s (its reads are one a
    second an account), so what the operator just verified is seen by the next container or later."""
    stack.set_function_env("BillingFunction", MAIL_FROM=SENDER)


def test_a_sign_up_ses_would_refuse_is_503_and_counts_nothing_and_once_verified_the_link_is_mailed(stack):
    billing = stack.workers["BillingFunction"].spec.environment
    kept = {name: billing.get(name, "") for name in ("ALPHACUT_MAIL_DIR", "MAIL_FROM")}
    ses = stack.client("sesv2")
    stack.set_function_env("BillingFunction", ALPHACUT_MAIL_DIR="", MAIL_FROM=SENDER)  # SES, as on AWS
    try:
        before = signup_items(stack)
        unverified = sign_up(stack, "owner@store-mail.example")
        assert unverified.status_code == 503 and "not verified" in unverified.json()["error"]["message"]
        ses.create_email_identity(EmailIdentity=SENDER)  # the operator verifies the sender
        fresh_container(stack)
        sandboxed = sign_up(stack, "owner@store-mail.example")
        assert sandboxed.status_code == 503 and "sandbox" in sandboxed.json()["error"]["message"]
        assert signup_items(stack) == before  # neither refusal counted an ask nor stored a link
        ses.create_email_identity(EmailIdentity="store-mail.example")  # a recipient the sandbox mails
        fresh_container(stack)
        sent = sign_up(stack, "owner@store-mail.example")
        assert sent.status_code == 202, sent.text
        assert signup_items(stack) != before
    finally:
        stack.set_function_env("BillingFunction", **kept)


def after_ses_rate() -> None:
    """A second since any other send: SES takes 1 message a second (the local SES too)."""
    time.sleep(1.05)


def counts_and_links(stack) -> dict[tuple[str, str], str]:
    """Each sign-up count (a count of 0 is none) and link, by its key."""
    found = {}
    for item in signup_items(stack):
        value = item.get("count", {}).get("N", "link")
        if value != "0":
            found[(item["pk"]["S"], item["sk"]["S"])] = value
    return found


def sign_up_from(stack, source: str, address: str) -> tuple[int, str, dict]:
    """A sign-up from the client address ``source``: the status, its Retry-After, its body."""
    import http.client

    connection = http.client.HTTPConnection(stack.host, stack.port, timeout=30, source_address=(source, 0))
    try:
        body = json.dumps({"email": address})
        connection.request("POST", "/v1/signup", body=body, headers={"Content-Type": "application/json"})
        answer = connection.getresponse()
        return answer.status, answer.getheader("Retry-After") or "", json.loads(answer.read() or b"{}")
    finally:
        connection.close()


def test_a_sign_up_while_ses_throttles_answers_503_and_counts_nothing(stack):
    billing = stack.workers["BillingFunction"].spec.environment
    kept = {name: billing.get(name, "") for name in ("ALPHACUT_MAIL_DIR", "MAIL_FROM")}
    ses = stack.client("sesv2")
    rules = stack.aws_rules
    for identity in (SENDER, "store-mail.example"):
        ses.create_email_identity(EmailIdentity=identity)
    stack.set_function_env("BillingFunction", ALPHACUT_MAIL_DIR="", MAIL_FROM=SENDER)  # SES, as on AWS
    try:
        rules.ses_daily_quota = len(rules._ses_last_day())  # the day's quota spent
        before = counts_and_links(stack)
        status, retry_after, body = sign_up_from(stack, "127.0.0.11", "throttled@store-mail.example")
        assert status == 503 and body["error"]["code"] == "service_busy", body
        assert retry_after == "600" and "daily quota" in body["error"]["message"]
        assert counts_and_links(stack) == before  # its asks given back, no link kept
        rules.ses_daily_quota = None  # a new day's quota
        after_ses_rate()
        status, _, body = sign_up_from(stack, "127.0.0.11", "throttled@store-mail.example")
        assert status == 202, body
        assert counts_and_links(stack) != before
    finally:
        rules.ses_daily_quota = None
        stack.set_function_env("BillingFunction", **kept)


def test_a_bounce_suppresses_the_address_for_sign_up_before_anything_is_counted(stack):
    billing = stack.workers["BillingFunction"].spec.environment
    kept = {name: billing.get(name, "") for name in ("ALPHACUT_MAIL_DIR", "MAIL_FROM")}
    ses = stack.client("sesv2")
    for identity in (SENDER, "store-mail.example"):
        ses.create_email_identity(EmailIdentity=identity)
    stack.set_function_env("BillingFunction", ALPHACUT_MAIL_DIR="", MAIL_FROM=SENDER)  # SES, as on AWS
    address = "bounces@store-mail.example"
    try:
        after_ses_rate()
        status, _, body = sign_up_from(stack, "127.0.0.12", address)
        assert status == 202, body  # sent through the stack's configuration set
        assert stack.aws_rules.ses_feedback(address, "BOUNCE")  # its server refused it for good
        before = counts_and_links(stack)
        status, _, body = sign_up_from(stack, "127.0.0.12", address)
        assert status == 400 and body["error"]["field"] == "email" and "bounced" in body["error"]["message"]
        assert counts_and_links(stack) == before  # refused before anything was counted or mailed
        after_ses_rate()
        status, _, body = sign_up_from(stack, "127.0.0.12", "another@store-mail.example")
        assert status == 202, body  # another address of the domain is mailed as before
    finally:
        stack.set_function_env("BillingFunction", **kept)
