"""Experiment (did not ship): where an int8 ISNet run's time goes on an AVX2-only CPU, and two graph
changes that might cut it. docs/benchmarks.md ("int8 on AVX2: the convolutions are the floor") has
what it printed.

1. onnxruntime's profiler over the shipped ``graph_int8.onnx``: kernel time per operator type, and
   the convolutions where int8 is slower than fp32 (each convolution's kernel time in both graphs).
2. Seconds per run, interleaved (median of ``--repeats``): the shipped graph; the graph quantised
   without ``split_concat_convs`` (``Concat`` then one convolution; the concatenation's range is the
   union of its inputs' stored ranges, the convolution's output range the sum of its parts'); the
   shipped graph with ``/side1/Conv`` (64 -> 1 channels at 512², the matte's logits) left in fp32.

Usage::

    PYTHONPATH=dev .venv/bin/python benchmarks/int8_avx2_levers.py [--repeats 14]
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from alphacut_dev import build_models as bm
from alphacut_dev import isnet_int8

ISNET = Path("layers/models/isnet")


def session(path: Path, profile: bool = False) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.enable_profiling = profile
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def kernel_times(path: Path, runs: int = 3) -> list[tuple[str, str, float]]:
    """(operator, node, ms a run) for every node, from the profiler."""
    model = session(path, profile=True)
    batch = np.random.default_rng(0).random((1, 3, 1024, 1024), np.float32)
    for _ in range(runs):
        model.run(None, {"input": batch})
    times: collections.Counter = collections.Counter()
    for event in json.loads(Path(model.end_profiling()).read_text()):
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            times[(event["args"]["op_name"], event["name"][: -len("_kernel_time")])] += (
                event["dur"] / runs / 1e3
            )
    return [(op, node, ms) for (op, node), ms in times.items()]


def layer(node: str) -> str:
    """One convolution's key in both graphs (fp32 nodes are named by their fused output)."""
    parts = node.split("/")
    part = re.search(r"part\d", node)
    base = "/".join(parts[:3]) if parts[1].startswith("stage") else "/".join(parts[:2])
    return base + "|" + (part.group(0) if part else "")


def fp32_graph(split: bool) -> bytes:
    tarball = next((bm.DEFAULT_CACHE).glob("imgly-background-removal-data-*.tgz"))
    graph, weights = bm.isnet_to_fp32_graph(bm.reassemble_isnet(tarball), bm.ISNET_MATTE_OUTPUTS)
    if split:
        graph, _ = bm.split_concat_convs(graph, weights)
    return bm.embed_weights(graph, weights)


def _value(entry: object) -> float:
    return entry["data"] if isinstance(entry, dict) else entry


def _range(low: float, high: float) -> dict:
    box = {"dtype": "float32", "CLS": "numpy.array"}
    return {
        "lowest": {"data": low, **box},
        "highest": {"data": high, **box},
        "hist": 0,
        "bins": 0,
        "CLS": "TensorData",
    }


def unsplit_ranges(graph: bytes, folder: Path) -> Path:
    stored = json.loads(isnet_int8.RANGES.read_text())
    data = stored["data"]
    parts: dict[str, list] = {}
    for name, entry in data.items():
        if "/part" in name and name.endswith("/out"):
            parts.setdefault(name.split("/part")[0], []).append(entry)
    for node in onnx.load_from_string(graph).graph.node:
        if node.op_type == "Conv" and node.name in parts:
            low = sum(_value(p["lowest"]) for p in parts[node.name])
            high = sum(_value(p["highest"]) for p in parts[node.name])
            data[node.output[0]] = _range(low, high)
        if node.op_type == "Concat" and node.attribute[0].i == 1:
            inputs = [data.get(i) or data.get(i.replace("_output_0", "_output_cast_0")) for i in node.input]
            if all(inputs):
                low = min(_value(r["lowest"]) for r in inputs)
                high = max(_value(r["highest"]) for r in inputs)
                data[node.output[0]] = _range(low, high)
    path = folder / "ranges_unsplit.json"
    path.write_text(json.dumps(stored))
    return path


def side1_in_fp32(graph: bytes) -> bytes:
    from onnxruntime import quantization

    original = quantization.quantize_static

    def excluding(*args, **kwargs):
        return original(*args, **kwargs, nodes_to_exclude=["/side1/Conv"])

    quantization.quantize_static = excluding
    try:
        return isnet_int8.quantize(graph)
    finally:
        quantization.quantize_static = original


def interleaved(paths: dict[str, Path], repeats: int) -> dict[str, float]:
    sessions = {name: session(path) for name, path in paths.items()}
    batch = np.random.default_rng(0).random((1, 3, 1024, 1024), np.float32)
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for model in sessions.values():
        model.run(None, {"input": batch})
    for _ in range(repeats):
        for name, model in sessions.items():
            started = time.perf_counter()
            model.run(None, {"input": batch})
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=14)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="int8-levers-") as tmp:
        folder = Path(tmp)
        split = fp32_graph(split=True)
        (folder / "fp32.onnx").write_bytes(split)
        shipped = ISNET / "graph_int8.onnx"
        int8 = kernel_times(shipped)
        by_op: collections.Counter = collections.Counter()
        for op, _, ms in int8:
            by_op[op] += ms
        total = sum(by_op.values())
        print("\n| operator (int8 graph) | ms a run | share |\n|---|---:|---:|")
        for op, ms in by_op.most_common(8):
            print(f"| {op} | {ms:.0f} | {ms / total:.1%} |")
        fp32: collections.Counter = collections.Counter()
        quantised: collections.Counter = collections.Counter()
        for op, node, ms in kernel_times(folder / "fp32.onnx"):
            if "Conv" in op:
                fp32[layer(node)] += ms
        for op, node, ms in int8:
            if op == "QLinearConv":
                quantised[layer(re.sub(r"_token_\d+$", "", node))] += ms
        print(
            f"\nconvolutions: fp32 {sum(fp32.values()):.0f} ms, int8 {sum(quantised.values()):.0f} ms a run"
        )
        print("\n| convolution where int8 is slower | fp32 ms | int8 ms |\n|---|---:|---:|")
        for name in [n for n in fp32 if quantised[n] > fp32[n] + 1.0]:
            print(f"| {name} | {fp32[name]:.1f} | {quantised[name]:.1f} |")
        unsplit = fp32_graph(split=False)
        variants = {
            "shipped": shipped,
            "unsplit": folder / "unsplit.onnx",
            "side1 fp32": folder / "side1.onnx",
        }
        variants["unsplit"].write_bytes(isnet_int8.quantize(unsplit, unsplit_ranges(unsplit, folder)))
        variants["side1 fp32"].write_bytes(side1_in_fp32(split))
        seconds = interleaved(variants, args.repeats)
        print("\n| int8 graph | s a run (median) | x shipped |\n|---|---:|---:|")
        for name, value in seconds.items():
            print(f"| {name} | {value:.3f} | {value / seconds['shipped']:.2f} |")


if __name__ == "__main__":
    main()
