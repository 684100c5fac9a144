"""Sign-up state (DynamoDB, the usage table): one-time links, the limits on asking for them, and
how many keys each confirmed email has. Emails are kept only as SHA-256 (a table dump lists no
addresses); links only as the SHA-256 of their token.

Items:

- ``pk = "signup#<email hash>"``, ``sk = "link#<token hash>"``: ``expires_at`` (TTL; refused past it
  even before TTL takes it)
- ``pk = "signup#<email hash>"``, ``sk = "keys"``: ``count``, ``key_ids``
- ``pk = "signups#<window>"``, ``sk = "<email hash>" | "all"``: ``count``, ``expires_at``: the asks of
  one address in a UTC day and of everyone in a UTC hour

Usage::

    signups = SignupRecords("usage-table")
    signups.count_ask(email, per_address=3, per_hour=60)   # or SignupsLimited
    token = signups.new_link(email, seconds=3600)
    email_hash = signups.use_link(email, token)            # None: unknown, used or expired
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from typing import Any

from alphacut.aws.clients import client
from alphacut.errors import SignupsLimited

WINDOW_KEPT_SECONDS = 2 * 86400


def email_hash(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SignupRecords:
    def __init__(self, table_name: str, clock: Callable[[], float] = time.time):
        self.table_name, self.clock = table_name, clock

    @property
    def _db(self) -> Any:
        return client("dynamodb")

    def _count(self, pk: str, sk: str, limit: int, expires_at: int) -> bool:
        try:
            self._db.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": pk}, "sk": {"S": sk}},
                UpdateExpression="ADD #count :one SET expires_at = :expires",
                ConditionExpression="attribute_not_exists(#count) OR #count < :limit",
                ExpressionAttributeNames={"#count": "count"},
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":limit": {"N": str(limit)},
                    ":expires": {"N": str(expires_at)},
                },
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def count_ask(self, email: str, per_address: int, per_hour: int) -> None:
        """Count one ask for a link, or SignupsLimited: the address's asks today, then everyone's
        this hour (an ask refused for its address spends nothing of the hour's)."""
        now = self.clock()
        day, hour = (
            time.strftime("%Y-%m-%d", time.gmtime(now)),
            time.strftime("%Y-%m-%dT%H", time.gmtime(now)),
        )
        kept = int(now) + WINDOW_KEPT_SECONDS
        if not self._count(f"signups#{day}", email_hash(email), per_address, kept):
            raise SignupsLimited(
                f"this address asked for {per_address} sign-up links today: use the last one, or try "
                "again tomorrow",
                retry_after=86400 - int(now) % 86400,
                limit=per_address,
            )
        if not self._count(f"signups#{hour}", "all", per_hour, kept):
            raise SignupsLimited(
                f"the service takes {per_hour} sign-ups an hour and this hour's are taken: try again later",
                retry_after=3600 - int(now) % 3600,
                limit=per_hour,
                field="signup",
            )

    def new_link(self, email: str, seconds: int) -> str:
        """A one-time token for ``email``, valid ``seconds``."""
        token = secrets.token_urlsafe(32)
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
