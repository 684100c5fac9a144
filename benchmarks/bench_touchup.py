"""Benchmark: a touch-up (``alphacut.touchup``) against the paid call it corrects, on the eval set's
test half (general/ as ``type=object``, person/ as ``person``).

Each photo is cut out as a call would (``Pipeline.run``: the model's time and the compose's). A
careful user's strokes are then drawn from the truth: keep over what the matte missed, erase over
what it kept of the background, each stroke stopped ``--short`` px short of the true outline, as a
brush is (blobs a brush cannot draw, under ``--short`` px across, left out). The touch-up
(``Pipeline.retouch`` from the kept photo and matte, no model) is timed, and its matte scored
against the truth three ways: the model's alone, the strokes laid on as drawn (the baseline: no
fit), and the strokes with the ring outside them fitted to the photo's edges (shipped). ``gap
fixed``: of the wrong pixels strokes did not cover within ``2 x --short`` px of a stroke, the share
the matte now has right.

    .venv/bin/python benchmarks/bench_touchup.py [--short 4] [--limit N]
"""

from __future__ import annotations

import argparse
import io
import statistics
import time

import numpy as np
from alphacut.evaluate import pairs, score
from alphacut.masks import dilate_disk
from alphacut.models.engines import describe_cpu
from alphacut.options import CutoutOptions
from alphacut.pipeline import Pipeline
from alphacut.touchup import KeptMatte, apply_strokes, read_strokes
from alphacut_dev.data import EVAL
from PIL import Image

SETS = {"general": "object", "person": "person"}


def strokes_from_truth(alpha: np.ndarray, truth: np.ndarray, short: int) -> bytes | None:
    """A strokes PNG a careful user would draw (None: nothing to correct)."""
    model, actual = alpha >= 128, truth >= 128
    keep = ~dilate_disk(~(actual & ~model), short)  # the missed part, stopped short of its edges
    erase = ~dilate_disk(~(~actual & model), short)
    if not (keep.any() or erase.any()):
        return None
    strokes = np.zeros((*alpha.shape, 4), np.uint8)
    strokes[keep] = (255, 255, 255, 255)
    strokes[erase] = (0, 0, 0, 255)
    buffer = io.BytesIO()
    Image.fromarray(strokes, "RGBA").save(buffer, "PNG")
    return buffer.getvalue()


def as_drawn(alpha: np.ndarray, strokes: bytes) -> np.ndarray:
    """The baseline: the strokes laid on, no fit."""
    keep, erase = read_strokes(strokes, alpha.shape[1], alpha.shape[0])
    drawn = alpha.astype(np.float32) / 255.0
    drawn[keep], drawn[erase] = 1.0, 0.0
    return drawn


def gap_fixed(before: np.ndarray, after: np.ndarray, truth: np.ndarray, strokes: bytes, short: int) -> float:
    keep, erase = read_strokes(strokes, truth.shape[1], truth.shape[0])
    painted = keep | erase
    near = dilate_disk(painted, 2 * short) & ~painted
    wrong = near & ((before >= 128) != (truth >= 128))
    if not wrong.any():
        return float("nan")
    return float(((after[wrong] >= 128) == (truth[wrong] >= 128)).mean())


def to_uint8(alpha: np.ndarray) -> np.ndarray:
    return (alpha * 255.0 + 0.5).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--short", type=int, default=4, help="px each stroke stops short of the outline")
    parser.add_argument("--limit", type=int, default=0, help="photos per set (0: every test photo)")
    args = parser.parse_args()
    pipeline = Pipeline.from_settings(place=None)
    rows: dict[str, list[float]] = {
        k: [] for k in ("run", "retouch", "model", "drawn", "fitted", "gap_d", "gap_f")
    }
    counted = 0
    for folder, subject in SETS.items():
        found = pairs(EVAL / folder, "test")
        for stem, image_path, truth_path in found[: args.limit or None]:
            data = image_path.read_bytes()
            truth = np.asarray(Image.open(truth_path).convert("L"))
            options = CutoutOptions(type=subject)
            started = time.perf_counter()
            result = pipeline.run(data, options)
            rows["run"].append((time.perf_counter() - started) * 1000)
            assert result.matte is not None and result.matte.shape == truth.shape, stem
            strokes = strokes_from_truth(result.matte, truth, args.short)
            if strokes is None:
                continue
            kept = KeptMatte(data, result.matte, result.type, result.model)
            started = time.perf_counter()
            pipeline.retouch(KeptMatte.from_bytes(kept.to_bytes()), options.with_changes(refine=strokes))
            rows["retouch"].append((time.perf_counter() - started) * 1000)
            image = pipeline.decode(data)
            drawn = to_uint8(as_drawn(result.matte, strokes))
            fitted = to_uint8(apply_strokes(result.matte.astype(np.float32) / 255.0, image.rgb, strokes))
            for name, alpha in (("model", result.matte), ("drawn", drawn), ("fitted", fitted)):
                rows[name].append(score(stem, alpha, truth).iou)
            rows["gap_d"].append(gap_fixed(result.matte, drawn, truth, strokes, args.short))
            rows["gap_f"].append(gap_fixed(result.matte, fitted, truth, strokes, args.short))
            counted += 1

    def mean(name: str) -> float:
        values = [v for v in rows[name] if not np.isnan(v)]
        return statistics.fmean(values) if values else float("nan")

    print(f"machine: {describe_cpu()}; {counted} test-half photos with something to correct")
    print(f"strokes stop {args.short} px short of the true outline")
    print("| matte | IoU | gap fixed |")
    print("|---|---|---|")
    print(f"| the model's (the paid call) | {mean('model'):.4f} | - |")
    print(f"| strokes as drawn (baseline, no fit) | {mean('drawn'):.4f} | {mean('gap_d'):.1%} |")
    fitted = f"{mean('fitted'):.4f} | {mean('gap_f'):.1%}"
    print(f"| strokes, ring fitted to the photo's edges (shipped) | {fitted} |")
    run, retouch = statistics.median(rows["run"]), statistics.median(rows["retouch"])
    print("| call | median ms |")
    print("|---|---|")
    print(f"| paid cutout (model + compose) | {run:.0f} |")
    share = f"{retouch:.0f} ({retouch / run:.0%})"
    print(f"| touch-up (kept photo and matte, strokes, compose; no model) | {share} |")


if __name__ == "__main__":
    main()
