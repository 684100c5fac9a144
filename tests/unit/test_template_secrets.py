"""The stack's secrets outlive a delete or a replacement, and the key-hash secret's generation is
never edited: each holds a value that stored key hashes, signed links or customers' checks rest on."""

from __future__ import annotations

from alphacut_dev.template import load_sam


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
