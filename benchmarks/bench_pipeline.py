"""Benchmark: alphacut's pipeline per stage, and end to end against rembg on the same ISNet weights.

Run on purpose (``make bench``), not in the tests. Both run in this process, on the same images,
interleaved, so that machine noise hits both; the table reports medians and ratios.

rembg 2.0.86 gets the same ISNet weights as one fp32 ONNX file (made here from layers/models)
through its ``dis_custom`` session, and returns a PNG cutout like alphacut's default.

    .venv/bin/python benchmarks/bench_pipeline.py [--repeats 3] [--sizes 1024 4096]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

from alphacut.options import CutoutOptions
from alphacut.pipeline import STAGES, Pipeline

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT.parent / "shared" / "eval"
CACHE = ROOT / ".cache" / "bench"


def fp32_single_file(models_dir: Path) -> Path:
    """ISNet as one self-contained fp32 ONNX file (what rembg's dis_custom session loads)."""
    import onnx
    from onnx import numpy_helper

    path = CACHE / "isnet_fp32.onnx"
    if path.exists():
        return path
    model = onnx.load(str(models_dir / "isnet" / "graph.onnx"), load_external_data=False)
    with np.load(models_dir / "isnet" / "weights.npz") as weights:
        initializers = [numpy_helper.from_array(weights[t.name].astype(np.float32), t.name)
                        for t in model.graph.initializer]
    del model.graph.initializer[:]
    model.graph.initializer.extend(initializers)
    CACHE.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def test_images(size: int, count: int) -> list[bytes]:
    photos = sorted((EVAL / "general" / "images").iterdir())[::10][:count - count // 2]
    photos += sorted((EVAL / "person" / "images").iterdir())[::20][:count // 2]
    out = []
    for photo in photos:
        image = Image.open(photo).convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=92)
        out.append(buffer.getvalue())
    return out


def median(values) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 4096])
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-rembg", action="store_true")
    args = parser.parse_args()

    pipeline = Pipeline.from_settings()
    started = time.perf_counter()
    pipeline.warm_up()
    load_alphacut = time.perf_counter() - started
    rembg_session = None
    if not args.no_rembg:
        from rembg import new_session, remove

        model_path = fp32_single_file(pipeline.models.models_dir)
        started = time.perf_counter()
        rembg_session = new_session("dis_custom", model_path=str(model_path))
        load_rembg = time.perf_counter() - started

    print(f"cores: {os.cpu_count()}   model load: alphacut {load_alphacut:.2f} s"
          + ("" if rembg_session is None else f", rembg {load_rembg:.2f} s"))
    stage_rows, e2e_rows = [], []
    for size in args.sizes:
        images = test_images(size, args.images)
        pipeline.run(images[0])  # warm-up: first-run allocations are not what a warm Lambda pays
        if rembg_session is not None:
            remove(images[0], session=rembg_session)
        stages = {name: [] for name in STAGES}
        ours, theirs = [], []
        for _ in range(args.repeats):
            for data in images:
                started = time.perf_counter()
                result = pipeline.run(data, CutoutOptions())
                ours.append(time.perf_counter() - started)
                for name in STAGES:
                    stages[name].append(result.timings.get(name, 0.0))
                if rembg_session is not None:
                    started = time.perf_counter()
                    remove(data, session=rembg_session)
                    theirs.append(time.perf_counter() - started)
        medians = {name: median(values) for name, values in stages.items()}
        overhead = sum(medians.values()) - medians["inference"]
        stage_rows.append((size, medians, overhead / medians["inference"]))
        e2e_rows.append((size, median(ours), median(theirs), len(ours)))

    print("\nalphacut per stage, median ms (PNG cutout, type=auto)")
    print(f"{'size':>6} " + " ".join(f"{name:>11}" for name in STAGES) + f" {'overhead/inference':>19}")
    for size, medians, ratio in stage_rows:
        print(f"{size:>6} " + " ".join(f"{medians[name]:>11.1f}" for name in STAGES) + f" {ratio:>18.1%}")

    print("\nend to end, bytes in -> PNG bytes out, median s")
    print(f"{'size':>6} {'runs':>5} {'alphacut':>9} {'rembg':>9} {'alphacut/rembg':>15}")
    for size, ours, theirs, runs in e2e_rows:
        ratio = ours / theirs if theirs == theirs else float("nan")
        print(f"{size:>6} {runs:>5} {ours:>9.2f} {theirs:>9.2f} {ratio:>15.2f}x")


if __name__ == "__main__":
    main()
