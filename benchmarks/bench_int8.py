"""Bounds of the Lambda engine's levers (issue: the Lambda path twice as fast): ISNet 1024² in
static int8 (QDQ, per-channel weights) against onnxruntime fp32, ISNet at 768² where the photo is
small, and onnxruntime's own settings. Prints one table per lever.

int8 is calibrated on photos of the training set (never the eval set); quality is measured on the
eval set's test half (general/ and person/), as ``alphacut eval`` measures it: mean IoU, MAE,
boundary F, ghosted photos; speed is seconds per 1024² (or 768²) run, median of ``--repeats``
after a warm-up, one process, ``--threads`` threads (Lambda gives 2 vCPUs at 3538 MB).

    .venv/bin/python benchmarks/bench_int8.py [--calibration 16] [--repeats 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "int8"
TRAIN = ROOT.parent / "shared" / "train" / "ccp" / "images"
EVAL = ROOT.parent / "shared" / "eval"


def self_contained_fp32(models: Path) -> Path:
    """graph.onnx with its weights (weights.npz, fp16 stored) in it as fp32 initializers."""
    import onnx
    from onnx import numpy_helper

    out = CACHE / "isnet_fp32.onnx"
    if not out.exists():
        model = onnx.load(str(models / "isnet" / "graph.onnx"), load_external_data=False)
        with np.load(models / "isnet" / "weights.npz") as stored:
            initializers = [
                numpy_helper.from_array(stored[t.name].astype(np.float32), t.name)
                if t.name in stored.files
                else t
                for t in model.graph.initializer
            ]
        del model.graph.initializer[:]
        model.graph.initializer.extend(initializers)
        onnx.save(model, str(out))
    return out


def model_input(path: Path, side: int) -> np.ndarray:
    """The pipeline's ISNet input: bilinear stretch to side², (x - 128) / 256, NCHW."""
    from PIL import Image

    picture = Image.open(path).convert("RGB").resize((side, side), Image.BILINEAR)
    array = (np.asarray(picture, np.float32) - 128.0) / 256.0
    return array.transpose(2, 0, 1)[None]


def excluded_nodes(fp32: Path, patterns: list[str]) -> list[str]:
    """Nodes kept in fp32: every node whose name matches one of ``patterns`` (regular expressions)."""
    import re

    import onnx

    model = onnx.load(str(fp32), load_external_data=False)
    return [n.name for n in model.graph.node if any(re.search(p, n.name) for p in patterns)]


def calibration_photos(source: str, photos: int) -> list[Path]:
    """``train``: training photos (people); ``dev``: the eval set's dev half of general/ and person/
    (even positions of the sorted stems, as alphacut.evaluate splits it), never its test half."""
    if source == "train":
        every = sorted(TRAIN.iterdir())
        return every[:: max(1, len(every) // photos)][:photos]
    chosen = []
    for folder in ("general", "person"):
        chosen += sorted((EVAL / folder / "images").iterdir())[::2]
    return chosen[:photos]


def quantize(
    fp32: Path,
    photos: int,
    method: str,
    exclude: list[str] | None = None,
    source: str = "train",
    moving_average: bool = False,
) -> Path:
    import hashlib

    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    tag = hashlib.sha256("|".join(exclude or []).encode()).hexdigest()[:8] if exclude else "all"
    average = "avg" if moving_average else ""
    pct = os.environ.get("PCT", "99.999")
    ops = os.environ.get("OPS") or None
    tag += f"_{ops}" if ops else ""
    out = CACHE / f"isnet_int8_{method.lower()}{average}{pct if method == 'Percentile' else ''}_{source}{photos}_{tag}.onnx"
    if out.exists():
        return out
    prepared = CACHE / "isnet_fp32_prepared.onnx"
    if not prepared.exists():
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
    chosen = calibration_photos(source, photos)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter(chosen)

        def __len__(self):
            return len(chosen)

        def set_range(self, start_index, end_index):
            self.items = iter(chosen[start_index:end_index])

        def get_next(self):
            path = next(self.items, None)
            return None if path is None else {"input": model_input(path, 1024)}

    started = time.perf_counter()
    quantize_static(
        str(prepared),
        str(out),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        weight_type=QuantType.QInt8,
        activation_type=QuantType.QUInt8,
        calibrate_method=getattr(CalibrationMethod, method),
        nodes_to_exclude=excluded_nodes(prepared, exclude or []),
        op_types_to_quantize=ops.split("+") if ops else None,
        # ranges folded in every 2 photos (memory); an odd count leaves the last for the final fold
        calibration_cache_path=str(CACHE / f"ranges_{method}{pct if method == 'Percentile' else ''}_{source}{photos}.json"),
        extra_options={
            **({"CalibStridedMinMax": 1, "CalibPercentile": float(pct)} if method != "MinMax" else {"CalibMaxIntermediateOutputs": 2}),
            "CalibTensorRangeSymmetric": False,
            # each range the mean of the photos' own extremes, not the widest photo's
            "CalibMovingAverage": moving_average,
        },
    )
    print(f"quantized ({method}, {photos} photos) in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return out


def session(path: Path, threads: int, level: str = "all", profile: bool = False):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = {
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    }[level]
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_free_dimension_override_by_name("batch", 1)
    options.enable_profiling = profile
    if profile:
        options.profile_file_prefix = str(CACHE / "profile")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def seconds_per_run(sess, feed: np.ndarray, repeats: int) -> float:
    sess.run(None, {"input": feed})
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        sess.run(None, {"input": feed})
        times.append(time.perf_counter() - started)
    return statistics.median(times)


class GraphIsnet:
    """An IsnetModel-like wrapper for a self-contained graph (what the pipeline's matte calls)."""


def evaluate_with(graph: Path | None, threads: int, side: int = 1024, split: str = "test") -> dict[str, dict[str, float]]:
    """Test-half quality of the cutout (general/) and selfie (person/) routes with ISNet replaced by
    ``graph`` (None: today's fp32), at ``side``²."""
    from alphacut.evaluate import evaluate
    from alphacut.models.engines import OnnxruntimeSession
    from alphacut.models.isnet import IsnetModel
    from alphacut.options import SubjectType
    from alphacut.pipeline import Pipeline
    from alphacut.settings import EngineSettings

    pipeline = Pipeline.from_settings(EngineSettings.from_env({"ALPHACUT_ENGINE": "onnxruntime"}))
    if graph is not None or side != 1024:
        path = graph if graph is not None else ROOT / "layers" / "models" / "isnet" / "graph_preview.onnx"
        weights = None if graph is not None else pipeline.models._isnet_weights
        sess = OnnxruntimeSession(path, threads, True, ["CPUExecutionProvider"], weights, False)
        pipeline.models.__dict__["isnet"] = IsnetModel(sess, features=False, side=side)
    found = {}
    for folder, subject in (("general", SubjectType.OBJECT), ("person", SubjectType.PERSON)):
        report = evaluate(EVAL / folder, pipeline, subject, split)
        scores = report.scores
        found[folder] = {
            "iou": statistics.mean(s.iou for s in scores),
            "mae": statistics.mean(s.mae for s in scores),
            "boundary_f": statistics.mean(s.boundary_f for s in scores),
            "ghosted": sum(s.ghosted for s in scores),
            "photos": len(scores),
        }
    return found


def op_profile(path: Path, feed: np.ndarray, threads: int) -> list[tuple[str, float]]:
    """Share of the run's time per operator type (onnxruntime's profiler, one run after a warm-up)."""
    import json

    sess = session(path, threads, profile=True)
    sess.run(None, {"input": feed})
    sess.run(None, {"input": feed})
    events = json.loads(Path(sess.end_profiling()).read_text())
    by_op: dict[str, float] = {}
    for event in events:
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
            op = event.get("args", {}).get("op_name", "?")
            by_op[op] = by_op.get(op, 0.0) + event.get("dur", 0)
    total = sum(by_op.values()) or 1
    return sorted(((op, us / total) for op, us in by_op.items()), key=lambda item: -item[1])[:8]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibration", type=int, default=16, help="training photos to calibrate on")
    parser.add_argument("--method", default="MinMax", choices=["MinMax", "Percentile", "Entropy"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--exclude", nargs="*", default=[], help="node name patterns kept in fp32")
    parser.add_argument("--int8-only", action="store_true", help="time and measure only the int8 graph")
    parser.add_argument("--calibrate-on", choices=["train", "dev"], default="train")
    parser.add_argument("--moving-average", action="store_true", help="MinMax ranges averaged over photos")
    args = parser.parse_args()
    from alphacut.models.engines import describe_cpu

    CACHE.mkdir(parents=True, exist_ok=True)
    models = ROOT / "layers" / "models"
    fp32 = self_contained_fp32(models)
    int8 = quantize(fp32, args.calibration, args.method, args.exclude, args.calibrate_on, args.moving_average)
    if args.int8_only:
        seconds = seconds_per_run(
            session(int8, args.threads),
            model_input(min((EVAL / "general" / "images").iterdir()), 1024),
            args.repeats,
        )
        print(
            f"int8 {args.method}{' (moving average)' if args.moving_average else ''} on {args.calibrate_on} "
            f"({args.calibration}), fp32 kept: "
            f"{args.exclude or 'none'}: {seconds:.3f} s per 1024² run"
        )
        for folder, figures in [(f"{k} {sp}", v) for sp in ("dev", "test") for k, v in evaluate_with(int8, args.threads, split=sp).items()]:
            print(
                f"| int8 {args.method} {args.exclude} | {folder} | {figures['photos']} | "
                f"{figures['iou']:.4f} | "
                f"{figures['mae']:.4f} | {figures['boundary_f']:.4f} | {figures['ghosted']} |"
            )
        return 0
    feed = model_input(min((EVAL / "general" / "images").iterdir()), 1024)
    feed768 = model_input(min((EVAL / "general" / "images").iterdir()), 768)
    print(
        f"machine: {describe_cpu()}; onnxruntime {__import__('onnxruntime').__version__}; "
        f"{args.threads} threads"
    )
    print("\n| ISNet graph | input | seconds per run | x fp32 1024² |\n|---|---|---|---|")
    base = seconds_per_run(session(fp32, args.threads), feed, args.repeats)
    rows = [
        ("fp32 (today)", "1024²", base),
        (
            "fp32, optimisation extended",
            "1024²",
            seconds_per_run(session(fp32, args.threads, "extended"), feed, args.repeats),
        ),
        ("fp32, 1 thread", "1024²", seconds_per_run(session(fp32, 1), feed, args.repeats)),
        (
            f"int8 QDQ ({args.method})",
            "1024²",
            seconds_per_run(session(int8, args.threads), feed, args.repeats),
        ),
        ("fp32 preview graph", "768²", None),
    ]
    import onnxruntime as ort
    from alphacut.models.isnet import load_weights

    weights = load_weights(models / "isnet")
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.add_free_dimension_override_by_name("batch", 1)
    options.add_external_initializers(weights.names, weights.ort_values)
    preview = ort.InferenceSession(
        str(models / "isnet" / "graph_preview.onnx"), options, providers=["CPUExecutionProvider"]
    )
    rows[-1] = ("fp32 preview graph", "768²", seconds_per_run(preview, feed768, args.repeats))
    for name, size, seconds in rows:
        print(f"| {name} | {size} | {seconds:.3f} | {seconds / base:.2f} |")
    print(
        "\nwhere fp32 1024² spends its time (onnxruntime profiler):",
        ", ".join(f"{op} {share:.0%}" for op, share in op_profile(fp32, feed, args.threads)),
    )
    print(
        "where int8 1024² spends its time:",
        ", ".join(f"{op} {share:.0%}" for op, share in op_profile(int8, feed, args.threads)),
    )
    if args.skip_quality:
        return 0
    print(
        "\n| ISNet | route | photos | mean IoU | MAE | boundary F | ghosted |\n|---|---|---|---|---|---|---|"
    )
    for name, graph, side in (
        ("fp32 1024² (today)", None, 1024),
        (f"int8 {args.method} 1024²", int8, 1024),
        ("fp32 768²", None, 768),
    ):
        for folder, figures in evaluate_with(graph, args.threads, side).items():
            print(
                f"| {name} | {folder} | {figures['photos']} | {figures['iou']:.4f} | {figures['mae']:.4f} | "
                f"{figures['boundary_f']:.4f} | {figures['ghosted']} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
