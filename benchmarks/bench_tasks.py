"""Async task throughput on the local stack against the model-bound rate, in one run.

N photos (the general eval images, cycled, each 1024x1024 JPEG) are submitted at once as tasks
(PNG result) and each is polled every second until final. Beside the tasks' rate it prints the
model-bound rate: the same photos through ``alphacut remove`` (one process, the same pipeline, no
AWS) on the same machine, measured first. The ratio is the share of the machine's model
throughput that the async path delivers (queue, dispatch, Step Functions, S3, DynamoDB included).

    .venv/bin/python benchmarks/bench_tasks.py [--tasks 50] [--cold-threshold N] [--segment-instances 4]

``--cold-threshold`` sets the stack's GpuBacklogThreshold (the CPU-while-cold rule): 0 sends
every task to the endpoint path, a large value keeps them all on the CPU path.
``--segment-instances`` is how many warm instances the local stack gives the Segment function
(Lambda gives it up to the template's SegmentConcurrency, 100); 1 serialises the CPU path. Each
instance runs the model on cores / instances threads (ALPHACUT_THREADS), as each Lambda instance
has its own vCPUs.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from alphacut_dev.data import EVAL
from alphacut_dev.local.stack import LocalStack, free_port
from PIL import Image

BENCH_KEY = "alphacut-bench-key-00000000000000"


def photos(count: int) -> list[bytes]:
    sources = sorted((EVAL / "general" / "images").iterdir())
    out = []
    for index in range(count):
        buffer = io.BytesIO()
        Image.open(sources[index % len(sources)]).convert("RGB").resize((1024, 1024)).save(buffer, "JPEG")
        out.append(buffer.getvalue())
    return out


def model_bound_rate(images: list[bytes]) -> float:
    """Photos a minute through ``alphacut remove`` (the whole process, model load included)."""
    with tempfile.TemporaryDirectory() as folder:
        inputs = Path(folder) / "in"
        inputs.mkdir()
        for index, data in enumerate(images):
            (inputs / f"p{index:04d}.jpg").write_bytes(data)
        started = time.perf_counter()
        subprocess.run(
            [
                str(Path(sys.executable).with_name("alphacut")),
                "remove",
                str(inputs),
                "-o",
                str(Path(folder) / "out"),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return len(images) / (time.perf_counter() - started) * 60


def run_tasks(stack: LocalStack, images: list[bytes]) -> tuple[list[tuple[int, float]], float]:
    headers = {"x-api-key": BENCH_KEY}

    def run_one(data: bytes) -> tuple[int, float]:
        submitted = time.time()
        response = requests.post(
            f"{stack.url}/v1/tasks",
            headers=headers,
            timeout=60,
            files={"image_file": ("p.jpg", data, "image/jpeg")},
        )
        if response.status_code != 200:
            raise RuntimeError(f"submission answered {response.status_code}: {response.text[:200]}")
        answer = response.json()["data"]
        while True:
            time.sleep(1.0)
            state = requests.get(
                f"{stack.url}/v1/tasks/{answer['task_id']}", headers=headers, timeout=60
            ).json()["data"]["state"]
            if state == 1 or state < 0:
                return state, time.time() - submitted

    started = time.time()
    with ThreadPoolExecutor(max_workers=len(images)) as pool:
        results = list(pool.map(run_one, images))
    return results, time.time() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--cold-threshold", type=int, default=None)
    parser.add_argument(
        "--segment-instances",
        type=int,
        default=os.cpu_count() or 1,
        help="warm instances of the Segment function (Lambda runs it on up to SegmentConcurrency); "
        "default one per core, as each Lambda instance has its own vCPUs",
    )
    args = parser.parse_args()
    images = photos(args.tasks)
    bound = model_bound_rate(images)
    # the instances share the machine's cores, as Lambda instances each have their own vCPUs
    threads = max(1, (os.cpu_count() or 1) // args.segment_instances)
    stack = LocalStack(
        port=free_port(),
        log=lambda line: None,
        # the task API's function too: Lambda scales it with the 50 submissions at once, where one
        # instance would queue them past API Gateway's 29 s
        instances={"SegmentFunction": args.segment_instances, "TasksFunction": 4},
        # the photos are cycled: each task runs its model, as the model-bound rate's calls do
        extra_env={"ALPHACUT_THREADS": str(threads), "ALPHACUT_RECENT_OUTPUTS_MB": "0"},
    )
    if args.cold_threshold is not None:
        stack.parameters = {**stack.parameters, "GpuBacklogThreshold": str(args.cold_threshold)}
    stack.start()
    apigateway = stack.client("apigateway")  # a roomy key: this measures the pipeline, not the usage plan
    plan = apigateway.create_usage_plan(name="bench", throttle={"rateLimit": 1000.0, "burstLimit": 1000})
    key = apigateway.create_api_key(name="bench", value=BENCH_KEY, enabled=True)
    apigateway.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
    try:
        results, total = run_tasks(stack, images)
    finally:
        stack.stop()
    latencies = sorted(seconds for _, seconds in results)
    states = [state for state, _ in results]
    failed = sorted(s for s in states if s < 0)
    rate = args.tasks / total * 60
    print(
        f"{args.tasks} photos (1024x1024 JPEG -> PNG cutout), {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, {args.segment_instances} Segment instance(s) of {threads} thread(s), "
        f"engine {os.environ.get('ALPHACUT_ENGINE', 'auto')}"
    )
    print(f"final states: {states.count(1)} done, {len(failed)} failed {failed if failed else ''}")
    print(
        f"submit -> final: min {latencies[0]:.1f} s, median {statistics.median(latencies):.1f} s, "
        f"p90 {latencies[int(len(latencies) * 0.9) - 1]:.1f} s, max {latencies[-1]:.1f} s"
    )
    print("| path | photos/minute | share of model-bound |")
    print("|---|---:|---:|")
    print(f"| `alphacut remove` (model-bound) | {bound:.1f} | 1.00 |")
    print(f"| tasks on the local stack | {rate:.1f} | {rate / bound:.2f} |")


if __name__ == "__main__":
    main()
