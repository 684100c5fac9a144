"""Balances that crossed their threshold, on their way off the request path (SQS): the call that
crossed it sends one message, the low-balance function tells the store and buys the chosen pack
(``alphacut.billing.low_balance``).

Usage::

    LowBalanceQueue(url).send(LowBalance("k123", crossing=3, balance=4000, low_at=5000, at=time.time()))
    notice = LowBalance.from_json(record.body)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from alphacut.aws.clients import client


@dataclass(frozen=True)
class LowBalance:
    key_id: str
    crossing: int  # the key's crossings so far: names this one (the top-up's idempotency key)
    balance: int  # millicredits, as the crossing call left it
    low_at: int  # millicredits
    at: float = 0.0  # when the call crossed it (unix seconds; 0: a message from before this field)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> LowBalance:
        data = json.loads(text)
        return cls(
            str(data["key_id"]),
            int(data["crossing"]),
            int(data["balance"]),
            int(data["low_at"]),
            float(data.get("at") or 0.0),
        )


class LowBalanceQueue:
    def __init__(self, queue_url: str):
        self.queue_url = queue_url

    def send(self, notice: LowBalance) -> None:
        client("sqs").send_message(QueueUrl=self.queue_url, MessageBody=notice.to_json())
