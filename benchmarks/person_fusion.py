"""Compare ways of combining ISNet and the selfie model for type=person on an eval folder.

Runs both models once per image, then scores each fusion. Choose on --split dev; report all.

    .venv/bin/python benchmarks/person_fusion.py "$ALPHACUT_DATA/eval/person" --split dev
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
from alphacut.evaluate import pairs, score
from alphacut.matte import alpha_to_uint8, dilate_square, fuse_person, resize_matte
from alphacut.pipeline import Pipeline
from PIL import Image


def gate(general, person, threshold, radius_fraction):
    h, w = general.shape
    g = (person >= threshold).astype(np.float32)
    if radius_fraction:
        g = dilate_square(g, max(1, round(g.shape[0] * radius_fraction)))
    return general * resize_matte(g, w, h)


FUSIONS = {
    "isnet": lambda g, p: g,
    "selfie": lambda g, p: resize_matte(p, g.shape[1], g.shape[0]),
    "average": lambda g, p: (g + resize_matte(p, g.shape[1], g.shape[0])) / 2,
    "product": lambda g, p: g * resize_matte(p, g.shape[1], g.shape[0]),
    "min": lambda g, p: np.minimum(g, resize_matte(p, g.shape[1], g.shape[0])),
    "max": lambda g, p: np.maximum(g, resize_matte(p, g.shape[1], g.shape[0])),
    "gate 0.5 no dilation": lambda g, p: gate(g, p, 0.5, 0),
    "gate 0.5 dilate 1.5%": lambda g, p: gate(g, p, 0.5, 0.015),
    "gate 0.5 dilate 3%": lambda g, p: gate(g, p, 0.5, 0.03),
    "regions touching a person (shipped)": fuse_person,
    "gate 0.5 dilate 6%": lambda g, p: gate(g, p, 0.5, 0.06),
    "gate 0.2 dilate 3%": lambda g, p: gate(g, p, 0.2, 0.03),
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("directory", type=Path)
    parser.add_argument("--split", default="dev")
    parser.add_argument("--truth", default="gt")
    args = parser.parse_args()
    pipeline = Pipeline.from_settings()
    results = {name: [] for name in FUSIONS}
    for stem, image_path, truth_path in pairs(args.directory, args.split, args.truth):
        image = pipeline.decode(image_path.read_bytes())
        general = resize_matte(pipeline.models.isnet.predict(image.rgb), image.width, image.height)
        person = pipeline.models.selfie.predict(image.rgb)
        truth = np.asarray(Image.open(truth_path).convert("L"))
        for name, fuse in FUSIONS.items():
            alpha = alpha_to_uint8(np.clip(fuse(general, person), 0, 1))
            results[name].append(score(stem, alpha, truth))
    print(f"{args.directory.name} split={args.split} n={len(results['isnet'])}")
    print(f"{'fusion':<30} {'mean IoU':>9} {'median IoU':>11} {'MAE':>7}")
    for name, scores in results.items():
        ious = [s.iou for s in scores]
        print(
            f"{name:<30} {statistics.fmean(ious):>9.3f} {statistics.median(ious):>11.3f} "
            f"{statistics.fmean(s.mae for s in scores):>7.4f}"
        )


if __name__ == "__main__":
    main()
