"""Score the committed costume head at full resolution on the held-out tenth of the TRAINING set,
for each way of combining the class scores with the matte (the choice is made here, never on
the eval photos).

    python -m alphacut_dev.costume.validate [--train DATA/train/ccp]    # DATA: alphacut_dev.data
    python -m alphacut_dev.costume.validate --members .cache/costume/members/*.onnx   # choose an ensemble

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
import dataclasses
import sys
from itertools import combinations
from pathlib import Path

import numpy as np
from alphacut.costume import (
    CLASS_NAMES,
    SEED_GARMENTS,
    class_map_from_scores,
    upsample_scores,
)
from alphacut.evaluate import confusion, iou_per_class
from alphacut.matte import resize_matte
from alphacut.models import backbone, isnet
from alphacut.models.costume_head import BACKBONE_INPUTS, CostumeModel, head_inputs
from alphacut.pipeline import Pipeline
from alphacut.settings import EngineSettings
from PIL import Image

from alphacut_dev.costume.labels import fine_lookup
from alphacut_dev.data import TRAIN_CCP

ROOT = Path(__file__).resolve().parents[3]


def held_out(images: list[Path]) -> list[Path]:
    """The same tenth ``train`` holds out: every tenth image in name order."""
    return [path for index, path in enumerate(images) if index % 10 == 9]


def run_models(pipeline: Pipeline, rgb: np.ndarray):
    """ISNet's output and every feed a head may read (the backbone's maps included) for one picture."""
    output = pipeline.models.isnet_features.run(isnet.preprocess(rgb), with_features=True)
    return output, head_inputs(rgb, output, pipeline.models.backbone.run(backbone.preprocess(rgb)))


def isnet_outputs(pipeline: Pipeline, path: Path, cache: Path) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The head's feeds and ISNet's matte for one photo, kept in ``cache`` (fp16) after the first run."""
    target = cache / f"{path.stem}.npz"
    rgb = np.asarray(Image.open(path).convert("RGB"))
    if target.exists():
        with np.load(target) as data:
            stale = not set(BACKBONE_INPUTS) <= set(data.files)  # cached before the backbone existed
        if stale:
            target.unlink()
    if not target.exists():
        output, feeds = run_models(pipeline, rgb)
        cache.mkdir(parents=True, exist_ok=True)
        halves = {name: value.astype(np.float16) for name, value in feeds.items()}
        np.savez(target, matte=output.matte.astype(np.float16), **halves)
    with np.load(target) as data:
        matte = data["matte"].astype(np.float32)
        feeds = {name: data[name].astype(np.float32) for name in data.files if name != "matte"}
    return feeds, resize_matte(matte, rgb.shape[1], rgb.shape[0])


def compare_members(
    pipeline: Pipeline,
    members: list[Path],
    chosen: list[Path],
    table: np.ndarray,
    cache: Path,
) -> None:
    """Each member alone and the mean of every subset of two or more, guided filter, with the skirt
    rule and without it."""
    heads = [CostumeModel.load(path) for path in members]
    subsets = [s for k in range(1, len(members) + 1) for s in combinations(range(len(members)), k)]
    ways = ("rule", "no rule")
    variants = [(s, way) for s in subsets for way in ways]
    matrices = {v: np.zeros((len(CLASS_NAMES),) * 2, np.int64) for v in variants}
    for path in chosen:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        truth = table[np.asarray(Image.open(path.parent.parent / "labels" / f"{path.stem}.png"))]
        feeds, matte = isnet_outputs(pipeline, path, cache)
        scores = [head.run(feeds) for head in heads]
        for subset in subsets:
            mean = np.mean([scores[i] for i in subset], axis=0)
            maps = {
                "rule": class_map_from_scores(mean, matte, rgb),
                "no rule": class_map_from_scores(mean, matte, rgb, skirt_rule=False),
            }
            for way in ways:
                matrices[subset, way] += confusion(maps[way], truth)
    names = [path.stem for path in members]
    rows = []
    for (subset, way), matrix in matrices.items():
        iou = iou_per_class(matrix)
        seed = float(np.mean([iou[g.class_id] or 0.0 for g in SEED_GARMENTS]))
        rows.append((seed, "+".join(names[i] for i in subset) + f" ({way})", iou))
    print(f"{'members':<44}{'seed mean':>10}" + "".join(f"{n[:6]:>7}" for n in CLASS_NAMES[1:]))
    for seed, label, iou in sorted(rows, reverse=True):
        cells = "".join(f"{'-' if v is None else f'{v:.3f}':>7}" for v in iou[1:])
        print(f"{label:<44}{seed:>10.4f}{cells}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, default=TRAIN_CCP)
    parser.add_argument("--head", type=Path, default=None, help="another head file to score")
    parser.add_argument("--members", type=Path, nargs="+", help="head files: score each and their means")
    parser.add_argument(
        "--cache",
        type=Path,
        default=ROOT / ".cache" / "costume" / "held_out",
        help="where --members keeps ISNet's outputs for the held-out photos",
    )
    args = parser.parse_args(argv)
    table = fine_lookup(args.train / "classes.json")
    # scored on the engine the head runs on in Lambda and was trained on (``features``): onnxruntime
    pipeline = Pipeline.from_settings(dataclasses.replace(EngineSettings.from_env(), engine="onnxruntime"))
    chosen = held_out(sorted((args.train / "images").glob("*.jpg")))
    if args.members:
        compare_members(pipeline, args.members, chosen, table, args.cache)
        return 0
    if args.head is not None:  # a candidate scored instead of the committed head
        pipeline.models.costume = CostumeModel.load(args.head)
    variants = ("matte+person", "matte+any", "head", "matte+any+mirror", "guided")
    matrices = {name: np.zeros((len(CLASS_NAMES),) * 2, np.int64) for name in variants}
    for path in chosen:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        truth = table[np.asarray(Image.open(args.train / "labels" / f"{path.stem}.png"))]
        output, feeds = run_models(pipeline, rgb)
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
    means = "".join(
        f"{np.mean([ious[n][g.class_id] or 0.0 for g in SEED_GARMENTS]):>18.3f}" for n in variants
    )
    print(f"{'seed mean':<11}{means}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
