"""Sign-up state (DynamoDB, the usage table): one-time links, the limits on asking for them, and
how many keys each confirmed mailbox has. Mailboxes (``alphacut.billing.signup.signup_email``'s
normalised form) are kept only as SHA-256 (a table dump lists no addresses, though anyone can hash
an address they guess and look for it); links only as the SHA-256 of their token; source addresses
only as SHA-256, for two days.

Items:

- ``pk = "signup#<mailbox hash>"``, ``sk = "link#<token hash>"``: ``expires_at`` (TTL; refused past
  it even before TTL takes it)
- ``pk = "signup#<mailbox hash>"``, ``sk = "keys"``: ``count``, ``key_ids``
- ``pk = "signups#<window>"``, ``sk = "<mailbox hash>" | "source#<source hash>" | "all"``:
  ``count``, ``expires_at``: the asks of one mailbox in a UTC day, of one source address in a UTC
  hour, and of everyone in a UTC hour

Usage::

    signups = SignupRecords("usage-table")
    signups.count_ask(mailbox, source, per_source=5, per_address=3, ceiling=60)  # or SignupsLimited
    signups.give_back_ask(mailbox, source, counted_at)   # the link could not be mailed
    token = signups.new_link(mailbox, seconds=3600)       # or new_token(), mailed, then new_link(..., token)
    mailbox_hash = signups.use_link(mailbox, token)          # None: unknown, used or expired
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from alphacut.aws.clients import client
from alphacut.errors import SignupsLimited

WINDOW_KEPT_SECONDS = 2 * 86400
metrics = Metrics()  # one set per process: the function's log_metrics flushes it


def email_hash(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def source_hash(source: str) -> str:
    return hashlib.sha256(f"source:{source}".encode()).hexdigest()[:32]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _windows(at: float) -> tuple[str, str]:
    """The UTC day and hour an ask at ``at`` is counted in."""
    return time.strftime("%Y-%m-%d", time.gmtime(at)), time.strftime("%Y-%m-%dT%H", time.gmtime(at))


class SignupRecords:
    def __init__(self, table_name: str, clock: Callable[[], float] = time.time):
        self.table_name, self.clock = table_name, clock

    @property
    def _db(self) -> Any:
        return client("dynamodb")

    def _count(self, pk: str, sk: str, limit: int | None, expires_at: int) -> int | None:
        """One more in the window's count: the count now, or None where it had reached ``limit``
        (None: no limit)."""
        values = {":one": {"N": "1"}, ":expires": {"N": str(expires_at)}}
        condition: dict[str, str] = {}
        if limit is not None:
            values[":limit"] = {"N": str(limit)}
            condition["ConditionExpression"] = "attribute_not_exists(#count) OR #count < :limit"
        try:
            answer = self._db.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": pk}, "sk": {"S": sk}},
                UpdateExpression="ADD #count :one SET expires_at = :expires",
                ExpressionAttributeNames={"#count": "count"},
                ExpressionAttributeValues=values,
                ReturnValues="UPDATED_NEW",
                **condition,
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            return None
        return int(answer["Attributes"]["count"]["N"])

    def count_ask(
        self, mailbox: str, source: str, *, per_source: int, per_address: int, ceiling: int, now: float = 0.0
    ) -> int:
        """Count one ask for a link, or SignupsLimited: the source address's asks this hour (field
        ``signup``), then the mailbox's today (field ``email``); an ask refused for either spends
        nothing of the next. Then everyone's this hour, which never refuses: past ``ceiling`` each
        ask adds one to the ``SignupCeilingReached`` metric (the stack's alarm tells the operator).
        Answers the service's asks this hour. ``now``: the moment counted (``give_back_ask``'s)."""
        now = now or self.clock()
        day, hour = _windows(now)
        kept = int(now) + WINDOW_KEPT_SECONDS
        if self._count(f"signups#{hour}", f"source#{source_hash(source)}", per_source, kept) is None:
            raise SignupsLimited(
                f"this network address asked for {per_source} sign-up links this hour: try again later",
                retry_after=3600 - int(now) % 3600,
                limit=per_source,
                field="signup",
            )
        if self._count(f"signups#{day}", email_hash(mailbox), per_address, kept) is None:
            raise SignupsLimited(
                f"this address asked for {per_address} sign-up links today: use the last one, or try "
                "again tomorrow",
                retry_after=86400 - int(now) % 86400,
                limit=per_address,
            )
        everyone = self._count(f"signups#{hour}", "all", None, kept) or 0
        if everyone > ceiling:
            metrics.add_metric(name="SignupCeilingReached", unit=MetricUnit.Count, value=1)
        return everyone

    def give_back_ask(self, mailbox: str, source: str, counted_at: float) -> None:
        """An ask counted at ``counted_at`` whose link could not be mailed (SES throttled): the
        source's, the mailbox's and everyone's counts of its windows, one less each."""
        day, hour = _windows(counted_at)
        for pk, sk in (
            (f"signups#{hour}", f"source#{source_hash(source)}"),
            (f"signups#{day}", email_hash(mailbox)),
            (f"signups#{hour}", "all"),
        ):
            try:
                self._db.update_item(
                    TableName=self.table_name,
                    Key={"pk": {"S": pk}, "sk": {"S": sk}},
                    UpdateExpression="ADD #count :minus",
                    ConditionExpression="#count > :zero",
                    ExpressionAttributeNames={"#count": "count"},
                    ExpressionAttributeValues={":minus": {"N": "-1"}, ":zero": {"N": "0"}},
                )
            except self._db.exceptions.ConditionalCheckFailedException:
                continue  # nothing there to give back (its window was kept no longer)

    @staticmethod
    def new_token() -> str:
        return secrets.token_urlsafe(32)

    def new_link(self, email: str, seconds: int, token: str = "") -> str:
        """A one-time token for the mailbox ``email``, valid ``seconds`` (``token``: one made with
        ``new_token`` and mailed already)."""
        token = token or self.new_token()
        self._db.put_item(
            TableName=self.table_name,
            Item={
                "pk": {"S": f"signup#{email_hash(email)}"},
                "sk": {"S": f"link#{token_hash(token)}"},
                "expires_at": {"N": str(int(self.clock()) + seconds)},
            },
        )
        return token

    def use_link(self, email: str, token: str) -> str | None:
        """Spend the link: the email's hash once, None when the link is unknown, used or expired."""
        try:  # spent by a mark, not a delete (no function deletes from the usage table; TTL does)
            self._db.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": f"signup#{email_hash(email)}"}, "sk": {"S": f"link#{token_hash(token)}"}},
                UpdateExpression="SET used_at = :now",
                ConditionExpression="expires_at > :now AND attribute_not_exists(used_at)",
                ExpressionAttributeValues={":now": {"N": str(int(self.clock()))}},
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            return None
        return email_hash(email)

    def claim_key(self, hashed: str, limit: int) -> int | None:
        """One of the email's key slots, if it has one left: the email's keys with it (1: its first)."""
        try:
            answer = self._db.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": f"signup#{hashed}"}, "sk": {"S": "keys"}},
                UpdateExpression="ADD #count :one",
                ConditionExpression="attribute_not_exists(#count) OR #count < :limit",
                ExpressionAttributeNames={"#count": "count"},
                ExpressionAttributeValues={":one": {"N": "1"}, ":limit": {"N": str(limit)}},
                ReturnValues="UPDATED_NEW",
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            return None
        return int(answer["Attributes"]["count"]["N"])

    def give_back_key(self, hashed: str) -> None:
        """A slot claimed for a key that could not be made."""
        self._db.update_item(
            TableName=self.table_name,
            Key={"pk": {"S": f"signup#{hashed}"}, "sk": {"S": "keys"}},
            UpdateExpression="ADD #count :minus",
            ExpressionAttributeNames={"#count": "count"},
            ExpressionAttributeValues={":minus": {"N": "-1"}},
        )

    def record_key(self, hashed: str, key_id: str) -> None:
        self._db.update_item(
            TableName=self.table_name,
            Key={"pk": {"S": f"signup#{hashed}"}, "sk": {"S": "keys"}},
            UpdateExpression="ADD key_ids :key",
            ExpressionAttributeValues={":key": {"SS": [key_id]}},
        )
