"""Benchmark: white on white. The eval set's subjects, by their truth masks, composited on white,
on light grey and on a white sweep with a soft floor shadow (as a studio shoots a product), then cut
out again by the pipeline (and the same subjects made white, their shading kept: a white cup on
white): IoU and MAE against the truth, and the share of the truly opaque pixels
(the truth's solid inside, 2 px in from its edge) delivered under 0.9 alpha: a washed-out product.
The photo on its own background is the reference row. Bound: a perfect matte scores IoU 1, MAE 0
and 0 % washed out on every background.

The halves are the eval set's (``alphacut eval``'s dev = even positions, test = odd); nothing here
was tuned on either, and the test half is the one to report.

    .venv/bin/python benchmarks/bench_studio.py [--set general] [--split test]
"""

from __future__ import annotations

import argparse
import io
import statistics
from collections.abc import Callable

import numpy as np
from alphacut.evaluate import pairs, score
from alphacut.masks import dilate_disk
from alphacut.models.engines import describe_cpu
from alphacut.options import CutoutOptions
from alphacut.pipeline import Pipeline
from alphacut_dev.data import EVAL
from PIL import Image, ImageFilter

SOLID_FLOOR = int(0.9 * 255)  # delivered under this, a truly opaque pixel is washed out
INSIDE = 2  # px in from the truth's edge: its own anti-aliasing is not the model's fault


def on_white(photo: np.ndarray, truth: np.ndarray) -> np.ndarray:
    return _over(photo, truth, np.full_like(photo, 255))


def on_light_grey(photo: np.ndarray, truth: np.ndarray) -> np.ndarray:
    return _over(photo, truth, np.full_like(photo, 235))


def on_white_sweep(photo: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """A paper sweep: white at the top, a light grey floor at the bottom, and a soft shadow where
    the subject stands."""
    height, width = truth.shape
    fall = np.linspace(255.0, 228.0, height)[:, None, None] * np.ones((1, width, 3))
    rows = np.flatnonzero((truth >= 128).any(axis=1))
    cols = np.flatnonzero((truth >= 128).any(axis=0))
    if rows.size:
        shadow = Image.new("L", (width, height), 0)
        bottom, left, right = int(rows[-1]), int(cols[0]), int(cols[-1])
        depth = max(6, (right - left) // 10)
        shadow.paste(150, (left, bottom - depth // 2, right, bottom + depth // 2))
        soft = np.asarray(shadow.filter(ImageFilter.GaussianBlur(depth)), np.float64) / 255.0
        fall *= (1.0 - 0.6 * soft)[:, :, None]
    return _over(photo, truth, fall.astype(np.uint8))


def paled(photo: np.ndarray) -> np.ndarray:
    """The subject as a white product: its shading kept, its colours lifted to 200-255 (a white
    cup, a white sneaker)."""
    return (200.0 + photo.astype(np.float32) * (55.0 / 255.0) + 0.5).astype(np.uint8)


def pale_on_white(photo: np.ndarray, truth: np.ndarray) -> np.ndarray:
    return on_white(paled(photo), truth)


def pale_on_white_sweep(photo: np.ndarray, truth: np.ndarray) -> np.ndarray:
    return on_white_sweep(paled(photo), truth)


def _over(photo: np.ndarray, truth: np.ndarray, background: np.ndarray) -> np.ndarray:
    a = truth.astype(np.float32)[:, :, None] / 255.0
    return (photo * a + background * (1.0 - a) + 0.5).astype(np.uint8)


BACKGROUNDS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray] | None] = {
    "its own photo (reference)": None,
    "white": on_white,
    "light grey (235)": on_light_grey,
    "white sweep, floor shadow": on_white_sweep,
    "white subject on white": pale_on_white,
    "white subject on the white sweep": pale_on_white_sweep,
}


def washed_out(alpha: np.ndarray, truth: np.ndarray) -> float:
    """The share of the truth's solid inside delivered under ``SOLID_FLOOR``."""
    inside = ~dilate_disk(truth < 255, INSIDE)
    if not inside.any():
        return 0.0
    return float(np.count_nonzero(alpha[inside] < SOLID_FLOOR)) / float(np.count_nonzero(inside))


def matte(pipeline: Pipeline, pixels: np.ndarray) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    result = pipeline.run(buffer.getvalue(), CutoutOptions(output="mask", type="object"))
    return np.asarray(Image.open(io.BytesIO(result.mask or b"")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", default="general", help="an eval folder (general, person)")
    parser.add_argument("--split", default="test", choices=["dev", "test", "all"])
    args = parser.parse_args()
    pipeline = Pipeline.from_settings()
    found = pairs(EVAL / args.set, args.split)
    rows: dict[str, list[tuple[float, float, float]]] = {name: [] for name in BACKGROUNDS}
    for stem, image_path, truth_path in found:
        photo = np.asarray(Image.open(image_path).convert("RGB"))
        truth = np.asarray(Image.open(truth_path).convert("L"))
        for name, compose in BACKGROUNDS.items():
            alpha = matte(pipeline, photo if compose is None else compose(photo, truth))
            measured = score(stem, alpha, truth)
            rows[name].append((measured.iou, measured.mae, washed_out(alpha, truth)))
    half = f"eval/{args.set}, {args.split} half ({len(found)} photos)"
    print(f"machine: {describe_cpu()}; {half}; type=object\n")
    print("| background | mean IoU | MAE | opaque pixels under 0.9 alpha | worst photo's share |")
    print("|---|---:|---:|---:|---:|")
    for name, scores in rows.items():
        iou, mae, washed = (statistics.fmean(column) for column in zip(*scores, strict=True))
        worst = max(s[2] for s in scores)
        print(f"| {name} | {iou:.3f} | {mae:.4f} | {100 * washed:.2f} % | {100 * worst:.1f} % |")


if __name__ == "__main__":
    main()
