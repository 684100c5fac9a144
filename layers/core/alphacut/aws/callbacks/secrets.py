"""Each key's callback secret (``alphacut.callbacks``): its generation on the key's own item
(``key#<key id>``: ``callback_generation``, and ``callback_previous_until`` while the previous
generation still signs), the masters in Secrets Manager. No secret is stored: each is derived.

Usage::

    secrets = CallbackSecrets.from_settings(settings)    # or CallbackSecrets(table, key_master)
    secrets.signing("k0123456789ab")                     # Signing for the key's callbacks (one item read)
    secrets.secret("k0123456789ab")                      # what its customer verifies with (cbk_...)
    secrets.rotate("k0123456789ab", grace_seconds=86400)  # a new generation; the old signs a day more
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from alphacut.aws.clients import client
from alphacut.callbacks import Signing, key_secret
from alphacut.errors import InvalidOption, NotFound

MAX_GRACE_SECONDS = 30 * 86400


@dataclass(frozen=True)
class Generation:
    number: int = 0
    previous_until: float = 0.0


class CallbackSecrets:
    def __init__(
        self,
        table_name: str,
        key_master: bytes,
        shared: bytes | None = None,
        shared_until: float = 0.0,
        clock: Callable[[], float] = time.time,
    ):
        self.table_name, self.key_master, self.shared, self.shared_until = (
            table_name,
            key_master,
            shared,
            shared_until,
        )
        self.clock = clock

    @classmethod
    def from_settings(cls, settings: Any) -> CallbackSecrets:
        """From the service's settings: the key master (KEY_CALLBACK_SECRET_ARN) and the old shared
        secret (CALLBACK_SECRET_ARN), read once a container."""
        from alphacut.aws.secrets import secret_bytes

        shared_arn = settings.callback_secret_arn
        return cls(
            settings.require("usage_table"),
            secret_bytes(settings.require("key_callback_secret_arn")),
            secret_bytes(shared_arn) if shared_arn else None,
            settings.shared_callback_signature_until,
        )

    @property
    def _db(self) -> Any:
        return client("dynamodb")

    def generation(self, key_id: str) -> Generation:
        item = self._db.get_item(
            TableName=self.table_name,
            Key=_key_item(key_id),
            ConsistentRead=True,
            ProjectionExpression="pk, callback_generation, callback_previous_until",
        ).get("Item")
        if item is None:
            raise NotFound(f"no API key {key_id}", field="key_id")
        return Generation(
            int(item.get("callback_generation", {}).get("N", "0")),
            float(item.get("callback_previous_until", {}).get("N", "0")),
        )

    def signing(self, key_id: str) -> Signing:
        """How the key's callbacks are signed now; a key that is gone signs with generation 0."""
        try:
            generation = self.generation(key_id)
        except NotFound:
            generation = Generation()
        return Signing(
            self.key_master,
            key_id,
            generation.number,
            generation.previous_until,
            self.shared,
            self.shared_until,
        )

    def secret(self, key_id: str) -> str:
        return key_secret(self.key_master, key_id, self.generation(key_id).number)

    def rotate(self, key_id: str, grace_seconds: int) -> str:
        """A new generation of the key's secret (returned); the old one signs ``grace_seconds``
        more, so its receiver can switch without losing a callback."""
        if not 0 <= grace_seconds <= MAX_GRACE_SECONDS:
            raise InvalidOption(
                f"must be from 0 to {MAX_GRACE_SECONDS} seconds",
                field="grace_seconds",
                limit=MAX_GRACE_SECONDS,
            )
        try:
            answer = self._db.update_item(
                TableName=self.table_name,
                Key=_key_item(key_id),
                UpdateExpression="ADD callback_generation :one SET callback_previous_until = :until",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":until": {"N": str(int(self.clock()) + grace_seconds)},
                },
                ReturnValues="UPDATED_NEW",
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            raise NotFound(f"no API key {key_id}", field="key_id") from None
        return key_secret(self.key_master, key_id, int(answer["Attributes"]["callback_generation"]["N"]))


def _key_item(key_id: str) -> dict[str, Any]:
    """The key's own item in the key store (``alphacut.aws.keys.store``)."""
    return {"pk": {"S": f"key#{key_id}"}, "sk": {"S": "-"}}
