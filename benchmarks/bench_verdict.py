"""Benchmark and fit: the verdict (``alphacut.verdict``) against the truth on the eval set.

Every photo of general/ and person/ is cut out as it is and composited as ``bench_studio.py``
composites it (general: all its backgrounds, white subject on the white sweep included; person: its
own photo, the white sweep and the white subject on the white sweep), then cut out by the pipeline
(``type=object`` for general, ``person`` for person, ``quality=auto``). A result is bad when its IoU
against the truth is under 0.85, good at 0.90 or more (between: left out of the AUC and the rates).

``--fit`` fits the verdict's logistic coefficients on the **dev half only** (even positions, as
``alphacut eval`` splits) and prints them to paste into ``alphacut/verdict.py``, with the threshold
that flags at least 80 % of the dev half's bad results. The report, on each half: AUC, the share
of bad results flagged and of good ones flagged by mistake at the shipped threshold, beside the
baseline (the matte's mean 4·a·(1−a) over the subject, its threshold chosen on dev the same way),
and the verdict's time as a share of the whole call.

The mattes are kept in ``--cache`` (a folder, default ``.cache/bench_verdict``), so a refit or a
new signal needs no model run.

    .venv/bin/python benchmarks/bench_verdict.py [--fit] [--cache DIR]
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from alphacut import verdict
from alphacut.evaluate import pairs, score
from alphacut.models.engines import describe_cpu
from alphacut.options import CutoutOptions
from alphacut.pipeline import Pipeline
from alphacut_dev.data import EVAL
from bench_studio import BACKGROUNDS, on_white_sweep, pale_on_white_sweep
from PIL import Image

BAD_BELOW, GOOD_FROM = 0.85, 0.90
TARGET_FLAGGED = 0.80  # the threshold is the one that flags this share of dev's bad results
SETS: dict[str, tuple[str, dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray] | None]]] = {
    "general": ("object", BACKGROUNDS),
    "person": (
        "person",
        {
            "its own photo (reference)": None,
            "white sweep, floor shadow": on_white_sweep,
            "white subject on the white sweep": pale_on_white_sweep,
        },
    ),
}


@dataclass
class Sample:
    name: str
    half: str
    iou: float
    signals: verdict.Signals
    baseline: float


def photos(half: str) -> Iterator[tuple[str, str, np.ndarray, np.ndarray, str]]:
    """(name, subject type, photo as sent, truth, cache stem) for every composite of one half."""
    for folder, (subject, backgrounds) in SETS.items():
        for stem, image_path, truth_path in pairs(EVAL / folder, half):
            photo = np.asarray(Image.open(image_path).convert("RGB"))
            truth = np.asarray(Image.open(truth_path).convert("L"))
            for number, (background, compose) in enumerate(backgrounds.items()):
                shown = photo if compose is None else compose(photo, truth)
                yield f"{folder}/{stem} on {background}", subject, shown, truth, f"{folder}_{stem}_{number}"


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def collect(pipeline: Pipeline, half: str, cache: Path) -> tuple[list[Sample], list[float]]:
    """The samples of one half (mattes from the cache, else from the pipeline) and, for the photos
    run now, the verdict's time over the call's."""
    samples, shares = [], []
    for name, subject, shown, truth, stem in photos(half):
        path = cache / f"{stem}.png"
        if not path.exists():
            options = CutoutOptions(output="mask", type=subject)
            start = time.perf_counter()
            result = pipeline.run(png(shown), options)
            call = time.perf_counter() - start
            alpha = np.asarray(Image.open(io.BytesIO(result.mask or b"")))
            Image.fromarray(alpha).save(path)
            start = time.perf_counter()
            verdict.signals(alpha, shown)
            shares.append((time.perf_counter() - start) / call)
        alpha = np.asarray(Image.open(path))
        samples.append(
            Sample(
                name,
                half,
                score(name, alpha, truth).iou,
                verdict.signals(alpha, shown),
                verdict.baseline(alpha),
            )
        )
    return samples, shares


def auc(bad: list[float], good: list[float]) -> float:
    """The chance that a bad result scores higher (more doubtful) than a good one (ties: half)."""
    wins = sum((b > g) + 0.5 * (b == g) for b in bad for g in good)
    return wins / max(1, len(bad) * len(good))


def split(samples: list[Sample], doubt: Callable[[Sample], float]) -> tuple[list[float], list[float]]:
    bad = [doubt(s) for s in samples if s.iou < BAD_BELOW]
    good = [doubt(s) for s in samples if s.iou >= GOOD_FROM]
    return bad, good


def threshold_for(bad: list[float], share: float) -> float:
    """The highest doubt that still flags ``share`` of ``bad`` (flagged: doubt >= threshold)."""
    ordered = sorted(bad, reverse=True)
    return ordered[max(0, min(len(ordered) - 1, int(np.ceil(share * len(ordered))) - 1))]


def fit(samples: list[Sample], ridge: float = 1e-4) -> np.ndarray:
    """Logistic regression (bad = 1) on the features by Newton's method (a few features: exact),
    the good and the bad weighted equally, a small ridge on the weights, and no weight below 0 (a
    signal of doubt never adds confidence: the most negative is dropped and the rest fitted again).
    Returns [bias, weights...]."""
    rows = [s for s in samples if s.iou < BAD_BELOW or s.iou >= GOOD_FROM]
    x = np.array([[1.0, *s.signals.features()] for s in rows])
    y = np.array([1.0 if s.iou < BAD_BELOW else 0.0 for s in rows])
    weight = np.where(y == 1, 0.5 / max(1, y.sum()), 0.5 / max(1, (1 - y).sum()))
    active = list(range(x.shape[1]))
    while True:
        beta = np.zeros(x.shape[1])
        beta[active] = _newton(x[:, active], y, weight, ridge)
        negative = [i for i in active[1:] if beta[i] < 0]
        if not negative:
            return beta
        active.remove(min(negative, key=lambda i: beta[i]))


def _newton(x: np.ndarray, y: np.ndarray, weight: np.ndarray, ridge: float) -> np.ndarray:
    penalty = ridge * np.diag(np.r_[0.0, np.ones(x.shape[1] - 1)])
    beta = np.zeros(x.shape[1])
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-(x @ beta)))
        gradient = x.T @ (weight * (p - y)) + penalty @ beta
        hessian = (x * (weight * p * (1 - p))[:, None]).T @ x + penalty
        beta -= np.linalg.solve(hessian, gradient)
    return beta


def report(halves: dict[str, list[Sample]], threshold: float, base_threshold: float) -> None:
    print("| half | results (bad / good) | signal | AUC | bad flagged | good flagged |")
    print("|---|---|---|---:|---:|---:|")
    for half, samples in halves.items():
        for label, doubt, flags in (
            ("verdict (1 - confidence; unsure)", lambda s: 1.0 - s.signals.confidence(), _unsure),
            ("baseline: mean 4a(1-a) over the subject", lambda s: s.baseline, _over(base_threshold)),
        ):
            bad, good = split(samples, doubt)
            flagged_bad, flagged_good = (
                sum(map(flags, rows)) / max(1, len(rows)) for rows in _bad_good(samples)
            )
            print(
                f"| {half} | {len(samples)} ({len(bad)} / {len(good)}) | {label} | {auc(bad, good):.3f} "
                f"| {100 * flagged_bad:.0f} % | {100 * flagged_good:.0f} % |"
            )


def _unsure(sample: Sample) -> bool:
    return sample.signals.verdict().unsure


def _over(threshold: float) -> Callable[[Sample], bool]:
    return lambda sample: sample.baseline >= threshold


def _bad_good(samples: list[Sample]) -> tuple[list[Sample], list[Sample]]:
    return [s for s in samples if s.iou < BAD_BELOW], [s for s in samples if s.iou >= GOOD_FROM]


def time_share(pipeline: Pipeline, count: int) -> list[float]:
    """The verdict's time over a whole call's (``pipeline.run``, its defaults), on the first
    ``count`` composites of the test half."""
    shares = []
    for _, subject, shown, _, _ in list(photos("test"))[:count]:
        start = time.perf_counter()
        result = pipeline.run(png(shown), CutoutOptions(type=subject))
        call = time.perf_counter() - start
        alpha = np.asarray(
            Image.open(
                io.BytesIO(pipeline.run(png(shown), CutoutOptions(type=subject, output="mask")).mask or b"")
            )
        )
        start = time.perf_counter()
        verdict.judge(alpha, shown)
        shares.append((time.perf_counter() - start) / call)
        assert result.verdict is not None
    return shares


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--fit", action="store_true", help="fit the coefficients on the dev half and print them"
    )
    parser.add_argument("--cache", type=Path, default=Path(".cache/bench_verdict"))
    parser.add_argument("--time", type=int, default=12, help="calls timed against the verdict")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    pipeline = Pipeline.from_settings()
    halves, shares = {}, []
    for half in ("dev", "test"):
        halves[half], taken = collect(pipeline, half, args.cache)
        shares += taken
    dev = halves["dev"]
    if args.fit:
        beta = fit(dev)
        print("COEFFICIENTS = (" + ", ".join(f"{b:.3f}" for b in beta) + ")")
        verdict.COEFFICIENTS = tuple(float(b) for b in beta)
    bad, _ = split(dev, lambda s: 1.0 - s.signals.confidence())
    threshold = 1.0 - threshold_for(bad, TARGET_FLAGGED)
    base_threshold = threshold_for(split(dev, lambda s: s.baseline)[0], TARGET_FLAGGED)
    if args.fit:
        print(f"UNSURE_BELOW = {threshold:.3f}  (flags {100 * TARGET_FLAGGED:.0f} % of dev's bad results)")
    print(f"machine: {describe_cpu()}; {Pipeline.__module__} quality=auto")
    print(
        f"shipped: UNSURE_BELOW {verdict.UNSURE_BELOW}; "
        f"baseline's threshold (dev, same rule) {base_threshold:.4f}\n"
    )
    report(halves, verdict.UNSURE_BELOW, base_threshold)
    shares += time_share(pipeline, args.time)
    if shares:
        print(
            f"\nverdict's time: median {100 * statistics.median(shares):.2f} % of a call "
            f"({len(shares)} calls)"
        )
    for s in halves["test"]:
        if s.iou < BAD_BELOW and s.signals.confidence() >= verdict.UNSURE_BELOW:
            print(f"missed (test): {s.name} IoU {s.iou:.3f} confidence {s.signals.confidence():.3f}")


if __name__ == "__main__":
    main()
