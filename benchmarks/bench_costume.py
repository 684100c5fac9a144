"""Benchmark: what the costume route adds over the cutout route, in the same process and run.

Both go through the same Pipeline with the same warm models; the requests are interleaved so that
machine noise hits both. Images: street-fashion photos from the Clothing Co-Parsing training set
(not the eval set) stretched to the size asked. Prints per-stage medians and the ratio costume / cutout.

    .venv/bin/python benchmarks/bench_costume.py [--size 1024] [--images 4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from pathlib import Path

from alphacut.costume import Garment
from alphacut.options import CutoutOptions
from alphacut.pipeline import STAGES, Pipeline
from alphacut_dev.data import TRAIN_CCP
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
TRAIN = TRAIN_CCP / "images"


def photos(size: int, count: int) -> list[bytes]:
    out = []
    for path in sorted(TRAIN.glob("*.jpg"))[::97][:count]:
        buffer = io.BytesIO()
        Image.open(path).convert("RGB").resize((size, size), Image.Resampling.BICUBIC).save(
            buffer, "JPEG", quality=92
        )
        out.append(buffer.getvalue())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    pipeline = Pipeline.from_settings()
    _ = (
        pipeline.models.isnet,
        pipeline.models.isnet_features,
        pipeline.models.backbone,
        pipeline.models.costume,
    )
    cases = {
        "cutout (png)": lambda data: pipeline.run(data, CutoutOptions()).timings,
        "costume, outfit only": lambda data: pipeline.cut_out_garments(data, CutoutOptions(), ()).timings,
        "costume, all 8 classes (png)": lambda data: (
            pipeline.cut_out_garments(data, CutoutOptions(), tuple(Garment)).timings
        ),
        "costume, all 8 classes (mask)": lambda data: (
            pipeline.cut_out_garments(data, CutoutOptions(output="mask"), tuple(Garment)).timings
        ),
    }
    images = photos(args.size, args.images)
    for run in cases.values():  # warm-up
        run(images[0])
    walls: dict[str, list[float]] = {name: [] for name in cases}
    stages: dict[str, dict[str, list[float]]] = {name: {s: [] for s in STAGES} for name in cases}
    for _ in range(args.repeats):
        for data in images:
            for name, run in cases.items():
                started = time.perf_counter()
                timings = run(data)
                walls[name].append((time.perf_counter() - started) * 1000)
                for stage in STAGES:
                    stages[name][stage].append(timings.get(stage, 0.0))
    base = statistics.median(walls["cutout (png)"])
    print(f"{args.size}x{args.size}, {len(images)} images x {args.repeats} repeats, medians in ms")
    print(f"| case | {' | '.join(STAGES)} | wall | vs cutout |")
    print("|---|" + "---|" * (len(STAGES) + 2))
    for name in cases:
        cells = " | ".join(f"{statistics.median(stages[name][s]):.0f}" for s in STAGES)
        wall = statistics.median(walls[name])
        print(f"| {name} | {cells} | {wall:.0f} | {wall / base:.2f}x |")


if __name__ == "__main__":
    main()
