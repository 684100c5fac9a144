"""How Clothing Co-Parsing's annotators named the lower garment: dress or skirt, by where it starts.

A dress seen whole starts at the shoulders; a skirt, or a dress under a sweater, starts at the
waist. For every photo whose labels show exactly one of dress and skirt, this finds the first row
of that garment as a fraction of the person's height (the labels' non-background rows) and whether
top-class pixels (shirts, sweaters, blouses...) lie above it, and counts the names given in each
case. A picture-level decision can only be as right as the names are consistent for what a viewer
sees: ``looks_like`` is that viewer's call, ``decisions policies`` scores it with a head, and
``census`` with perfect pixels.

Usage::

    python -m alphacut_dev.costume.census                    # the 795 pixel-labelled training photos
    python -m alphacut_dev.costume.census --labels DIR --classes DIR/../classes.json   # any CCP labels
    python -m alphacut_dev.costume.census --labels $ALPHACUT_DATA/eval/clothing/gt \
        --classes $ALPHACUT_DATA/eval/clothing/classes.json                        # the eval labels
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from alphacut.costume import CLASS_NAMES, Garment
from alphacut.evaluate import confusion, iou_per_class
from PIL import Image

from alphacut_dev.costume.labels import fine_lookup
from alphacut_dev.data import TRAIN_CCP

DRESS, SKIRT, TOPS = Garment.DRESS.class_id, Garment.SKIRT.class_id, Garment.TOPS.class_id
# a garment whose first row is this far down the person starts at the waist, not the shoulders
# (the names split here on the training labels: 152 of 156 above are dresses)
WAIST = 0.3
# top pixels above the garment, per garment pixel, for "worn under a top"
UNDER_A_TOP = 0.2


def garment_shape(truth: np.ndarray) -> tuple[int, float, bool] | None:
    """(DRESS or SKIRT as labelled, where it starts down the person 0..1, a top above it), or None
    when the labels show both or neither."""
    dress, skirt = truth == DRESS, truth == SKIRT
    if dress.any() == skirt.any():
        return None
    garment = dress if dress.any() else skirt
    person_rows = np.flatnonzero((truth > 0).any(axis=1))
    first = int(np.flatnonzero(garment.any(axis=1))[0])
    start = (first - person_rows[0]) / (person_rows[-1] - person_rows[0] + 1)
    top_above = (truth[:first] == TOPS).sum() >= UNDER_A_TOP * garment.sum()
    return (DRESS if dress.any() else SKIRT), float(start), bool(top_above)


def looks_like(truth: np.ndarray) -> int | None:
    """What a viewer would call the lower garment from its shape alone: a skirt when it starts at
    the waist under a top, else a dress; None when the labels show both or neither."""
    shape = garment_shape(truth)
    if shape is None:
        return None
    _, start, top_above = shape
    return SKIRT if start >= WAIST and top_above else DRESS


def named_by_shape(truth: np.ndarray) -> np.ndarray:
    """The label map with its dress or skirt renamed to what its shape says (``looks_like``)."""
    call = looks_like(truth)
    if call is None:
        return truth
    return np.where(np.isin(truth, (DRESS, SKIRT)), call, truth).astype(truth.dtype)


def label_maps(labels: Path, classes: Path) -> Iterator[np.ndarray]:
    """Every label PNG in ``labels``, in name order, as alphacut's classes."""
    table = fine_lookup(classes)
    for path in sorted(labels.glob("*.png")):
        yield table[np.asarray(Image.open(path))]


def census(labels: Path, classes: Path) -> tuple[Counter[tuple[str, str]], dict[str, float]]:
    """Counts of (where the garment starts, the name it was given), and the dress and skirt IoU of
    a head whose pixels are perfect and whose names follow the shape (``named_by_shape``) against
    these labels: the most a call by shape can score. Reads every label once."""
    counts, matrix = Counter[tuple[str, str]](), np.zeros((len(CLASS_NAMES),) * 2, np.int64)
    for truth in label_maps(labels, classes):
        matrix += confusion(named_by_shape(truth), truth)
        shape = garment_shape(truth)
        if shape is None:
            continue
        named, start, top_above = shape
        where = "shoulders" if start < WAIST else "waist, under a top" if top_above else "waist, no top above"
        counts[where, "dress" if named == DRESS else "skirt"] += 1
    iou = iou_per_class(matrix)
    return counts, {"dress": _or_nan(iou[DRESS]), "skirt": _or_nan(iou[SKIRT])}


def _or_nan(iou: float | None) -> float:
    """An IoU, nan when the class is neither labelled nor named anywhere."""
    return float("nan") if iou is None else iou


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=Path, default=TRAIN_CCP / "labels")
    parser.add_argument("--classes", type=Path, default=TRAIN_CCP / "classes.json")
    args = parser.parse_args(argv)
    if not any(args.labels.glob("*.png")):
        parser.error(f"--labels: no label PNGs in {args.labels}")
    counts, bound = census(args.labels, args.classes)
    print(f"{'the garment starts at':<24}{'named dress':>12}{'named skirt':>12}{'the call by shape':>19}")
    right = total = 0
    for where, call in (
        ("shoulders", "dress"),
        ("waist, under a top", "skirt"),
        ("waist, no top above", "dress"),
    ):
        dress, skirt = counts[where, "dress"], counts[where, "skirt"]
        right, total = right + (dress if call == "dress" else skirt), total + dress + skirt
        print(f"{where:<24}{dress:>12}{skirt:>12}{call:>19}")
    print(
        f"the call by shape agrees with the name on {right} of {total} photos ({right / max(total, 1):.1%})"
    )
    print(f"perfect pixels named by shape: dress IoU {bound['dress']:.3f}, skirt IoU {bound['skirt']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
