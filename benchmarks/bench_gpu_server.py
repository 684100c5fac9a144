"""Benchmark: the model server (sagemaker/serve.py) as a whole, by batch size and concurrency.

For each ALPHACUT_MAX_BATCH in ``--batches`` the server is started afresh (its engine chosen as
everywhere: CUDA on a GPU, OpenVINO bf16 on a CPU with bf16, else onnxruntime), then ``--requests``
POST /invocations (eval photos, JPEG, type=auto, quality=fast) are sent from ``c`` client threads
for each concurrency ``c``, after a warm-up at the highest (so that each batch size has run once:
onnxruntime's CUDA provider searches cuDNN's algorithms at a shape's first run). Printed: images a
second, p50/p99 latency (request sent to matte PNG received: decode, wait for the batch, model,
PNG), memory (the GPU's used memory by nvidia-smi where there is one, else the server's peak RSS)
and the server's own stage times (its answers' X-Alphacut-Timings).

``--workers 1 2 4`` repeats each batch size with that many server processes
(SAGEMAKER_MODEL_SERVER_WORKERS); the column "cores busy" is the server's CPU seconds (all its
processes) over the run's wall time: 1.0 where one interpreter lock holds everything, the cores
where the work spreads. ``--samples N`` takes N thread dumps of one worker with py-spy (on PATH)
during the highest concurrency's run and prints where its threads were, most often first.

``--root DIR`` runs the server of another checkout (its sagemaker/serve.py and layers/core, this
checkout's models): the code before a change, measured in the same run as the code after it;
``--root`` twice or more runs each in turn, one table.

``--sleep-model-ms MS`` replaces ISNet by a sleep of MS a batch run (``serve_sleeping_model.py``;
real ISNet mattes of eval photos, made before the servers start, come back in turn): the server's
own CPU work with a GPU's model time, measured on any machine. "CPU ms a photo" is the server's
CPU seconds over the photos answered.

    .venv/bin/python benchmarks/bench_gpu_server.py [--batches 1 4 8 16] [--concurrency 1 8 32]
        [--workers 1 2] [--samples 20] [--sleep-model-ms 14 --root OLD_CHECKOUT --root .]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import requests
from alphacut.models.engines import describe_cpu
from alphacut_dev.data import EVAL
from bench_gpu import gpu_memory_mb

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A free port (alphacut_dev.local.stack has one too, but imports boto3: a GPU machine may lack it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    max_batch: int, window_ms: float, root: Path = ROOT, workers: int = 1, sleeping: dict | None = None
) -> tuple[subprocess.Popen, str, str]:
    """``sleeping``: the environment of a sleeping ISNet (``serve_sleeping_model.py``); None: the real one."""
    port = free_port()
    env = {
        **os.environ,
        **(sleeping or {}),
        "ALPHACUT_MAX_BATCH": str(max_batch),
        "ALPHACUT_BATCH_WINDOW_MS": str(window_ms),
        "SAGEMAKER_MODEL_SERVER_WORKERS": str(workers),
    }
    env.setdefault("ALPHACUT_MODELS_DIR", str(ROOT / "layers" / "models"))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root / "layers" / "core"), env.get("PYTHONPATH")]))
    log = tempfile.NamedTemporaryFile("w+", prefix="serve-", suffix=".log")  # noqa: SIM115 - closed with the server
    launcher = [str(Path(__file__).with_name("serve_sleeping_model.py"))] if sleeping else []
    process = subprocess.Popen(
        [
            sys.executable,
            *launcher,
            str(root / "sagemaker" / "serve.py"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        log_lines = Path(log.name).read_text().splitlines()
        banners = [line for line in log_lines if line.startswith("alphacut model server")]
        try:
            if requests.get(url + "/ping", timeout=1).status_code == 200 and len(banners) >= workers:
                return process, url, banners[0]
        except requests.RequestException:  # refused, or queued until a worker has its models
            pass
        time.sleep(0.5)
    process.kill()
    raise RuntimeError("the server did not start: " + Path(log.name).read_text()[-3000:])


def server_processes(pid: int) -> list[int]:
    """The server's process and its workers (a single-process server: itself alone)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [pid, *map(int, children)]


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time the processes have used, in seconds."""
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def thread_samples(pid: int, count: int, stop: threading.Event) -> Counter:
    """Where ``pid``'s threads were over ``count`` py-spy dumps: (thread, state, the innermost
    named frame in the innermost Python frame of
    alphacut's own, else of any) -> how many times."""
    seen: Counter = Counter()
    for _ in range(count):
        if stop.is_set():
            break
        dump = subprocess.run(
            ["py-spy", "dump", "--native", "--pid", str(pid)],
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
        for block in dump.split("\nThread ")[1:]:
            lines = block.splitlines()
            state = lines[0].split("(", 1)[-1].split(")", 1)[0]
            name = (
                lines[0].rsplit('"', 2)[-2].split(" (")[0].rstrip("0123456789-") if '"' in lines[0] else "?"
            )
            frames = [line.strip() for line in lines[1:] if line.strip()]
            native = next((f.split(" (")[0] for f in frames if not f.startswith("0x")), "?")
            ours = [f for f in frames if "alphacut/" in f or "serve.py" in f]
            python = next(iter(ours or [f for f in frames if ".py:" in f]), "")
            seen[(name, state, f"{native} in {python}" if python and native not in python else native)] += 1
        time.sleep(0.2)
    return seen


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
    parser.add_argument(
        "--root", type=Path, action="append", help="the checkout whose server runs (again: each in turn)"
    )
    parser.add_argument("--workers", type=int, nargs="+", default=[1], help="server processes")
    parser.add_argument("--samples", type=int, default=0, help="py-spy thread dumps at the top concurrency")
    parser.add_argument("--sleep-model-ms", type=float, help="ISNet replaced by a sleep this long a run")
    args = parser.parse_args()
    roots = args.root or [ROOT]
    if args.samples and not shutil.which("py-spy"):
        print("no py-spy on PATH: no thread samples")
        args.samples = 0
    photo_paths = sorted((EVAL / "general" / "images").iterdir())
    photos = [path.read_bytes() for path in photo_paths]
    sleeping = None
    if args.sleep_model_ms is not None:
        mattes = tempfile.NamedTemporaryFile(prefix="mattes-", suffix=".npy")  # noqa: SIM115 - for the run
        np.save(mattes, real_mattes(photo_paths[:: max(1, len(photo_paths) // 8)][:8]))
        mattes.flush()
        sleeping = {"ALPHACUT_SLEEP_MATTES": mattes.name, "ALPHACUT_SLEEP_MODEL_MS": str(args.sleep_model_ms)}
        print(f"ISNet replaced by a sleep of {args.sleep_model_ms:g} ms a run (serve_sleeping_model.py)")
    print(f"{describe_cpu()}; photos 854x480 JPEG")
    print(
        "| server | max batch | workers | concurrency | images/s | p50 s | p99 s | memory MB | cores busy "
        "| CPU ms a photo | server ms p50: decode / matte / encode |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    banners, samples = [], {}
    for root in roots:
        for max_batch in args.batches:
            for workers in args.workers:
                process, url, banner = start_server(max_batch, args.window_ms, root, workers, sleeping)
                banners.append(banner)
                try:
                    samples[(root.absolute().name, max_batch, workers)] = measure(
                        args, process, url, photos, f"| {root.absolute().name} | {max_batch} | {workers} "
                    )
                finally:
                    process.terminate()
                    process.wait(timeout=30)
    print("\nservers: " + "; ".join(dict.fromkeys(banners)))
    for (name, max_batch, workers), seen in samples.items():
        if not seen:
            continue
        total = sum(seen.values()) or 1
        print(
            f"\nthreads of one worker of {name} at concurrency {max(args.concurrency)}, max batch "
            f"{max_batch}, {workers} worker(s) (share of thread samples):"
        )
        for (thread, state, frames), n in seen.most_common(12):
            print(f"  {n / total:6.1%}  {thread} ({state}): {frames}")


def real_mattes(paths: list[Path]) -> np.ndarray:
    """ISNet's 1024² mattes of these photos, as this checkout's pipeline makes them (any engine)."""
    from alphacut.codec import decode_image
    from alphacut.pipeline import Pipeline

    pipeline = Pipeline.from_settings(place=None)
    return np.stack(
        [pipeline.models.isnet.predict(decode_image(path.read_bytes()).rgb) for path in paths]
    ).astype(np.float32)


def measure(
    args: argparse.Namespace, process: subprocess.Popen, url: str, photos: list[bytes], row: str
) -> Counter:
    """One server's rows, one per concurrency; then its thread samples at the highest (``--samples``)."""
    pids = server_processes(process.pid)
    top = max(args.concurrency)
    load(url, photos, top, 2 * top)  # warm: every batch size once
    for concurrency in args.concurrency:
        stages: list[dict] = []
        cpu_before, started = cpu_seconds(pids), time.perf_counter()
        rate, latencies = load(url, photos, concurrency, max(args.requests, 2 * concurrency), stages)
        cpu = cpu_seconds(pids) - cpu_before
        busy = cpu / (time.perf_counter() - started)
        split = " / ".join(
            f"{statistics.median(s.get(name, 0.0) for s in stages):.0f}"
            for name in ("decode", "inference", "encode")
        )
        memory = gpu_memory_mb() or sum(peak_rss_mb(pid) for pid in pids)
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        print(
            f"{row}| {concurrency} | {rate:.2f} | {statistics.median(latencies):.2f} | "
            f"{p99:.2f} | {memory:.0f} | {busy:.1f} | {1000 * cpu / len(latencies):.0f} | {split} |",
            flush=True,
        )
    if not args.samples:
        return Counter()
    # a run of its own: a dump stops the process for a moment, which the figures above must not see
    stop = threading.Event()
    with ThreadPoolExecutor(1) as sampler:
        samples = sampler.submit(thread_samples, pids[-1], args.samples, stop)
        load(url, photos, top, 4 * top)
        stop.set()
        return samples.result()


if __name__ == "__main__":
    main()
