"""Each key's callback secret (``alphacut.callbacks``): its generation on the key's own item
(``key#<key id>``: ``callback_generation``, and ``callback_previous_until`` while the previous
generation still signs), the masters in Secrets Manager. No secret is stored: each is derived.
Each account's webhook secret likewise, its generation on the account's billing profile
(``billing#<account id>``, ``profile``: ``webhook_generation``, ``webhook_previous_until``): no key's
revocation touches it.

Usage::

    secrets = CallbackSecrets.from_settings(settings)    # or CallbackSecrets(table, key_master)
    secrets.signing("k0123456789ab")                     # Signing for the key's callbacks (one item read)
    secrets.secret("k0123456789ab")                      # what its customer verifies with (cbk_...)
    secrets.rotate("k0123456789ab", grace_seconds=86400)  # a new generation; the old signs a day more
    webhooks = WebhookSecrets(secrets)
    webhooks.signing("k0123456789ab")                    # WebhookSigning for the account's webhooks
    webhooks.secret("k0123456789ab")                     # what the account verifies them with (cba_...)
    webhooks.rotate("k0123456789ab", grace_seconds=86400)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from alphacut.aws.clients import client
from alphacut.callbacks import Signing, WebhookSigning, account_secret, key_secret
from alphacut.errors import InvalidOption, NotFound

MAX_GRACE_SECONDS = 30 * 86400
# a key's status once revoked (alphacut.aws.keys.store's REVOKED: callbacks sits below keys, which
# it may not import; tests/unit/test_import_graph.py)
REVOKED = "revoked"


@dataclass(frozen=True)
class Generation:
    number: int = 0
    previous_until: float = 0.0
    revoked: bool = False  # the key's own (an account's secret is never revoked)


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
            ProjectionExpression="pk, callback_generation, callback_previous_until, #status",
            ExpressionAttributeNames={"#status": "status"},
        ).get("Item")
        if item is None:
            raise NotFound(f"no API key {key_id}", field="key_id")
        return Generation(
            int(item.get("callback_generation", {}).get("N", "0")),
            float(item.get("callback_previous_until", {}).get("N", "0")),
            item.get("status", {}).get("S") == REVOKED,
        )

    def signing(self, key_id: str) -> Signing:
        """How the key's callbacks are signed now; a key that is gone signs with generation 0."""
        try:
            generation = self.generation(key_id)
        except NotFound:
            generation = Generation()
        return self._signing(key_id, generation)

    def live_signing(self, key_id: str) -> Signing | None:
        """``signing``, for a key that is there and not revoked (None otherwise)."""
        try:
            generation = self.generation(key_id)
        except NotFound:
            return None
        return None if generation.revoked else self._signing(key_id, generation)

    def _signing(self, key_id: str, generation: Generation) -> Signing:
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


class WebhookSecrets:
    """The accounts' webhook secrets (``cba_``), from the same key master as the keys' secrets."""

    def __init__(self, keys: CallbackSecrets):
        self.keys = keys

    @property
    def _db(self) -> Any:
        return client("dynamodb")

    def generation(self, account_id: str) -> Generation:
        item = (
            self._db.get_item(
                TableName=self.keys.table_name,
                Key=_profile_item(account_id),
                ConsistentRead=True,
                ProjectionExpression="webhook_generation, webhook_previous_until",
            ).get("Item")
            or {}
        )
        return Generation(
            int(item.get("webhook_generation", {}).get("N", "0")),
            float(item.get("webhook_previous_until", {}).get("N", "0")),
        )

    def signing(self, account_id: str) -> WebhookSigning:
        """How the account's webhooks are signed now: its secret, and, while its owner key (whose id
        is the account's) is live and the account never rotated its secret, the owner key's too, as
        before account secrets (docs/security.md)."""
        generation = self.generation(account_id)
        owner = self.keys.live_signing(account_id) if generation.number == 0 else None
        return WebhookSigning(
            self.keys.key_master, account_id, generation.number, generation.previous_until, owner
        )

    def secret(self, account_id: str) -> str:
        return account_secret(self.keys.key_master, account_id, self.generation(account_id).number)

    def rotate(self, account_id: str, grace_seconds: int) -> str:
        """A new generation of the account's secret (returned); the old one signs ``grace_seconds``
        more. The owner key's signature goes along no more from then (the account has switched)."""
        if not 0 <= grace_seconds <= MAX_GRACE_SECONDS:
            raise InvalidOption(
                f"must be from 0 to {MAX_GRACE_SECONDS} seconds",
                field="grace_seconds",
                limit=MAX_GRACE_SECONDS,
            )
        answer = self._db.update_item(
            TableName=self.keys.table_name,
            Key=_profile_item(account_id),
            UpdateExpression="ADD webhook_generation :one SET webhook_previous_until = :until",
            ExpressionAttributeValues={
                ":one": {"N": "1"},
                ":until": {"N": str(int(self.keys.clock()) + grace_seconds)},
            },
            ReturnValues="UPDATED_NEW",
        )
        generation = int(answer["Attributes"]["webhook_generation"]["N"])
        return account_secret(self.keys.key_master, account_id, generation)


def _profile_item(account_id: str) -> dict[str, Any]:
    """The account's billing profile (``alphacut.aws.billing.payments``)."""
    return {"pk": {"S": f"billing#{account_id}"}, "sk": {"S": "profile"}}


def _key_item(key_id: str) -> dict[str, Any]:
    """The key's own item in the key store (``alphacut.aws.keys.store``)."""
    return {"pk": {"S": f"key#{key_id}"}, "sk": {"S": "-"}}
