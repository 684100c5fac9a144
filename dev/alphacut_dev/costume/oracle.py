"""How far a per-picture dress/skirt decision can go at best: the shipped pipeline's class maps on
the held-out tenth of the pixel-labelled training photos, scored as shipped and with every dress or
skirt pixel renamed to what the photo's labels say it wears (an oracle: right every time). Photos
with both or neither keep the head's own call. Reads no eval photo.

With ``--decider`` (a per-picture skirt-probability model, as written by
``alphacut_dev.costume.one_piece_finetune --export``) the same photos are also scored with its call
in place of the labels': on every picture ("decider"), and only where it is sure (probability at
least ``0.5 + margin`` or at most ``0.5 - margin``, else the shipped map) for each ``--margins``.

Usage::

    python -m alphacut_dev.costume.oracle          # prints per-class IoU: shipped, oracle
    python -m alphacut_dev.costume.oracle --decider .cache/costume/one_piece.onnx --margins 0.1 0.2 0.3
    python -m alphacut_dev.costume.oracle --head .cache/costume/top_pair.onnx   # another head's maps
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
from alphacut_dev.costume.one_piece_input import decider_batch, decider_picture
from alphacut_dev.data import TRAIN_CCP

DRESS, SKIRT = Garment.DRESS.class_id, Garment.SKIRT.class_id


def worn_lower_garment(truth: np.ndarray) -> int | None:
    """SKIRT or DRESS when the labels show exactly one of them, else None."""
    has_dress, has_skirt = bool((truth == DRESS).any()), bool((truth == SKIRT).any())
    return SKIRT if has_skirt and not has_dress else DRESS if has_dress and not has_skirt else None


def use_head(pipeline: Pipeline, path: Path) -> None:
    """Score another costume head file (a candidate) instead of the committed one."""
    from alphacut.models.costume_head import CostumeModel

    pipeline.models.costume = CostumeModel.load(path)


def renamed(class_map: np.ndarray, garment: int | None) -> np.ndarray:
    if garment is None:
        return class_map
    return np.where(np.isin(class_map, (DRESS, SKIRT)), garment, class_map).astype(np.uint8)


def skirt_probability(session, rgb: np.ndarray, person: np.ndarray | None = None) -> float:
    """The decider's call on one picture, fed as it was trained (``one_piece_input``: the whole
    picture, or with ``person`` the person on grey)."""
    batch = decider_batch([decider_picture(rgb, person)])
    return float(session.run(["skirt"], {"picture": batch})[0][0])


def decided(class_map: np.ndarray, probability: float, margin: float) -> np.ndarray:
    if abs(probability - 0.5) < margin:
        return class_map
    return renamed(class_map, SKIRT if probability >= 0.5 else DRESS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=Path, default=TRAIN_CCP)
    parser.add_argument("--decider", type=Path, help="a skirt-probability ONNX model to score too")
    parser.add_argument("--margins", type=float, nargs="*", default=[0.1, 0.2, 0.3])
    parser.add_argument("--head", type=Path, help="score this costume head file instead of the committed one")
    args = parser.parse_args(argv)
    table = fine_lookup(args.train / "classes.json")
    stems = [p.stem for i, p in enumerate(sorted((args.train / "images").glob("*.jpg"))) if i % 10 == 9]
    pipeline = Pipeline.from_settings()
    if args.head:
        use_head(pipeline, args.head)
    names = ["shipped", "oracle"]
    session = None
    if args.decider:
        import onnxruntime as ort

        session = ort.InferenceSession(str(args.decider), providers=["CPUExecutionProvider"])
        names += ["decider"] + [f"sure{m:g}" for m in args.margins]
    matrices = {name: np.zeros((10, 10), np.int64) for name in names}
    known = right = 0
    for index, stem in enumerate(stems):
        image = pipeline.decode((args.train / "images" / f"{stem}.jpg").read_bytes())
        predicted = pipeline.parse_costume(image).class_map
        truth = table[np.asarray(Image.open(args.train / "labels" / f"{stem}.png"))]
        garment = worn_lower_garment(truth)
        known += garment is not None
        matrices["shipped"] += confusion(predicted, truth)
        matrices["oracle"] += confusion(renamed(predicted, garment), truth)
        if session is not None:
            probability = skirt_probability(session, image.rgb)
            right += garment is not None and (probability >= 0.5) == (garment == SKIRT)
            matrices["decider"] += confusion(decided(predicted, probability, 0.0), truth)
            for margin in args.margins:
                matrices[f"sure{margin:g}"] += confusion(decided(predicted, probability, margin), truth)
        print(f"\r{index + 1}/{len(stems)}", end="", file=sys.stderr)
    print(f"\nheld-out photos: {len(stems)}, {known} with exactly one of dress and skirt")
    if session is not None:
        print(f"decider right on {right} of {known}")
    ious = {name: iou_per_class(matrix) for name, matrix in matrices.items()}
    print(f"{'class':<14}" + "".join(f"{name:>9}" for name in ious))
    for class_id, name in enumerate(CLASS_NAMES):
        print(f"{name:<14}" + "".join(f"{ious[k][class_id]:>9.3f}" for k in ious))
    seeds = [g.class_id for g in SEED_GARMENTS]
    print(f"{'seed mean':<14}" + "".join(f"{np.mean([ious[k][c] for c in seeds]):>9.4f}" for k in ious))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
