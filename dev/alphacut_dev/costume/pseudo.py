"""Pixel labels for the photos labelled per image (``ccp_tags``): the teacher head's class scores,
kept to the classes the photo's tags name.

Clothing Co-Parsing labels 1,094 of its photos per image only (``tags.json``: the fine labels each
photo shows). The teacher (the shipped head, trained on the 716 pixel-labelled photos) finds the
garments' regions well and their names less well: most skirts come out as "dress". The tags fix
the names. For each photo:

- the teacher's logits (128 px) enlarged to the label grid (256 px) and made probabilities;
- a class the tags do not name gives its probability to its named siblings (``SIBLINGS``: a dress
  the photo does not have is its skirt, or else its top and trousers, shared by their own
  probability there; a coat it does not have is its top), or, with none named, is dropped;
  background and the rest of the person are always allowed;
- outside ISNet's matte: background; where the best class holds less than ``CONFIDENCE`` of the
  probability: ``IGNORE`` (the training loss skips it).

Usage::

    python -m alphacut_dev.costume.pseudo          # -> .cache/costume/pseudo_labels.npz (256² uint8 each)
    python -m alphacut_dev.costume.pseudo --check  # pseudo-labels vs the truth on the held-out tenth

    labels = pseudo_labels(logits, matte, present_classes(["blouse", "skirt", "heels"], lookup))
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from alphacut.costume import BACKGROUND, CLASS_NAMES, REST_OF_PERSON, Garment
from alphacut.models.costume_head import HEAD_PATH

from alphacut_dev.costume.labels import COARSE_TO_CLASS
from alphacut_dev.data import TRAIN_CCP_TAGS

ROOT = Path(__file__).resolve().parents[3]
TEACHER = HEAD_PATH  # the shipped head (a student that replaced it would need its teacher kept)
LABEL_SIDE = 256
CONFIDENCE = 0.5
IGNORE = 255

_id = {g: g.class_id for g in Garment}
# where an absent class's probability goes: the first group of which the photo's tags name any
# member, shared among those named
SIBLINGS: dict[int, tuple[tuple[int, ...], ...]] = {
    _id[Garment.DRESS]: ((_id[Garment.SKIRT],), (_id[Garment.TOPS], _id[Garment.PANTS])),
    _id[Garment.SKIRT]: ((_id[Garment.DRESS],), (_id[Garment.PANTS],)),
    _id[Garment.TOPS]: ((_id[Garment.COAT],), (_id[Garment.DRESS],)),
    _id[Garment.COAT]: ((_id[Garment.TOPS],), (_id[Garment.DRESS],)),
    _id[Garment.PANTS]: ((_id[Garment.SKIRT],), (_id[Garment.DRESS],)),
    _id[Garment.SHOES]: ((REST_OF_PERSON,),),
    _id[Garment.HAT]: ((REST_OF_PERSON,),),
    _id[Garment.BAG]: (),
}


def present_classes(tags: list[str], fine_to_coarse: dict[str, str]) -> set[int]:
    """Our class ids a photo's CCP tags name, with background and the rest of the person."""
    return {COARSE_TO_CLASS[fine_to_coarse[tag]] for tag in tags} | {BACKGROUND, REST_OF_PERSON}


def _enlarge(planes: np.ndarray, side: int) -> np.ndarray:
    from alphacut.costume import upsample_scores

    return upsample_scores(planes, side, side)


def pseudo_labels(
    logits: np.ndarray, matte: np.ndarray, present: set[int], side: int = LABEL_SIDE
) -> np.ndarray:
    """``side`` x ``side`` uint8 class ids (``IGNORE`` where unsure) from the teacher's C x 128 x 128
    logits and ISNet's 128 x 128 matte, kept to the ``present`` classes."""
    scores = _enlarge(logits, side)
    probabilities = np.exp(scores - scores.max(0, keepdims=True))
    probabilities /= probabilities.sum(0, keepdims=True)
    absent = sorted(set(range(len(CLASS_NAMES))) - present)
    shares = probabilities.copy()  # the heirs share by their own probability before any inheritance
    for lost in absent:
        groups = ([c for c in group if c in present] for group in SIBLINGS.get(lost, ()))
        heirs = next((group for group in groups if group), None)
        if heirs:
            weights = shares[heirs] + 1e-3
            probabilities[heirs] += probabilities[lost] * weights / weights.sum(0)
        probabilities[lost] = 0.0
    probabilities /= probabilities.sum(0, keepdims=True)
    best = probabilities.argmax(0).astype(np.uint8)
    labels = np.where(probabilities.max(0) >= CONFIDENCE, best, IGNORE).astype(np.uint8)
    inside = _enlarge(matte[None].astype(np.float32), side)[0] >= 0.5
    return np.where(inside, labels, BACKGROUND).astype(np.uint8)


def teacher_logits(teacher, cache: Path, backbone_cache: Path, stem: str) -> tuple[np.ndarray, np.ndarray]:
    """The teacher's logits and ISNet's 128 px matte for one cached photo."""
    from alphacut.models.costume_head import picture_input

    with np.load(cache / f"{stem}.npz") as cached, np.load(backbone_cache / f"{stem}.npz") as maps:
        feeds = {name: cached[name][None].astype(np.float32) for name in ("f128", "f64", "f32", "f16")}
        feeds.update({name: maps[name][None].astype(np.float32) for name in maps.files})
        matte = cached["matte"].astype(np.float32)
        feeds["picture"] = picture_input(cached["rgb"], matte)[None]
    return teacher.run(feeds), matte


def check_on_labelled(teacher, train: Path, cache: Path, backbone_cache: Path) -> None:
    """How right pseudo-labels are where the truth is known: the held-out tenth of the pixel-labelled
    photos (the teacher never trained on them), their tags read off their labels, scored at 256 px
    against the labels (ignored pixels left out) beside the teacher's own argmax."""
    from alphacut.costume import SEED_GARMENTS
    from alphacut.evaluate import confusion, iou_per_class

    spec = json.loads((train / "classes.json").read_text())
    stems = [p.stem for i, p in enumerate(sorted((train / "images").glob("*.jpg"))) if i % 10 == 9]
    matrices = {"teacher": np.zeros((10, 10), np.int64), "pseudo": np.zeros((10, 10), np.int64)}
    ignored = 0.0
    for stem in stems:
        from PIL import Image

        fine = np.unique(np.asarray(Image.open(train / "labels" / f"{stem}.png")))
        tags = [spec["fine_classes"][str(i)] for i in fine if i]
        logits, matte = teacher_logits(teacher, cache, backbone_cache, stem)
        with np.load(cache / f"{stem}.npz") as cached:
            truth = cached["labels"]
        own = pseudo_labels(logits, matte, set(range(len(CLASS_NAMES))))
        labels = pseudo_labels(logits, matte, present_classes(tags, spec["fine_to_coarse"]))
        kept = labels != IGNORE
        ignored += 1 - kept.mean()
        matrices["teacher"] += confusion(own[own != IGNORE], truth[own != IGNORE])
        matrices["pseudo"] += confusion(labels[kept], truth[kept])
    print(
        f"held-out pixel-labelled photos: {len(stems)}, "
        f"{ignored / len(stems):.1%} of pseudo-label pixels ignored"
    )
    for name, matrix in matrices.items():
        iou = iou_per_class(matrix)
        seed = np.mean([iou[g.class_id] or 0.0 for g in SEED_GARMENTS])
        cells = " ".join(f"{CLASS_NAMES[c]} {v:.3f}" for c, v in enumerate(iou) if v is not None)
        print(f"{name:<8} seed mean {seed:.3f}  {cells}")


def main(argv: list[str] | None = None) -> int:
    from alphacut.models.costume_head import CostumeModel

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tagged", type=Path, default=TRAIN_CCP_TAGS)
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache" / "costume" / "features_tags")
    parser.add_argument("--backbone-cache", type=Path, default=ROOT / ".cache" / "costume" / "backbone_tags")
    parser.add_argument("--teacher", type=Path, default=TEACHER)
    parser.add_argument("--out", type=Path, default=ROOT / ".cache" / "costume" / "pseudo_labels.npz")
    parser.add_argument(
        "--check",
        action="store_true",
        help="score pseudo-labels against the truth on the pixel-labelled held-out tenth instead",
    )
    args = parser.parse_args(argv)
    if args.check:
        labelled = args.cache.parent / args.cache.name.removesuffix("_tags")
        backbone = args.backbone_cache.parent / args.backbone_cache.name.removesuffix("_tags")
        check_on_labelled(CostumeModel.load(args.teacher), args.tagged.parent / "ccp", labelled, backbone)
        return 0
    tags = json.loads((args.tagged / "tags.json").read_text())
    spec = json.loads((args.tagged.parent / "ccp" / "classes.json").read_text())
    teacher = CostumeModel.load(args.teacher)
    started, labels = time.perf_counter(), {}
    for stem in sorted(tags):
        logits, matte = teacher_logits(teacher, args.cache, args.backbone_cache, stem)
        labels[stem] = pseudo_labels(logits, matte, present_classes(tags[stem], spec["fine_to_coarse"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **labels)
    ignored = np.mean([np.mean(v == IGNORE) for v in labels.values()])
    print(
        f"{len(labels)} photos pseudo-labelled in {time.perf_counter() - started:.0f} s "
        f"({ignored:.1%} of pixels ignored) -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
