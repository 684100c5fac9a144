"""Benchmark: the model server (sagemaker/serve.py) as a whole, by batch size and concurrency.

For each ALPHACUT_MAX_BATCH in ``--batches`` the server is started afresh (its engine chosen as
everywhere: CUDA on a GPU, OpenVINO bf16 on a CPU with bf16, else onnxruntime), then ``--requests``
POST /invocations (eval photos, JPEG, type=auto, quality=fast) are sent from ``c`` client threads
for each concurrency ``c``, after a warm-up at the highest (so that each batch size has run once:
onnxruntime's CUDA provider searches cuDNN's algorithms at a shape's first run). Printed: images a
second, p50/p99 latency (request sent to matte PNG received: decode, wait for the batch, model,
PNG), memory (the GPU's used memory by nvidia-smi where there is one, else the server's peak RSS)
and the server's own stage times (its answers' X-Alphacut-Timings).

``--root DIR`` runs the server of another checkout (its sagemaker/serve.py and layers/core, this
checkout's models): the code before a change, measured in the same run as the code after it.

    .venv/bin/python benchmarks/bench_gpu_server.py [--batches 1 4 8 16] [--concurrency 1 8 32]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from alphacut_dev.data import EVAL
from bench_gpu import gpu_memory_mb

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A free port (alphacut_dev.local.stack has one too, but imports boto3: a GPU machine may lack it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(max_batch: int, window_ms: float, root: Path = ROOT) -> tuple[subprocess.Popen, str, str]:
    port = free_port()
    env = {**os.environ, "ALPHACUT_MAX_BATCH": str(max_batch), "ALPHACUT_BATCH_WINDOW_MS": str(window_ms)}
    env.setdefault("ALPHACUT_MODELS_DIR", str(ROOT / "layers" / "models"))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root / "layers" / "core"), env.get("PYTHONPATH")]))
    log = tempfile.NamedTemporaryFile("w+", prefix="serve-", suffix=".log")  # noqa: SIM115 - closed with the server
    process = subprocess.Popen(
        [sys.executable, str(root / "sagemaker" / "serve.py"), "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if requests.get(url + "/ping", timeout=1).status_code == 200:
                lines = Path(log.name).read_text().splitlines()
                return (
                    process,
                    url,
                    next((line for line in lines if line.startswith("alphacut model server")), ""),
                )
        except requests.ConnectionError:
            time.sleep(0.5)
    process.kill()
    raise RuntimeError("the server did not start: " + Path(log.name).read_text()[-3000:])


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def load(
    url: str, photos: list[bytes], concurrency: int, count: int, stages: list[dict] | None = None
) -> tuple[float, list[float]]:
    """Images a second and the sorted latencies; ``stages`` gets each answer's server-side times."""

    def one(index: int) -> float:
        started = time.perf_counter()
        answer = requests.post(
            url + "/invocations",
            data=photos[index % len(photos)],
            headers={"Content-Type": "image/jpeg", "X-Amzn-SageMaker-Custom-Attributes": "quality=fast"},
            timeout=600,
        )
        answer.raise_for_status()
        if stages is not None:
            stages.append(json.loads(answer.headers.get("X-Alphacut-Timings", "{}")))
        return time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        latencies = sorted(pool.map(one, range(count)))
    return count / (time.perf_counter() - started), latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--requests", type=int, default=32, help="per run (at least 2x the concurrency)")
    parser.add_argument("--window-ms", type=float, default=5.0)
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout whose server runs")
    args = parser.parse_args()
    photos = [path.read_bytes() for path in sorted((EVAL / "general" / "images").iterdir())]
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; photos 854x480 JPEG")
    for max_batch in args.batches:
        process, url, banner = start_server(max_batch, args.window_ms, args.root)
        if max_batch == args.batches[0]:
            print(f"server: {banner}")
            print(
                "| max batch | concurrency | images/s | p50 s | p99 s | memory MB "
                "| server ms p50: decode / matte / encode |"
            )
            print("|---:|---:|---:|---:|---:|---:|---|")
        try:
            top = max(args.concurrency)
            load(url, photos, top, 2 * top)  # warm: every batch size once
            for concurrency in args.concurrency:
                count = max(args.requests, 2 * concurrency)
                stages: list[dict] = []
                rate, latencies = load(url, photos, concurrency, count, stages)
                split = " / ".join(
                    f"{statistics.median(s.get(name, 0.0) for s in stages):.0f}"
                    for name in ("decode", "inference", "encode")
                )
                memory = gpu_memory_mb() or peak_rss_mb(process.pid)
                p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
                print(
                    f"| {max_batch} | {concurrency} | {rate:.2f} | {statistics.median(latencies):.2f} | "
                    f"{p99:.2f} | {memory:.0f} | {split} |"
                )
        finally:
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
