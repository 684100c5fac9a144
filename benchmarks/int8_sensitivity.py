"""Experiment: which of ISNet's convolutions cost the int8 graph its agreement with fp32.

Run on purpose, not in the tests. Starts from the shipped int8 graph (every convolution int8,
7-bit weights, percentile ranges) and puts one convolution at a time back in fp32 (its input
read before the QuantizeLinear/DequantizeLinear pair, its fp32 weights), on dev-half photos only
(general/ and person/, even positions): how far each variant's 1024² output is from fp32's
(mean absolute difference, IoU of the two at 0.5) against the all-int8 graph's. One JSON line a
convolution in ``--out``; ``--rank`` prints the ranking of a finished run.

``--choose`` then keeps the K most sensitive convolutions (by the drop in that difference) in fp32
for each ``--counts`` K and measures, on every dev-half photo (general/ 15, person/ 25), each
graph's agreement with fp32 (the worst photo's IoU of the two outputs at 0.5, their mean) and its
seconds per run (median of 3). The rule, fixed before any test-half figure was looked at: the
smallest K whose worst dev photo agrees at ``--worst`` IoU or better while its run takes at most
``--most`` of fp32's; if none does, the K with the best worst photo within that time. ``--write``
stores that choice where ``make models`` reads it (``alphacut_dev.isnet_int8.FP32_CONVS``).

    .venv/bin/python benchmarks/int8_sensitivity.py --out /tmp/sensitivity.jsonl [--general 8 --person 4]
    .venv/bin/python benchmarks/int8_sensitivity.py --rank /tmp/sensitivity.jsonl
    .venv/bin/python benchmarks/int8_sensitivity.py --choose /tmp/sensitivity.jsonl --counts 2 4 8 16 --write
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from alphacut.evaluate import pairs
from alphacut.models.isnet import INT8_GRAPH
from alphacut_dev import isnet_int8
from alphacut_dev.build_models import embed_weights
from alphacut_dev.data import EVAL
from alphacut_dev.isnet_int8 import FP32_CONVS

ROOT = Path(__file__).resolve().parents[1]
ISNET = ROOT / "layers" / "models" / "isnet"


def fp32_bytes() -> bytes:
    with np.load(ISNET / "weights.npz") as stored:
        weights = {name: stored[name] for name in stored.files}
    return embed_weights((ISNET / "graph.onnx").read_bytes(), weights)


def prepared_fp32(folder: Path) -> onnx.ModelProto:
    return onnx.load(str(isnet_int8._prepared(fp32_bytes(), folder)))


def with_fp32_convs(int8: onnx.ModelProto, fp32: onnx.ModelProto, names: set[str]) -> onnx.ModelProto:
    """``int8`` with the named convolutions reading fp32 activations and fp32 weights."""
    model = onnx.ModelProto()
    model.CopyFrom(int8)
    producer = {o: n for n in model.graph.node for o in n.output}
    fp32_conv = {n.name: n for n in fp32.graph.node if n.op_type == "Conv"}
    fp32_init = {t.name: t for t in fp32.graph.initializer}
    added = set()
    for node in model.graph.node:
        if node.op_type != "Conv" or node.name not in names:
            continue
        dq = producer.get(node.input[0])
        if dq is not None and dq.op_type == "DequantizeLinear":
            q = producer.get(dq.input[0])
            node.input[0] = q.input[0] if q is not None and q.op_type == "QuantizeLinear" else dq.input[0]
        weight = fp32_conv[node.name].input[1]
        node.input[1] = weight
        if weight not in added:
            model.graph.initializer.append(fp32_init[weight])
            added.add(weight)
    return model


def session(model: onnx.ModelProto, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def outputs(sess, batches: list[np.ndarray]) -> list[np.ndarray]:
    name = sess.get_outputs()[0].name
    return [np.clip(sess.run([name], {"input": b})[0][0, 0], 0, 1) for b in batches]


def agreement(got: list[np.ndarray], reference: list[np.ndarray]) -> dict:
    maes = [float(np.abs(g - r).mean()) for g, r in zip(got, reference)]
    ious = []
    for g, r in zip(got, reference):
        a, b = g >= 0.5, r >= 0.5
        union = np.logical_or(a, b).sum()
        ious.append(float(np.logical_and(a, b).sum() / union) if union else 1.0)
    return {
        "mae": float(np.mean(maes)),
        "iou": float(np.mean(ious)),
        "worst_iou": float(min(ious)),
        "ious": ious,
    }


def photos(general: int, person: int) -> list[Path]:
    chosen = []
    for folder, count in (("general", general), ("person", person)):
        found = [image for _, image, _ in pairs(EVAL / folder, "dev")]
        step = max(1, len(found) // count) if count else 1
        chosen += found[::step][:count]
    return chosen


def ranking(path: Path) -> list[str]:
    """Convolutions, the one whose fp32 brings the output nearest fp32's first."""
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [r["conv"] for r in sorted((r for r in rows if r["conv"]), key=lambda r: r["mae"])]


def seconds_per_run(sess, batch: np.ndarray) -> float:
    sess.run(None, {"input": batch})
    times = []
    for _ in range(3):
        started = time.perf_counter()
        sess.run(None, {"input": batch})
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def choose(path: Path, counts: list[int], worst: float, most: float, threads: int, write: bool) -> None:
    from alphacut.models.isnet import preprocess
    from PIL import Image

    ranked = ranking(path)
    batches = [preprocess(np.asarray(Image.open(p).convert("RGB"))) for p in photos(15, 25)]
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = prepared_fp32(Path(tmp))
    reference_session = session(fp32, threads)
    reference = outputs(reference_session, batches)
    fp32_seconds = seconds_per_run(reference_session, batches[0])
    int8 = onnx.load(str(ISNET / INT8_GRAPH))
    print(f"fp32: {fp32_seconds:.3f} s a run; dev photos: {len(batches)}")
    print("| convolutions in fp32 | s a run | x fp32 | mean IoU with fp32 | worst photo | MAE |")
    print("|---:|---:|---:|---:|---:|---:|")
    rows = []
    for count in [0, *counts]:
        sess = session(with_fp32_convs(int8, fp32, set(ranked[:count])), threads)
        seconds = seconds_per_run(sess, batches[0])
        agreed = agreement(outputs(sess, batches), reference)
        rows.append((count, seconds / fp32_seconds, agreed["worst_iou"]))
        print(
            f"| {count} | {seconds:.3f} | {seconds / fp32_seconds:.2f} | {agreed['iou']:.4f} "
            f"| {agreed['worst_iou']:.4f} | {agreed['mae']:.5f} |"
        )
    fast = [r for r in rows if r[1] <= most]
    good = [r for r in fast if r[2] >= worst]
    count = min(good)[0] if good else max(fast, key=lambda r: r[2])[0]
    verdict = "meets the rule" if good else "the best within the time; misses the rule"
    print(f"chosen: {count} convolutions in fp32 ({verdict})")
    if write:
        FP32_CONVS.write_text(json.dumps({"fp32_convs": ranked[:count]}, indent=1) + "\n")
        print(f"written to {FP32_CONVS}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--rank", type=Path)
    parser.add_argument("--general", type=int, default=8)
    parser.add_argument("--person", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--choose", type=Path)
    parser.add_argument("--counts", nargs="+", type=int, default=[2, 4, 8, 16])
    parser.add_argument("--worst", type=float, default=0.95)
    parser.add_argument("--most", type=float, default=0.5)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    if args.choose:
        choose(args.choose, args.counts, args.worst, args.most, args.threads, args.write)
        return
    if args.rank:
        rows = [json.loads(line) for line in args.rank.read_text().splitlines()]
        base = next(r for r in rows if r["conv"] == "")
        for row in sorted((r for r in rows if r["conv"]), key=lambda r: r["mae"])[:40]:
            print(f"{row['conv']:60} mae {row['mae']:.5f} ({row['mae'] - base['mae']:+.5f}) {row['iou']:.4f}")
        return
    from alphacut.models.isnet import preprocess
    from PIL import Image

    batches = [
        preprocess(np.asarray(Image.open(p).convert("RGB"))) for p in photos(args.general, args.person)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = prepared_fp32(Path(tmp))
    reference = outputs(session(fp32, args.threads), batches)
    int8 = onnx.load(str(ISNET / INT8_GRAPH))
    convs = [n.name for n in int8.graph.node if n.op_type == "Conv"]
    with args.out.open("w") as out:
        for name in ["", *convs]:
            started = time.perf_counter()
            model = with_fp32_convs(int8, fp32, {name} if name else set())
            row = {"conv": name, **agreement(outputs(session(model, args.threads), batches), reference)}
            row["seconds"] = round(time.perf_counter() - started, 1)
            out.write(json.dumps(row) + "\n")
            out.flush()


if __name__ == "__main__":
    main()
