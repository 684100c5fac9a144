"""Benchmark: what shadows and a marketplace preset add to a cutout, at 1 MP and 12 MP.

The matte is made once per size (the model's time, measured here too: preprocess to postprocess);
then the compose step (layout, shadow, encode, and the preset's check) runs for the plain cutout
and for each shadow and preset, interleaved, in the same process. The table gives medians, the
time each adds over the plain cutout, and that as a share of the model's time at that size.
Target (issue: product photos): at most 10 % of the model's time at 1 MP.

``--hostile``: the shadows that once built frames past the output's limits (a 400x4000 photo's
low cast shadow: 45,656 x 4,766 px, 3.5 GB), each composed in a fresh process on a drawn matte
(no model), with the frame it gives and the process's peak memory against the function's
3,008 MB; the first row is the baseline, a plain 1 MP cutout.

    .venv/bin/python benchmarks/bench_compose.py [--repeats 5]
    .venv/bin/python benchmarks/bench_compose.py --hostile
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import resource
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


LOW_SIDE_LIGHT = {"shadow": "cast", "shadow_elevation": "5", "shadow_angle": "90", "shadow_opacity": "80"}
# name: (photo width, height, the subject's box, options)
HOSTILE = {
    "baseline: 1 MP photo, no shadow": (1155, 866, (300, 200, 850, 800), {}),
    "1-row subject at the top, contact": (300, 400, (50, 0, 250, 1), {"shadow": "contact"}),
    "200x2000 pole, low side light, webp": (
        200,
        2000,
        (80, 50, 120, 1990),
        {**LOW_SIDE_LIGHT, "format": "webp"},
    ),
    "400x4000 pole, low side light, png": (
        400,
        4000,
        (150, 50, 250, 3990),
        {**LOW_SIDE_LIGHT, "format": "png"},
    ),
    "2000x2000 photo, long cast to the largest frame": (
        2000,
        2000,
        (700, 100, 1300, 1990),
        {**LOW_SIDE_LIGHT, "shadow_angle": "120", "shadow_elevation": "10", "format": "png"},
    ),
    "4096x4096 photo, subject to its edges, cast": (
        4096,
        4096,
        (0, 200, 4096, 4096),
        {**LOW_SIDE_LIGHT, "shadow_angle": "150", "format": "png"},
    ),
}


def compose_hostile(name: str, answer: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """In a fresh process: compose one case, answer its frame, seconds and peak memory (MB)."""
    import numpy as np
    from alphacut.codec import DecodedImage
    from alphacut.pipeline import Segmentation
    from alphacut.settings import ImageLimits

    width, height, box, params = HOSTILE[name]
    alpha = np.zeros((height, width), np.uint8)
    alpha[box[1] : box[3], box[0] : box[2]] = 255
    colours = np.full((height, width, 3), (30, 90, 160), np.uint8)
    image, segmentation = (
        DecodedImage(colours, None, "png"),
        Segmentation(alpha, colours, CutoutOptions().type),
    )
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    try:
        result = Pipeline(models=None, limits=ImageLimits()).compose(  # type: ignore[arg-type]
            image, segmentation, CutoutOptions.from_mapping(params)
        )
        outcome = f"{result.width}x{result.height}"
    except Exception as error:  # noqa: BLE001 - the row says what it raised
        outcome = f"{type(error).__name__}: {str(error)[:60]}"
    seconds = time.perf_counter() - start
    answer.put((outcome, seconds, before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def hostile() -> None:
    print(f"machine: {describe_cpu()}; each case in a fresh process; the function has 3,008 MB\n")
    print("| case | result frame | compose s | process peak MB | of which before compose |")
    print("|---|---|---:|---:|---:|")
    context = multiprocessing.get_context("spawn")
    for name in HOSTILE:
        answer = context.Queue()
        worker = context.Process(target=compose_hostile, args=(name, answer))
        worker.start()
        outcome, seconds, before, peak = answer.get()
        worker.join()
        print(f"| {name} | {outcome} | {seconds:.2f} | {peak:.0f} | {before:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--hostile", action="store_true", help="the worst frames' sizes and peak memory")
    args = parser.parse_args()
    if args.hostile:
        hostile()
        return
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
