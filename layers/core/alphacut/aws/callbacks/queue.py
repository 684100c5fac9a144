"""The callback queue: every final task's callback waits here until it is delivered, so a burst of
finished tasks, a slow or down receiver, or a busy Notify function never loses one.

- The state machine's Notify steps send ``{"task_id", "callback_url"}`` here themselves
  (sqs:sendMessage, nothing to wait for); the Finalize function, for the tasks it ends, through
  ``CallbackQueue.enqueue``.
- The Notify function, fed by the queue's mapping (within its reserved concurrency, and invoked by
  nothing else), delivers each (``CallbackDelivery.handle``). A failure a retry may mend
  (``CallbackFailed``: no connection, 5xx, 408, 429) pushes the message's next receive out by
  ``retry_delay`` and raises, so the message comes back: 45 s, then twice as long each time, over
  the queue's 10 receives (about 6 h); after them it waits in the dead-letter queue (14 days, an
  alarm) for an operator's redrive. A refused address (``CallbackRefused``) or a task that no longer
  exists is dropped with a log line: no retry can deliver it.

Usage::

    CallbackQueue(sqs, queue_url).enqueue(task_id, callback_url)
    delivery = CallbackDelivery(send, sqs, queue_url)      # send(task_id, url) -> HTTP status
    delivery.handle(sqs_record)                            # raises to have the message back later
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger

from alphacut.callbacks import CallbackFailed, CallbackRefused
from alphacut.errors import NotFound

logger = Logger(child=True)

FIRST_RETRY_SECONDS = 45
MAX_RECEIVES = 10  # the callback queue's redrive policy (template.yaml): then the dead-letter queue
MAX_VISIBILITY_SECONDS = 12 * 3600  # SQS's longest visibility timeout


def retry_delay(receives: int) -> int:
    """Seconds before the next try of a callback received ``receives`` times."""
    return int(min(FIRST_RETRY_SECONDS * 2 ** max(0, receives - 1), MAX_VISIBILITY_SECONDS))


@dataclass
class CallbackQueue:
    sqs: Any
    queue_url: str

    def enqueue(self, task_id: str, callback_url: str) -> None:
        body = json.dumps({"task_id": task_id, "callback_url": callback_url})
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=body)


@dataclass
class CallbackDelivery:
    send: Callable[[str, str], int]  # (task id, callback URL) -> the receiver's HTTP status
    sqs: Any
    queue_url: str
    # the task's callback is over (delivered, dropped, its last try): its key's slot comes back
    done: Callable[[str], None] = lambda task_id: None
    max_receives: int = MAX_RECEIVES

    def handle(self, record: Any) -> None:
        message = json.loads(record.body)
        task_id, url = str(message["task_id"]), str(message["callback_url"])
        try:
            status = self.send(task_id, url)
        except NotFound as gone:
            logger.warning("callback dropped: its task is gone", extra={"task_id": task_id, "why": str(gone)})
            return
        except CallbackRefused as final:
            logger.warning(
                "callback dropped: no retry can deliver it", extra={"task_id": task_id, "why": str(final)}
            )
            self._over(task_id)
            return
        except CallbackFailed:
            receives = int(record.attributes.approximate_receive_count or 1)
            if receives >= self.max_receives:  # the dead-letter queue has it next: over for the key
                self._over(task_id)
                raise
            self.sqs.change_message_visibility(
                QueueUrl=self.queue_url,
                ReceiptHandle=record.receipt_handle,
                VisibilityTimeout=retry_delay(receives),
            )
            logger.info("callback to be tried again", extra={"task_id": task_id, "receives": receives})
            raise
        self._over(task_id)
        logger.info("callback delivered", extra={"task_id": task_id, "status": status})

    def _over(self, task_id: str) -> None:
        """The key's slot back; a failure here is logged, never the delivery's (a callback that
        went out must not come back from the queue to go out twice): the slot expires by itself."""
        try:
            self.done(task_id)
        except Exception:  # noqa: BLE001 - bookkeeping only
            logger.warning(
                "a callback's slot was not given back: it expires by itself", extra={"task_id": task_id}
            )
