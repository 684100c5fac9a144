"""Benchmark: what shadows and a marketplace preset add to a cutout, at 1 MP and 12 MP.

The matte is made once per size (the model's time, measured here too: preprocess to postprocess);
then the compose step (layout, shadow, encode, and the preset's check) runs for the plain cutout
and for each shadow and preset, interleaved, in the same process. The table gives medians, the
time each adds over the plain cutout, and that as a share of the model's time at that size.
Target (issue: product photos): at most 10 % of the model's time at 1 MP.

    .venv/bin/python benchmarks/bench_compose.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import io
import statistics
import time

from alphacut.models.engines import describe_cpu
from alphacut.options import CutoutOptions
from alphacut.pipeline import Pipeline, Timings
from alphacut_dev.data import EVAL
from PIL import Image

PHOTO = EVAL / "general" / "images" / "car-roundabout_00037.jpg"
SIZES = {"1 MP": (1155, 866), "12 MP": (4000, 3000)}
VARIANTS = {
    "plain cutout": {},
    "drop shadow": {"shadow": "drop"},
    "contact shadow": {"shadow": "contact"},
    "cast shadow": {"shadow": "cast"},
    "amazon preset": {"preset": "amazon"},
    "amazon + contact": {"preset": "amazon", "shadow": "contact"},
}


def photo_at(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.open(PHOTO).convert("RGB").resize(size, Image.Resampling.BICUBIC).save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def measure(pipeline: Pipeline, data: bytes, repeats: int) -> tuple[float, dict[str, float]]:
    """The model's median time (ms) and each variant's median compose time (ms)."""
    image = pipeline.decode(data)
    model_ms = []
    for _ in range(max(2, repeats // 2)):
        timings = Timings()
        segmentation = pipeline.segment(image, CutoutOptions(), timings)
        model_ms.append(timings.total)
    composed: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(repeats):
        for name, params in VARIANTS.items():
            options = CutoutOptions.from_mapping(params)
            start = time.perf_counter()
            pipeline.compose(image, segmentation, options)
            composed[name].append((time.perf_counter() - start) * 1000)
    return statistics.median(model_ms), {name: statistics.median(ms) for name, ms in composed.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    pipeline = Pipeline.from_settings()
    pipeline.warm_up(("isnet",))
    print(f"machine: {describe_cpu()}; photo {PHOTO.name} resized; medians of {args.repeats}\n")
    print("| size | variant | compose ms | added ms | added / model time |")
    print("|---|---|---:|---:|---:|")
    for label, size in SIZES.items():
        model_ms, composed = measure(pipeline, photo_at(size), args.repeats)
        plain = composed["plain cutout"]
        print(f"| {label} | model (preprocess to postprocess) | {model_ms:.0f} | | |")
        for name, ms in composed.items():
            if name == "plain cutout":
                print(f"| {label} | {name} | {ms:.0f} | | |")
                continue
            added = ms - plain
            print(f"| {label} | {name} | {ms:.0f} | {added:+.0f} | {100 * added / model_ms:.1f} % |")


if __name__ == "__main__":
    main()
