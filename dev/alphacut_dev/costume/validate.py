"""Score the committed costume head at full resolution on the held-out tenth of the TRAINING set,
for each way of combining the class scores with the matte (the choice is made here, never on
../shared/eval).

    python -m alphacut_dev.costume.validate [--train ../shared/train/ccp]

Variants:
- ``matte+person``: outside the matte background; inside, the best non-background class
- ``matte+any``: the head's own argmax (background allowed), then cut by the matte
- ``head``: the head's argmax alone, no matte
- ``matte+any+mirror``: as matte+any, the scores averaged with those of the mirrored maps
- ``guided`` (shipped, ``Pipeline.parse_costume``): as matte+any, the scores snapped to the
  picture's edges by a guided filter first (``alphacut.costume.guided_probabilities``)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from alphacut.costume import CLASS_NAMES, SEED_GARMENTS, class_map_from_scores, confusion, iou_per_class, \
    upsample_scores
from alphacut.matte import resize_matte
from alphacut.models import isnet
from alphacut.models.costume import head_inputs
from alphacut.pipeline import Pipeline
from alphacut_dev.costume.labels import fine_lookup

ROOT = Path(__file__).resolve().parents[3]


def held_out(images: list[Path]) -> list[Path]:
    """The same tenth ``train`` holds out: every tenth image in name order."""
    return [path for index, path in enumerate(images) if index % 10 == 9]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, default=ROOT.parent / "shared" / "train" / "ccp")
    parser.add_argument("--head", type=Path, default=None, help="another head file to score")
    args = parser.parse_args(argv)
    table = fine_lookup(args.train / "classes.json")
    pipeline = Pipeline.from_settings()
    if args.head is not None:
        from alphacut.models.costume import CostumeModel
        from alphacut.models.runtime import session_options

        pipeline.models.costume = CostumeModel.load(session_options(), args.head)
    variants = ("matte+person", "matte+any", "head", "matte+any+mirror", "guided")
    matrices = {name: np.zeros((len(CLASS_NAMES),) * 2, np.int64) for name in variants}
    chosen = held_out(sorted((args.train / "images").glob("*.jpg")))
    for path in chosen:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        truth = table[np.asarray(Image.open(args.train / "labels" / f"{path.stem}.png"))]
        output = pipeline.models.isnet_features.run(isnet.preprocess(rgb), with_features=True)
        feeds = head_inputs(rgb, output)
        scores = pipeline.models.costume.run(feeds)
        mirrored = pipeline.models.costume.run(feeds, mirrored=True)
        matte = resize_matte(output.matte, rgb.shape[1], rgb.shape[0])
        upsampled = upsample_scores(scores, rgb.shape[1], rgb.shape[0])
        predictions = {
            "matte+person": np.where(matte >= 0.5, upsampled[1:].argmax(0) + 1, 0).astype(np.uint8),
            "matte+any": class_map_from_scores(scores, matte),
            "head": upsampled.argmax(0).astype(np.uint8),
            "matte+any+mirror": class_map_from_scores(mirrored, matte),
            "guided": class_map_from_scores(scores, matte, rgb),
        }
        for name, predicted in predictions.items():
            matrices[name] += confusion(predicted, truth)
    print(f"held-out training images: {len(chosen)} (IoU summed over the set)")
    print(f"{'class':<11}" + "".join(f"{name:>18}" for name in variants))
    ious = {name: iou_per_class(matrix) for name, matrix in matrices.items()}
    for index, class_name in enumerate(CLASS_NAMES):
        cells = "".join(f"{'-' if ious[n][index] is None else f'{ious[n][index]:.3f}':>18}" for n in variants)
        print(f"{class_name:<11}{cells}")
    means = "".join(f"{np.mean([ious[n][g.class_id] or 0.0 for g in SEED_GARMENTS]):>18.3f}" for n in variants)
    print(f"{'seed mean':<11}{means}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
