"""How far a per-picture dress/skirt decision can go at best: the shipped pipeline's class maps on
the held-out tenth of the pixel-labelled training photos, scored as shipped and with every dress or
skirt pixel renamed to what the photo's labels say it wears (an oracle: right every time). Photos
with both or neither keep the head's own call. Reads no eval photo.

Usage::

    python -m alphacut_dev.costume.oracle          # prints per-class IoU: shipped, oracle
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from alphacut.costume import CLASS_NAMES, SEED_GARMENTS, Garment
from alphacut.evaluate import confusion, iou_per_class
from alphacut.pipeline import Pipeline
from PIL import Image

from alphacut_dev.costume.labels import fine_lookup
from alphacut_dev.data import TRAIN_CCP

DRESS, SKIRT = Garment.DRESS.class_id, Garment.SKIRT.class_id


def worn_lower_garment(truth: np.ndarray) -> int | None:
    """SKIRT or DRESS when the labels show exactly one of them, else None."""
    has_dress, has_skirt = bool((truth == DRESS).any()), bool((truth == SKIRT).any())
    return SKIRT if has_skirt and not has_dress else DRESS if has_dress and not has_skirt else None


def renamed(class_map: np.ndarray, garment: int | None) -> np.ndarray:
    if garment is None:
        return class_map
    return np.where(np.isin(class_map, (DRESS, SKIRT)), garment, class_map).astype(np.uint8)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=Path, default=TRAIN_CCP)
    args = parser.parse_args(argv)
    table = fine_lookup(args.train / "classes.json")
    stems = [p.stem for i, p in enumerate(sorted((args.train / "images").glob("*.jpg"))) if i % 10 == 9]
    pipeline = Pipeline.from_settings()
    matrices = {"shipped": np.zeros((10, 10), np.int64), "oracle": np.zeros((10, 10), np.int64)}
    decided = 0
    for index, stem in enumerate(stems):
        image = pipeline.decode((args.train / "images" / f"{stem}.jpg").read_bytes())
        predicted = pipeline.parse_costume(image).class_map
        truth = table[np.asarray(Image.open(args.train / "labels" / f"{stem}.png"))]
        garment = worn_lower_garment(truth)
        decided += garment is not None
        matrices["shipped"] += confusion(predicted, truth)
        matrices["oracle"] += confusion(renamed(predicted, garment), truth)
        print(f"\r{index + 1}/{len(stems)}", end="", file=sys.stderr)
    print(f"\nheld-out photos: {len(stems)}, {decided} with exactly one of dress and skirt")
    ious = {name: iou_per_class(matrix) for name, matrix in matrices.items()}
    print(f"{'class':<14}{'shipped':>9}{'oracle':>9}")
    for class_id, name in enumerate(CLASS_NAMES):
        print(f"{name:<14}" + "".join(f"{ious[k][class_id]:>9.3f}" for k in ious))
    seeds = [g.class_id for g in SEED_GARMENTS]
    print(f"{'seed mean':<14}" + "".join(f"{np.mean([ious[k][c] for c in seeds]):>9.4f}" for k in ious))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
