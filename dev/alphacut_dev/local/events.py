"""EventBridge, for the two kinds of rule the template has:

- Step Functions execution status changes delivered to a function. moto's Step Functions emits no
  events, so a watcher polls the executions of the rule's state machines and, for each that
  reaches a status the pattern names, invokes the target function with the event AWS would send
  (asynchronously: an error is retried twice, as Lambda retries an asynchronous invocation);
- schedules (``rate(N minute[s]|hour[s])``): the target function invoked with a "Scheduled Event"
  at that rate, by the real clock (tests invoke the function themselves to run it now).

Usage::

    rule = ExecutionStatusRule(stack, pattern, "FinalizeFunction")
    rule.start() ... rule.stop()
    ScheduleRule(stack, "rate(1 minute)", "SweepFunction").start()
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import UTC, datetime

from alphacut_dev.local.account import ACCOUNT, REGION
from alphacut_dev.local.loops import BackgroundLoop

DETAIL_TYPE = "Step Functions Execution Status Change"
ASYNC_ATTEMPTS = 3
POLL_SECONDS = 0.5


def matches(pattern: dict, event: dict) -> bool:
    """EventBridge's matching for the pattern forms used here: nested keys and value lists."""
    for key, wanted in pattern.items():
        value = event.get(key) if isinstance(event, dict) else None
        if isinstance(wanted, dict):
            if not isinstance(value, dict) or not matches(wanted, value):
                return False
        elif value not in wanted:
            return False
    return True


def _iso(value) -> str | None:
    return value.astimezone(UTC).isoformat() if isinstance(value, datetime) else value


def status_event(execution: dict, region: str, account: str) -> dict:
    """The event EventBridge delivers for an execution's status change."""
    detail = {
        "executionArn": execution["executionArn"],
        "stateMachineArn": execution["stateMachineArn"],
        "name": execution["name"],
        "status": execution["status"],
        "startDate": _iso(execution.get("startDate")),
        "stopDate": _iso(execution.get("stopDate")),
        "input": execution.get("input"),
        "output": execution.get("output"),
        "error": execution.get("error"),
        "cause": execution.get("cause"),
    }
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": DETAIL_TYPE,
        "source": "aws.states",
        "account": account,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [execution["executionArn"]],
        "detail": detail,
    }


RATE_UNITS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}


def rate_seconds(expression: str) -> float:
    """``rate(1 minute)`` -> 60.0 (the forms EventBridge takes for a rate)."""
    number, unit = expression.strip().removeprefix("rate(").removesuffix(")").split()
    return int(number) * RATE_UNITS[unit]


def scheduled_event(rule_arn: str) -> dict:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [rule_arn],
        "detail": {},
    }


class ScheduleRule(BackgroundLoop):
    def __init__(self, stack, expression: str, function: str, name: str = "schedule"):
        super().__init__(f"schedule-{function}")
        self.stack, self.function, self.seconds = stack, function, rate_seconds(expression)
        self.arn = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{name}"
        # a test that must tell what a call did from what the schedule did holds its ticks (as
        # a rule disabled for a while): the ticks that fall while held are skipped
        self.held = threading.Event()

    def _run(self) -> None:
        while not self.stopping.wait(self.seconds):
            if self.held.is_set():
                continue
            kind, result = self.stack.workers[self.function].invoke(scheduled_event(self.arn), None)
            if kind != "ok":
                self.stack.log(f"{self.function} failed on its schedule: {result}")


class ExecutionStatusRule(BackgroundLoop):
    def __init__(self, stack, pattern: dict, function: str):
        super().__init__(f"rule-{function}")
        self.stack, self.pattern, self.function = stack, pattern, function
        self.seen: set[str] = set()

    def _run(self) -> None:
        sfn = self.stack.client("stepfunctions")
        detail = self.pattern.get("detail", {})
        while not self.stopping.wait(POLL_SECONDS):
            for machine in detail.get("stateMachineArn", []):
                for status in detail.get("status", []):
                    try:
                        listed = sfn.list_executions(stateMachineArn=machine, statusFilter=status)[
                            "executions"
                        ]
                    except Exception:  # noqa: BLE001, S112 - moto going down at stop
                        continue
                    for execution in listed:
                        if execution["executionArn"] in self.seen:
                            continue
                        self.seen.add(execution["executionArn"])
                        described = sfn.describe_execution(executionArn=execution["executionArn"])
                        event = status_event({**described, "name": execution["name"]}, REGION, ACCOUNT)
                        if matches(self.pattern, event):
                            self._deliver(event)

    def _deliver(self, event: dict) -> None:
        worker = self.stack.workers[self.function]
        for attempt in range(ASYNC_ATTEMPTS):
            kind, result = worker.invoke(json.loads(json.dumps(event)), None)
            if kind == "ok":
                return
            self.stack.log(
                f"{self.function} failed on {event['detail']['name']} (attempt {attempt + 1}): {result}"
            )
            time.sleep(1)
