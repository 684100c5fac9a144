"""Async task latency and throughput on the local stack: N tasks submitted at once (1024x1024
JPEG, PNG result), each polled until final. Prints submit->done percentiles and tasks/minute.

    .venv/bin/python benchmarks/bench_tasks.py [--tasks 50]
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from alphacut_dev.data import EVAL
from alphacut_dev.local.stack import LocalStack, free_port
from PIL import Image


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=50)
    args = parser.parse_args()
    buffer = io.BytesIO()
    Image.open(min((EVAL / "general" / "images").iterdir())).convert("RGB").resize((1024, 1024)).save(
        buffer, "JPEG"
    )
    photo = buffer.getvalue()
    stack = LocalStack(port=free_port(), log=lambda line: None)
    stack.start()
    apigateway = stack.client("apigateway")  # a roomy key: this measures the pipeline, not the usage plan
    plan = apigateway.create_usage_plan(name="bench", throttle={"rateLimit": 1000.0, "burstLimit": 1000})
    key = apigateway.create_api_key(name="bench", value="alphacut-bench-key-00000000000000", enabled=True)
    apigateway.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
    headers = {"x-api-key": "alphacut-bench-key-00000000000000"}
    try:

        def run_one(_):
            submitted = time.time()
            answer = requests.post(
                f"{stack.url}/v1/tasks",
                headers=headers,
                timeout=60,
                files={"image_file": ("p.jpg", photo, "image/jpeg")},
            ).json()["data"]
            while True:
                data = requests.get(
                    f"{stack.url}/v1/tasks/{answer['task_id']}", headers=headers, timeout=60
                ).json()["data"]
                if data["state"] == 1 or data["state"] < 0:
                    return data["state"], time.time() - submitted
                time.sleep(1.0)

        started = time.time()
        with ThreadPoolExecutor(max_workers=args.tasks) as pool:
            results = list(pool.map(run_one, range(args.tasks)))
        total = time.time() - started
    finally:
        stack.stop()
    latencies = sorted(seconds for _, seconds in results)
    states = [state for state, _ in results]
    print(
        f"{args.tasks} tasks submitted at once, 1024x1024 JPEG -> PNG, "
        "local stack (2 cores, model server on CPU)"
    )
    failed = sorted(s for s in states if s < 0)
    print(f"final states: {states.count(1)} done, {len(failed)} failed {failed if failed else ''}")
    print(
        f"submit -> done: min {latencies[0]:.1f} s, median {statistics.median(latencies):.1f} s, "
        f"p90 {latencies[int(len(latencies) * 0.9) - 1]:.1f} s, max {latencies[-1]:.1f} s"
    )
    print(f"throughput: {args.tasks / total * 60:.1f} tasks/minute ({total:.1f} s for all)")


if __name__ == "__main__":
    main()
