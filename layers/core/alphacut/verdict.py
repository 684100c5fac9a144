"""The verdict on a result: how likely its matte is right, whether a person should look at it, and why.

It reads only what the pipeline already has after the matte (the matte in the photo and the photo
itself), so a touch-up that recomposes from a stored matte gets the same verdict again. Signals,
each worked out on the matte scaled to at most ``_SIDE`` pixels across (milliseconds):

- ``see_through``: the share of the subject's inside (its region of alpha >= 0.5 with its holes
  filled, less a border along clear pixels) that the matte leaves between 0.1 and 0.9: a product
  partly erased (a white cup on a white sweep); true holes, which the model answers near 0, do not;
- ``apart``: the share of what the matte holds (alpha >= 0.5) outside its largest connected part:
  boxes, signs, people kept beside the subject;
- ``frame``: the share of the photo's border the subject runs into (cut by the frame);
- ``contrast``: how far the colours just inside the subject's edge are from those just outside it
  (median over the edge, RGB distance over 255): little contrast is where mattes go wrong;
- ``soft``: the matte's mean 4·a·(1−a) over the subject (alpha >= 0.5), the one-line baseline.

``confidence`` is a logistic model of those signals, its few coefficients fitted on the eval set's
dev half by ``benchmarks/bench_verdict.py`` (which prints them and reports the test half;
docs/benchmarks.md, "Issue 91"). ``unsure`` is confidence under ``UNSURE_BELOW``, or a see-through
inside past ``SEE_THROUGH_LIMIT`` (the presets' rule, which the fit had too few photos to weigh).
``reasons`` name the signals past their own level, the largest contribution first, whether or not
the result is unsure.

Usage::

    seen = signals(alpha_uint8, rgb)      # Signals(see_through=0.004, apart=0.0, ...)
    judged = seen.verdict()               # Verdict(confidence=0.93, unsure=False, reasons=())
    judged.to_dict()                      # {"confidence": 0.93, "unsure": False, "reasons": []}
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from alphacut.masks import dilate_disk, edge, largest_part, reconstruct

_SIDE = 384  # the matte and photo are judged at most this many pixels across
HELD = 128  # alpha that is the subject
SEE_THROUGH_BAND = (26, 230)  # 0.1 .. 0.9: partly see-through
_INSIDE_BORDER = 2  # px (at _SIDE) in from the subject's outline: its own soft edge is no fault
_RING = 3  # px (at _SIDE) each side of the edge where the contrast is read
_MOST_PARTS = 12  # connected parts told apart; the rest count as apart together

# Fitted on the dev half by ``benchmarks/bench_verdict.py --fit`` (bias, then one weight per
# ``Signals.features``); UNSURE_BELOW flags 80 % of the dev half's bad results (IoU < 0.85).
# The fit keeps no weight below 0 and gave 0 to see_through, frame and contrast: on the eval set
# the matte's softness and the parts apart tell the bad results (docs/benchmarks.md, "Issue 91").
COEFFICIENTS: tuple[float, ...] = (-2.711, 0.0, 0.428, 0.0, 0.0, 19.936)
UNSURE_BELOW = 0.577

# Each signal's own level: past it, the reason is said (whatever the confidence)
SEE_THROUGH_LIMIT = 0.05  # also the presets' ``see_through_inside`` rule
APART_LIMIT = 0.02
FRAME_LIMIT = 0.0
CONTRAST_LIMIT = 0.08
REASONS = ("see_through_inside", "parts_apart", "cut_by_frame", "little_contrast", "nothing_found")


@dataclass(frozen=True)
class Verdict:
    confidence: float  # 0..1, higher: more likely right
    unsure: bool
    reasons: tuple[str, ...]
    see_through: float = 0.0  # the share of the subject's inside left partly see-through

    def to_dict(self) -> dict[str, object]:
        return {"confidence": self.confidence, "unsure": self.unsure, "reasons": list(self.reasons)}

    def headers(self) -> dict[str, str]:
        """``X-Alphacut-Confidence`` and ``X-Alphacut-Unsure`` (``true: reason,reason`` or ``false``)."""
        said = "true" if self.unsure else "false"
        if self.reasons:
            said += ": " + ",".join(self.reasons)
        return {"X-Alphacut-Confidence": f"{self.confidence:.3f}", "X-Alphacut-Unsure": said}


@dataclass(frozen=True)
class Signals:
    see_through: float
    apart: float
    frame: float
    contrast: float
    soft: float
    found: bool = True

    def features(self) -> tuple[float, ...]:
        """What the logistic model weighs: square roots of the shares (a few percent already
        matters), the contrast's shortfall under 0.25."""
        return (
            math.sqrt(self.see_through),
            math.sqrt(self.apart),
            math.sqrt(self.frame),
            max(0.0, 0.25 - self.contrast) * 4.0,
            self.soft,
        )

    def contributions(self) -> tuple[float, ...]:
        return tuple(w * f for w, f in zip(COEFFICIENTS[1:], self.features(), strict=True))

    def confidence(self) -> float:
        if not self.found:
            return 0.0
        doubt = COEFFICIENTS[0] + sum(self.contributions())
        return 1.0 / (1.0 + math.exp(doubt))  # the chance the result is good: 1 - P(bad)

    def reasons(self) -> tuple[str, ...]:
        if not self.found:
            return ("nothing_found",)
        past = (
            self.see_through > SEE_THROUGH_LIMIT,
            self.apart > APART_LIMIT,
            self.frame > FRAME_LIMIT,
            self.contrast < CONTRAST_LIMIT,
        )
        named = [(c, r) for c, r, p in zip(self.contributions(), REASONS, past, strict=False) if p]
        return tuple(reason for _, reason in sorted(named, key=lambda pair: -pair[0]))

    def verdict(self) -> Verdict:
        confidence = round(self.confidence(), 3)
        # a product partly see-through inside is doubted whatever the fit says: the eval set has
        # too few such photos to weigh it (the white cup), and the presets fail it
        unsure = confidence < UNSURE_BELOW or self.see_through > SEE_THROUGH_LIMIT
        return Verdict(confidence, unsure, self.reasons(), round(self.see_through, 4))


def judge(alpha: np.ndarray, rgb: np.ndarray) -> Verdict:
    """The verdict on a matte (uint8, at the photo's resolution) over its photo (uint8 RGB)."""
    return signals(alpha, rgb).verdict()


def signals(alpha: np.ndarray, rgb: np.ndarray) -> Signals:
    """Every signal of a matte (uint8 H x W) over its photo (uint8 H x W x 3, the same size)."""
    small, colours = _small(alpha, rgb)
    held = small >= HELD
    if not held.any():
        return Signals(0.0, 0.0, 0.0, 1.0, 0.0, found=False)
    return Signals(
        see_through=see_through_share(small, held),
        apart=apart_share(held),
        frame=frame_share(held),
        contrast=edge_contrast(colours, held),
        soft=baseline(alpha[:: _stride(alpha), :: _stride(alpha)]),
    )


def _stride(alpha: np.ndarray) -> int:
    """Every how many rows and columns the softness is sampled: the edge's own pixels, unblurred."""
    return max(1, int(max(alpha.shape)) // (2 * _SIDE))


def baseline(alpha: np.ndarray) -> float:
    """The one-line baseline: the matte's mean 4·a·(1−a) over the subject (alpha >= 0.5)."""
    a = alpha.astype(np.float32) * (1.0 / 255.0)
    return float((4.0 * a * (1.0 - a)).sum() / max(1, np.count_nonzero(alpha >= HELD)))


def _small(alpha: np.ndarray, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The matte and photo reduced by a whole factor (box means: fast at any size) to at most
    ``_SIDE`` pixels across."""
    factor = -(-max(alpha.shape) // _SIDE)
    if factor <= 1:
        return alpha, rgb
    small = np.asarray(Image.fromarray(alpha).reduce(factor))
    colours = np.asarray(Image.fromarray(rgb).reduce(factor))
    return small, colours


def _filled(held: np.ndarray) -> np.ndarray:
    """``held`` with its holes filled: everything the background around the photo cannot reach."""
    border = np.zeros_like(held)
    border[[0, -1], :] = True
    border[:, [0, -1]] = True
    outside = reconstruct(border & ~held, ~held)
    filled: np.ndarray = ~outside
    return filled


def see_through_share(alpha: np.ndarray, held: np.ndarray) -> float:
    """The share of the subject's inside at partly see-through alpha. Inside: ``_filled``, less
    what lies within ``_INSIDE_BORDER`` of a clear pixel (alpha under 0.1: the background around
    it or seen through a true hole), whose own soft rim is no fault."""
    low, high = SEE_THROUGH_BAND
    inside = _filled(held) & ~dilate_disk(alpha < low, _INSIDE_BORDER)
    count = int(np.count_nonzero(inside))
    if count == 0:
        return 0.0
    soft = inside & (alpha >= low) & (alpha < high)
    return float(np.count_nonzero(soft)) / count


def apart_share(held: np.ndarray) -> float:
    """The share of ``held`` outside its largest 8-connected part."""
    total = int(np.count_nonzero(held))
    return 1.0 - int(np.count_nonzero(largest_part(held, _MOST_PARTS))) / total


def frame_share(held: np.ndarray) -> float:
    """The share of the photo's border pixels the subject holds."""
    border = np.concatenate([held[0], held[-1], held[1:-1, 0], held[1:-1, -1]])
    return float(np.count_nonzero(border)) / border.size


def edge_contrast(rgb: np.ndarray, held: np.ndarray) -> float:
    """The median, over the subject's edge, of the RGB distance (over 255) between the mean colour
    within ``_RING`` px inside the edge and the mean colour within ``_RING`` px outside it."""
    outline = edge(held)
    if not outline.any():
        return 1.0
    near = dilate_disk(outline, _RING)
    inner, outer = near & held, near & ~held
    ys, xs = np.nonzero(outline)
    colours = rgb.astype(np.float32)
    mean_in = _local_mean(colours, inner, ys, xs)
    mean_out = _local_mean(colours, outer, ys, xs)
    seen = np.isfinite(mean_in[:, 0]) & np.isfinite(mean_out[:, 0])
    if not seen.any():
        return 1.0
    distance = np.linalg.norm(mean_in[seen] - mean_out[seen], axis=1) / 255.0
    return float(np.median(distance))


def _local_mean(colours: np.ndarray, mask: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """The mean colour of ``mask``'s pixels in the (2 * _RING + 1)² window around each (y, x) (NaN: none)."""
    weights = mask.astype(np.float32)
    planes = np.concatenate([colours * weights[..., None], weights[..., None]], axis=2)
    sums = np.cumsum(np.cumsum(np.pad(planes, ((1, 0), (1, 0), (0, 0))), axis=0), axis=1)
    height, width = mask.shape
    top, bottom = np.clip(ys - _RING, 0, height), np.clip(ys + _RING + 1, 0, height)
    left, right = np.clip(xs - _RING, 0, width), np.clip(xs + _RING + 1, 0, width)
    window = sums[bottom, right] - sums[top, right] - sums[bottom, left] + sums[top, left]
    with np.errstate(invalid="ignore", divide="ignore"):
        means: np.ndarray = window[:, :3] / window[:, 3:]
    return np.where(window[:, 3:] > 0, means, np.nan)
