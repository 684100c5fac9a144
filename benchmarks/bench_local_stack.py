"""Latency of the sync routes on the local stack at 1024x1024: init (model load at cold start),
first request, and warm requests; plus each function worker's peak memory (VmHWM), which is
what sizes the Lambda memory setting.

    .venv/bin/python benchmarks/bench_local_stack.py [--warm 5]
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from pathlib import Path

import requests
from alphacut_dev.data import EVAL
from alphacut_dev.local.stack import LocalStack, free_port
from PIL import Image


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--warm", type=int, default=5)
    parser.add_argument("--size", type=int, default=1024)
    args = parser.parse_args()
    photo = min((EVAL / "person" / "images").iterdir())
    buffer = io.BytesIO()
    Image.open(photo).convert("RGB").resize((args.size, args.size)).save(buffer, "JPEG", quality=92)
    body = buffer.getvalue()

    started = time.perf_counter()
    # every warm request runs its model (the same photo each time): the latency of a cutout, not of a
    # remembered one (bench_recent_outputs.py measures that)
    stack = LocalStack(port=free_port(), log=lambda line: None, extra_env={"ALPHACUT_RECENT_OUTPUTS_MB": "0"})
    stack.start()
    print(f"stack up in {time.perf_counter() - started:.1f} s")
    headers = {"x-api-key": stack.api_key, "Content-Type": "image/jpeg"}
    rows = []
    try:
        for route, function in (("/v1/cutout", "CutoutFunction"), ("/v1/selfie", "SelfieFunction")):
            times = []
            for i in range(1 + args.warm):
                if i:
                    time.sleep(0.6)  # stay under the default plan's 2 requests/s
                t0 = time.perf_counter()
                response = requests.post(
                    f"{stack.url}{route}?return=binary", data=body, headers=headers, timeout=120
                )
                times.append(time.perf_counter() - t0)
                assert response.status_code == 200, response.text
            worker = stack.workers[function]
            rows.append(
                (
                    route,
                    worker.init_ms / 1000,
                    times[0],
                    statistics.median(times[1:]),
                    peak_rss_mb(worker.process.pid),
                )
            )
    finally:
        stack.stop()
    print(f"\n{args.size}x{args.size} JPEG -> PNG cutout (return=binary), seconds")
    print(f"{'route':<12} {'init (load)':>12} {'first request':>14} {'warm median':>12} {'peak RSS MB':>12}")
    for route, init, first, warm, rss in rows:
        print(f"{route:<12} {init:>12.2f} {first:>14.2f} {warm:>12.2f} {rss:>12.0f}")


if __name__ == "__main__":
    main()
