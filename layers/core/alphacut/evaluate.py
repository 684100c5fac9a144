"""Quality measurement on an evaluation folder: ``images/<stem>.jpg`` and
``gt/<stem>.png`` (one channel, 255 = subject).

IoU and MAE compare the predicted alpha with the ground truth: IoU on both thresholded at 0.5,
MAE on alpha in 0..1. Two more measures see what IoU does not:

- **ghosts**: a photo is ghosted when more than 1 % of its background farther than 15 px from the
  subject (the ground truth's) has alpha between 0.05 and 0.5: parts of the background kept
  half-transparent, such as spectators beside a dancer. The report counts ghosted photos.
- **boundary F**: the F-score of the predicted edge against the true edge (both at 0.5), an edge
  pixel counting as found when the other edge passes within 3 px (the contour measure of DAVIS,
  at a fixed tolerance).

``split`` picks a reproducible half: ``dev`` the even positions of the sorted stems, ``test`` the
odd ones (quality tests and the clean-up's thresholds use dev; reported numbers cover all).

``evaluate_costume`` reads class maps instead (``gt_coarse/``, CCP's 12 coarse ids, mapped to the
costume classes) and reports IoU per class over the whole set (intersections and unions summed over
every image, as semantic segmentation is usually scored) and the mean over the seven classes
the AILabTools apparel cutout API offers.

Usage::

    report = evaluate(Path("eval/person"), pipeline, SubjectType.PERSON)
    print(report.table())
    print(evaluate_costume(Path("eval/clothing"), pipeline).table())
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from alphacut.costume import CLASS_NAMES, GT_COARSE_TO_CLASS, SEED_GARMENTS
from alphacut.masks import dilate_disk, edge
from alphacut.options import CutoutOptions, SubjectType

if TYPE_CHECKING:
    from alphacut.pipeline import Pipeline

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")
SPLITS = ("all", "dev", "test")


def confusion(predicted: np.ndarray, truth: np.ndarray, classes: int = len(CLASS_NAMES)) -> np.ndarray:
    """classes x classes pixel counts, rows truth, columns prediction."""
    index = truth.astype(np.int64).ravel() * classes + predicted.astype(np.int64).ravel()
    return np.bincount(index, minlength=classes * classes).reshape(classes, classes)


def iou_per_class(matrix: np.ndarray) -> list[float | None]:
    """Dataset-level IoU per class from a summed confusion matrix (None: never seen nor predicted)."""
    intersection = np.diag(matrix).astype(np.float64)
    union = matrix.sum(0) + matrix.sum(1) - intersection
    return [float(i / u) if u else None for i, u in zip(intersection, union)]


GHOST_ALPHA = (0.05, 0.5)  # alpha that is neither background nor subject
GHOST_DISTANCE = 15  # px from the true subject: farther, no true soft edge can reach
GHOST_SHARE = 0.01  # of that far background: above, the photo is ghosted
BOUNDARY_TOLERANCE = 3  # px


@dataclass
class Score:
    stem: str
    iou: float
    mae: float
    boundary_f: float = float("nan")
    ghost_share: float = 0.0  # of the far background, held at ghost alpha

    @property
    def ghosted(self) -> bool:
        return self.ghost_share > GHOST_SHARE


@dataclass
class EvalReport:
    directory: Path
    subject: SubjectType
    split: str
    scores: list[Score] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.scores)

    @property
    def mean_iou(self) -> float:
        return statistics.fmean(s.iou for s in self.scores) if self.scores else float("nan")

    @property
    def median_iou(self) -> float:
        return statistics.median(s.iou for s in self.scores) if self.scores else float("nan")

    @property
    def mae(self) -> float:
        return statistics.fmean(s.mae for s in self.scores) if self.scores else float("nan")

    @property
    def boundary_f(self) -> float:
        return statistics.fmean(s.boundary_f for s in self.scores) if self.scores else float("nan")

    @property
    def ghosted(self) -> list[str]:
        return [s.stem for s in self.scores if s.ghosted]

    def table(self) -> str:
        header = (
            f"{'set':<12} {'type':<7} {'split':<5} {'n':>3} {'mean IoU':>9} {'median IoU':>11} {'MAE':>7} "
            f"{'boundary F':>10} {'ghosts':>6}"
        )
        row = (
            f"{self.directory.name:<12} {self.subject.value:<7} {self.split:<5} {self.n:>3} "
            f"{self.mean_iou:>9.3f} {self.median_iou:>11.3f} {self.mae:>7.4f} "
            f"{self.boundary_f:>10.3f} {len(self.ghosted):>6}"
        )
        ghosted = f"\nghosted: {', '.join(self.ghosted)}" if self.ghosted else ""
        return f"{header}\n{row}{ghosted}"


def pairs(directory: Path, split: str = "all", truth: str = "gt") -> list[tuple[str, Path, Path]]:
    """(stem, image, ground truth) for every image that has one in ``truth/``, in the chosen half."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}")
    images = {
        p.stem: p for p in sorted((directory / "images").iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES
    }
    found = [
        (stem, images[stem], directory / truth / f"{stem}.png")
        for stem in sorted(images)
        if (directory / truth / f"{stem}.png").exists()
    ]
    if split == "dev":
        return found[0::2]
    if split == "test":
        return found[1::2]
    return found


def score(stem: str, alpha: np.ndarray, truth: np.ndarray) -> Score:
    """Every measure of a predicted alpha against a ground truth, both uint8."""
    predicted = alpha >= 128
    actual = truth >= 128
    union = np.logical_or(predicted, actual).sum()
    iou = 1.0 if union == 0 else float(np.logical_and(predicted, actual).sum() / union)
    mae = float(np.abs(alpha.astype(np.float32) - truth.astype(np.float32)).mean() / 255.0)
    return Score(stem, iou, mae, boundary_f(predicted, actual), ghost_share(alpha, actual))


def ghost_share(alpha: np.ndarray, subject: np.ndarray) -> float:
    """The share of the background farther than ``GHOST_DISTANCE`` from ``subject`` held at ghost alpha."""
    far = ~dilate_disk(subject, GHOST_DISTANCE)
    if not far.any():
        return 0.0
    low, high = (round(a * 255) for a in GHOST_ALPHA)
    ghost = (alpha > low) & (alpha < high) & far
    return float(ghost.sum() / far.sum())


def boundary_f(predicted: np.ndarray, actual: np.ndarray, tolerance: int = BOUNDARY_TOLERANCE) -> float:
    """F-score of the edge of ``predicted`` against the edge of ``actual`` (boolean masks)."""
    found, true = edge(predicted), edge(actual)
    if not found.any() and not true.any():
        return 1.0
    if not found.any() or not true.any():
        return 0.0
    precision = float((found & dilate_disk(true, tolerance)).sum() / found.sum())
    recall = float((true & dilate_disk(found, tolerance)).sum() / true.sum())
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def evaluate(
    directory: Path,
    pipeline: Pipeline,
    subject: SubjectType,
    split: str = "all",
    progress: Callable[[int, int], None] | None = None,
    truth: str = "gt",
    options: CutoutOptions | None = None,
) -> EvalReport:
    """``options`` (size=preview, ...) run as given; the ground truth is resized (nearest) to a
    result smaller than the photo."""
    options = (options or CutoutOptions()).with_changes(type=subject)
    report = EvalReport(directory=directory, subject=subject, split=split)
    found = pairs(directory, split, truth)
    for index, (stem, image_path, truth_path) in enumerate(found):
        image, view = pipeline.decode_views(image_path.read_bytes(), None, options)
        alpha = pipeline.segment(image, options, view=view).alpha
        truth_image = Image.open(truth_path).convert("L")
        if truth_image.size != (image.width, image.height) and options.size.megapixels is not None:
            truth_image = truth_image.resize((image.width, image.height), Image.Resampling.NEAREST)
        truth_mask = np.asarray(truth_image)
        if truth_mask.shape != alpha.shape:
            raise ValueError(f"{truth_path}: ground truth is {truth_mask.shape}, image is {alpha.shape}")
        report.scores.append(score(stem, alpha, truth_mask))
        if progress:
            progress(index + 1, len(found))
    return report


@dataclass
class CostumeReport:
    directory: Path
    split: str
    n: int = 0
    matrix: np.ndarray = field(default_factory=lambda: np.zeros((len(CLASS_NAMES),) * 2, np.int64))

    @property
    def iou(self) -> dict[str, float | None]:
        return dict(zip(CLASS_NAMES, iou_per_class(self.matrix)))

    @property
    def seed_mean(self) -> float:
        """Mean IoU over tops, coat, skirt, pants, shoes, bag, hat (a class never seen counts 0)."""
        iou = self.iou
        return statistics.fmean(iou[g.value] or 0.0 for g in SEED_GARMENTS)

    def table(self) -> str:
        lines = [
            f"{self.directory.name} costume split={self.split} n={self.n} (IoU summed over the set)",
            f"{'class':<11} {'IoU':>6}",
        ]
        seed = {g.value for g in SEED_GARMENTS}
        for name, value in self.iou.items():
            mark = " *" if name in seed else ""
            lines.append(f"{name:<11} {'-' if value is None else f'{value:6.3f}':>6}{mark}")
        lines.append(f"{'seed mean *':<11} {self.seed_mean:6.3f}")
        return "\n".join(lines)


def evaluate_costume(
    directory: Path,
    pipeline: Pipeline,
    split: str = "all",
    truth: str = "gt_coarse",
    progress: Callable[[int, int], None] | None = None,
) -> CostumeReport:
    report = CostumeReport(directory=directory, split=split)
    found = pairs(directory, split, truth)
    for index, (_stem, image_path, truth_path) in enumerate(found):
        image = pipeline.decode(image_path.read_bytes())
        predicted = pipeline.parse_costume(image).class_map
        actual = GT_COARSE_TO_CLASS[np.asarray(Image.open(truth_path))]
        if actual.shape != predicted.shape:
            raise ValueError(f"{truth_path}: ground truth is {actual.shape}, image is {predicted.shape}")
        report.matrix += confusion(predicted, actual)
        report.n += 1
        if progress:
            progress(index + 1, len(found))
    return report
