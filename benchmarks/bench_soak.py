"""Soak: N sync requests of mixed routes and sizes against the local stack; each function
worker's resident memory after warm-up and at the end (leaks under load are a known complaint
about other background-removal servers). Prints a table; growth should stay within 5 %.

    .venv/bin/python benchmarks/bench_soak.py [--requests 500] [--concurrency 3]
"""

from __future__ import annotations

import argparse
import io
import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from alphacut_dev.data import EVAL
from PIL import Image

SIDES = (320, 800, 1600, 2400)
MODEL_FUNCTIONS = ("CutoutFunction", "SelfieFunction", "CostumeFunction", "TasksFunction")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def photos() -> dict[int, list[bytes]]:
    """Real photos at each side, JPEG."""
    out: dict[int, list[bytes]] = {}
    paths = (
        sorted((EVAL / "general" / "images").iterdir())[:3]
        + sorted((EVAL / "person" / "images").iterdir())[:3]
    )
    for side in SIDES:
        out[side] = []
        for path in paths:
            image = Image.open(path).convert("RGB")
            image = image.resize((side, side * image.height // image.width))
            buffer = io.BytesIO()
            image.save(buffer, "JPEG", quality=90)
            out[side].append(buffer.getvalue())
    return out


def requests_mix(count: int, images: dict[int, list[bytes]], seed: int = 7) -> list[tuple[str, str, dict]]:
    rng = random.Random(seed)
    routes = [
        ("/v1/cutout", "png"),
        ("/v1/cutout?output=mask", "mask"),
        ("/v1/cutout?format=webp&crop=1", "webp"),
        ("/v1/selfie", "selfie"),
        ("/v1/costume?output=mask", "costume"),
        ("/api/cutout/", "jd"),
        ("/v1/cutout?format=gif", "refused"),
        ("/v1/tasks/none", "poll"),
    ]
    mix = []
    for _ in range(count):
        path, label = rng.choice(routes)
        data = rng.choice(images[rng.choice(SIDES[:3] if "costume" in path else SIDES)])
        if label == "poll":
            mix.append((label, "GET", {"path": path}))
        else:
            content = "application/octet-stream" if label == "jd" else "image/jpeg"
            mix.append((label, "POST", {"path": path, "data": data, "headers": {"Content-Type": content}}))
    return mix


def main() -> None:
    from alphacut_dev.local.stack import LocalStack, free_port

    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=3)
    args = parser.parse_args()
    images = photos()
    stack = LocalStack(port=free_port(), log=lambda line: None)
    stack.start()
    apigateway = stack.client("apigateway")  # a roomy key: this measures memory, not the usage plan
    plan = apigateway.create_usage_plan(name="soak", throttle={"rateLimit": 1000.0, "burstLimit": 1000})
    key = apigateway.create_api_key(name="soak", value="alphacut-soak-key-000000000000000", enabled=True)
    apigateway.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
    statuses: Counter[tuple[str, int]] = Counter()

    def send(item):
        label, method, spec = item
        headers = {"x-api-key": "alphacut-soak-key-000000000000000", **spec.get("headers", {})}
        answer = requests.request(
            method, stack.url + spec["path"], data=spec.get("data"), headers=headers, timeout=120
        )
        statuses[(label, answer.status_code)] += 1

    try:
        with ThreadPoolExecutor(args.concurrency) as pool:
            list(pool.map(send, requests_mix(40, images, seed=1)))  # warm-up: every route, every size
        pids = {name: stack.workers[name].process.pid for name in MODEL_FUNCTIONS}
        after_warm = {name: rss_mb(pid) for name, pid in pids.items()}
        statuses.clear()
        started = time.time()
        with ThreadPoolExecutor(args.concurrency) as pool:
            list(pool.map(send, requests_mix(args.requests, images)))
        seconds = time.time() - started
        at_end = {name: rss_mb(pid) for name, pid in pids.items()}
        same = all(stack.workers[name].process.pid == pid for name, pid in pids.items())
    finally:
        stack.stop()
    print(
        f"\n{args.requests} sync requests, {args.concurrency} at a time, sides {SIDES}, in {seconds:.0f} s; "
        f"workers never restarted: {same}"
    )
    print(
        "answers: " + ", ".join(f"{label} {status}: {n}" for (label, status), n in sorted(statuses.items()))
    )
    print("\n| worker | RSS after warm-up (MB) | RSS at the end (MB) | growth |\n|---|---|---|---|")
    for name in MODEL_FUNCTIONS:
        growth = (at_end[name] - after_warm[name]) / after_warm[name] * 100
        print(f"| {name} | {after_warm[name]:.0f} | {at_end[name]:.0f} | {growth:+.1f} % |")


if __name__ == "__main__":
    main()
