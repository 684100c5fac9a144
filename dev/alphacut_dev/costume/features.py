"""Compute the costume head's inputs once per training image and cache them (fp16 .npz).

ISNet: one forward pass at 1024 x 1024 per image (~1-2 s on 2 cores; 795 images ~15-27 min). Kept
in ``--out``: the 128x128, 64x64, 32x32 and 16x16 decoder maps, the matte and the picture at
128x128, and the labels (our class ids) at 256x256 - all in the model's square frame.
EfficientNet-Lite0 (``alphacut.models.backbone``, ~50 ms an image): its four maps, in a folder of
their own (``--backbone-out``), so that changing one source never recomputes the other.
Re-running skips cached images.

    python -m alphacut_dev.costume.features [--train DATA/train/ccp] [--out .cache/costume/features]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from alphacut.models import ModelStore, backbone, isnet
from alphacut.models.costume_head import BACKBONE_INPUTS, FEATURE_INPUTS, small_picture
from alphacut.models.engines import choose_engine
from PIL import Image

from alphacut_dev.costume.labels import fine_lookup
from alphacut_dev.data import TRAIN_CCP

ROOT = Path(__file__).resolve().parents[3]
LABEL_SIDE = 256


def extract(store: ModelStore, rgb: np.ndarray) -> dict[str, np.ndarray]:
    """What the head is fed at run time (``alphacut.models.costume_head.head_inputs``), stored in fp16."""
    output = store.isnet_features.run(isnet.preprocess(rgb), with_features=True)
    arrays = {name: output.features[source][0].astype(np.float16) for name, source in FEATURE_INPUTS.items()}
    picture, matte = small_picture(rgb, output.matte)
    arrays["rgb"], arrays["matte"] = picture, matte.astype(np.float16)
    return arrays


def extract_backbone(store: ModelStore, rgb: np.ndarray) -> dict[str, np.ndarray]:
    """EfficientNet-Lite0's maps under the head's input names, in fp16."""
    maps = store.backbone.run(backbone.preprocess(rgb))
    return {name: maps[source][0].astype(np.float16) for name, source in BACKBONE_INPUTS.items()}


def _save(target: Path, arrays: dict[str, np.ndarray]) -> None:
    np.savez(target.with_suffix(".tmp.npz"), **arrays)
    target.with_suffix(".tmp.npz").rename(target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, default=TRAIN_CCP)
    parser.add_argument("--out", type=Path, default=ROOT / ".cache" / "costume" / "features")
    parser.add_argument("--backbone-out", type=Path, default=ROOT / ".cache" / "costume" / "backbone")
    parser.add_argument("--models", type=Path, default=ROOT / "layers" / "models")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    args.backbone_out.mkdir(parents=True, exist_ok=True)
    table = fine_lookup(args.train / "classes.json")
    # the head runs on onnxruntime fp32 in Lambda: it learns from the maps that engine makes (OpenVINO
    # bf16, this machine's automatic choice, rounds them differently)
    store = ModelStore(args.models, engine=choose_engine("onnxruntime"))
    images = sorted((args.train / "images").glob("*.jpg"))
    started = time.perf_counter()
    for number, path in enumerate(images, 1):
        target, backbone_target = args.out / f"{path.stem}.npz", args.backbone_out / f"{path.stem}.npz"
        if not (target.exists() and backbone_target.exists()):
            cache_photo(store, path, table, target, backbone_target)
        if number % 25 == 0:
            elapsed = time.perf_counter() - started
            print(f"{number}/{len(images)} images, {elapsed:.0f} s", flush=True)
    print(f"done: {len(images)} images in {time.perf_counter() - started:.0f} s")
    return 0


def cache_photo(
    store: ModelStore, path: Path, table: np.ndarray, target: Path, backbone_target: Path
) -> None:
    """Both caches' files for one photo (a label map of another size than the photo: skipped)."""
    rgb = np.asarray(Image.open(path).convert("RGB"))
    labels = np.asarray(Image.open(path.parent.parent / "labels" / f"{path.stem}.png"))
    if labels.shape != rgb.shape[:2]:
        print(f"{path.name}: label {labels.shape} does not match image {rgb.shape[:2]}, skipped")
        return
    if not backbone_target.exists():
        _save(backbone_target, extract_backbone(store, rgb))
    if not target.exists():
        arrays = extract(store, rgb)
        square = Image.fromarray(table[labels]).resize((LABEL_SIDE, LABEL_SIDE), Image.Resampling.NEAREST)
        arrays["labels"] = np.asarray(square, np.uint8)
        _save(target, arrays)


if __name__ == "__main__":
    sys.exit(main())
