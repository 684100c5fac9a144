"""Benchmark: cutout quality on the eval photos, before and after the matte clean-up, fast and best.

For every photo of each set the models run once each (ISNet on the photo and on its mirror, the
selfie model on person photos); four mattes are made from those outputs with the pipeline's own
functions, and the first photo's shipped mattes are checked against ``Pipeline.matte`` so the
table measures what ships:

- ``fast, raw``: the model once, as before the clean-up;
- ``fast``: the model once, then ``clean_matte`` (shipped);
- ``best, averaged``: photo and mirror averaged, as ``quality=best`` was before;
- ``best``: ``mirror_confirmed`` then ``clean_matte`` (shipped).

It prints, per set, split (dev: the thresholds were chosen there; test: reported) and matte: mean
IoU, MAE, boundary F (3 px), photos ghosted (``alphacut.evaluate``) and which; then the median model
time of fast and best and the clean-up's time per photo, here and on a 12 MP matte.

    .venv/bin/python benchmarks/bench_quality.py [--sets general person]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from alphacut.codec import DecodedImage
from alphacut.evaluate import Score, pairs, score
from alphacut.matte import alpha_to_uint8, clean_matte, fuse_person, mirror_confirmed, resize_matte
from alphacut.models import isnet, selfie
from alphacut.options import Quality, SubjectType
from alphacut.pipeline import Pipeline
from alphacut_dev.data import EVAL
from PIL import Image

SUBJECTS = {"general": SubjectType.OBJECT, "person": SubjectType.PERSON}
SPLITS = ("dev", "test", "all")


@dataclass
class ModelOutputs:
    image: DecodedImage
    matte: np.ndarray
    mirrored: np.ndarray  # flipped back
    person: np.ndarray | None
    seconds: tuple[float, float]  # the model once, twice


def model_outputs(pipeline: Pipeline, image_path: Path, subject: SubjectType) -> ModelOutputs:
    image = pipeline.decode(image_path.read_bytes())
    batch = isnet.preprocess(image.rgb, pipeline.models.isnet.side)
    start = time.perf_counter()
    matte = pipeline.models.isnet.run(batch).matte
    once = time.perf_counter() - start
    mirrored = pipeline.models.isnet.run(np.ascontiguousarray(batch[..., ::-1])).matte[:, ::-1]
    twice = time.perf_counter() - start
    person = (
        pipeline.models.selfie.run(selfie.preprocess(image.rgb)) if subject is SubjectType.PERSON else None
    )
    return ModelOutputs(image, matte, mirrored, person, (once, twice))


def mattes(out: ModelOutputs) -> dict[str, Callable[[], np.ndarray]]:
    def full(matte: np.ndarray) -> np.ndarray:
        alpha = resize_matte(matte, out.image.width, out.image.height)
        return alpha if out.person is None else fuse_person(alpha, out.person)

    return {
        "fast, raw": lambda: full(out.matte),
        "fast": lambda: clean_matte(full(out.matte)),
        "best, averaged": lambda: full((out.matte + out.mirrored) * 0.5),
        "best": lambda: clean_matte(full(mirror_confirmed(out.matte, out.mirrored))),
    }


def check_against_pipeline(pipeline: Pipeline, out: ModelOutputs, subject: SubjectType) -> None:
    made = mattes(out)
    for quality, name in ((Quality.FAST, "fast"), (Quality.BEST, "best")):
        shipped = pipeline.matte(out.image, subject, quality=quality)
        difference = np.abs(alpha_to_uint8(shipped).astype(int) - alpha_to_uint8(made[name]())).max()
        assert difference <= 1, f"{name}: the benchmark's matte differs from the pipeline's by {difference}"


def table_rows(name: str, scores: dict[str, list[Score]], stems: list[str]) -> list[str]:
    rows = []
    for split in SPLITS:
        chosen = {s for s, _, _ in pairs(EVAL / name, split)}
        for matte, all_scores in scores.items():
            part = [s for s, stem in zip(all_scores, stems) if stem in chosen]
            ghosted = [s.stem for s in part if s.ghosted]
            iou, mae, edge_f = (
                statistics.fmean(getattr(s, m) for s in part) for m in ("iou", "mae", "boundary_f")
            )
            rows.append(
                f"| {name} | {split} | {len(part)} | {matte} | {iou:.4f} | {mae:.4f} | {edge_f:.4f} | "
                f"{len(ghosted)} | {' '.join(ghosted) or '-'} |"
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(SUBJECTS))
    args = parser.parse_args()
    pipeline = Pipeline.from_settings()
    pipeline.warm_up(("isnet", "selfie"))
    print(f"engine: {pipeline.models.engine.name}")
    rows, timing = [], []
    clean_ms: list[float] = []
    for name in args.sets:
        subject = SUBJECTS[name]
        found = pairs(EVAL / name)
        scores: dict[str, list[Score]] = {}
        seconds = []
        for index, (stem, image_path, truth_path) in enumerate(found):
            out = model_outputs(pipeline, image_path, subject)
            if index == 0:
                check_against_pipeline(pipeline, out, subject)
            truth = np.asarray(Image.open(truth_path).convert("L"))
            made = {matte: make() for matte, make in mattes(out).items()}
            for matte, alpha in made.items():
                scores.setdefault(matte, []).append(score(stem, alpha_to_uint8(alpha), truth))
            start = time.perf_counter()
            clean_matte(made["fast, raw"])
            clean_ms.append((time.perf_counter() - start) * 1000)
            seconds.append(out.seconds)
        rows += table_rows(name, scores, [stem for stem, _, _ in found])
        fast, best = (statistics.median(s[i] for s in seconds) for i in (0, 1))
        timing.append(f"| {name} | {fast * 1000:.0f} | {best * 1000:.0f} | {best / fast:.2f} |")
    print("| set | split | n | matte | mean IoU | MAE | boundary F | ghosted | which |")
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print("\n| set | model ms, fast | model ms, best | best / fast |\n|---|---|---|---|")
    print("\n".join(timing))
    big = resize_matte(made["fast, raw"], 4000, 3000)
    start = time.perf_counter()
    clean_matte(big)
    big_ms = (time.perf_counter() - start) * 1000
    median_ms = statistics.median(clean_ms)
    print(f"\nclean-up: median {median_ms:.0f} ms per eval photo, {big_ms:.0f} ms on a 12 MP matte")


if __name__ == "__main__":
    main()
