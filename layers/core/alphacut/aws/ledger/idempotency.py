"""Idempotency records (DynamoDB claim + S3 answer): a retried ``Idempotency-Key`` is answered
from the first request's answer instead of being processed (and charged) again.

Items (the usage table, ``USAGE_TABLE``): ``pk = "idem#<key id>"``, ``sk = <Idempotency-Key>``,
``state`` (in_progress | done), ``fingerprint`` (what the request was), ``expires_at`` (TTL,
24 h), ``in_progress_until`` (a claim whose function died is taken over after this), and when
done ``status`` and ``response_key``: the answer as delivered, in the results bucket (answers
go up to Lambda's 6 MB, over DynamoDB's 400 KB item limit).

Why not Powertools' idempotency utility as it is: its DynamoDB layer stores the answer in the
item, and it keys on the payload; here answers are up to 6 MB and the key is the client's header.

Usage::

    store = IdempotencyStore.from_settings(ServiceSettings.from_env())   # USAGE_TABLE, RESULTS_BUCKET
    claim = store.claim("key-id", "order-1234", fingerprint)
    if claim.new: ... process ...; store.finish("key-id", "order-1234", 200, answer_bytes)
    elif claim.done: store.answer(claim)             # the stored answer, to replay
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from alphacut.aws.clients import client
from alphacut.aws.objects import object_gone
from alphacut.errors import ResultExpired
from alphacut.settings import ServiceSettings

RECORD_TTL_SECONDS = 24 * 3600
# Longer than any API function may run (29 s, API Gateway's limit): a claim still "in progress"
# after this belongs to an invocation that timed out or crashed, and a retry may take it over.
IN_PROGRESS_SECONDS = 60
IN_PROGRESS, DONE = "in_progress", "done"


@dataclass
class Claim:
    """What ``claim`` found: ``new`` (go ahead), or an earlier request's record."""

    new: bool
    state: str = ""
    fingerprint: str = ""
    response_key: str = ""

    @property
    def done(self) -> bool:
        return self.state == DONE and bool(self.response_key)


class IdempotencyStore:
    def __init__(self, table_name: str, bucket: str, clock: Callable[[], float] = time.time):
        self.table_name, self.bucket, self.clock = table_name, bucket, clock

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> IdempotencyStore | None:
        """The store on the usage table (None where the function has none: no idempotency)."""
        return cls(settings.usage_table, settings.results_bucket) if settings.usage_table else None

    @staticmethod
    def _key(owner: str, idempotency_key: str) -> dict[str, Any]:
        return {"pk": {"S": f"idem#{owner}"}, "sk": {"S": idempotency_key}}

    def claim(self, owner: str, idempotency_key: str, fingerprint: str) -> Claim:
        """Claim a request, or return what an earlier one with the same key left. An expired
        record, or an in-progress claim past ``IN_PROGRESS_SECONDS``, is taken over."""
        now = int(self.clock())
        item = {
            **self._key(owner, idempotency_key),
            "state": {"S": IN_PROGRESS},
            "fingerprint": {"S": fingerprint},
            "expires_at": {"N": str(now + RECORD_TTL_SECONDS)},
            "in_progress_until": {"N": str(now + IN_PROGRESS_SECONDS)},
        }
        try:
            client("dynamodb").put_item(
                TableName=self.table_name,
                Item=item,
                ConditionExpression="attribute_not_exists(pk) OR expires_at < :now"
                " OR (#state = :in_progress AND in_progress_until < :now)",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":now": {"N": str(now)}, ":in_progress": {"S": IN_PROGRESS}},
            )
            return Claim(new=True)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
        found = (
            client("dynamodb")
            .get_item(TableName=self.table_name, ConsistentRead=True, Key=self._key(owner, idempotency_key))
            .get("Item", {})
        )
        return Claim(
            new=False,
            state=found.get("state", {}).get("S", IN_PROGRESS),
            fingerprint=found.get("fingerprint", {}).get("S", ""),
            response_key=found.get("response_key", {}).get("S", ""),
        )

    def finish(self, owner: str, idempotency_key: str, status: int, answer: bytes) -> None:
        """Keep the answer as delivered; later retries replay it."""
        digest = hashlib.sha256(idempotency_key.encode()).hexdigest()
        response_key = f"idempotency/{owner}/{digest}.json"
        client("s3").put_object(
            Bucket=self.bucket, Key=response_key, Body=answer, ContentType="application/json"
        )
        client("dynamodb").update_item(
            TableName=self.table_name,
            Key=self._key(owner, idempotency_key),
            UpdateExpression=(
                "SET #state = :done, #status = :status, response_key = :key REMOVE in_progress_until"
            ),
            ExpressionAttributeNames={"#state": "state", "#status": "status"},
            ExpressionAttributeValues={
                ":done": {"S": DONE},
                ":status": {"N": str(status)},
                ":key": {"S": response_key},
            },
        )

    def answer(self, claim: Claim) -> bytes:
        """The stored answer; ``ResultExpired`` (410) once the bucket's lifecycle removed it."""
        s3 = client("s3")
        try:
            answer: bytes = s3.get_object(Bucket=self.bucket, Key=claim.response_key)["Body"].read()
        except ClientError as error:
            if not object_gone(error):  # 403 too: S3's answer to a role that may not list the bucket
                raise
            raise ResultExpired(
                "its first request's answer was deleted at the end of its storage lifetime: "
                "send the request with a new Idempotency-Key",
                field="Idempotency-Key",
            ) from None
        return answer

    def release(self, owner: str, idempotency_key: str) -> None:
        """Give up a claim whose request failed on our side, so that a retry is processed: its
        in-progress time is ended now (an update, not a delete: the API functions, which decode
        untrusted input, may not delete from the billing table)."""
        client("dynamodb").update_item(
            TableName=self.table_name,
            Key=self._key(owner, idempotency_key),
            UpdateExpression="SET in_progress_until = :zero",
            ConditionExpression="#state = :in_progress",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={":zero": {"N": "0"}, ":in_progress": {"S": IN_PROGRESS}},
        )
