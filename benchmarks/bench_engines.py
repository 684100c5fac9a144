"""Benchmark: every model on every engine this machine has, and the whole process against rembg.

Run on purpose, not in the tests. Three tables, each figure from fresh processes:

1. engine x model x input size: seconds per image (median of ``--repeats`` after one warm-up run,
   an eval photo as input), peak RSS of a process that loads that one model and runs it, and the
   largest difference of the output from onnxruntime fp32's on the same input (the matte for
   ISNet and the selfie model; relative to the output's range for feature maps and scores);
2. eval quality per engine: mean IoU of the cutout (general/) and selfie (person/) routes over
   every eval photo, quality=fast and quality=best (``--qualities``), as
   ``alphacut eval`` computes it, and the costume route's mean over its seven classes (clothing/);
3. the whole process: ``alphacut remove --output mask`` per engine against rembg 2.0.86 (its library
   doing what ``rembg p -om`` does) on the same ISNet weights as one fp32 file, 1 and 8 photos,
   fresh output folders, best of ``--rounds`` rounds.

    .venv/bin/python benchmarks/bench_engines.py [--repeats 4] [--rounds 2] [--engines onnxruntime openvino]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
sys.path.insert(0, str(Path(__file__).parent))
# model name -> what its input is (the table's "input" column)
MODELS = {
    "isnet": "1024²",
    "isnet_features": "1024² + decoder maps",
    "selfie": "256²",
    "backbone": "512²",
    "costume": "128² head",
}


def engines_here() -> list[str]:
    from alphacut.models.engines import GpuProbe, openvino_installed

    found = ["onnxruntime", "onnxruntime-int8"]  # int8: ISNet's matte graph only
    if openvino_installed():
        found.append("openvino")
    if GpuProbe.on_this_machine().running:
        found.append("cuda")
    return found


def model_input(store, name: str, rgb: np.ndarray) -> tuple[object, object]:
    """(a callable running the model once, its input) for ``name`` on the photo ``rgb``."""
    from alphacut.models import backbone, costume_head, isnet, selfie

    if name == "isnet":
        return lambda batch: store.isnet.run(batch).matte, isnet.preprocess(rgb)
    if name == "isnet_features":
        model = store.isnet_features
        return lambda batch: model.run(batch, with_features=True).features["input.948"], isnet.preprocess(rgb)
    if name == "selfie":
        return store.selfie.run, selfie.preprocess(rgb)
    if name == "backbone":
        return lambda batch: store.backbone.run(batch)["head"], backbone.preprocess(rgb)
    # the head's inputs come from the onnxruntime reference models, so that only the head differs
    from alphacut.models import ModelStore
    from alphacut.models.engines import ONNXRUNTIME

    reference = ModelStore(store.models_dir, engine=ONNXRUNTIME)
    output = reference.isnet_features.run(isnet.preprocess(rgb), with_features=True)
    maps = reference.backbone.run(backbone.preprocess(rgb)) if store.costume.needs_backbone else None
    return store.costume.run, costume_head.head_inputs(rgb, output, maps)


def session_label(store, name: str) -> str:
    """The engine as this model runs on it (OpenVINO keeps some models in f32: ``exact``)."""
    session = getattr(store, "costume" if name == "costume" else name).session
    precision = getattr(session, "precision", None)
    return f"openvino {precision}" if precision else store.engine.label


def child_model(engine_name: str, name: str, repeats: int, out: str) -> dict:
    from alphacut.models import ModelStore
    from alphacut.models.engines import choose_engine
    from alphacut.settings import EngineSettings
    from alphacut_dev.data import EVAL
    from PIL import Image

    photo = min((EVAL / "person" / "images").iterdir())
    rgb = np.asarray(Image.open(photo).convert("RGB"))
    store = ModelStore(EngineSettings.from_env().models_dir, engine=choose_engine(engine_name))
    run, batch = model_input(store, name, rgb)
    started = time.perf_counter()
    result = run(batch)  # the load happened above; the first run pays for lazy set-up
    first = time.perf_counter() - started
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = run(batch)
        times.append(time.perf_counter() - started)
    np.save(out, np.asarray(result, dtype=np.float32))
    return {
        "seconds": statistics.median(times),
        "first": first,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "label": session_label(store, name),
    }


def child_eval(engine_name: str, quality: str) -> dict:
    from alphacut.evaluate import evaluate, evaluate_costume
    from alphacut.models import ModelStore
    from alphacut.models.engines import choose_engine
    from alphacut.options import CutoutOptions, SubjectType
    from alphacut.pipeline import Pipeline
    from alphacut.settings import EngineSettings
    from alphacut_dev.data import EVAL

    settings = EngineSettings.from_env()
    store = ModelStore(settings.models_dir, engine=choose_engine(engine_name))
    pipeline = Pipeline(store, settings.limits)
    options = CutoutOptions(quality=quality)
    scores = {}
    for folder, subject in (("general", SubjectType.AUTO), ("person", SubjectType.PERSON)):
        report = evaluate(EVAL / folder, pipeline, subject, "all", options=options)
        scores[folder] = statistics.mean(s.iou for s in report.scores)
    if quality == "fast":  # the costume route has no quality option
        scores["clothing"] = evaluate_costume(EVAL / "clothing", pipeline, "all", "gt_coarse").seed_mean
    return scores


def in_child(*args: str) -> dict:
    done = subprocess.run(
        [PY, __file__, "--child", *args], capture_output=True, text=True, timeout=1800, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def difference(reference: np.ndarray, other: np.ndarray, name: str) -> str:
    gap = float(np.abs(reference - other).max())
    if name in ("isnet", "selfie"):
        return f"{gap:.4f}"  # mattes: 0..1 already
    return f"{gap / float(np.abs(reference).max()):.4f} rel"


def whole_process_rows(engines: list[str], rounds: int) -> list[str]:
    from bench_pipeline import rembg_model_files
    from bench_startup import whole_process

    model = rembg_model_files()["original"]
    rows = []
    for count in (1, 8):
        best: dict[str, float] = {}
        for engine in engines:
            runs = whole_process(count, rounds, model, env={"ALPHACUT_ENGINE": engine})
            best[engine] = min(s for s, _ in runs["alphacut"])
            best["rembg"] = min(best.get("rembg", 1e9), *(s for s, _ in runs["rembg"]))
        for engine in engines:
            rows.append(
                f"| {count} | {engine} | {best[engine]:.2f} | {best['rembg']:.2f} | "
                f"{best[engine] / best['rembg']:.2f} |"
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--engines", nargs="+", default=None)
    parser.add_argument("--qualities", nargs="+", default=["fast", "best"], choices=["fast", "best", "auto"])
    parser.add_argument("--skip", nargs="*", default=[], choices=["models", "eval", "process"])
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "model":
            print(json.dumps(child_model(rest[0], rest[1], int(rest[2]), rest[3])))
        else:
            print(json.dumps(child_eval(rest[0], rest[1])))
        return
    from alphacut.models.engines import describe_cpu

    engines = args.engines or engines_here()
    print(f"machine: {describe_cpu()}; engines: {', '.join(engines)}")
    if "models" not in args.skip:
        print("\n## 1. each model on each engine (s per image, median after a warm-up)")
        print(
            "| model | input | engine | s per image | first run s | peak RSS MB | max diff vs onnxruntime |"
        )
        print("|---|---|---|---:|---:|---:|---:|")
        with tempfile.TemporaryDirectory() as work:
            for name, size in MODELS.items():
                reference = None
                for engine in engines:
                    if engine == "onnxruntime-int8" and name != "isnet":
                        continue  # the same fp32 graphs as onnxruntime's
                    out = str(Path(work) / f"{name}-{engine}.npy")
                    r = in_child("model", engine, name, str(args.repeats), out)
                    result = np.load(out)
                    reference = result if reference is None else reference
                    gap = "-" if engine == "onnxruntime" else difference(reference, result, name)
                    print(
                        f"| {name} | {size} | {r['label']} | {r['seconds']:.3f} | {r['first']:.2f} | "
                        f"{r['rss_mb']:.0f} | {gap} |"
                    )
    if "eval" not in args.skip:
        print("\n## 2. eval mean IoU per engine (every photo; clothing: the costume route's seed mean)")
        print("| engine | quality | general (cutout) | person (selfie) | clothing (costume) |")
        print("|---|---|---:|---:|---:|")
        for engine in engines:
            for quality in args.qualities:
                scores = in_child("eval", engine, quality)
                clothing = f"{scores['clothing']:.4f}" if "clothing" in scores else "-"
                general, person = scores["general"], scores["person"]
                print(f"| {engine} | {quality} | {general:.4f} | {person:.4f} | {clothing} |")
    if "process" not in args.skip:
        print("\n## 3. whole process: alphacut remove --output mask vs rembg (same weights), best s")
        print("| photos | engine | alphacut s | rembg s | ratio |")
        print("|---|---|---:|---:|---:|")
        for row in whole_process_rows(engines, args.rounds):
            print(row)


if __name__ == "__main__":
    main()
