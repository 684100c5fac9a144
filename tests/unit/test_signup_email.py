"""Sign-up's address rules (``alphacut.billing.signup``): one mailbox for the variants of one inbox
(one trial between them), letters of other scripts refused, the mailed link's base never taken from
the request, and what the per-source limit counts an ask under."""

from __future__ import annotations

import hashlib

import pytest
from alphacut.api.billing import signup_base_url
from alphacut.billing.settings import BillingSettings
from alphacut.billing.signup import checked_token, signup_email, source_key
from alphacut.errors import BillingUnavailable, InvalidOption


def mailbox(value: str) -> str:
    return signup_email(value).mailbox


def test_five_spellings_of_one_gmail_inbox_are_one_mailbox():
    spellings = [
        "Some.Body@gmail.com",
        "somebody+shop@gmail.com",
        "s.o.m.e.body@googlemail.com",
        "\uff33omeBody@gmail.com",  # a fullwidth S
        "SOMEBODY@GMAIL.COM",
    ]
    assert {mailbox(s) for s in spellings} == {"somebody@gmail.com"}


def test_the_mail_goes_to_the_address_as_typed_with_its_tag_and_dots():
    assert signup_email(" Some.Body+Shop@GMail.com ").address == "some.body+shop@gmail.com"
    assert signup_email("\uff33omeBody@gmail.com").address == "somebody@gmail.com"


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("john.smith+shop@outlook.com", "john.smith@outlook.com"),  # dots count at Outlook.com
        ("john+a@hotmail.co.uk", "john@hotmail.co.uk"),
        ("john+a@live.com", "john@live.com"),
        ("john+a@msn.com", "john@msn.com"),
        ("jane+shop@me.com", "jane@icloud.com"),  # one iCloud account behind icloud.com, me.com, mac.com
        ("jane@mac.com", "jane@icloud.com"),
        ("j.ane+x@icloud.com", "j.ane@icloud.com"),
        ("pat+a@pm.me", "pat@proton.me"),  # one Proton username behind its domains
        ("pat@protonmail.com", "pat@proton.me"),
        ("kim+news@fastmail.com", "kim@fastmail.com"),
    ],
)
def test_the_providers_that_document_sub_addresses_map_their_tags_to_one_mailbox(typed, expected):
    assert mailbox(typed) == expected


@pytest.mark.parametrize(
    "typed",
    ["first.last+tag@shop.example", "first.last-tag@yahoo.com", "a.b+c@gmail.co.uk"],
)
def test_other_domains_keep_their_dots_and_tags(typed):
    """A domain's owner makes any local part it likes, so mapping its tags away would close
    nothing; Yahoo's '-' addresses hang off a base name that is not the account's."""
    assert mailbox(typed) == typed


def test_a_trailing_dot_and_an_internationalised_domain_are_the_same_mailbox():
    assert mailbox("somebody@gmail.com.") == "somebody@gmail.com"
    assert mailbox("owner@B\u00fccher.example") == "owner@xn--bcher-kva.example"
    assert mailbox("owner@xn--bcher-kva.example") == "owner@xn--bcher-kva.example"


def test_compatibility_forms_become_the_ascii_they_show():
    fullwidth = "\uff33\uff2f\uff2d\uff25\uff20\uff47\uff4d\uff41\uff49\uff4c\uff0e\uff43\uff4f\uff4d"
    assert signup_email(fullwidth).address == "some@gmail.com"


@pytest.mark.parametrize(
    "typed",
    [
        "s\u043emebody@gmail.com",  # Cyrillic o
        "s\u03bfmebody@gmail.com",  # Greek omicron
        "m\u00fcller@shop.example",
        "stra\u00dfe@shop.example",  # not folded to "strasse": refused
        "some\u200bbody@gmail.com",  # a zero-width space
        "some\u202ebody@gmail.com",  # a right-to-left override
        "\u0130nci@shop.example",  # a dotted capital I
    ],
)
def test_a_local_part_with_letters_of_other_scripts_is_refused_naming_email(typed):
    with pytest.raises(InvalidOption) as refused:
        signup_email(typed)
    assert refused.value.field == "email"


@pytest.mark.parametrize(
    "value",
    [
        None,
        5,
        True,
        [],
        {},
        "",
        "@",
        "no-at-sign",
        "two@@shop.example",
        "a@b@shop.example",
        ".dot@shop.example",
        "dot.@shop.example",
        "do..t@shop.example",
        '"quoted"@shop.example',
        "a b@shop.example",
        "owner@shop",
        "owner@-shop.example",
        "owner@shop..example",
        "owner@1.2.3.4",
        "owner@[203.0.113.9]",
        "owner@shop.example\x00",
        "\ud800@shop.example",
        "owner@\ud800.example",
        "+tag@gmail.com",  # names no mailbox
        "..@gmail.com",
        "a" * 65 + "@shop.example",
        "owner@" + "a" * 250 + ".example",
        "x" * 100_000,
    ],
)
def test_anything_else_is_refused_naming_email(value):
    with pytest.raises(InvalidOption) as refused:
        signup_email(value)
    assert refused.value.field == "email"


def test_the_keys_customer_name_is_a_hash_of_the_mailbox_never_the_address():
    email = signup_email("Some.Body+shop@gmail.com")
    assert email.customer == "signup:" + hashlib.sha256(b"somebody@gmail.com").hexdigest()[:16]
    assert "somebody" not in email.customer


@pytest.mark.parametrize("value", [None, 5, True, [], {}, "", "short", "a" * 129, "a/b" * 10, "\ud800" * 20])
def test_a_token_that_no_link_could_hold_is_refused_naming_token(value):
    with pytest.raises(InvalidOption) as refused:
        checked_token(value)
    assert refused.value.field == "token"


def test_a_tokens_own_form_is_taken():
    assert (
        checked_token("K2y-pjzjCekly_YTORo5Mb5b4TsABCDEFGHIJKLMNOPQ")
        == "K2y-pjzjCekly_YTORo5Mb5b4TsABCDEFGHIJKLMNOPQ"
    )


def test_an_ipv6_client_is_counted_by_its_64_and_an_ipv4_one_by_its_address():
    assert source_key("2001:db8:1:2:aaaa::1") == source_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert source_key("2001:db8:1:3::1") != source_key("2001:db8:1:2::1")
    assert source_key("::ffff:203.0.113.9") == source_key("203.0.113.9") == "203.0.113.9"
    assert source_key("203.0.113.9") != source_key("203.0.113.10")
    assert source_key("fe80::1%eth0") == "fe80::/64"
    assert source_key("") == source_key(None) == source_key("not an address") == "unknown"


def spoofed_event(**context) -> dict:
    return {
        "headers": {
            "Host": "evil.example",
            "X-Forwarded-Proto": "gopher",
            "X-Forwarded-Host": "evil.example",
        },
        "requestContext": {"domainName": "evil.example", "path": "/evil/v1/signup", **context},
        "path": "/v1/signup",
    }


def test_the_mailed_links_base_is_the_apis_own_url_never_the_requests_host():
    settings = BillingSettings(region="eu-west-1")
    event = spoofed_event(apiId="a1b2c3d4e5", stage="prod")
    assert signup_base_url(event, settings) == "https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/prod"
    china = BillingSettings(region="cn-north-1")
    assert signup_base_url(event, china) == "https://a1b2c3d4e5.execute-api.cn-north-1.amazonaws.com.cn/prod"
    public = BillingSettings(region="eu-west-1", public_base_url="https://api.store.example/v2/")
    assert signup_base_url(event, public) == "https://api.store.example/v2"
    local = BillingSettings(region="us-east-1", local_base_url="http://127.0.0.1:3000")
    assert signup_base_url(event, local) == "http://127.0.0.1:3000"


@pytest.mark.parametrize(
    "context",
    [
        {},
        {"stage": "prod"},
        {"apiId": "evil.example/x", "stage": "prod"},
        {"apiId": "a1b2c3d4e5", "stage": "p/x"},
    ],
)
def test_without_the_apis_own_address_a_sign_up_says_the_operator_sets_it(context):
    with pytest.raises(BillingUnavailable, match="PublicBaseUrl"):
        signup_base_url(spoofed_event(**context), BillingSettings(region="eu-west-1"))


def test_the_per_source_limit_is_a_setting():
    assert BillingSettings.from_env({}).signups_per_source_per_hour == 5
    assert BillingSettings.from_env({"SIGNUPS_PER_SOURCE_PER_HOUR": "2"}).signups_per_source_per_hour == 2


def test_the_local_stack_gives_its_functions_its_own_address_for_sign_up_links(monkeypatch):
    """``make serve`` mails links to the stack itself (on AWS: the API's own URL), whatever Host a
    request names; an operator's PUBLIC_BASE_URL is left as the template gives it."""
    from alphacut_dev.local.intrinsics import Resolver
    from alphacut_dev.local.stack import LocalStack

    stack = LocalStack(port=3123)
    monkeypatch.setattr(stack.iam, "session_env", lambda role: {})
    billing = {
        "Properties": {
            "Code": {},
            "Handler": "app.handler",
            "Role": {"Fn::GetAtt": ["BillingFunctionRole", "Arn"]},
            "Environment": {"Variables": {"PUBLIC_BASE_URL": ""}},
        }
    }
    spec = stack._function_spec("BillingFunction", billing, {}, Resolver({}, {}))
    assert spec.environment["ALPHACUT_LOCAL_BASE_URL"] == "http://127.0.0.1:3123"
    assert spec.environment["PUBLIC_BASE_URL"] == ""
    settings = BillingSettings.from_env(spec.environment)
    assert (
        signup_base_url(spoofed_event(apiId="a1b2c3d4e5", stage="prod"), settings) == "http://127.0.0.1:3123"
    )
