"""Benchmark: start-up and whole-process speed, memory, and cost per 1000 images on Lambda.

Run on purpose, not in the tests. Every figure comes from fresh processes (cold imports):

1. the engine in one process: import, ISNet session creation, the first and the steady inference,
   without and with the warm-up run at init (``Pipeline.warm_up``);
2. each Lambda function's init (``import app`` in the function's folder, as Lambda's init does):
   the model functions load and run their models, the others must not import onnxruntime;
3. the whole process, ``alphacut remove --output mask`` against rembg 2.0.86 (its library doing
   what ``rembg p -om`` does, benchmarks/rembg_folder.py) on the same ISNet weights, on one and
   eight 854x480 photos, each in turn, fresh output folders, wall time and peak RSS (/usr/bin/time);
4. peak RSS of one cutout at 1024² and 4096²;
5. the steady cutout with 1 and 2 onnxruntime threads (and 2 without the memory arena), and from them
   the duration and cost per 1000 images at 2048, 3008 and 3538 MB (Lambda gives 1 vCPU per 1769 MB;
   x86 list price $0.0000166667 per GB-s and $0.20 per million requests);
6. SnapStart's own costs for the three model functions (``--snapstart`` prints this part alone):
   the cache each published version keeps, billed while the version exists (at least 3 hours),
   and each restore of a new instance;
7. ``--sizing`` (this part alone): the p50 of a 1 MP cutout (a general photo scaled to 1333x750,
   PNG out) with 1 and 2 onnxruntime threads in fresh processes, with the engine ``ALPHACUT_ENGINE``
   names and ``--quality`` (``auto`` by default; ``best`` always runs the mirror, which int8's
   ``auto`` runs only where the first matte is unsure), and per Lambda memory size its duration
   and cost per 1000: measured at 1769 MB (1 vCPU, 1 thread) and 3538 MB (2 vCPUs, 2 threads);
   below 1 vCPU the 1-thread time over the CPU share; elsewhere modelled (Amdahl's law fitted to
   the two: a serial part and a part that divides by the vCPUs), since this machine has 2 cores.

    .venv/bin/python benchmarks/bench_startup.py [--repeats 2]
    ALPHACUT_ENGINE=onnxruntime-int8 .venv/bin/python benchmarks/bench_startup.py --sizing [--quality best]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from alphacut_dev.data import EVAL

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
GB_SECOND, PER_REQUEST, MB_PER_VCPU = 0.0000166667, 0.20 / 1_000_000, 1769
# https://aws.amazon.com/lambda/pricing/ (SnapStart, x86, us-east-1): the cache, per GB-second
# while a version exists (3 hours at least), and each restore, per GB restored
SNAPSTART_CACHE_GB_SECOND, SNAPSTART_RESTORE_GB = 0.0000015046, 0.0001397998
SNAPSTART_FUNCTIONS_MB = {"cutout": 3008, "selfie": 3008, "costume": 3008}  # template.yaml
FUNCTIONS = ("cutout", "selfie", "costume", "tasks", "dispatch", "charge", "finalize")
DUMMY_ENV = {
    "USAGE_TABLE": "t",
    "TASKS_TABLE": "t",
    "RESULTS_BUCKET": "b",
    "UPLOADS_BUCKET": "b",
    "TASK_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/q",
    "STATE_MACHINE_ARN": "arn:x",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "x",
    "AWS_SECRET_ACCESS_KEY": "x",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_TRACE_DISABLED": "true",
}


def warm_models_of(function: str) -> dict[str, str]:
    """The function's ALPHACUT_WARM_MODELS as template.yaml sets it (the one place that names them)."""
    from alphacut_dev.template import load_sam

    props = load_sam()["Resources"].get(f"{function.capitalize()}Function", {}).get("Properties", {})
    value = props.get("Environment", {}).get("Variables", {}).get("ALPHACUT_WARM_MODELS")
    return {"ALPHACUT_WARM_MODELS": value} if value else {}


def photos(count: int) -> list[Path]:
    return sorted((EVAL / "general" / "images").iterdir())[:count]


# ---- measured inside a fresh child process -------------------------------------------------------------
def cutout_times(pipeline, count: int) -> list[float]:
    """Milliseconds of ``count`` cutouts of the first photo, one after another."""
    data = photos(1)[0].read_bytes()
    runs = []
    for _ in range(count):
        began = time.perf_counter()
        pipeline.run(data)
        runs.append((time.perf_counter() - began) * 1000)
    return runs


def child_engine(warm: bool) -> dict:
    start = time.perf_counter()
    from alphacut.pipeline import Pipeline

    imported = time.perf_counter()
    pipeline = Pipeline.from_settings()
    _ = pipeline.models.isnet
    session = time.perf_counter()
    if warm:
        pipeline.warm_up(("isnet",))
    warmed = time.perf_counter()
    runs = cutout_times(pipeline, 4)
    return {
        "import_ms": (imported - start) * 1000,
        "session_ms": (session - imported) * 1000,
        "warm_ms": (warmed - session) * 1000,
        "first_ms": runs[0],
        "steady_ms": statistics.median(runs[1:]),
    }


def child_init(function: str) -> dict:
    os.chdir(ROOT / "functions" / function)
    sys.path.insert(0, os.getcwd())
    start = time.perf_counter()
    import app  # noqa: F401 - what Lambda's init does

    return {
        "init_ms": (time.perf_counter() - start) * 1000,
        "onnxruntime": "onnxruntime" in sys.modules,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def child_peak(side: int) -> dict:
    import io

    from alphacut.pipeline import Pipeline
    from PIL import Image

    picture = Image.open(photos(1)[0]).convert("RGB").resize((side, side))
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=92)
    Pipeline.from_settings().run(buffer.getvalue())
    return {"rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def one_megapixel_photo() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.open(photos(1)[0]).convert("RGB").resize((1333, 750), Image.Resampling.LANCZOS).save(
        buffer, "JPEG", quality=92
    )
    return buffer.getvalue()


def child_sizing(runs: int, quality: str) -> dict:
    from alphacut.options import CutoutOptions, Quality
    from alphacut.pipeline import Pipeline

    pipeline = Pipeline.from_settings()
    pipeline.warm_up(("isnet",))
    data = one_megapixel_photo()
    options = CutoutOptions(quality=Quality(quality))
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        pipeline.run(data, options)
        times.append((time.perf_counter() - began) * 1000)
    return {"p50_ms": statistics.median(times), "engine": pipeline.models.engine.label}


def modelled_ms(one: float, two: float, memory_mb: int) -> tuple[float, str]:
    """The duration at ``memory_mb`` from the 1- and 2-thread p50s, and how it was found."""
    vcpus = memory_mb / MB_PER_VCPU
    if memory_mb in (MB_PER_VCPU, 2 * MB_PER_VCPU):
        return (one if vcpus == 1 else two), "measured"
    if vcpus < 1:
        return one / vcpus, "1 thread / CPU share"
    parallel = 2 * (one - two)  # Amdahl: one = serial + parallel, two = serial + parallel / 2
    return one - parallel + parallel / vcpus, "modelled"


def sizing(runs: int, quality: str) -> None:
    one = in_child("sizing", f"{runs}:{quality}", {"ALPHACUT_THREADS": "1"})
    two = in_child("sizing", f"{runs}:{quality}", {"ALPHACUT_THREADS": "2"})
    print(f"## 7. a 1 MP cutout on Lambda, {one['engine']}, quality={quality}: p50 of {runs} after a warm-up")
    print(f"1 thread {one['p50_ms']:.0f} ms, 2 threads {two['p50_ms']:.0f} ms\n")
    print("| memory MB | vCPU | p50 ms | how | $ per 1000 |")
    print("|---:|---:|---:|---|---:|")
    for memory in (1024, 1769, 2048, 3008, 3538, 5307, 7076, 10240):
        duration, how = modelled_ms(one["p50_ms"], two["p50_ms"], memory)
        dollars = 1000 * (duration / 1000 * memory / 1024 * GB_SECOND + PER_REQUEST)
        print(f"| {memory} | {min(memory / MB_PER_VCPU, 6):.2f} | {duration:.0f} | {how} | {dollars:.4f} |")


def child_threads() -> dict:
    from alphacut.pipeline import Pipeline

    pipeline = Pipeline.from_settings()
    pipeline.warm_up(("isnet",))
    runs = cutout_times(pipeline, 3)
    return {
        "steady_ms": statistics.median(runs),
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def in_child(kind: str, arg: str = "", env: dict | None = None) -> dict:
    done = subprocess.run(
        [PY, __file__, "--child", kind, arg],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, **DUMMY_ENV, **(env or {})},
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---- whole processes ---------------------------------------------------------------------------------------
def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of a whole process, from /usr/bin/time."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        subprocess.run(
            ["/usr/bin/time", "-f", "%e %M", "-o", report.name, *command],
            check=True,
            capture_output=True,
            timeout=1800,
            env={**os.environ, **(env or {})},
        )
        seconds, kilobytes = report.read().split()
    return float(seconds), int(kilobytes) / 1024


def whole_process(
    count: int, repeats: int, model: Path, env: dict[str, str] | None = None
) -> dict[str, list[tuple[float, float]]]:
    """``alphacut remove`` (its environment plus ``env``) and rembg on the same photos, in turn."""
    runs: dict[str, list[tuple[float, float]]] = {"alphacut": [], "rembg": []}
    with tempfile.TemporaryDirectory() as work:
        source = Path(work) / "in"
        source.mkdir()
        for photo in photos(count):
            (source / photo.name).write_bytes(photo.read_bytes())
        for repeat in range(repeats):
            out = Path(work) / f"out{repeat}"
            runs["alphacut"].append(
                timed(
                    [
                        str(Path(PY).with_name("alphacut")),
                        "remove",
                        str(source),
                        "-o",
                        str(out / "a"),
                        "--output",
                        "mask",
                    ],
                    env,
                )
            )
            runs["rembg"].append(
                timed(
                    [
                        PY,
                        str(ROOT / "benchmarks" / "rembg_folder.py"),
                        str(model),
                        str(source),
                        str(out / "r"),
                    ]
                )
            )
    return runs


def cost_per_1000(steady_1: float, steady_2: float, memory_mb: int) -> tuple[float, float]:
    """Duration (ms) at a memory size from the 1- and 2-thread times, and the cost of 1000 calls."""
    vcpus = memory_mb / MB_PER_VCPU
    speedup = steady_1 / steady_2
    duration = steady_1 / min(max(vcpus, 0.1), speedup) if vcpus < 1 else steady_1 / min(vcpus, speedup)
    return duration, 1000 * (duration / 1000 * memory_mb / 1024 * GB_SECOND + PER_REQUEST)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--snapstart", action="store_true", help="only part 6 (no measurement)")
    parser.add_argument("--sizing", action="store_true", help="only part 7")
    parser.add_argument("--runs", type=int, default=7, help="part 7's cutouts per process")
    parser.add_argument(
        "--quality", default="auto", choices=["fast", "best", "auto"], help="part 7's quality"
    )
    args = parser.parse_args()
    if args.snapstart:
        snapstart_costs()
        return
    if args.sizing and not args.child:
        sizing(args.runs, args.quality)
        return
    if args.child:
        kind, arg = args.child
        result = {
            "engine": lambda: child_engine(arg == "warm"),
            "init": lambda: child_init(arg),
            "peak": lambda: child_peak(int(arg)),
            "threads": child_threads,
            "sizing": lambda: child_sizing(int(arg.split(":")[0]), arg.split(":")[1]),
        }[kind]()
        print(json.dumps(result))
        return

    print("## 1. the engine in one process (ms)")
    print(
        "| run | import | ISNet session | warm-up at init | first cutout | steady cutout | first / steady |"
    )
    print("|---|---|---|---|---|---|---|")
    for mode in ("cold", "warm"):
        r = in_child("engine", mode)
        print(
            f"| {'with' if mode == 'warm' else 'without'} warm-up | {r['import_ms']:.0f} | "
            f"{r['session_ms']:.0f} | {r['warm_ms']:.0f} | {r['first_ms']:.0f} | {r['steady_ms']:.0f} | "
            f"{r['first_ms'] / r['steady_ms']:.2f} |"
        )

    print("\n## 2. each function's init (import app, ms; the model functions load and run their models)")
    print("| function | init | imports onnxruntime | RSS MB |")
    print("|---|---|---|---|")
    for function in FUNCTIONS:
        r = in_child("init", function, env=warm_models_of(function))
        print(
            f"| {function} | {r['init_ms']:.0f} | {'yes' if r['onnxruntime'] else 'no'} | {r['rss_mb']:.0f} |"
        )

    print("\n## 3. whole process: alphacut remove --output mask against rembg (same weights), median s")
    from bench_pipeline import rembg_model_files

    model = rembg_model_files()["original"]
    print("| photos | alphacut s | rembg s | ratio | alphacut peak MB | rembg peak MB |")
    print("|---|---|---|---|---|---|")
    for count in (1, 8):
        runs = whole_process(count, args.repeats, model)
        ours, theirs = (statistics.median(s for s, _ in runs[k]) for k in ("alphacut", "rembg"))
        peaks = [max(m for _, m in runs[k]) for k in ("alphacut", "rembg")]
        print(
            f"| {count} | {ours:.2f} | {theirs:.2f} | {ours / theirs:.2f} | {peaks[0]:.0f} | {peaks[1]:.0f} |"
        )

    print("\n## 4. peak RSS of one cutout (MB)")
    for side in (1024, 4096):
        print(f"| {side}² | {in_child('peak', str(side))['rss_mb']:.0f} |")

    print("\n## 5. duration and cost per 1000 cutouts (854x480) on Lambda, from 1- and 2-thread runs")
    one = in_child("threads", "", {"ALPHACUT_THREADS": "1"})
    two = in_child("threads", "", {"ALPHACUT_THREADS": "2"})
    lean = in_child("threads", "", {"ALPHACUT_THREADS": "2", "ALPHACUT_MEMORY_ARENA": "0"})
    print(
        f"steady: 1 thread {one['steady_ms']:.0f} ms (RSS {one['rss_mb']:.0f} MB), "
        f"2 threads {two['steady_ms']:.0f} ms (RSS {two['rss_mb']:.0f} MB), "
        f"2 threads without onnxruntime's memory arena {lean['steady_ms']:.0f} ms "
        f"(RSS {lean['rss_mb']:.0f} MB)"
    )
    print("| memory MB | vCPU | duration ms | $ per 1000 |")
    print("|---|---|---|---|")
    for memory in (2048, 3008, 3538):
        duration, dollars = cost_per_1000(one["steady_ms"], two["steady_ms"], memory)
        print(f"| {memory} | {memory / MB_PER_VCPU:.2f} | {duration:.0f} | {dollars:.4f} |")

    snapstart_costs()


def snapstart_costs() -> None:
    """What SnapStart adds beside the calls' duration: the cache of every published version (the
    deploy publishes one per model function; ``alphacut deploy prune`` deletes the old ones) and
    the restore of each new instance."""
    month = 730 * 3600
    print("\n## 6. SnapStart's own costs (list price, us-east-1)")
    print("| function | memory MB | cache $ a month per published version | $ per restore (new instance) |")
    print("|---|---|---|---|")
    for name, memory in SNAPSTART_FUNCTIONS_MB.items():
        gb = memory / 1024
        cache, restore = gb * SNAPSTART_CACHE_GB_SECOND * month, gb * SNAPSTART_RESTORE_GB
        print(f"| {name} | {memory} | {cache:.2f} | {restore:.6f} |")
    per_deploy = sum(m / 1024 for m in SNAPSTART_FUNCTIONS_MB.values()) * SNAPSTART_CACHE_GB_SECOND * month
    print(
        f"every deploy that changes the code publishes three versions: ${per_deploy:.2f} a month for as long "
        f"as they exist (a version costs 3 hours at least: ${per_deploy * 3 * 3600 / month:.3f}); "
        "`alphacut deploy prune` keeps the live and the newest only"
    )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
