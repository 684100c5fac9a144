"""The template's lifetimes against what points at them: every object outlives the record or
link that promises it (S3 lifecycle rules in template.yaml, TTLs and link lifetimes in the code)."""

from __future__ import annotations

import pytest
from alphacut.api.vendors.ailab_costume import URL_SECONDS
from alphacut.aws.kept_mattes import PREFIX as KEPT_PREFIX
from alphacut.aws.ledger.idempotency import RECORD_TTL_SECONDS
from alphacut.aws.tasks.table import TASK_TTL_SECONDS
from alphacut_dev.local.expiry import LifecycleRule, lifecycle_rules
from alphacut_dev.template import load_sam

DAY = 86400


@pytest.fixture(scope="module")
def results_rules() -> dict[str, int]:
    bucket = load_sam()["Resources"]["ResultsBucket"]["Properties"]
    rules = lifecycle_rules("results", bucket["LifecycleConfiguration"])
    return {rule.prefix: rule.days for rule in rules}


def test_every_results_rule_names_a_prefix(results_rules):
    assert "" not in results_rules, "a rule without a prefix expires every kind of object at once"
    assert set(results_rules) == {"results/", "tasks/", "idempotency/", "endpoint/"}


def test_the_endpoints_mattes_outlive_the_longest_wait_for_their_compose_step(results_rules):
    """A matte is read by the Compose step right after its notification (the Submit step's
    wait includes the whole queue time); a day is far more than that step's retries take."""
    assert results_rules["endpoint/"] * DAY >= 3600


def test_task_results_outlive_their_task_record(results_rules):
    assert results_rules["tasks/"] * DAY > TASK_TTL_SECONDS


def test_idempotency_answers_outlive_their_record(results_rules):
    assert results_rules["idempotency/"] * DAY > RECORD_TTL_SECONDS


def test_sync_results_outlive_the_longest_link_to_them(results_rules):
    assert results_rules["results/"] * DAY >= URL_SECONDS


def test_results_kept_for_a_touch_up_are_under_a_rule_that_outlives_their_24_hours(results_rules):
    from alphacut.touchup import KEEP_SECONDS

    covering = [prefix for prefix in results_rules if KEPT_PREFIX.startswith(prefix)]
    assert covering and all(results_rules[prefix] * DAY >= KEEP_SECONDS for prefix in covering)


def test_s3_expires_at_the_midnight_after_the_days_have_passed():
    rule = LifecycleRule("b", "tasks/", 1)
    written = 1_795_000_000 + 3600  # some time of day
    assert rule.expires_at(written) % DAY == 0
    assert DAY <= rule.expires_at(written) - written < 2 * DAY
    assert rule.expires_at(1_795_046_400) == 1_795_046_400 + DAY  # written at midnight: exactly a day


def test_the_ttl_deletes_what_has_expired_reading_motos_table_as_its_api_would(monkeypatch):
    import boto3
    from alphacut_dev.local.expiry import Expiry, _moto_table, expired_keys

    from tests.unit.moto_table import usage_table

    with usage_table(monkeypatch, "ttl-tests"):
        db = boto3.client("dynamodb")
        # AWS's TTL: a Number below now is expired; now itself, later, another type or none is not
        ttls = {"gone": {"N": "100"}, "now": {"N": "200"}, "kept": {"N": "300"}, "text": {"S": "100"}}
        for sk in (*ttls, "no-ttl"):
            ttl = {"expires_at": ttls[sk]} if sk in ttls else {}
            db.put_item(TableName="ttl-tests", Item={"pk": {"S": "p"}, "sk": {"S": sk}, **ttl})
        assert _moto_table(db, "ttl-tests") is not None  # read in process, not through the API
        in_process = expired_keys(db, "ttl-tests", "expires_at", 200)
        with monkeypatch.context() as through_the_api:
            through_the_api.setattr("alphacut_dev.local.expiry._moto_table", lambda client, table: None)
            assert expired_keys(db, "ttl-tests", "expires_at", 200) == in_process
        assert in_process == [{"pk": {"S": "p"}, "sk": {"S": "gone"}}]
        # an item whose TTL moved on after it was found expired stays, as on AWS
        monkeypatch.setattr(
            "alphacut_dev.local.expiry.expired_keys",
            lambda client, table, attribute, now: [*in_process, {"pk": {"S": "p"}, "sk": {"S": "kept"}}],
        )
        assert Expiry(lambda service: db, [], {"ttl-tests": "expires_at"}).run(now=200).items == 1
        left = sorted(i["sk"]["S"] for i in db.scan(TableName="ttl-tests")["Items"])
        assert left == ["kept", "no-ttl", "now", "text"]
