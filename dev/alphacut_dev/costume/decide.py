"""Train a per-picture dress/skirt decision (``DressOrSkirt``, below) on Clothing
Co-Parsing's per-image labels, over the maps the costume head reads.

Examples: every cached photo whose labels name a skirt or a dress but not both (pixel-labelled
photos: their label map; the others: ``tags.json``) and in which the head sees a dress or skirt
region; its features are ``lower_garment_features`` (below) of the head's scores on the cached
maps, what a pipeline would compute from the head's scores and feeds. The held-out tenths of both
sets are never trained on; the tagged tenth's accuracy is printed beside the rule it replaces. An L2-penalised
logistic regression on standardised features (Newton's method), the penalty chosen by 5-fold
cross-validation on the training photos.

Usage::

    python -m alphacut_dev.costume.decide            # -> .cache/costume/dress_or_skirt.npz
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from alphacut.costume import BACKGROUND, CLASS_NAMES, Garment

from alphacut_dev.costume.labels import COARSE_TO_CLASS
from alphacut_dev.costume.pseudo import teacher_logits
from alphacut_dev.data import TRAIN_CCP

# The per-picture dress/skirt decision (``DressOrSkirt``) reads the maps the head reads, averaged
# over the region the head calls dress or skirt, on this grid (the 16 px maps' own).
DECISION_GRID = 16
DECISION_MAPS = ("f16", "b16", "bhead")
MIN_DECISION_PIXELS = 16  # of the head's 128 x 128: less than this is no garment to decide about


def lower_garment_features(scores: np.ndarray, feeds: dict[str, np.ndarray]) -> np.ndarray | None:
    """What the dress/skirt decision reads for one picture (None when the head sees neither): the
    16 px maps (ISNet's and EfficientNet-Lite0's) averaged over the cells the head calls dress or
    skirt, and where that region sits on the subject (its top and bottom rows, as a share of the
    subject's height), its size against the subject's and the tops and coat under it. All in the
    head's 128 x 128 square frame, so training (cached maps) and run time read the same numbers."""
    inside = feeds["picture"][0, 3] >= 0.5
    best = np.where(inside, scores.argmax(0), BACKGROUND)
    region = np.isin(best, (Garment.DRESS.class_id, Garment.SKIRT.class_id))
    if region.sum() < MIN_DECISION_PIXELS:
        return None
    cell = region.shape[0] // DECISION_GRID
    weights = region.reshape(DECISION_GRID, cell, DECISION_GRID, cell).mean((1, 3))
    weights = weights / weights.sum()
    pooled = [
        np.tensordot(feeds[name][0].astype(np.float32), weights, axes=([1, 2], [0, 1]))
        for name in DECISION_MAPS
    ]
    rows, subject = np.flatnonzero(region.any(1)), np.flatnonzero(inside.any(1))
    height = subject[-1] - subject[0] + 1
    counts = np.bincount(best.ravel(), minlength=len(CLASS_NAMES))
    geometry = np.array(
        [
            (rows[0] - subject[0]) / height,
            (rows[-1] - subject[0]) / height,
            region.sum() / inside.sum(),
            counts[Garment.TOPS.class_id] / region.sum(),
            counts[Garment.COAT.class_id] / region.sum(),
        ],
        np.float32,
    )
    return np.concatenate([*pooled, geometry])


@dataclass(frozen=True)
class DressOrSkirt:
    """A logistic regression over ``lower_garment_features``: is the picture's lower garment one
    piece with its top (dress) or not (skirt)? Trained here on Clothing Co-Parsing's per-image
    labels; measured, not shipped (see the model card).

    Usage::

        decision = DressOrSkirt.load(path)
        garment = decision.decide(lower_garment_features(scores, feeds))   # Garment.SKIRT, .DRESS or None
    """

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float

    @classmethod
    def load(cls, path: Path) -> DressOrSkirt:
        with np.load(path) as data:
            return cls(data["mean"], data["scale"], data["weights"], float(data["bias"]))

    def skirt_probability(self, features: np.ndarray) -> float:
        z = float(((features - self.mean) / self.scale) @ self.weights + self.bias)
        return 1.0 / (1.0 + np.exp(-z))

    def decide(self, features: np.ndarray | None) -> Garment | None:
        if features is None:
            return None
        return Garment.SKIRT if self.skirt_probability(features) >= 0.5 else Garment.DRESS


def name_lower_garment(class_map: np.ndarray, garment: Garment | None) -> np.ndarray:
    """Every dress or skirt pixel of the picture becomes ``garment`` (None: left as the head said)."""
    if garment is None:
        return class_map
    lower = np.isin(class_map, (Garment.DRESS.class_id, Garment.SKIRT.class_id))
    return np.where(lower, garment.class_id, class_map).astype(np.uint8)


ROOT = Path(__file__).resolve().parents[3]
OUTPUT = ROOT / ".cache" / "costume" / "dress_or_skirt.npz"
PENALTIES = (1.0, 10.0, 100.0, 1000.0, 10000.0)
DRESS, SKIRT = Garment.DRESS.class_id, Garment.SKIRT.class_id


def fit(x: np.ndarray, y: np.ndarray, penalty: float, steps: int = 25) -> np.ndarray:
    """Weights (the last one the bias, not penalised) of an L2 logistic regression, by Newton's method."""
    design = np.hstack([x, np.ones((len(x), 1))])
    weights = np.zeros(design.shape[1])
    ridge = np.full(design.shape[1], penalty)
    ridge[-1] = 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-design @ weights))
        gradient = design.T @ (p - y) + ridge * weights
        hessian = (design * (p * (1 - p))[:, None]).T @ design + np.diag(ridge + 1e-6)
        step = np.linalg.solve(hessian, gradient)
        weights -= step
        if np.abs(step).max() < 1e-6:
            break
    return weights


def predict(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(x @ weights[:-1] + weights[-1])))


def auc(p: np.ndarray, y: np.ndarray) -> float:
    """Area under the ROC curve of scores ``p`` for 0/1 labels ``y`` (by ranks)."""
    order = np.argsort(p)
    ranks = np.empty(len(p))
    ranks[order] = np.arange(1, len(p) + 1)
    positives = y.sum()
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * (len(y) - positives)))


def cross_validated(x: np.ndarray, y: np.ndarray, penalty: float, folds: int = 5) -> float:
    """Accuracy over ``folds`` interleaved folds."""
    right = 0
    for fold in range(folds):
        test = np.arange(len(x)) % folds == fold
        weights = fit(x[~test], y[~test], penalty)
        right += int(((predict(x[test], weights) >= 0.5) == y[test]).sum())
    return right / len(x)


def examples(head, cache: Path, backbone: Path, labels_of: dict[str, set[int]]):
    """(stem, features, is_skirt) for every photo with exactly one of dress and skirt that the head
    sees a lower garment in; and how many the head saw none in."""
    from alphacut.models.costume_head import picture_input

    rows, unseen = [], 0
    for stem, classes in sorted(labels_of.items()):
        if (DRESS in classes) == (SKIRT in classes):
            continue
        logits, matte = teacher_logits(head, cache, backbone, stem)
        with np.load(cache / f"{stem}.npz") as cached, np.load(backbone / f"{stem}.npz") as maps:
            feeds = {name: cached[name][None] for name in ("f16",)}
            feeds.update({name: maps[name][None] for name in ("b16", "bhead")})
            feeds["picture"] = picture_input(cached["rgb"], matte)[None]
        features = lower_garment_features(logits, feeds)
        if features is None:
            unseen += 1
            continue
        rows.append((stem, features, SKIRT in classes))
    return rows, unseen


def main(argv: list[str] | None = None) -> int:
    from alphacut.models.costume_head import HEAD_PATH, CostumeModel

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, default=TRAIN_CCP)
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache" / "costume" / "features")
    parser.add_argument("--backbone-cache", type=Path, default=ROOT / ".cache" / "costume" / "backbone")
    parser.add_argument("--head", type=Path, default=HEAD_PATH)
    parser.add_argument("--out", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    head = CostumeModel.load(args.head)
    spec = json.loads((args.train / "classes.json").read_text())
    tags = json.loads((args.train.parent / "ccp_tags" / "tags.json").read_text())
    tagged = {
        stem: {COARSE_TO_CLASS[spec["fine_to_coarse"][t]] for t in names} for stem, names in tags.items()
    }
    labelled = {}
    for path in sorted(args.cache.glob("ccp_*.npz")):
        with np.load(path) as cached:
            labelled[path.stem] = set(np.unique(cached["labels"]).tolist())
    held = {stem for i, stem in enumerate(sorted(labelled)) if i % 10 == 9}
    held |= {stem for i, stem in enumerate(sorted(tagged)) if i % 10 == 9}
    tagged_rows, unseen_tagged = examples(
        head,
        args.cache.parent / f"{args.cache.name}_tags",
        args.backbone_cache.parent / f"{args.backbone_cache.name}_tags",
        tagged,
    )
    labelled_rows, unseen_labelled = examples(head, args.cache, args.backbone_cache, labelled)
    train = [r for r in tagged_rows + labelled_rows if r[0] not in held]
    test = [r for r in tagged_rows if r[0] in held]
    x, y = np.stack([r[1] for r in train]), np.array([r[2] for r in train], np.float64)
    mean, scale = x.mean(0), x.std(0) + 1e-6
    standard = (x - mean) / scale
    print(
        f"{len(train)} training photos ({int(y.sum())} skirts), {len(test)} held-out tagged photos; "
        f"no lower garment seen in {unseen_tagged + unseen_labelled}; "
        f"features in {time.perf_counter() - started:.0f} s"
    )
    scores = {penalty: cross_validated(standard, y, penalty) for penalty in PENALTIES}
    for penalty, accuracy in scores.items():
        print(f"  penalty {penalty:>8g}: 5-fold accuracy {accuracy:.3f}")
    penalty = max(scores, key=lambda k: (scores[k], k))
    weights = fit(standard, y, penalty)
    decision = DressOrSkirt(
        mean.astype(np.float32), scale.astype(np.float32), weights[:-1].astype(np.float32), float(weights[-1])
    )
    test_y = np.array([r[2] for r in test], bool)
    said = np.array([decision.decide(r[1]) is Garment.SKIRT for r in test], bool)
    print(
        f"penalty {penalty:g}; held-out tagged tenth: {np.mean(said == test_y):.3f} right "
        f"({int(test_y.sum())} skirts: {int((said & test_y).sum())} found; "
        f"majority {max(test_y.mean(), 1 - test_y.mean()):.3f})"
    )
    np.savez(args.out, mean=decision.mean, scale=decision.scale, weights=decision.weights, bias=decision.bias)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
