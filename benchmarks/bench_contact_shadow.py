"""Benchmark: where the contact shadow falls on the eval set's person photos (a model standing,
hands and bags at her sides: issue 91's grey streaks).

Each photo of ``eval/person`` is cut out (``type=person``) and its contact shadow drawn
(``shadows.draw``, the options' defaults). The shadow's ink (the sum of its alpha) is split by
where it lies: on the floor under the subject (within 5 % of its height of the box's bottom row)
or higher up, beside the subject (streaks under a hand, a bag or a hem that stands on nothing).

    .venv/bin/python benchmarks/bench_contact_shadow.py
"""

from __future__ import annotations

import time

import numpy as np
from alphacut import geometry, shadows
from alphacut.evaluate import pairs
from alphacut.options import CutoutOptions, Shadow, ShadowType, SubjectType
from alphacut.pipeline import Pipeline
from alphacut_dev.data import EVAL

FLOOR_SHARE = 0.05


def main() -> None:
    pipeline = Pipeline.from_settings()
    options = CutoutOptions().with_changes(type=SubjectType.PERSON)
    spec = Shadow(ShadowType.CONTACT)
    started = time.perf_counter()
    rows = []
    for stem, image_path, _truth in pairs(EVAL / "person"):
        image, view = pipeline.decode_views(image_path.read_bytes(), None, options)
        alpha = pipeline.segment(image, options, view=view).alpha
        box = geometry.subject_bbox(alpha)
        if box is None:
            continue
        shade = shadows.draw(alpha, spec).astype(np.float64)
        floor_from = box[3] - FLOOR_SHARE * (box[3] - box[1])
        ink = shade.sum()
        beside = shade[: int(floor_from)].sum()
        rows.append((stem, ink, beside))
    inked = [r for r in rows if r[1] > 0]
    streaked = [r for r in inked if r[2] > 0.05 * r[1]]
    total, beside = sum(r[1] for r in rows), sum(r[2] for r in rows)
    print(f"eval/person, contact shadow, {len(rows)} photos, {time.perf_counter() - started:.0f} s\n")
    print("| photos with a contact shadow | over 5 % of its ink beside the subject | ink beside, all |")
    print("|---|---|---|")
    print(f"| {len(inked)} | {len(streaked)} | {100 * beside / max(total, 1):.1f} % |")
    for stem, ink, side in sorted(streaked, key=lambda r: -r[2] / r[1])[:5]:
        print(f"  {stem}: {100 * side / ink:.0f} % of its ink beside")


if __name__ == "__main__":
    main()
