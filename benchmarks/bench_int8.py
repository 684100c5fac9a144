"""Benchmark: the shipped int8 ISNet (``ALPHACUT_ENGINE=onnxruntime-int8``) against onnxruntime fp32.

Run on purpose, not in the tests. Two tables from one process, both graphs as ``make models``
built them:

1. seconds per 1024² ISNet run (median of ``--repeats`` after a warm-up, ``--threads`` threads:
   Lambda gives 2 vCPUs at the template's memory), the same photo, fp32 and int8 interleaved;
2. eval quality on both halves (general/ through the cutout route, person/ through the selfie
   route, as ``alphacut eval`` measures them) at each ``--qualities`` (fast: the model once; best:
   the photo and its mirror; auto: what the engine makes of it, on int8 the mirror only where the
   first matte is unsure): mean IoU, MAE, boundary F, ghosted photos, ISNet runs a photo, seconds
   per photo (the whole pipeline, decode to mask), and the photos whose IoU moved by more than
   ``--moved``.

The int8 graph's ranges come from training photos and its settings were picked on the dev half
(docs/benchmarks.md, "The Lambda engine's levers"): the test half is the figure to quote. The
experiments behind the choice are in git history (6457c56).

A CPU without VNNI (Lambda promises AVX2 only) runs other int8 kernels; where none is at hand,
QEMU's user mode emulates one (``apt-get install qemu-user``). Its times are not a CPU's, so only
the quality table is printed there:

    .venv/bin/python benchmarks/bench_int8.py [--repeats 5] [--threads 2] [--moved 0.02]
    .venv/bin/python benchmarks/bench_int8.py --skip-speed --halves test --qualities fast best auto
    qemu-x86_64 -cpu Haswell-noTSX .venv/bin/python benchmarks/bench_int8.py --skip-speed \
        --engines onnxruntime-int8 --folders general --halves test
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def seconds_per_run(model, batch: np.ndarray, repeats: int) -> float:
    model.run(batch)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        model.run(batch)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def print_speed(stores: dict, engines: tuple[str, ...], repeats: int) -> None:
    from alphacut.models import isnet
    from alphacut_dev.data import EVAL
    from PIL import Image

    photo = min((EVAL / "general" / "images").iterdir())
    batch = isnet.preprocess(np.asarray(Image.open(photo).convert("RGB")))
    seconds = {e: seconds_per_run(stores[e].isnet, batch, repeats) for e in engines}
    print("\n| ISNet 1024² | seconds per run | x first |\n|---|---:|---:|")
    for engine in engines:
        ratio = seconds[engine] / seconds[engines[0]]
        print(f"| {stores[engine].engine.label} | {seconds[engine]:.3f} | {ratio:.2f} |")


class RunCounter:
    """Counts the pictures a matting model runs on (``run_many``'s inputs)."""

    def __init__(self, model) -> None:
        self.count, self._run_many = 0, model.run_many
        model.run_many = self

    def __call__(self, batches: list[np.ndarray]) -> list[np.ndarray]:
        self.count += len(batches)
        return self._run_many(batches)


def instructions_seen() -> str:
    """What CPUID tells this process (under QEMU, the emulated CPU; /proc/cpuinfo stays the host's)."""
    from numpy._core._multiarray_umath import __cpu_features__ as features

    return ", ".join(
        f"{name} {'yes' if features.get(name) else 'no'}" for name in ("AVX2", "AVX512F", "AVX512VNNI")
    )


def main() -> None:
    from alphacut.evaluate import evaluate
    from alphacut.models import ModelStore
    from alphacut.models.engines import choose_engine, describe_cpu
    from alphacut.options import CutoutOptions, Quality, SubjectType
    from alphacut.pipeline import Pipeline
    from alphacut.settings import EngineSettings
    from alphacut_dev.data import EVAL

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--moved", type=float, default=0.02, help="list photos whose IoU moved more")
    parser.add_argument("--skip-speed", action="store_true", help="the quality table only")
    parser.add_argument("--engines", nargs="+", default=["onnxruntime", "onnxruntime-int8"])
    parser.add_argument("--folders", nargs="+", default=["general", "person"])
    parser.add_argument("--halves", nargs="+", default=["dev", "test"])
    parser.add_argument("--qualities", nargs="+", default=["fast"], choices=["fast", "best", "auto"])
    args = parser.parse_args()
    settings = EngineSettings.from_env()
    engines = tuple(args.engines)
    stores = {e: ModelStore(settings.models_dir, args.threads, engine=choose_engine(e)) for e in engines}
    version = __import__("onnxruntime").__version__
    print(f"machine: {describe_cpu()}; onnxruntime {version}; {args.threads} threads")
    print(f"instructions this process sees: {instructions_seen()}")

    if not args.skip_speed:
        print_speed(stores, engines, args.repeats)

    print(
        "\n| engine | quality | folder | half | photos | mean IoU | MAE | boundary F | ghosted "
        "| ISNet runs a photo | s a photo |"
    )
    print("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    pipelines = {e: Pipeline(stores[e], settings.limits) for e in engines}
    counters = {e: RunCounter(stores[e].matting("isnet")) for e in engines}
    moved = []
    subjects = {"general": SubjectType.OBJECT, "person": SubjectType.PERSON}
    for folder in args.folders:
        subject = subjects[folder]
        for half in args.halves:
            for quality in args.qualities:
                options = CutoutOptions(quality=Quality(quality))
                reports = {}
                for engine in engines:
                    runs_before = counters[engine].count
                    started = time.perf_counter()
                    reports[engine] = evaluate(
                        EVAL / folder, pipelines[engine], subject, half, options=options
                    )
                    seconds = (time.perf_counter() - started) / reports[engine].n
                    report = reports[engine]
                    runs = (counters[engine].count - runs_before) / report.n
                    print(
                        f"| {stores[engine].engine.label} | {quality} | {folder} | {half} | {report.n} "
                        f"| {report.mean_iou:.4f} | {report.mae:.4f} | {report.boundary_f:.4f} "
                        f"| {len(report.ghosted)} | {runs:.2f} | {seconds:.2f} |"
                    )
                if len(engines) < 2:
                    continue
                fp32 = {s.stem: s for s in reports[engines[0]].scores}
                for score in reports[engines[1]].scores:
                    before = fp32[score.stem]
                    if abs(score.iou - before.iou) > args.moved or score.ghosted != before.ghosted:
                        moved.append(
                            f"{folder}/{score.stem} ({half}, {quality}): IoU {before.iou:.3f} -> "
                            f"{score.iou:.3f}, ghosted {before.ghosted} -> {score.ghosted}"
                        )
    print(f"\nphotos int8 moves by more than {args.moved} IoU or changes a ghost:")
    print("\n".join(f"- {line}" for line in moved or ["none"]))


if __name__ == "__main__":
    main()
