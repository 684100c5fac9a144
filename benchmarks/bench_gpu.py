"""Benchmark: the GPU path on a GPU: each model by precision and batch, the model server, eval IoU.

Made for a lent GPU machine's short lease: the CPU reference is made before it (``reference``),
then one ``run`` prints three tables within ``--budget-s`` (a table whose turn comes after the
budget is said to be skipped, never left out in silence):

1. model x precision x batch (1, 4, 8, 16): images a second, p50 and p99 of one batch's run (numpy
   in, numpy out: the copies to and from the device included), the first run at that batch size
   (cuDNN's algorithm search: what a cold instance pays once per shape) and the GPU memory the
   process holds (nvidia-smi, over the idle GPU's). fp32 is the models layer's graph as the engine
   opens it (``Engine.open``, the server's session); fp16 the same graph computing in float16
   (``alphacut_dev.onnx_fp16``). Models: ISNet's matte graph (cutout, the task path), the selfie
   model, and the costume route's three graphs in a row (ISNet with its decoder maps,
   EfficientNet-Lite0, the head). Graphs made for one picture get a free batch dimension here.
2. ``bench_gpu_server.py`` over ``sagemaker/serve.py`` as the container runs it (batches of up to
   8 within 5 ms) at concurrency 1, 8 and 32.
3. eval: mean IoU of general/ (type auto) and person/ (type person) at quality fast and best on
   the engine against the CPU reference, the largest difference on one photo, and the seconds a
   photo takes through the pipeline (decode, model, matte) on the engine.

    .venv/bin/python benchmarks/bench_gpu.py reference      # here, on the CPU, before the lease
    python3 benchmarks/bench_gpu.py run [--budget-s 420] [--engine cuda]   # on the GPU machine
    python3 benchmarks/bench_gpu.py shapes [--engine cuda]   # one session, batch shapes in turn

``shapes`` runs ISNet (fp32) in one session with its batch sizes in a repeating pattern, each
shape run once beforehand (its cuDNN search done): a session that meets one shape against one
that meets several in turn, as a server with batches of any size does. Printed: seconds a run
(p50, p99) and pictures a second.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / ".cache" / "gpu_reference.json"
BATCHES = (1, 4, 8, 16)
MODELS = ("isnet", "selfie", "costume")
EVAL_ROUTES = (("general", "auto"), ("person", "person"))
QUALITIES = ("fast", "best")


def nvidia_smi(query: str, timeout: float) -> str | None:
    """nvidia-smi's CSV answer to ``--query-gpu=<query>``, or None where there is none (no GPU, no
    driver, or no answer within ``timeout``)."""
    try:
        done = subprocess.run(
            ["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


def gpu_memory_mb() -> float | None:
    """The GPU's used memory (all processes), or None where there is no nvidia-smi."""
    answer = nvidia_smi("memory.used", 10)
    return float(answer.split()[0]) if answer else None


def gpu_name() -> str:
    """nvidia-smi's name, driver and memory (MiB) of the GPU ('none' without one; its first call can
    take seconds: the first run's line said 'none' on an H200 with a 10 s limit)."""
    return nvidia_smi("name,driver_version,memory.total", 60) or "none"


def graph_files(name: str, precision: str, work: Path) -> list[tuple[Path, object]]:
    """(file, external weights) of each graph of ``name`` at ``precision``, written to ``work``
    where they differ from the models layer's (fp16; a free batch dimension)."""
    import onnx
    from alphacut.models.costume_head import HEAD_PATH
    from alphacut.models.isnet import load_weights
    from alphacut.settings import EngineSettings
    from alphacut_dev.onnx_fp16 import computing_in_fp16, with_free_batch

    models = EngineSettings.from_env().models_dir
    isnet_dir = models / "isnet"
    sources = {
        "isnet": [isnet_dir / "graph.onnx"],
        "selfie": [models / "selfie" / "selfie.onnx"],
        "costume": [
            isnet_dir / "graph_features.onnx",
            models / "backbone" / "efficientnet_lite0.onnx",
            HEAD_PATH,
        ],
    }[name]
    files: list[tuple[Path, object]] = []
    for source in sources:
        isnet = source.parent == isnet_dir
        if isnet and precision == "fp32":
            files.append((source, load_weights(isnet_dir)))
            continue
        model = onnx.load(str(source), load_external_data=False)
        if not isnet:
            model = with_free_batch(model)
        if precision == "fp16":
            weights = dict(np.load(isnet_dir / "weights.npz")) if isnet else None
            model = computing_in_fp16(model, weights=weights)
        path = work / f"{source.stem}.{precision}.onnx"
        onnx.save(model, str(path))
        files.append((path, None))
    return files


def photo_rgb() -> np.ndarray:
    from alphacut_dev.data import EVAL
    from PIL import Image

    return np.asarray(Image.open(min((EVAL / "person" / "images").iterdir())).convert("RGB"))


def chain(name: str, sessions: list, rgb: np.ndarray):
    """A callable running ``name``'s graphs on a batch of ``b`` copies of the photo, as its route
    runs them one after another, and the output of one picture (for the precision check)."""
    from alphacut.models import backbone, costume_head, isnet, selfie

    if name == "isnet":
        one = isnet.preprocess(rgb)
        return lambda b: sessions[0].run(None, {"input": np.repeat(one, b, 0)})[0]
    if name == "selfie":
        one = selfie.preprocess(rgb)
        return lambda b: sessions[0].run(None, {sessions[0].input_names[0]: np.repeat(one, b, 0)})[0]
    features, lite, head = sessions
    picture, picture_lite = isnet.preprocess(rgb), backbone.preprocess(rgb)
    names = [*isnet.FEATURE_OUTPUTS]
    outputs = features.run([isnet.MATTE_OUTPUT, *names], {"input": picture})
    maps = dict(
        zip(["s8", "s16", "s32", "head"], lite.run(["s8", "s16", "s32", "head"], {"input": picture_lite}))
    )
    result = isnet.IsnetOutput(
        outputs[0][0, 0], dict(zip(names, [o.astype(np.float32) for o in outputs[1:]]))
    )
    feeds = costume_head.head_inputs(rgb, result, maps)
    feeds = {key: feeds[key] for key in head.input_names}

    def run(b: int) -> np.ndarray:
        features.run(None, {"input": np.repeat(picture, b, 0)})
        lite.run(None, {"input": np.repeat(picture_lite, b, 0)})
        return head.run(None, {key: np.repeat(value, b, 0) for key, value in feeds.items()})[0]

    return run


def child_model(
    name: str, precision: str, engine_name: str, repeats: int, idle_mb: float | None, batches: list[int]
) -> list[dict]:
    """One model at one precision in this process: a row per batch size."""
    from alphacut.models.engines import choose_engine

    engine = dataclasses.replace(
        choose_engine(engine_name), batches=True
    )  # cuda's already; a CPU dry run's too
    rows = []
    with tempfile.TemporaryDirectory() as work:
        started = time.perf_counter()
        sessions = [
            engine.open(path, 0, weights) for path, weights in graph_files(name, precision, Path(work))
        ]
        load_s = time.perf_counter() - started
        run = chain(name, sessions, photo_rgb())
        for batch in batches:
            started = time.perf_counter()
            output = run(batch)
            first = time.perf_counter() - started
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                output = run(batch)
                times.append(time.perf_counter() - started)
            used = gpu_memory_mb()
            times.sort()
            rows.append(
                {
                    "model": name,
                    "precision": precision,
                    "batch": batch,
                    "images_s": batch / statistics.median(times),
                    "p50": statistics.median(times),
                    "p99": times[min(len(times) - 1, int(len(times) * 0.99))],
                    "first": first,
                    "load": load_s,
                    "memory_mb": None if used is None or idle_mb is None else used - idle_mb,
                    "providers": sessions[0].session.get_providers()[0],
                    "output": np.asarray(output[:1], dtype=np.float32).ravel()[::97].tolist(),
                }
            )
    return rows


def eval_scores(engine_name: str, qualities: tuple[str, ...] = QUALITIES) -> dict:
    """{folder: {quality: {"iou": {stem: iou}, "seconds": s a photo}}} on ``engine_name``."""
    from alphacut.evaluate import evaluate
    from alphacut.models import ModelStore
    from alphacut.models.engines import choose_engine
    from alphacut.options import CutoutOptions, SubjectType
    from alphacut.pipeline import Pipeline
    from alphacut.settings import EngineSettings
    from alphacut_dev.data import EVAL

    settings = EngineSettings.from_env()
    pipeline = Pipeline(ModelStore(settings.models_dir, engine=choose_engine(engine_name)), settings.limits)
    pipeline.warm_up(("isnet", "selfie"))
    scores: dict = {}
    for folder, subject in EVAL_ROUTES:
        for quality in qualities:
            started = time.perf_counter()
            report = evaluate(
                EVAL / folder, pipeline, SubjectType(subject), "all", options=CutoutOptions(quality=quality)
            )
            seconds = (time.perf_counter() - started) / len(report.scores)
            scores.setdefault(folder, {})[quality] = {
                "iou": {s.stem: s.iou for s in report.scores},
                "seconds": seconds,
            }
    return scores


def in_child(args: list[str], timeout: float) -> object:
    done = subprocess.run(
        [sys.executable, __file__, "child", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def model_table(args: argparse.Namespace, deadline: float) -> None:
    idle = gpu_memory_mb()
    print(f"\n## 1. each model on {args.engine} by precision and batch (GPU memory over the idle {idle} MB)")
    print(
        "| model | precision | batch | images/s | p50 s a batch | p99 s | first run s | GPU MB "
        "| max diff vs fp32 |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in MODELS:
        reference: dict[int, np.ndarray] = {}
        for precision in ("fp32", "fp16"):
            left = deadline - time.monotonic()
            if left < 20:
                print(f"| {name} | {precision} | skipped: the budget was spent |")
                continue
            try:
                what = [
                    "model",
                    name,
                    precision,
                    args.engine,
                    str(args.repeats),
                    str(idle),
                    *map(str, args.batches),
                ]
                rows = in_child(what, left)
            except (RuntimeError, subprocess.TimeoutExpired) as error:
                print(f"| {name} | {precision} | failed: {str(error)[-400:]!r} |")
                continue
            for row in rows:
                output = np.asarray(row["output"])
                reference.setdefault(row["batch"], output)
                gap = float(
                    np.abs(output - reference[row["batch"]]).max()
                    / max(np.abs(reference[row["batch"]]).max(), 1e-6)
                )
                memory = "-" if row["memory_mb"] is None else f"{row['memory_mb']:.0f}"
                print(
                    f"| {name} | {precision} | {row['batch']} | {row['images_s']:.1f} | {row['p50']:.4f} | "
                    f"{row['p99']:.4f} | {row['first']:.2f} | {memory} | {gap:.4f} |",
                    flush=True,
                )
            print(
                f"<!-- {name} {precision}: {rows[0]['providers']}, "
                f"sessions made in {rows[0]['load']:.1f} s -->"
            )


def server_table(args: argparse.Namespace, deadline: float) -> None:
    print("\n## 2. the model server (sagemaker/serve.py) as the container runs it")
    left = deadline - time.monotonic()
    if left < 30:
        print("skipped: the budget was spent")
        return
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "bench_gpu_server.py"),
        "--batches",
        *map(str, args.server_batches),
    ]
    command += ["--concurrency", "1", "8", "32", "--requests", str(args.server_requests)]
    env = {**os.environ, "ALPHACUT_ENGINE": args.engine}
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=left, check=False, env=env)
        print(done.stdout + (done.stderr[-2000:] if done.returncode else ""), flush=True)
    except subprocess.TimeoutExpired as error:
        print(f"stopped at the budget; what it printed:\n{error.stdout or ''}")


def eval_table(args: argparse.Namespace, deadline: float) -> None:
    print(f"\n## 3. eval IoU on {args.engine} against the CPU reference (onnxruntime fp32)")
    left = deadline - time.monotonic()
    if left < 30:
        print("skipped: the budget was spent")
        return
    reference = json.loads(Path(args.reference).read_text())
    try:
        scores = in_child(["eval", args.engine], left)
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        print(f"failed: {str(error)[-600:]}")
        return
    print(f"reference: {reference['machine']}")
    print(
        "| folder | quality | photos | IoU engine | IoU CPU | difference | largest on one photo "
        "| s a photo engine | s a photo CPU |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for folder, _ in EVAL_ROUTES:
        for quality in QUALITIES:
            ours, theirs = scores[folder][quality], reference["scores"][folder][quality]
            stems = sorted(ours["iou"])
            mine = statistics.mean(ours["iou"][s] for s in stems)
            cpu = statistics.mean(theirs["iou"][s] for s in stems)
            worst = max(abs(ours["iou"][s] - theirs["iou"][s]) for s in stems)
            print(
                f"| {folder} | {quality} | {len(stems)} | {mine:.4f} | {cpu:.4f} | {mine - cpu:+.4f} "
                f"| {worst:.4f} | "
                f"{ours['seconds']:.3f} | {theirs['seconds']:.3f} |",
                flush=True,
            )


SHAPE_PATTERNS = ((8,), (1, 8), (4, 8), (1, 2, 4, 8))


def shapes_table(engine_name: str, repeats: int) -> None:
    """ISNet in one session: seconds a run where the batch shape repeats a pattern."""
    from alphacut.models.engines import choose_engine

    engine = dataclasses.replace(choose_engine(engine_name), batches=True)
    with tempfile.TemporaryDirectory() as work:
        (path, weights), *_ = graph_files("isnet", "fp32", Path(work))
        run = chain("isnet", [engine.open(path, 0, weights)], photo_rgb())
        for size in sorted({size for pattern in SHAPE_PATTERNS for size in pattern}):
            run(size)  # each shape's first run (its kernels searched) before any timing
        print("| batch sizes in turn | runs | p50 s a run | p99 s a run | pictures/s |")
        print("|---|---:|---:|---:|---:|")
        for pattern in SHAPE_PATTERNS:
            times, pictures = [], 0
            for index in range(repeats * len(pattern)):
                size = pattern[index % len(pattern)]
                started = time.perf_counter()
                run(size)
                times.append(time.perf_counter() - started)
                pictures += size
            times.sort()
            print(
                f"| {', '.join(map(str, pattern))} | {len(times)} | {statistics.median(times):.4f} | "
                f"{times[min(len(times) - 1, int(len(times) * 0.99))]:.4f} | {pictures / sum(times):.1f} |",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="verb", required=True)
    ref = sub.add_parser("reference", help="the CPU reference for table 3 (before the lease)")
    ref.add_argument("--out", default=str(REFERENCE))
    run = sub.add_parser("run", help="the three tables")
    run.add_argument("--engine", default="cuda")
    run.add_argument("--budget-s", type=float, default=420)
    run.add_argument("--repeats", type=int, default=30)
    run.add_argument("--batches", nargs="+", type=int, default=list(BATCHES))
    run.add_argument("--reference", default=str(REFERENCE))
    run.add_argument("--server-batches", nargs="+", type=int, default=[8])
    run.add_argument("--server-requests", type=int, default=96)
    run.add_argument("--tables", nargs="+", default=["models", "server", "eval"])
    shapes = sub.add_parser("shapes", help="one session meeting one batch shape or several in turn")
    shapes.add_argument("--engine", default="cuda")
    shapes.add_argument("--repeats", type=int, default=12)
    child = sub.add_parser("child")
    child.add_argument("what", nargs="+")
    args = parser.parse_args()
    if args.verb == "shapes":
        shapes_table(args.engine, args.repeats)
        return
    if args.verb == "child":
        kind, *rest = args.what
        if kind == "model":
            name, precision, engine, repeats, idle, *batches = rest
            idle_mb = None if idle == "None" else float(idle)
            print(
                json.dumps(
                    child_model(name, precision, engine, int(repeats), idle_mb, [int(b) for b in batches])
                )
            )
        else:
            print(json.dumps(eval_scores(rest[0])))
        return
    from alphacut.models.engines import describe_cpu

    if args.verb == "reference":
        scores = eval_scores("onnxruntime")
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"machine": describe_cpu(), "scores": scores}))
        print(f"wrote {args.out}")
        return
    started = time.monotonic()
    deadline = started + args.budget_s
    gpu = gpu_name()
    import onnxruntime
    from alphacut.models.engines import GpuProbe

    probe = GpuProbe.on_this_machine()
    if args.engine == "cuda" and not probe.running:
        sys.exit(f"no CUDA here: {probe.reason or 'onnxruntime lists no GPU provider'}")
    print(
        f"machine: {describe_cpu()}; {os.cpu_count()} cores; GPU: {gpu}; "
        f"onnxruntime {onnxruntime.__version__}"
    )
    # each table ends by its share of the budget, so that a slow one leaves the others their turn;
    # the last one runs to the end of the budget
    tables = {"models": (model_table, 0.55), "server": (server_table, 0.25), "eval": (eval_table, 0.2)}
    share = 0.0
    for index, name in enumerate(args.tables):
        table, own = tables[name]
        share = 1.0 if index == len(args.tables) - 1 else share + own
        table(args, started + args.budget_s * share)
    print(
        f"\ndone in {args.budget_s - (deadline - time.monotonic()):.0f} s of a {args.budget_s:.0f} s budget"
    )


if __name__ == "__main__":
    main()
