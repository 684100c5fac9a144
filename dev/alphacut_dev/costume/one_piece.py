"""A per-picture dress/skirt decision trained on EfficientNet-Lite0's maps, kept spatial.

The costume head's pixels are right about *where* the lower garment is; what it gets wrong is the
name (a skirt under a top comes out as a dress). Renaming every dress/skirt pixel to what the
photo's labels say lifts the held-out skirt IoU from 0.353 to 0.659 (``alphacut_dev.costume.oracle``),
so the decision is the whole problem. Pooled features did not carry it (AUC 0.62); here a small
convolutional classifier reads the backbone's 16 and 32 px maps as they are, so it can see where a
top ends and whether the garment below continues it.

Examples: every Clothing Co-Parsing photo whose labels (pixel labels, or ``tags.json`` for the
tag-only photos) show a dress or a skirt but not both; every tenth of each set (sorted by name) is
held out. Maps come from the model build's EfficientNet-Lite0 on the picture as the pipeline feeds
it, and on its mirror image (augmentation).

Usage::

    python -m alphacut_dev.costume.one_piece features      # .venv: maps -> .cache/costume/one_piece/
    PYTHONPATH=dev:layers/core .cache/train-venv/bin/python -m alphacut_dev.costume.one_piece train
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from alphacut_dev.data import TRAIN_CCP, TRAIN_CCP_TAGS

ROOT = Path(__file__).resolve().parents[3]
CACHE = ROOT / ".cache" / "costume" / "one_piece"
MAPS = ("s16", "s32", "head")
SKIRT, DRESS = 1, 0


def lower_garment_label(coarse: set[str]) -> int | None:
    """1 skirt, 0 dress, None when the photo shows both or neither."""
    if ("skirt" in coarse) == ("dress" in coarse):
        return None
    return SKIRT if "skirt" in coarse else DRESS


def examples(train: Path = TRAIN_CCP, tagged: Path = TRAIN_CCP_TAGS) -> list[tuple[Path, int, bool]]:
    """(photo, label, held out) for every photo that shows exactly one of dress and skirt."""
    from PIL import Image

    spec = json.loads((train / "classes.json").read_text())
    coarse_of = spec["fine_to_coarse"]
    found = []
    for index, path in enumerate(sorted((train / "images").glob("*.jpg"))):
        fine = np.unique(np.asarray(Image.open(train / "labels" / f"{path.stem}.png")))
        label = lower_garment_label({coarse_of[spec["fine_classes"][str(i)]] for i in fine if i})
        if label is not None:
            found.append((path, label, index % 10 == 9))
    tags = json.loads((tagged / "tags.json").read_text())
    for index, stem in enumerate(sorted(tags)):
        label = lower_garment_label({coarse_of[name] for name in tags[stem] if name in coarse_of})
        if label is not None:
            found.append((tagged / "images" / f"{stem}.jpg", label, index % 10 == 9))
    return found


def extract_features() -> None:
    from alphacut.models import backbone
    from alphacut.pipeline import Pipeline

    pipeline = Pipeline.from_settings()
    found = examples()
    CACHE.mkdir(parents=True, exist_ok=True)
    start = time.time()
    for index, (path, label, held) in enumerate(found):
        target = CACHE / f"{path.stem}.npz"
        if target.exists():
            continue
        rgb = pipeline._model_rgb(pipeline.decode(path.read_bytes()))
        maps = {}
        for way, picture in (("", rgb), ("mirror_", np.ascontiguousarray(rgb[:, ::-1]))):
            out = pipeline.models.backbone.run(backbone.preprocess(picture))
            maps.update({way + name: out[name][0].astype(np.float16) for name in MAPS})
        np.savez(target, label=label, held=held, **maps)
        print(f"\r{index + 1}/{len(found)} {time.time() - start:.0f} s", end="", file=sys.stderr)
    print(file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("step", choices=("features", "train"))
    args = parser.parse_args(argv)
    if args.step == "features":
        extract_features()
    else:
        from alphacut_dev.costume.one_piece_train import train

        train(CACHE)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
