"""Tasks and charges under faults, on the local stack: N tasks submitted at the key's allowed rate
(429 and Retry-After honoured, as a client would), while the model server is killed, a running
execution is stopped by hand, poison messages are put on the queue and messages are delivered
twice. Prints what became of every task and what was charged: no task may be left unfinished,
every done task is charged exactly once, no failed one is.

    .venv/bin/python benchmarks/bench_faults.py                 # 200 tasks, 2 kills of 20 s
    .venv/bin/python benchmarks/bench_faults.py --tasks 20 --kills 1 --kill-seconds 10 --poison 1

The e2e tests run the small version on the test stack (``run``).
"""

from __future__ import annotations

import argparse
import io
import json
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import requests
from alphacut_dev.data import EVAL
from PIL import Image

GARBAGE = ["not json at all", "[1, 2, 3]", json.dumps({"task_id": "no-such-task"})]


@dataclass
class Plan:
    tasks: int = 200
    kills: int = 2
    kill_seconds: float = 20.0
    stops: int = 1
    poison: int = 5
    duplicates: int = 10
    drain_timeout: float = 1200.0


@dataclass
class Report:
    submitted: list[str] = field(default_factory=list)
    rate_limited: int = 0
    poison_tasks: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    states: dict[str, int] = field(default_factory=dict)
    charges: dict[str, int] = field(default_factory=dict)  # task id -> charge markers (0 or 1)
    counted_charges: int = 0  # the key's charged counter for tasks
    drain_seconds: float = 0.0

    @property
    def unfinished(self) -> list[str]:
        return [t for t, s in self.states.items() if not (s == 1 or s < 0)]

    @property
    def done(self) -> list[str]:
        return [t for t, s in self.states.items() if s == 1]

    def charged_wrongly(self) -> list[str]:
        """Done tasks not charged once, and failed tasks charged at all."""
        return [t for t, s in self.states.items() if self.charges.get(t, 0) != (1 if s == 1 else 0)]


def photos() -> list[bytes]:
    """Real photos, downscaled to 640 px (the model runs at 1024 whatever the input)."""
    out = []
    for folder in ("general", "person"):
        for path in sorted((EVAL / folder / "images").iterdir())[:6]:
            image = Image.open(path).convert("RGB")
            image.thumbnail((640, 640))
            buffer = io.BytesIO()
            image.save(buffer, "JPEG", quality=90)
            out.append(buffer.getvalue())
    return out


class FaultBench:
    def __init__(self, stack, key: str, plan: Plan, log=print):
        self.stack, self.key, self.plan, self.log = stack, key, plan, log
        self.report = Report()
        self.sfn = stack.client("stepfunctions")
        self.sqs = stack.client("sqs")
        self.dynamodb = stack.client("dynamodb")
        self.started = time.time()

    def note(self, text: str) -> None:
        line = f"{time.time() - self.started:6.1f} s  {text}"
        self.report.events.append(line)
        self.log(line)

    # ---- the client -----------------------------------------------------------------------------
    def submit_all(self) -> None:
        images = photos()
        for i in range(self.plan.tasks):
            while True:
                answer = requests.post(
                    f"{self.stack.url}/v1/tasks",
                    headers={"x-api-key": self.key},
                    timeout=60,
                    files={"image_file": ("p.jpg", images[i % len(images)], "image/jpeg")},
                )
                if answer.status_code != 429:
                    break
                self.report.rate_limited += 1
                time.sleep(float(answer.headers.get("Retry-After", "1")))
            answer.raise_for_status()
            self.report.submitted.append(answer.json()["data"]["task_id"])

    # ---- the faults -----------------------------------------------------------------------------
    def kill_model_server(self) -> None:
        self.stack.stop_model_server(kill=True)
        self.note(f"model server killed for {self.plan.kill_seconds:.0f} s")
        time.sleep(self.plan.kill_seconds)
        self.stack.start_model_server_on_same_port()
        self.note("model server back")

    def stop_a_running_execution(self) -> None:
        machine = self.stack.physical["TaskStateMachine"]
        deadline = time.time() + 60
        while time.time() < deadline:
            running = self.sfn.list_executions(stateMachineArn=machine, statusFilter="RUNNING")["executions"]
            if running:
                self.sfn.stop_execution(
                    executionArn=running[0]["executionArn"], error="Bench", cause="stopped by hand"
                )
                self.note(f"execution {running[0]['name'][:8]} stopped by hand")
                return
            time.sleep(0.2)

    def put_poison(self) -> None:
        """Garbage messages, and messages for tasks whose record no step can run (bad options)."""
        queue = self.stack.physical["TaskQueue"]
        for i in range(self.plan.poison):
            if i % 2 == 0 and i // 2 < len(GARBAGE):
                body = GARBAGE[i // 2]
            else:
                task_id = f"poison-{uuid.uuid4()}"
                self.dynamodb.put_item(
                    TableName=self.stack.physical["TasksTable"],
                    Item={
                        "task_id": {"S": task_id},
                        "owner": {"S": "bench"},
                        "state": {"N": "0"},
                        "progress": {"N": "0"},
                        "created_at": {"N": str(int(time.time()))},
                        "options": {"S": json.dumps({"format": "gif"})},
                        "input_key": {"S": "tasks/none/input"},
                    },
                )
                self.report.poison_tasks.append(task_id)
                body = json.dumps({"task_id": task_id})
            self.sqs.send_message(QueueUrl=queue, MessageBody=body)
        self.note(f"{self.plan.poison} poison messages put on the queue")

    def duplicate_messages(self) -> None:
        queue = self.stack.physical["TaskQueue"]
        chosen = self.report.submitted[-self.plan.duplicates :]
        for task_id in chosen:
            self.sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"task_id": task_id}))
        self.note(f"{len(chosen)} messages delivered twice")

    def faults(self) -> None:
        time.sleep(3)
        self.put_poison()
        for n in range(max(self.plan.kills, self.plan.stops)):
            if n < self.plan.stops:
                self.stop_a_running_execution()
            if n < self.plan.kills:
                time.sleep(5)
                self.kill_model_server()
            time.sleep(10)
        self.duplicate_messages()

    # ---- what became of it ------------------------------------------------------------------------
    def read_states(self, task_ids: list[str]) -> dict[str, int]:
        states = {}
        for task_id in task_ids:
            item = self.dynamodb.get_item(
                TableName=self.stack.physical["TasksTable"],
                ConsistentRead=True,
                Key={"task_id": {"S": task_id}},
            ).get("Item")
            states[task_id] = int(item["state"]["N"]) if item else 0
        return states

    def read_charges(self) -> None:
        usage = self.stack.physical["UsageTable"]
        for task_id in self.report.states:
            item = self.dynamodb.get_item(
                TableName=usage, ConsistentRead=True, Key={"pk": {"S": f"charge#{task_id}"}, "sk": {"S": "-"}}
            ).get("Item")
            self.report.charges[task_id] = 1 if item else 0
        report = requests.get(
            f"{self.stack.url}/v1/usage", headers={"x-api-key": self.key}, timeout=60
        ).json()
        self.report.counted_charges = sum(
            day["routes"].get("/v1/tasks", {}).get("charged", 0) for day in report["days"]
        )

    def run(self) -> Report:
        fault_thread = threading.Thread(target=self.faults, daemon=True)
        fault_thread.start()
        self.submit_all()
        self.note(
            f"{len(self.report.submitted)} tasks submitted "
            f"({self.report.rate_limited} answers 429 waited out)"
        )
        fault_thread.join()
        everything = self.report.submitted + self.report.poison_tasks
        deadline = time.time() + self.plan.drain_timeout
        while True:
            self.report.states = self.read_states(everything)
            if not self.report.unfinished or time.time() > deadline:
                break
            time.sleep(1)
        self.report.drain_seconds = time.time() - self.started
        self.note(f"drained: {len(self.report.unfinished)} unfinished")
        time.sleep(3)  # the charge step runs right after "done"
        self.read_charges()
        return self.report


def run(stack, key: str, plan: Plan, log=print) -> Report:
    return FaultBench(stack, key, plan, log).run()


def table(report: Report, plan: Plan) -> str:
    final = Counter(report.states.values())
    done = report.done
    once = sum(1 for t in done if report.charges.get(t) == 1)
    failed_charged = sum(1 for t, s in report.states.items() if s < 0 and report.charges.get(t))
    rows = [
        ("tasks submitted (API)", len(report.submitted)),
        ("tasks with a poison record", len(report.poison_tasks)),
        ("answers 429 waited out", report.rate_limited),
        *[(f"final state {state}", count) for state, count in sorted(final.items(), reverse=True)],
        ("not final after the run", len(report.unfinished)),
        ("done, charged exactly once", f"{once} of {len(done)}"),
        ("done, not charged", len(done) - once),
        ("failed, charged", failed_charged),
        ("charged twice or more (counter - markers)", report.counted_charges - sum(report.charges.values())),
        ("time to drain", f"{report.drain_seconds:.0f} s"),
    ]
    width = max(len(name) for name, _ in rows)
    faults = (
        f"faults: model server killed {plan.kills}x for {plan.kill_seconds:.0f} s, {plan.stops} execution "
        f"stopped by hand, {plan.poison} poison messages, {plan.duplicates} messages delivered twice"
    )
    return "\n".join(
        [
            faults,
            "",
            f"| {'what':<{width}} | value |",
            f"|{'-' * (width + 2)}|-------|",
            *[f"| {name:<{width}} | {value} |" for name, value in rows],
        ]
    )


def main() -> None:
    from alphacut_dev.local.stack import LocalStack, free_port

    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--kills", type=int, default=2)
    parser.add_argument("--kill-seconds", type=float, default=20.0)
    parser.add_argument("--stops", type=int, default=1)
    parser.add_argument("--poison", type=int, default=5)
    parser.add_argument("--duplicates", type=int, default=10)
    args = parser.parse_args()
    plan = Plan(args.tasks, args.kills, args.kill_seconds, args.stops, args.poison, args.duplicates)
    stack = LocalStack(port=free_port(), log=lambda line: None)
    stack.start()
    try:
        report = run(stack, stack.api_key, plan)  # the stack's own key: the starter plan, 2/s burst 4
    finally:
        stack.stop()
    print()
    print(table(report, plan))


if __name__ == "__main__":
    main()
