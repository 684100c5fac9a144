"""Capacity and cost model of the async path: a discrete-event simulation (SimPy) of four workloads
on four designs, and the CPU-while-cold threshold the cost model justifies.

Workloads: a trickle (a photo a minute for a day), a catalog (10,000 photos put at once), a busy
store day (1,000,000 photos on a day's curve), a burst (100,000 at once). Designs: CPU Lambda only
(the Segment function at the template's reserved concurrency); the GPU endpoint always on (one
instance, the old design); the GPU endpoint scaled to zero; the GPU endpoint scaled to zero with
the CPU while it is cold. ``--segment-concurrency`` runs them all at another reservation.

What a task does, as the stack does it: the task queue, five dispatchers (MaximumConcurrency) that
start executions and choose the path (``alphacut.aws.tasks.dispatch.PathChooser``: the GPU when it has
an instance or when more than the threshold wait, else the CPU), then either the Segment function
(CPU) or the endpoint's queue, an instance, and the Compose step (which shares the Segment
function's concurrency). The endpoint scales as the template says: a step policy on
HasBacklogWithoutCapacity adds the first instance, target tracking on the backlog per instance
adds more (3 one-minute datapoints above target, 120 s cooldown) and removes them (15 datapoints
below, 600 s cooldown), each new instance serving after the scale-from-zero time.

Inputs (each with its source):
- CPU Lambda time per photo at 3008 MB (the template's TaskMemorySize, what a new account allows),
  on the template's ModelEngine (int8; ``quality=auto`` mirrors an object only where the first
  matte is unsure, 0.27 of the eval's general test photos): measured on a CPU with AVX2 alone (what
  Lambda promises), ``bench_startup.py --sizing`` for a 1 MP cutout at 3008 MB: 1483 ms once and
  2765 ms with the mirror (``--quality best``), so 1483 + 0.27 x 1282 ms a photo on average;
  docs/benchmarks.md), plus composing a 1024x1024 task result (0.25 s at 2 vCPU, scaled to 1.70).
- GPU instance time per photo: 0.049 s, measured on an NVIDIA H200 machine (16 Xeon cores;
  ``bench_gpu_server.py``, docs/benchmarks.md "2b. The collapse found"): the container's server
  answers 30.1 photos a second at quality=fast and concurrency 8 (0.033 s a photo; one batch shape
  per session, numpy's BLAS on one thread), and quality=auto on a GPU runs the mirror too, which
  the eval on the same GPU times at 1.47x fast: 0.033 x 1.47 = 0.049 s. No T4 was measured: an
  ``ml.g4dn.xlarge`` (a T4, 4 vCPUs) is slower in its model and has a quarter of the cores for the
  pictures' CPU work (4 to 5 cores busy at 33 photos a second here), so this is its lower bound.
- Prices: us-east-1 list prices, in ``Prices`` with their pages.

    .venv/bin/python benchmarks/bench_capacity.py [--gpu-seconds 0.049] [--quick]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
from collections import deque
from dataclasses import dataclass, field, replace

import simpy


@dataclass(frozen=True)
class Prices:
    # https://aws.amazon.com/lambda/pricing/ (x86, us-east-1)
    lambda_gb_second: float = 0.0000166667
    lambda_request: float = 0.20 / 1e6
    # https://aws.amazon.com/step-functions/pricing/ (standard workflows)
    state_transition: float = 0.025 / 1000
    # https://aws.amazon.com/sqs/pricing/ (standard queue, per request; send, receive, delete)
    sqs_request: float = 0.40 / 1e6
    # https://aws.amazon.com/sns/pricing/ (publish; SNS -> SQS deliveries are free)
    sns_publish: float = 0.50 / 1e6
    # https://aws.amazon.com/s3/pricing/ (S3 Standard)
    s3_put: float = 0.005 / 1000
    s3_get: float = 0.0004 / 1000
    # https://aws.amazon.com/dynamodb/pricing/on-demand/
    dynamodb_write: float = 0.625 / 1e6
    dynamodb_read: float = 0.125 / 1e6
    # https://aws.amazon.com/sagemaker/pricing/ (ml.g4dn.xlarge, real-time and async inference)
    gpu_instance_hour: float = 0.7364


@dataclass(frozen=True)
class Capacity:
    # Segment at 3008 MB (1.70 vCPU), AVX2 alone: int8 once, the mirror for 0.27 of objects
    # (bench_startup --sizing, once and --quality best) + compose 1024^2 (0.25 s at 2 vCPU)
    cpu_seconds: float = 1.483 + 0.27 * (2.765 - 1.483) + 0.25 * 2.0 / 1.70
    compose_seconds: float = 0.35 * 2.0 / 1.70  # Compose: decode, matte resize, compose, encode
    task_memory_gb: float = 3.008  # template.yaml: TaskMemorySize (Segment and Compose)
    gpu_seconds: float = 0.049  # measured per photo on an H200 machine's server (see the docstring)
    segment_concurrency: int = 100  # template.yaml: SegmentConcurrency (the Segment function's reservation)
    dispatchers: int = 5  # template.yaml: DispatchTasks' MaximumConcurrency
    dispatch_seconds: float = 0.05  # one StartExecution and the task's GetItem
    overhead_seconds: float = 1.0  # the other states (DynamoDB writes, the charge) and SQS delivery
    # "several minutes" to scale out from zero (AWS's async inference guide): the alarm's minute
    # and an instance's provisioning and container start
    warm_up_seconds: float = 360.0
    max_instances: int = 4  # template.yaml: GpuMaxInstances
    backlog_per_instance: int = 200  # template.yaml: GpuBacklogPerInstance
    request_ttl: float = 21600.0  # template.yaml: GpuRequestTtlSeconds
    scale_out_datapoints: int = 3  # target tracking's scale-out alarm (AWS defaults)
    scale_in_datapoints: int = 15  # target tracking's scale-in alarm (AWS defaults)
    scale_out_cooldown: float = 120.0
    scale_in_cooldown: float = 600.0


@dataclass(frozen=True)
class Design:
    name: str
    gpu: str  # "none", "always-on", "scale-to-zero"
    cpu_while_cold: bool = False
    segment_concurrency: int | None = None  # None: the template's


DESIGNS = [
    Design("CPU Lambda only", "none"),
    Design("GPU always on (1 instance)", "always-on"),
    Design("GPU scaled to zero", "scale-to-zero"),
    Design("GPU scaled to zero + CPU while cold", "scale-to-zero", cpu_while_cold=True),
]

# a store's day: share of the day's photos per hour (UTC-agnostic shape: night low, evening peak)
DAY_CURVE = [1, 0.6, 0.4, 0.3, 0.3, 0.4, 0.8, 1.4, 2.0, 2.4, 2.6, 2.7, 2.8, 2.7, 2.6, 2.6, 2.7, 2.9,
             3.2, 3.5, 3.6, 3.2, 2.4, 1.6]  # fmt: skip


def arrivals(workload: str, scale: float, rng: random.Random) -> list[float]:
    if workload == "trickle":
        return [60.0 * i for i in range(int(1440 * scale))]
    if workload == "catalog":
        return [0.0] * int(10_000 * scale)
    if workload == "burst":
        return [0.0] * int(100_000 * scale)
    total, weights = 1_000_000 * scale, sum(DAY_CURVE)
    times: list[float] = []
    for hour, weight in enumerate(DAY_CURVE):
        count = round(total * weight / weights)
        times += sorted(hour * 3600 + rng.random() * 3600 for _ in range(count))
    return times


WINDOWS = {"trickle": 86400.0, "busy day": 86400.0, "catalog": 3600.0, "burst": 3600.0}


@dataclass
class Run:
    """One workload on one design: the simulated stack and what it counted."""

    env: simpy.Environment
    design: Design
    capacity: Capacity
    threshold: int
    queue: deque = field(default_factory=deque)  # the task queue (arrival times)
    endpoint: deque = field(default_factory=deque)  # the endpoint's queue (arrival, enqueued at)
    latencies: list[float] = field(default_factory=list)
    expired: int = 0
    on_gpu: int = 0
    instances: list[dict] = field(default_factory=list)  # {"since": t, "ready": t, "retiring": bool}
    instance_seconds: float = 0.0
    peak_instances: int = 0
    peak_cpu: int = 0
    dispatching: int = 0

    def __post_init__(self) -> None:
        concurrency = self.design.segment_concurrency or self.capacity.segment_concurrency
        self.cpu = simpy.Resource(self.env, capacity=concurrency)
        self.work = simpy.Store(self.env)  # wakes idle instances
        self.wake = self.env.event()
        self.messages = self.env.event()

    # ---- task queue and dispatch --------------------------------------------------------------
    def arrive(self, times: list[float]):
        for at in times:
            if at > self.env.now:
                yield self.env.timeout(at - self.env.now)
            self.queue.append(self.env.now)
            if not self.messages.triggered:
                self.messages.succeed()

    def dispatcher(self):
        while True:
            if not self.queue:
                self.messages = self.env.event() if self.messages.triggered else self.messages
                yield self.messages
                continue
            batch = [self.queue.popleft() for _ in range(min(10, len(self.queue)))]
            self.dispatching += len(batch)
            for arrived in batch:
                yield self.env.timeout(self.capacity.dispatch_seconds)
                path = self.path()
                self.dispatching -= 1
                if path == "gpu":
                    self.on_gpu += 1
                    self.endpoint.append((arrived, self.env.now))
                    if not self.wake.triggered:
                        self.wake.succeed()
                else:
                    self.env.process(self.on_cpu(arrived))

    def path(self) -> str:
        if self.design.gpu == "none":
            return "cpu"
        if not self.design.cpu_while_cold or self.ready_instances() > 0:
            return "gpu"
        return "gpu" if len(self.queue) + self.dispatching > self.threshold else "cpu"

    # ---- the two paths --------------------------------------------------------------------------
    def on_cpu(self, arrived: float, seconds: float | None = None):
        with self.cpu.request() as slot:
            yield slot
            self.peak_cpu = max(self.peak_cpu, self.cpu.count)
            yield self.env.timeout(seconds if seconds is not None else self.capacity.cpu_seconds)
        self.latencies.append(self.env.now + self.capacity.overhead_seconds - arrived)

    def ready_instances(self) -> int:
        return sum(1 for i in self.instances if i["ready"] <= self.env.now and not i["retiring"])

    def instance(self, record: dict):
        yield self.env.timeout(max(0.0, record["ready"] - self.env.now))
        while not record["retiring"]:
            if not self.endpoint:
                self.wake = self.env.event() if self.wake.triggered else self.wake
                yield self.wake | self.env.timeout(60)
                continue
            arrived, enqueued = self.endpoint.popleft()
            if self.env.now - enqueued > self.capacity.request_ttl:
                self.expired += 1
                continue
            yield self.env.timeout(self.capacity.gpu_seconds)
            self.env.process(self.on_cpu(arrived, self.capacity.compose_seconds))
        self.retire(record)

    def add_instance(self, ready_in: float) -> None:
        record = {"since": self.env.now, "ready": self.env.now + ready_in, "retiring": False}
        self.instances.append(record)
        self.peak_instances = max(self.peak_instances, len(self.instances))
        self.env.process(self.instance(record))

    def retire(self, record: dict) -> None:
        if record in self.instances:
            self.instances.remove(record)
            self.instance_seconds += self.env.now - record["since"]

    # ---- the endpoint's scaling (one-minute CloudWatch datapoints) ------------------------------
    def scaler(self):
        above = below = 0
        last_out = last_in = -1e9
        capacity = self.capacity
        while True:
            yield self.env.timeout(60)
            active = [i for i in self.instances if not i["retiring"]]
            backlog = len(self.endpoint)
            if self.design.gpu == "always-on":
                continue
            if not active:
                if backlog:  # HasBacklogWithoutCapacity -> the step policy adds one
                    self.add_instance(capacity.warm_up_seconds)
                    last_out = self.env.now
                continue
            per_instance = backlog / len(active)
            above = above + 1 if per_instance > capacity.backlog_per_instance else 0
            below = below + 1 if per_instance < 0.9 * capacity.backlog_per_instance else 0
            if (
                above >= capacity.scale_out_datapoints
                and self.env.now - last_out >= capacity.scale_out_cooldown
            ):
                wanted = min(
                    capacity.max_instances,
                    math.ceil(len(active) * per_instance / capacity.backlog_per_instance),
                )
                for _ in range(wanted - len(active)):
                    self.add_instance(capacity.warm_up_seconds)
                last_out, above = self.env.now, 0
            if below >= capacity.scale_in_datapoints and self.env.now - last_in >= capacity.scale_in_cooldown:
                wanted = math.ceil(len(active) * per_instance / capacity.backlog_per_instance)
                for record in active[wanted:]:
                    record["retiring"] = True
                    if record["ready"] > self.env.now or not self.endpoint:
                        self.retire(record)  # idle or still starting: gone at once
                last_in, below = self.env.now, 0


@dataclass
class Outcome:
    workload: str
    design: Design
    photos: int
    cost: float
    latencies: list[float]
    expired: int
    peak_instances: int
    peak_cpu: int
    on_gpu: int

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


# Step Functions state transitions per execution (every state entered is billed), as counted on
# the local stack from the execution history of each kind of task on each path:
# tests/e2e/test_tasks.py::test_each_kind_of_task_takes_the_transitions_the_cost_model_counts
# fails when the state machine and these numbers part. (Before the Finish and FailTask steps: 9
# for a done task on the CPU path with a callback, 10 on the GPU path.)
TRANSITIONS = {
    "cpu": {"done": 4, "done_with_callback": 4, "failed": 4},
    "gpu": {"done": 5, "done_with_callback": 5, "failed": 4},  # an image the endpoint refuses: no Compose
}


def per_task_cost(prices: Prices, capacity: Capacity, gpu: bool) -> float:
    """Everything but the GPU instance: Lambda, Step Functions, SQS, SNS, S3, DynamoDB."""
    gb_seconds = 0.512 * 0.3 + 0.256 * capacity.dispatch_seconds + 0.256 * 0.1  # API, dispatch, finish
    requests, transitions = 3, TRANSITIONS["gpu" if gpu else "cpu"]["done_with_callback"]
    puts, gets, writes, reads, sqs, sns = 2, 2, 9, 1, 3, 0
    if gpu:
        gb_seconds += 0.512 * 0.2 + 0.256 * 0.05 + capacity.task_memory_gb * capacity.compose_seconds
        requests += 3
        puts, gets, writes, reads, sqs, sns = puts + 1, gets + 3, writes + 2, reads + 1, sqs + 3, 1
    else:
        gb_seconds += capacity.task_memory_gb * capacity.cpu_seconds
        requests += 1
    return (
        gb_seconds * prices.lambda_gb_second
        + requests * prices.lambda_request
        + transitions * prices.state_transition
        + sqs * prices.sqs_request
        + sns * prices.sns_publish
        + puts * prices.s3_put
        + gets * prices.s3_get
        + writes * prices.dynamodb_write
        + reads * prices.dynamodb_read
    )


def break_even_backlog(prices: Prices, capacity: Capacity) -> int:
    """The backlog above which waking the endpoint costs less than running it all on the CPU: a
    wake bills the scale-from-zero time and the idle time before scale-in (15 minutes of
    datapoints) on one instance; each photo on the GPU saves the difference of the two paths."""
    wake = prices.gpu_instance_hour * (capacity.warm_up_seconds + capacity.scale_in_datapoints * 60) / 3600
    gpu_photo = per_task_cost(prices, capacity, True) + prices.gpu_instance_hour * capacity.gpu_seconds / 3600
    saving = per_task_cost(prices, capacity, False) - gpu_photo
    return math.ceil(wake / saving) if saving > 0 else 10**9


def simulate(
    workload: str, design: Design, capacity: Capacity, prices: Prices, threshold: int, scale: float
) -> Outcome:
    env = simpy.Environment()
    run = Run(env, design, capacity, threshold)
    times = arrivals(workload, scale, random.Random(7))
    env.process(run.arrive(times))
    for _ in range(capacity.dispatchers):
        env.process(run.dispatcher())
    if design.gpu == "always-on":
        run.add_instance(0.0)
    if design.gpu != "none":
        env.process(run.scaler())
    horizon = max(WINDOWS[workload] * scale, times[-1] + 1)
    env.run(until=horizon)
    while len(run.latencies) + run.expired < len(times):  # the work that outlasts the window
        env.run(until=env.now + 3600)
    if design.gpu == "scale-to-zero":  # the idle tail until the endpoint is back to zero
        while run.instances and env.now < horizon * 50:
            env.run(until=env.now + 600)
    for record in list(run.instances):  # billed until now
        run.retire(record)
    gpu_tasks, cpu_tasks = run.on_gpu, len(times) - run.on_gpu
    cost = (
        gpu_tasks * per_task_cost(prices, capacity, True)
        + cpu_tasks * per_task_cost(prices, capacity, False)
        + run.instance_seconds / 3600 * prices.gpu_instance_hour
    )
    return Outcome(
        workload,
        design,
        len(times),
        cost,
        run.latencies,
        run.expired,
        run.peak_instances,
        run.peak_cpu,
        gpu_tasks,
    )


def duration(seconds: float) -> str:
    if math.isnan(seconds):
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gpu-seconds", type=float, default=Capacity.gpu_seconds)
    parser.add_argument("--cpu-seconds", type=float, default=Capacity.cpu_seconds)
    parser.add_argument("--segment-concurrency", type=int, default=Capacity.segment_concurrency)
    parser.add_argument("--quick", action="store_true", help="a tenth of each workload (a smoke run)")
    args = parser.parse_args()
    prices = Prices()
    capacity = replace(
        Capacity(),
        gpu_seconds=args.gpu_seconds,
        cpu_seconds=args.cpu_seconds,
        segment_concurrency=args.segment_concurrency,
    )
    threshold = break_even_backlog(prices, capacity)
    scale = 0.1 if args.quick else 1.0
    print(
        f"inputs: CPU {capacity.cpu_seconds:.2f} s/photo at {capacity.task_memory_gb * 1000:.0f} MB "
        "(measured, bench_startup.py), "
        f"GPU {capacity.gpu_seconds:.3f} s/photo (measured on an H200 machine: a g4dn.xlarge's lower bound), "
        f"scale from zero {capacity.warm_up_seconds / 60:.0f} min, "
        f"${prices.gpu_instance_hour}/instance-hour, Segment function {capacity.segment_concurrency} "
        f"concurrent, at most {capacity.max_instances} instances"
    )
    cpu_photo = per_task_cost(prices, capacity, False)
    gpu_photo = per_task_cost(prices, capacity, True)
    gpu_photo += prices.gpu_instance_hour * capacity.gpu_seconds / 3600
    print(
        f"per photo: CPU path ${cpu_photo * 1000:.4f}/1000, "
        f"GPU path (busy instance) ${gpu_photo * 1000:.4f}/1000; "
        f"break-even backlog for waking the endpoint: {threshold} photos (GpuBacklogThreshold)"
    )
    print()
    print(
        "| workload | design | $ per 1000 photos | p50 | p95 | p99 | peak instances "
        "| peak Lambda (Segment) | on GPU |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    scores: dict[str, list[float]] = {d.name: [] for d in DESIGNS}
    p99s: dict[str, list[float]] = {d.name: [] for d in DESIGNS}
    for workload in ("trickle", "catalog", "busy day", "burst"):
        outcomes = [simulate(workload, design, capacity, prices, threshold, scale) for design in DESIGNS]
        best = min(o.cost / o.photos for o in outcomes)
        for o in outcomes:
            scores[o.design.name].append(o.cost / o.photos / best)
            p99s[o.design.name].append(o.percentile(0.99))
            expired = f" ({o.expired} expired)" if o.expired else ""
            print(
                f"| {workload} | {o.design.name} | {o.cost / o.photos * 1000:.3f} "
                f"| {duration(o.percentile(0.5))} | {duration(o.percentile(0.95))} "
                f"| {duration(o.percentile(0.99))}{expired} | {o.peak_instances} "
                f"| {o.peak_cpu} | {o.on_gpu / o.photos:.0%} |"
            )
    print()
    print("| design | worst cost vs the cheapest design, over the workloads | worst p99 |")
    print("|---|---:|---:|")
    for name, ratios in scores.items():
        print(f"| {name} | {max(ratios):.2f}x | {duration(max(p99s[name]))} |")
    recommended = min(scores, key=lambda n: (max(scores[n]), max(p99s[n])))
    print(f"\nrecommended (least worst-case cost ratio, then p99): {recommended}")
    print(f"mean p99 over the workloads: {duration(statistics.mean(p99s[recommended]))}")


if __name__ == "__main__":
    main()
