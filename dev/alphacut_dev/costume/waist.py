"""Does the picture's own colour say "one piece"? A dress/skirt probe on colour continuity at the waist.

Every decider tried before read deep maps (ISNet's, EfficientNet-Lite0's, frozen or fine-tuned).
This one reads the pixels: MediaPipe selfie's mask (the pipeline's 6 ms person model) boxes the
person, and the middle half of their width is sampled in bands down the body (shoulders to knees,
as fractions of the person's height). A dress is usually one colour and texture from the chest to
the hem; a skirt usually differs from the top above it. Features: each band's CIELAB-like mean and
spread, the distance of every band to the chest band, the largest jump between neighbouring bands
and where it is. An L2 logistic regression (``decide.fit``) is judged by 5-fold cross-validation on
the training photos (pixel-labelled and tag-only ones that show exactly one of dress and skirt),
then once on the held-out tenths. Reads no eval photo.

Usage::

    python -m alphacut_dev.costume.waist            # ~2 min for 883 photos
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from alphacut.models import ModelStore
from PIL import Image

from alphacut_dev.costume.decide import auc, cross_validated, fit, predict
from alphacut_dev.costume.one_piece import examples

ROOT = Path(__file__).resolve().parents[3]
# band centres down the person, as fractions of their height: chest, waist, hips, thighs, knees
BANDS = (0.25, 0.32, 0.39, 0.46, 0.53, 0.60, 0.67, 0.74)
BAND_HALF = 0.03
CHEST = 0


def opponent_colour(rgb: np.ndarray) -> np.ndarray:
    """A cheap perceptual space: lightness and two opponent axes (float, N x 3)."""
    r, g, b = (rgb[..., i].astype(np.float32) / 255.0 for i in range(3))
    return np.stack([(r + g + b) / 3, r - g, (r + g) / 2 - b], axis=-1)


def band_statistics(rgb: np.ndarray, person: np.ndarray) -> np.ndarray | None:
    """Per band: mean and spread of the opponent colours of the person's middle half (B x 6)."""
    mask = np.asarray(Image.fromarray((person * 255).astype(np.uint8)).resize(rgb.shape[1::-1])) >= 128
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size < 20:
        return None
    top, height = rows[0], rows[-1] - rows[0] + 1
    colours, stats = opponent_colour(rgb), []
    for centre in BANDS:
        band = slice(int(top + (centre - BAND_HALF) * height), int(top + (centre + BAND_HALF) * height) + 1)
        cols = np.flatnonzero(mask[band].any(axis=0))
        if cols.size == 0:
            return None
        left, right = cols[0], cols[-1]
        middle = slice(int(left + 0.25 * (right - left)), int(left + 0.75 * (right - left)) + 1)
        pixels = colours[band, middle][mask[band, middle]]
        if len(pixels) < 10:
            return None
        stats.append(np.concatenate([pixels.mean(axis=0), pixels.std(axis=0)]))
    return np.asarray(stats)


def continuity_features(stats: np.ndarray) -> np.ndarray:
    """Band means and spreads, distances to the chest band, the largest neighbouring jump and where."""
    means = stats[:, :3]
    to_chest = np.linalg.norm(means - means[CHEST], axis=1)[1:]
    jumps = np.linalg.norm(np.diff(means, axis=0), axis=1)
    where = np.zeros(len(jumps))
    where[np.argmax(jumps)] = 1.0
    return np.concatenate([stats.ravel(), to_chest, jumps, [jumps.max()], where])


def collect(store: ModelStore) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows, labels, held = [], [], []
    for path, label, is_held in examples():
        rgb = np.asarray(Image.open(path).convert("RGB"))
        stats = band_statistics(rgb, store.selfie.predict(rgb))
        if stats is None:
            continue
        rows.append(continuity_features(stats))
        labels.append(label)
        held.append(is_held)
    return np.asarray(rows), np.asarray(labels), np.asarray(held)


def standardised(x: np.ndarray, reference: np.ndarray) -> np.ndarray:
    return (x - reference.mean(axis=0)) / (reference.std(axis=0) + 1e-6)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=ROOT / "layers" / "models")
    args = parser.parse_args(argv)
    start = time.time()
    x, y, held = collect(ModelStore(args.models))
    train, test = ~held, held
    xs = standardised(x, x[train])
    print(
        f"{train.sum()} training photos ({y[train].mean():.0%} skirt), {test.sum()} held out, "
        f"{time.time() - start:.0f} s"
    )
    for penalty in (0.1, 1.0, 10.0, 100.0):
        print(f"penalty {penalty:6}: CV accuracy {cross_validated(xs[train], y[train], penalty):.3f}")
    single = [auc(xs[train, j], y[train]) for j in range(x.shape[1])]
    best = int(np.argmax(np.abs(np.asarray(single) - 0.5)))
    print(f"best single feature: #{best}, AUC {single[best]:.3f}")
    penalty = max((0.1, 1.0, 10.0, 100.0), key=lambda c: cross_validated(xs[train], y[train], c))
    weights = fit(xs[train], y[train], penalty)
    p = predict(xs[test], weights)
    print(
        f"held out (penalty {penalty}): accuracy {((p >= 0.5) == y[test]).mean():.3f}, "
        f"AUC {auc(p, y[test]):.3f}, majority {max(y[test].mean(), 1 - y[test].mean()):.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
