"""Benchmark: size=preview's faster path (ISNet at a smaller input) against the full model, eval photos.

Run on purpose, not in the tests. Each photo goes through every variant in turn (so that
machine noise hits every one), in this process:

- ``full``: the photo at its own size, ISNet at 1024² (what ``size=full`` does);
- ``preview@1024``: the photo scaled to 0.25 MP, ISNet at 1024² (a preview without the fast path);
- ``preview@<side>``: the photo scaled to 0.25 MP, ISNet's graph rebuilt for a side² input
  (``build_models.graph_at_side``); the side the models layer ships is marked ``*``.

Quality is the mean IoU against the hand-made ground truth (resized, nearest, to the result's
size); time is the whole pipeline (decode, model, colours, PNG cutout), median per photo.

    .venv/bin/python benchmarks/bench_preview.py [--sets general person] [--sides 512 640 768]
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from alphacut.evaluate import pairs, score
from alphacut.models.isnet import PREVIEW_INPUT_SIZE, IsnetModel
from alphacut.options import CutoutOptions, SubjectType
from alphacut.pipeline import Pipeline
from alphacut_dev.build_models import graph_at_side
from alphacut_dev.data import EVAL
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SUBJECTS = {"general": SubjectType.OBJECT, "person": SubjectType.PERSON}


class PreviewAt(Pipeline):
    """A preview-sized photo through ISNet at ``side``² (1024: the full model, the baseline)."""

    def __init__(self, pipeline: Pipeline, side: int, folder: Path):
        super().__init__(pipeline.models, pipeline.limits)
        self.model = pipeline.models.isnet
        if side != self.model.side:
            folder.mkdir(parents=True, exist_ok=True)
            graph = folder / "graph_preview.onnx"
            graph.write_bytes(
                graph_at_side((pipeline.models.models_dir / "isnet" / "graph.onnx").read_bytes(), side)
            )
            self.model = IsnetModel.load(
                folder,
                pipeline.models.engine,
                pipeline.models.threads,
                preview=True,
                weights=pipeline.models._isnet_weights,
            )
            self.model.side = side

    def matte(self, image, subject, timings=None, preview=False):
        store = self.models
        original = store.__dict__.get("isnet_preview")
        store.__dict__["isnet_preview"] = self.model  # the variant's graph in place of the shipped one
        try:
            return super().matte(image, subject, timings, preview=True)
        finally:
            store.__dict__["isnet_preview"] = original


def run_one(
    pipeline: Pipeline, data: bytes, options: CutoutOptions, truth: Image.Image
) -> tuple[float, float]:
    start = time.perf_counter()
    result = pipeline.run(data, options.with_changes(output="both"))
    elapsed = (time.perf_counter() - start) * 1000
    alpha = np.asarray(Image.open(io.BytesIO(result.mask)))
    expected = truth.resize((alpha.shape[1], alpha.shape[0]), Image.Resampling.NEAREST)
    return score(alpha, np.asarray(expected))[0], elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(SUBJECTS))
    parser.add_argument("--sides", nargs="+", type=int, default=[512, 640, PREVIEW_INPUT_SIZE])
    args = parser.parse_args()
    pipeline = Pipeline.from_settings()
    folder = Path(tempfile.mkdtemp(prefix="bench_preview_"))
    variants = {"full": (pipeline, "full"), "preview@1024": (PreviewAt(pipeline, 1024, folder), "preview")}
    for side in sorted(set(args.sides)):
        mark = "*" if side == PREVIEW_INPUT_SIZE else ""
        variants[f"preview@{side}{mark}"] = (PreviewAt(pipeline, side, folder / str(side)), "preview")
    warm = next(iter(pairs(EVAL / args.sets[0])))[1].read_bytes()
    for runner, size in variants.values():  # first runs pay onnxruntime's lazy set-up
        runner.run(warm, CutoutOptions(size=size))
    print(f"{'set':8} {'variant':13} {'n':>3} {'mean IoU':>9} {'median ms':>10} {'time vs preview@1024':>21}")
    for name in args.sets:
        ious: dict[str, list[float]] = {v: [] for v in variants}
        times: dict[str, list[float]] = {v: [] for v in variants}
        for _, image_path, truth_path in pairs(EVAL / name):
            data, truth = image_path.read_bytes(), Image.open(truth_path).convert("L")
            for variant, (runner, size) in variants.items():
                iou, ms = run_one(runner, data, CutoutOptions(type=SUBJECTS[name], size=size), truth)
                ious[variant].append(iou)
                times[variant].append(ms)
        reference = statistics.median(times["preview@1024"])
        for variant in variants:
            median = statistics.median(times[variant])
            print(
                f"{name:8} {variant:13} {len(ious[variant]):>3} {statistics.mean(ious[variant]):>9.4f} "
                f"{median:>10.0f} {median / reference:>21.2f}"
            )


if __name__ == "__main__":
    main()
