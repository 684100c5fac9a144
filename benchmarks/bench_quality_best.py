"""Benchmark: quality=best (ISNet on the photo and on its mirror, mattes averaged) against the
model once, on the eval photos: mean IoU and the model's time, each photo through both in turn.

    .venv/bin/python benchmarks/bench_quality_best.py [--sets general person]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
from alphacut.evaluate import pairs, score
from alphacut.options import CutoutOptions, Quality, SubjectType
from alphacut.pipeline import Pipeline, Timings
from alphacut_dev.data import EVAL
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SUBJECTS = {"general": SubjectType.OBJECT, "person": SubjectType.PERSON}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(SUBJECTS))
    args = parser.parse_args()
    pipeline = Pipeline.from_settings()
    pipeline.warm_up(("isnet", "selfie"))
    print("| set | quality | n | mean IoU | median model ms | model time vs fast |")
    print("|---|---|---|---|---|---|")
    for name in args.sets:
        ious = {q: [] for q in (Quality.FAST, Quality.BEST)}
        model_ms = {q: [] for q in (Quality.FAST, Quality.BEST)}
        for _, image_path, truth_path in pairs(EVAL / name):
            image = pipeline.decode(image_path.read_bytes())
            truth = np.asarray(Image.open(truth_path).convert("L"))
            for quality, scores in ious.items():
                timings = Timings()
                options = CutoutOptions(type=SUBJECTS[name], quality=quality)
                alpha = pipeline.segmentation_from_matte(
                    image, pipeline.matte(image, options.type, timings, quality=quality), options.type
                ).alpha
                scores.append(score(alpha, truth)[0])
                model_ms[quality].append(timings["inference"])
        fast = statistics.median(model_ms[Quality.FAST])
        for quality, scores in ious.items():
            median = statistics.median(model_ms[quality])
            print(
                f"| {name} | {quality.value} | {len(scores)} | {statistics.mean(scores):.4f} | "
                f"{median:.0f} | {median / fast:.2f} |"
            )


if __name__ == "__main__":
    main()
