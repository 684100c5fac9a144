"""What AWS deletes on its own and moto never does: S3 lifecycle expiration and DynamoDB TTL.

S3 expires an object ``ExpirationInDays`` after it was written, rounded up to the next midnight
UTC (S3's own rule); DynamoDB deletes an item some time after its TTL attribute has passed. Both
run here with any clock: tests move it days ahead on demand, and the stack runs them in the
background with the real one, as AWS does.

Usage::

    expiry = Expiry(stack.client, [LifecycleRule("bucket", "tasks/", 8)], {"table": "expires_at"})
    expiry.run(now=time.time() + 2 * 86400)     # -> Expired(objects=[(bucket, key)...], items=3)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from alphacut_dev.local.account import ACCOUNT
from alphacut_dev.local.loops import BackgroundLoop

DAY = 86400
BACKGROUND_SECONDS = 60.0


@dataclass(frozen=True)
class LifecycleRule:
    bucket: str
    prefix: str  # "" : every object
    days: int

    def expires_at(self, written: float) -> int:
        """S3's expiry time: ``days`` after the write, rounded up to midnight UTC."""
        moment = written + self.days * DAY
        return int(-(-moment // DAY) * DAY)


def lifecycle_rules(bucket: str, configuration: dict[str, Any] | None) -> list[LifecycleRule]:
    """The expiration rules of a (resolved) CloudFormation ``LifecycleConfiguration``."""
    rules = []
    for rule in (configuration or {}).get("Rules", []):
        if rule.get("Status") != "Enabled" or "ExpirationInDays" not in rule:
            continue
        prefix = rule.get("Prefix") or (rule.get("Filter") or {}).get("Prefix") or ""
        rules.append(LifecycleRule(bucket, prefix, int(rule["ExpirationInDays"])))
    return rules


@dataclass
class Expired:
    objects: list[tuple[str, str]] = field(default_factory=list)
    items: int = 0


class Expiry:
    def __init__(
        self,
        client: Callable[[str], Any],
        rules: list[LifecycleRule],
        ttl_attributes: dict[str, str],
    ):
        self.client, self.rules, self.ttl_attributes = client, rules, ttl_attributes

    def run(self, now: float | None = None) -> Expired:
        """Delete what AWS would have deleted by ``now`` (default: the real clock)."""
        now = time.time() if now is None else now
        expired = Expired()
        s3 = self.client("s3")
        for rule in self.rules:
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=rule.bucket, Prefix=rule.prefix):
                for item in page.get("Contents", []):
                    if rule.expires_at(item["LastModified"].timestamp()) <= now:
                        s3.delete_object(Bucket=rule.bucket, Key=item["Key"])
                        expired.objects.append((rule.bucket, item["Key"]))
        dynamodb = self.client("dynamodb")
        for table, attribute in self.ttl_attributes.items():
            for key in expired_keys(dynamodb, table, attribute, now):
                try:  # still expired: an item whose TTL was moved on meanwhile stays, as on AWS
                    dynamodb.delete_item(
                        TableName=table,
                        Key=key,
                        ConditionExpression="#ttl < :now",
                        ExpressionAttributeNames={"#ttl": attribute},
                        ExpressionAttributeValues={":now": {"N": str(now)}},
                    )
                except dynamodb.exceptions.ConditionalCheckFailedException:
                    continue
                expired.items += 1
        return expired


def expired_keys(dynamodb: Any, table: str, attribute: str, now: float) -> list[dict[str, Any]]:
    """The keys of ``table``'s items whose ``attribute`` (a TTL, epoch seconds) is before ``now``.

    Read from moto's own table where moto runs in this process: DynamoDB's TTL reads nothing a
    table pays for, while a Scan through moto's API here cost 3.7 ms of CPU an item (18.7 s for the
    5,000 items a suite's stack holds by its end, each minute, in the process that answers every
    request; docs/benchmarks.md, "The test suite's time"). Elsewhere (moto in another process),
    through the API."""
    moto_table = _moto_table(dynamodb, table)
    items = _items_of(moto_table) if moto_table is not None else None
    if items is None:
        keys = [k["AttributeName"] for k in dynamodb.describe_table(TableName=table)["Table"]["KeySchema"]]
        return [
            {k: item[k] for k in keys}
            for page in dynamodb.get_paginator("scan").paginate(TableName=table)
            for item in page.get("Items", [])
            if float(item.get(attribute, {}).get("N", "inf")) < now
        ]
    found = []
    for item in items:
        value = item.attrs.get(attribute)
        if value is None or value.type != "N" or float(value.value) >= now:
            continue
        key = {moto_table.hash_key_attr: item.hash_key.to_json()}
        if moto_table.range_key_attr:
            key[moto_table.range_key_attr] = item.range_key.to_json()
        found.append(key)
    return found


def _moto_table(dynamodb: Any, table: str) -> Any | None:
    """moto's ``table`` in this process (None: moto is not in this process, has no such table, or
    the table has a binary key: moto's B values come out base64 already and the SDK would encode
    them again)."""
    try:
        from moto.dynamodb.models import dynamodb_backends
    except ImportError:
        return None
    moto_table = dynamodb_backends[ACCOUNT][dynamodb.meta.region_name].tables.get(table)
    if moto_table is None:
        return None
    key_names = (moto_table.hash_key_attr, moto_table.range_key_attr)
    if any(a.get("AttributeType") == "B" for a in moto_table.attr if a["AttributeName"] in key_names):
        return None
    return moto_table


def _items_of(moto_table: Any) -> list[Any] | None:
    """A copy of a moto table's items (None: it kept changing). Copied with retries: moto's writers
    change its dicts without a lock."""
    for _ in range(10):
        try:
            return list(moto_table.all_items())
        except RuntimeError:  # a dict changed size while it was read: read again
            continue
    return None


class ExpiryLoop(BackgroundLoop):
    """The background run with the real clock."""

    def __init__(self, expiry: Expiry, seconds: float = BACKGROUND_SECONDS):
        super().__init__("expiry")
        self.expiry, self.seconds = expiry, seconds

    def _run(self) -> None:
        while not self.stopping.wait(self.seconds):
            try:
                self.expiry.run()
            except Exception:  # noqa: BLE001, S112 - moto going down at stop
                continue
