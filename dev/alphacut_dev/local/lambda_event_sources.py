"""Lambda's SQS event source mappings, throttled as Lambda throttles them.

- A mapping polls with ``ScalingConfig.MaximumConcurrency`` pollers, or Lambda's starting five
  where it has none, and does not look at the function's reserved concurrency.
- An invocation that finds the function at its reserved concurrency (mappings and direct
  invocations together) is throttled: the batch is not deleted, so each message comes back after
  its visibility timeout with one more receive, and after ``maxReceiveCount`` it is in the
  dead-letter queue though nothing failed. ``FunctionInstances.invoke`` applies that limit.
- A batch runs on the function: what succeeded is deleted, ``ReportBatchItemFailures`` names
  what did not, and an error returns the whole batch.

Here a function runs on fewer warm instances than it may reserve (each holds its models): an
invocation within the reserved concurrency waits for a free instance, as AWS would have run it at
once; only what passes the reserved concurrency is throttled. So a mapping polls with as many
pollers as it may have at once on the instances there are, plus every poller past the reserved
concurrency, whose invocations AWS throttles.

Usage::

    for poller in mapping_pollers(stack, queue_url, queue_arn, "MeterFunction", props): poller.start()
"""

from __future__ import annotations

import time
from typing import Any

from alphacut_dev.local.account import REGION
from alphacut_dev.local.loops import BackgroundLoop

LAMBDA_STARTING_POLLERS = 5  # Lambda's SQS pollers before it scales a mapping without a maximum


class SqsPoller(BackgroundLoop):
    """One of a mapping's pollers: long-poll, invoke with a batch, delete what succeeded."""

    def __init__(self, stack: Any, queue_url: str, queue_arn: str, function: str, batch_size: int):
        super().__init__(f"poll-{function}")
        self.stack, self.queue_url, self.queue_arn = stack, queue_url, queue_arn
        self.function, self.batch_size = function, batch_size
        self.throttled = 0  # batches Lambda would have throttled: each a receive spent

    def _run(self) -> None:
        sqs = self.stack.client("sqs")
        while not self.stopping.is_set():
            try:
                messages = sqs.receive_message(
                    QueueUrl=self.queue_url,
                    MaxNumberOfMessages=self.batch_size,
                    WaitTimeSeconds=1,
                    AttributeNames=["All"],
                ).get("Messages", [])
            except Exception:  # noqa: BLE001 - moto going down at stop
                if self.stopping.is_set():
                    return
                time.sleep(0.5)
                continue
            if messages:
                self._deliver(sqs, messages)

    def _deliver(self, sqs: Any, messages: list[dict]) -> None:
        kind, result = self.stack.workers[self.function].invoke(self._event(messages), None)
        if kind == "throttled":  # the batch stays in flight: back after its visibility timeout
            self.throttled += 1
            return
        failed = set()
        if kind != "ok":
            failed = {m["MessageId"] for m in messages}
        elif isinstance(result, dict):
            failed = {item["itemIdentifier"] for item in result.get("batchItemFailures", [])}
        for message in messages:
            if message["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def _event(self, messages: list[dict]) -> dict:
        return {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": m.get("Attributes", {}),
                    "messageAttributes": {},
                    "md5OfBody": m["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.queue_arn,
                    "awsRegion": REGION,
                }
                for m in messages
            ]
        }


def mapping_pollers(
    stack: Any, queue_url: str, queue_arn: str, function: str, props: dict
) -> list[SqsPoller]:
    """A mapping's pollers (``props``: its resolved properties), as many as the module says."""
    wanted = int(props.get("ScalingConfig", {}).get("MaximumConcurrency", LAMBDA_STARTING_POLLERS))
    instances = stack.workers[function]
    reserved = instances.reserved if instances.reserved is not None else wanted
    count = min(wanted, len(instances.instances)) + max(0, wanted - reserved)
    batch = int(props.get("BatchSize", 10))
    return [SqsPoller(stack, queue_url, queue_arn, function, batch) for _ in range(max(1, count))]
