"""Benchmark: a preview's matte against the full result's scaled down to the same size, eval photos.

Run on purpose, not in the tests. Each photo goes through the whole pipeline (decode, model,
colours, PNG) twice, in this process: ``size=preview`` and ``size=full``; the full result's mask
is scaled down (Lanczos, as a client would) to the preview's size. Both are scored against the
hand-made ground truth resized (nearest) to that size, as ``alphacut eval`` scores: mean IoU per
set and half, and the median time of each.

    .venv/bin/python benchmarks/bench_preview.py [--sets general person] [--halves dev test]
"""

from __future__ import annotations

import argparse
import io
import statistics
import time

import numpy as np
from alphacut.evaluate import pairs, score
from alphacut.models.engines import describe_cpu
from alphacut.options import CutoutOptions, SubjectType
from alphacut.pipeline import Pipeline
from alphacut_dev.data import EVAL
from PIL import Image

SUBJECTS = {"general": SubjectType.OBJECT, "person": SubjectType.PERSON}


def mask_of(pipeline: Pipeline, data: bytes, options: CutoutOptions) -> tuple[Image.Image, float]:
    started = time.perf_counter()
    result = pipeline.run(data, options.with_changes(output="both"))
    elapsed = time.perf_counter() - started
    return Image.open(io.BytesIO(result.mask)), elapsed


def scored(mask: Image.Image, truth: Image.Image) -> float:
    expected = truth.resize(mask.size, Image.Resampling.NEAREST)
    return score("", np.asarray(mask), np.asarray(expected)).iou


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(SUBJECTS))
    parser.add_argument("--halves", nargs="+", default=["dev", "test"])
    args = parser.parse_args()
    pipeline = Pipeline.from_settings()
    print(f"machine: {describe_cpu()}; engine {pipeline.models.engine.label}")
    warm = pairs(EVAL / args.sets[0])[0][1].read_bytes()
    pipeline.run(warm, CutoutOptions())  # the first run pays onnxruntime's lazy set-up
    print("\n| set | half | n | preview IoU | full scaled down IoU | gap | preview s | full s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name in args.sets:
        for half in args.halves:
            preview_ious, full_ious, preview_s, full_s = [], [], [], []
            for _, image_path, truth_path in pairs(EVAL / name, half):
                data, truth = image_path.read_bytes(), Image.open(truth_path).convert("L")
                options = CutoutOptions(type=SUBJECTS[name])
                preview, seconds = mask_of(pipeline, data, options.with_changes(size="preview"))
                preview_s.append(seconds)
                full, seconds = mask_of(pipeline, data, options)
                full_s.append(seconds)
                preview_ious.append(scored(preview, truth))
                full_ious.append(scored(full.resize(preview.size, Image.Resampling.LANCZOS), truth))
            p, f = statistics.mean(preview_ious), statistics.mean(full_ious)
            print(
                f"| {name} | {half} | {len(preview_ious)} | {p:.4f} | {f:.4f} | {p - f:+.4f} "
                f"| {statistics.median(preview_s):.2f} | {statistics.median(full_s):.2f} |"
            )


if __name__ == "__main__":
    main()
