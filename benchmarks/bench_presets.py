"""Benchmark: marketplace presets on ordinary photos, the canvas fixed at the recommended size
(before: what a preset did until the canvas range) against the canvas chosen per photo within the
marketplace's range (after). For each preset: the photos that pass every rule, and the canvas
sizes chosen (their long side: smallest, median, largest). Photos: the eval set's general half
and the suite's store photos (a car further off, the same photo at 300 px).

Bound: a photo whose product the photo itself cuts (``cut_by_photo``) passes on no canvas; the
"passable" column counts the others, which is what a perfect choice could reach on presets whose
other rules the photo can meet. Nothing here is tuned: the choice follows the presets' numbers.

    .venv/bin/python benchmarks/bench_presets.py [--set general] [--split test] [--shadow drop]
"""

from __future__ import annotations

import argparse
import io
import statistics
from collections import Counter

from alphacut.evaluate import pairs
from alphacut.models.engines import describe_cpu
from alphacut.options import CutoutOptions
from alphacut.pipeline import Pipeline
from alphacut.presets import PRESETS
from alphacut_dev.data import EVAL
from PIL import Image

STORE_PHOTO = "car-roundabout_00067.jpg"  # tests/engine/test_product_photos.py's small car


def photos(set_name: str, split: str) -> dict[str, bytes]:
    found = {stem: path.read_bytes() for stem, path, _ in pairs(EVAL / set_name, split)}
    car = EVAL / "general" / "images" / STORE_PHOTO
    found["store car 854x480"] = car.read_bytes()
    small = io.BytesIO()
    Image.open(car).resize((300, 169), Image.Resampling.LANCZOS).save(small, "JPEG", quality=95)
    found["store car 300x169"] = small.getvalue()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", default="general")
    parser.add_argument("--split", default="test", choices=["dev", "test", "all"])
    parser.add_argument("--shadow", default="drop", choices=["none", "drop", "contact", "cast"])
    args = parser.parse_args()
    pipeline = Pipeline.from_settings()
    shots = photos(args.set, args.split)
    print(f"machine: {describe_cpu()}; eval/{args.set} {args.split} half + 2 store photos ({len(shots)}); "
          f"shadow={args.shadow}\n")  # fmt: skip
    segmented = {}
    for name, data in shots.items():
        image = pipeline.decode(data)
        segmented[name] = (image, pipeline.segment(image, CutoutOptions()))
    print(
        "| preset | photos | passable (bound) | pass before | pass after | canvas after: min / median / max "
        "| rules failed after |"
    )
    print("|---|---|---|---|---|---|---|")
    for preset in PRESETS.values():
        before = after = passable = 0
        sides: list[int] = []
        failed: Counter[str] = Counter()
        for image, segmentation in segmented.values():
            common = {"preset": preset.name, "shadow": args.shadow}
            width, height = preset.recommended
            fixed = {**common, "target_width": str(width), "target_height": str(height)}
            old = pipeline.compose(image, segmentation, CutoutOptions.from_mapping(fixed))
            new = pipeline.compose(image, segmentation, CutoutOptions.from_mapping(common))
            if old.check is None or new.check is None:
                continue
            passable += "cut_by_photo" not in new.check.failed
            before += old.check.passed
            after += new.check.passed
            failed.update(new.check.failed)
            sides.append(max(new.width, new.height))
        spread = f"{min(sides)} / {statistics.median(sides):.0f} / {max(sides)}" if sides else "-"
        rules = ", ".join(f"{rule} {count}" for rule, count in failed.most_common()) or "-"
        print(f"| {preset.name} | {len(sides)} | {passable} | {before} | {after} | {spread} | {rules} |")


if __name__ == "__main__":
    main()
