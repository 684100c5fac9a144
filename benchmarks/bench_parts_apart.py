"""Benchmark: how often a cutout keeps parts apart from its main subject (a box behind a handlebar,
a sign, a passer-by), and what dropping them would do, on the eval set's general photos.

Each photo of ``eval/general`` is cut out as ``type=object`` (the pipeline's own matte, as
``alphacut eval`` scores it), then scored against the truth as it is and with the parts of the
matte (alpha >= 0.5, 8-connected) other than the largest dropped, whole or when smaller than a
share of the largest (``--shares``). Dev half (even positions) and test half (odd) apart: a rule
is chosen on the dev half and reported on the test half. Also: the share of photos whose matte
holds a part apart at all, and how many of those parts the truth has no subject under.

    .venv/bin/python benchmarks/bench_parts_apart.py [--shares 0,0.05,0.2,1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from alphacut.evaluate import pairs, score
from alphacut.masks import reconstruct
from alphacut.options import CutoutOptions, SubjectType
from alphacut.pipeline import Pipeline
from alphacut_dev.data import EVAL
from PIL import Image

MOST_PARTS = 64


def parts(held: np.ndarray) -> list[np.ndarray]:
    """The 8-connected parts of ``held``, largest first (at most ``MOST_PARTS``)."""
    found, remaining = [], held.copy()
    while remaining.any() and len(found) < MOST_PARTS:
        seed = np.zeros_like(held)
        seed.flat[int(np.argmax(remaining))] = True
        part = reconstruct(seed, remaining)
        found.append(part)
        remaining &= ~part
    return sorted(found, key=lambda p: -int(p.sum()))


def dropped(alpha: np.ndarray, found: list[np.ndarray], share: float) -> np.ndarray:
    """``alpha`` with every part smaller than ``share`` of the largest made transparent (the
    pixels around a dropped part too: its soft rim, out to a few pixels)."""
    if len(found) < 2:
        return alpha
    largest = int(found[0].sum())
    out = alpha.copy()
    for part in found[1:]:
        if part.sum() < share * largest:
            rim = part.copy()
            for _ in range(3):  # the soft edge below 0.5 around it
                grown = rim.copy()
                grown[1:] |= rim[:-1]
                grown[:-1] |= rim[1:]
                grown[:, 1:] |= rim[:, :-1]
                grown[:, :-1] |= rim[:, 1:]
                rim = grown
            out[rim & ~found[0]] = 0
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shares", default="0.05,0.2,0.5,1.01")
    args = parser.parse_args()
    shares = [float(s) for s in args.shares.split(",")]
    pipeline = Pipeline.from_settings()
    options = CutoutOptions().with_changes(type=SubjectType.OBJECT)
    rows: dict[str, dict[str, list[float]]] = {}
    apart_counts: dict[str, list[int]] = {}
    wrong_parts: dict[str, list[int]] = {}
    started = time.perf_counter()
    for half in ("dev", "test"):
        rows[half] = {"as is": [], **{f"drop < {s:g} of largest": [] for s in shares}}
        apart_counts[half], wrong_parts[half] = [], []
        for stem, image_path, truth_path in pairs(EVAL / "general", half):
            image, view = pipeline.decode_views(image_path.read_bytes(), None, options)
            alpha = pipeline.segment(image, options, view=view).alpha
            truth = np.asarray(Image.open(truth_path).convert("L"))
            found = parts(alpha >= 128)
            apart_counts[half].append(len(found) > 1)
            wrong_parts[half].append(sum(1 for p in found[1:] if (truth[p] >= 128).mean() < 0.5))
            rows[half]["as is"].append(score(stem, alpha, truth).iou)
            for s in shares:
                rows[half][f"drop < {s:g} of largest"].append(
                    score(stem, dropped(alpha, found, s), truth).iou
                )
    print(f"eval/general, type=object, {time.perf_counter() - started:.0f} s\n")
    print("| rule | dev half mean IoU | test half mean IoU | test photos better / worse |")
    print("|---|---|---|---|")
    for name in rows["dev"]:
        base, now = rows["test"]["as is"], rows["test"][name]
        better = sum(b > a + 1e-4 for a, b in zip(base, now, strict=True))
        worse = sum(b < a - 1e-4 for a, b in zip(base, now, strict=True))
        print(
            f"| {name} | {statistics.mean(rows['dev'][name]):.4f} | {statistics.mean(now):.4f} | "
            f"{better} / {worse} |"
        )
    for half in ("dev", "test"):
        n = len(apart_counts[half])
        print(
            f"\n{half} half: {sum(apart_counts[half])} of {n} mattes hold a part apart from the largest; "
            f"{sum(wrong_parts[half])} such parts lie mostly over the truth's background"
        )


if __name__ == "__main__":
    main()
