"""Experiment (kept in history only): the clean-up's thresholds on the eval set's dev half.

Every dev photo's model outputs once, then the hysteresis clean-up at each core x link x reach,
fast quality, scored as ``alphacut eval`` does. docs/benchmarks.md "Clean mattes" has the result.

    .venv/bin/python benchmarks/clean_grid.py
"""

from __future__ import annotations

import itertools
import statistics
import sys
from pathlib import Path
from unittest import mock

import numpy as np
from alphacut import matte
from alphacut.evaluate import pairs, score
from alphacut_dev.data import EVAL
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from alphacut.pipeline import Pipeline
from bench_quality import SUBJECTS, mattes, model_outputs


def main() -> None:
    pipeline = Pipeline.from_settings()
    data = {
        name: [
            (stem, model_outputs(pipeline, image, SUBJECTS[name]), np.asarray(Image.open(truth).convert("L")))
            for stem, image, truth in pairs(EVAL / name, "dev")
        ]
        for name in SUBJECTS
    }
    print("| core | link | reach | set | mean IoU | MAE | boundary F | ghosted |")
    for core, link, reach in itertools.product(
        (0.6, 0.8, 0.95), (0.1, 0.25, 0.4, 0.5), (0.005, 0.01, 0.02, 0.04)
    ):
        with mock.patch.multiple(matte, CLEAN_CORE=core, CLEAN_LINK=link, CLEAN_REACH=reach):
            for name, items in data.items():
                scores = [
                    score(stem, matte.alpha_to_uint8(mattes(out)["fast"]()), truth)
                    for stem, out, truth in items
                ]
                iou, mae, edge_f = (
                    statistics.fmean(getattr(s, m) for s in scores) for m in ("iou", "mae", "boundary_f")
                )
                ghosted = sum(s.ghosted for s in scores)
                cells = (core, link, reach, name, f"{iou:.4f}", f"{mae:.4f}", f"{edge_f:.4f}", ghosted)
                print("| " + " | ".join(map(str, cells)) + " |")


if __name__ == "__main__":
    main()
