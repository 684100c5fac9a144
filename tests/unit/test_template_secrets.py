"""The stack's secrets outlive a delete or a replacement, and the key-hash secret's generation is
never edited: each holds a value that stored key hashes, signed links or customers' checks rest on."""

from __future__ import annotations

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


def test_a_waf_rate_below_what_waf_accepts_is_refused_before_anything_is_made():
    rule = load_sam()["Rules"]["WafRateAtLeastTen"]["Assertions"][0]["Assert"]
    refused = rule["Fn::Not"][0]["Fn::Contains"][0]
    assert refused == [str(n) for n in range(1, 10)]
