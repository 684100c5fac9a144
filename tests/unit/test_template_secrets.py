"""The stack's secrets outlive a delete or a replacement, and the key-hash secret's generation is
never edited: each holds a value that stored key hashes, signed links or customers' checks rest on."""

from __future__ import annotations

import re

import botocore.session
import pytest
from alphacut_dev.template import TEMPLATE, load_sam


def test_every_secret_is_kept_when_the_stack_is_deleted_or_the_secret_replaced():
    resources = load_sam()["Resources"]
    secrets = {name: r for name, r in resources.items() if r["Type"] == "AWS::SecretsManager::Secret"}
    assert {
        "KeyHashSecret",
        "KeyCallbackSecret",
        "CallbackSigningSecret",
        "ResultLinkSecret",
        "StripeKeys",
    } <= set(secrets)
    for name, resource in secrets.items():
        assert resource.get("DeletionPolicy") == "Retain", name
        assert resource.get("UpdateReplacePolicy") == "Retain", name


def test_the_key_hash_secrets_generation_stays_as_every_stored_key_was_hashed_with():
    # an edit here makes CloudFormation generate a new value: every apikey#<hmac> item stops matching
    generation = load_sam()["Resources"]["KeyHashSecret"]["Properties"]["GenerateSecretString"]
    assert generation == {"PasswordLength": 48, "ExcludePunctuation": True}


def test_access_logs_name_the_key_the_authorizer_let_in_and_arns_follow_the_partition():
    # the service's keys are not API Gateway keys: $context.identity.apiKeyId is always empty
    text = TEMPLATE.read_text()
    assert "$context.identity.apiKeyId" not in text
    assert text.count('"keyId":"$context.authorizer.principalId"') == 2  # both APIs' access logs
    assert "arn:aws:" not in text  # GovCloud and China regions have their own partitions


@pytest.mark.parametrize("parameter", ["WebAclRateLimit", "WebAclResultLinkRateLimit"])
def test_a_waf_rate_outside_what_waf_accepts_is_refused_before_anything_is_made(parameter):
    """Read as a number: "05" is 5, which WAF refuses (its Limit's range from botocore's model), so
    CloudFormation must refuse it at the parameter; any value it lets through, WAF takes. 0 turns
    the web ACL off, which only WebAclRateLimit does."""
    spec = load_sam()["Parameters"][parameter]
    limit = botocore.session.get_session().get_service_model("wafv2").shape_for("RateLimit").metadata
    off = parameter == "WebAclRateLimit"
    assert spec["Type"] == "String" and (spec["Default"] == "0") == off
    assert re.fullmatch(spec["AllowedPattern"], spec["Default"])
    for text in (
        "0",
        "05",
        "5",
        "9",
        "10",
        "010",
        "99",
        "100",
        "2000000000",
        "2000000001",
        "1e2",
        "10.0",
        " 10",
    ):
        accepted = re.fullmatch(spec["AllowedPattern"], text) is not None
        whole = text.isdigit() and str(int(text)) == text
        wanted = whole and ((off and int(text) == 0) or limit["min"] <= int(text) <= limit["max"])
        assert accepted == wanted, text
