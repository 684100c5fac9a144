"""Benchmark: the registry's matting models side by side (quality, seconds, memory), eval photos.

Run on purpose, not in the tests. Each model runs in a fresh process of its own (its peak
memory is its own: the model loaded, the eval photos cut out), on the same engine
(``--engine``, default onnxruntime fp32, the suite's reference) and threads (``--threads``, 2:
Lambda's vCPUs at the template's memory). Per model and set (general/ as the cutout route,
person/ as the selfie route gated by the selfie model) and half, as ``alphacut eval`` scores:
mean IoU, MAE, boundary F, ghosted photos; then seconds per photo (the whole pipeline, decode
to mask, median, after one warm-up photo), the process's peak resident memory and the model's
file size. Bound: IoU 1, MAE 0, 0 ghosts. Quote the test half (nothing was tuned on it).

    .venv/bin/python benchmarks/bench_models.py [--models isnet u2netp] [--halves dev test]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

SUBJECTS = {"general": "object", "person": "person"}


def measure(model: str, halves: list[str]) -> dict:
    """One model, in this process: the rows of its table."""
    from alphacut.evaluate import evaluate
    from alphacut.options import CutoutOptions, SubjectType
    from alphacut.pipeline import Pipeline
    from alphacut_dev.data import EVAL

    pipeline = Pipeline.from_settings()
    spec = pipeline.models.specs[model]
    warm = min((EVAL / "general" / "images").iterdir()).read_bytes()
    pipeline.run(warm, CutoutOptions(model=model))  # onnxruntime's lazy set-up, not a photo's time
    rows = []
    for name, subject in SUBJECTS.items():
        for half in halves:
            seconds: list[float] = []
            last = [time.perf_counter()]

            def tick(done: int, total: int, seconds: list[float] = seconds, last: list[float] = last) -> None:
                now = time.perf_counter()
                seconds.append(now - last[0])
                last[0] = now

            report = evaluate(
                EVAL / name,
                pipeline,
                SubjectType(subject),
                half,
                progress=tick,
                options=CutoutOptions(model=model),
            )
            rows.append(
                {
                    "set": name,
                    "half": half,
                    "n": report.n,
                    "iou": report.mean_iou,
                    "mae": report.mae,
                    "boundary": report.boundary_f,
                    "ghosts": len(report.ghosted),
                    "seconds": statistics.median(seconds),
                }
            )
    folder = pipeline.models.models_dir / model
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux
    return {
        "model": model,
        "input": f"{spec.width}x{spec.height}",
        "engine": pipeline.models.engine.label,
        "rows": rows,
        "peak_mb": peak,
        "file_mb": size / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["isnet", "u2netp"])
    parser.add_argument("--halves", nargs="+", default=["dev", "test"])
    parser.add_argument("--engine", default="onnxruntime")
    parser.add_argument("--threads", default="2")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the child process: one model, JSON out
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.halves)))
        return
    from alphacut.models.engines import describe_cpu

    env = {**os.environ, "ALPHACUT_ENGINE": args.engine, "ALPHACUT_THREADS": args.threads}
    results = []
    for model in args.models:
        done = subprocess.run(
            [sys.executable, __file__, "--one", model, "--halves", *args.halves],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"machine: {describe_cpu()}; engine {results[0]['engine']}, {args.threads} threads")
    print("\n| model | input | set | half | n | mean IoU | MAE | boundary F | ghosts | s/photo |")
    print("|---|---|---|---|---:|---:|---:|---:|---:|---:|")
    for result in results:
        for row in result["rows"]:
            print(
                f"| {result['model']} | {result['input']} | {row['set']} | {row['half']} | {row['n']} "
                f"| {row['iou']:.4f} | {row['mae']:.4f} | {row['boundary']:.3f} | {row['ghosts']} "
                f"| {row['seconds']:.2f} |"
            )
    print("\n| model | file MB | process peak MB |\n|---|---:|---:|")
    for result in results:
        print(f"| {result['model']} | {result['file_mb']:.1f} | {result['peak_mb']:.0f} |")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
