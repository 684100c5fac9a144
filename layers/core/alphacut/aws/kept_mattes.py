"""Results kept for a touch-up (``alphacut.touchup``): one object per ``result_id`` in the results
bucket, under ``results/kept/`` (the bucket's lifecycle deletes ``results/`` after a day, and the
cutout function's role may put and get there), owned by the caller's account.

S3's lifecycle deletes an object at the first midnight UTC after its day, so up to 48 hours after
it was written: the 24 hours are the object's own ``expires-at`` metadata, checked on every read
(410 past it), and the lifecycle is only the clean-up. Another account's id, or one never made or
already deleted, is a 404 (whose it is, is not said).

Usage::

    kept = KeptMattes("bucket")
    kept.put("r_0123...", "account-1", blob)        # -> expires_at (unix seconds)
    kept.get("r_0123...", "account-1")              # the blob; NotFound (404), ResultExpired (410)
    kept.check("r_0123...", "account-1")            # the same refusals, from its metadata alone
    made = kept.keep_later(photo, result, "account-1")   # (result_id, put) or None: nothing to keep
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from alphacut.aws import clients
from alphacut.aws.objects import object_gone
from alphacut.errors import NotFound, ResultExpired
from alphacut.touchup import KEEP_SECONDS, KeptMatte, new_result_id

PREFIX = "results/kept/"
CONTENT_TYPE = "application/zip"


class KeptMattes:
    def __init__(self, bucket: str, clock: Callable[[], float] = time.time, lifetime: int = KEEP_SECONDS):
        if not bucket:
            raise ValueError("no results bucket configured (RESULTS_BUCKET)")
        self.bucket, self.clock, self.lifetime = bucket, clock, lifetime

    @property
    def client(self) -> Any:
        return clients.client("s3")

    def keep_later(self, photo: bytes, result: Any, account: str) -> tuple[str, Callable[[], int]] | None:
        """A result's new ``result_id`` and what keeps its photo and matte under it for ``account``
        (run by the caller when the result is known to be delivered); None for an empty result or
        one without a matte: nothing was charged for it, and a touch-up of the model's matte would
        deliver for free what the call's strokes erased."""
        if result.matte is None or not result.found:
            return None
        result_id = new_result_id()
        blob = KeptMatte(photo, result.matte, result.type, result.model).to_bytes()
        return result_id, lambda: self.put(result_id, account, blob)

    def put(self, result_id: str, account: str, blob: bytes) -> int:
        """Keep ``blob`` for ``account`` for the lifetime; returns when it expires (unix seconds)."""
        expires_at = int(self.clock()) + self.lifetime
        self.client.put_object(
            Bucket=self.bucket,
            Key=PREFIX + result_id,
            Body=blob,
            ContentType=CONTENT_TYPE,
            Metadata={"account": account, "expires-at": str(expires_at)},
        )
        return expires_at

    def get(self, result_id: str, account: str) -> bytes:
        """The kept blob, if it is ``account``'s and not past its expiry."""
        stored = self._read(self.client.get_object, result_id)
        try:
            self._refuse_unless_usable(stored.get("Metadata") or {}, account)
        except (NotFound, ResultExpired):
            stored["Body"].close()
            raise
        blob: bytes = stored["Body"].read()
        return blob

    def check(self, result_id: str, account: str) -> None:
        """What ``get`` refuses, from the object's metadata alone (a task's touch-up, checked when
        it is submitted: a 404 or 410 then, not a failed task later)."""
        self._refuse_unless_usable(
            self._read(self.client.head_object, result_id).get("Metadata") or {}, account
        )

    def _read(self, operation: Callable[..., dict[str, Any]], result_id: str) -> dict[str, Any]:
        try:
            return operation(Bucket=self.bucket, Key=PREFIX + result_id)
        except ClientError as error:
            if object_gone(error):
                raise NotFound("no result of this account has this id", field="result_id") from None
            raise

    def _refuse_unless_usable(self, metadata: dict[str, str], account: str) -> None:
        if metadata.get("account") != account:
            raise NotFound("no result of this account has this id", field="result_id")
        expires_at = int(metadata.get("expires-at") or 0)
        if self.clock() > expires_at:
            expired = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires_at))
            raise ResultExpired(
                f"was kept until {expired}: send the photo again", field="result_id", limit=self.lifetime
            )
