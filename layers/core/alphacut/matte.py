"""Mattes: from model output to a full-resolution alpha, person fusion, stamps, and edge colours.

Foreground colour estimation uses Blur-Fusion (Forte & Pitié, "Approximate Fast Foreground Colour
Estimation", ICIP 2021): two passes of box-blurred foreground/background estimates (radius 45,
then 3). It removes the old background's colour from the soft edge, so a cutout placed on a new
background shows no fringe, at the cost of a few box blurs (no iterative solver).

Usage::

    alpha = resize_matte(model_matte, width, height)     # float32 0..1
    colours = estimate_foreground(rgb, alpha)            # uint8 RGB, true colours at the edges
"""

from __future__ import annotations

import numpy as np
from PIL import Image

# Alpha below/above these counts as fully transparent/opaque: such pixels keep their own colour.
_EDGE_LOW, _EDGE_HIGH = 1.0 / 255.0, 254.0 / 255.0
_BLUR_RADII = (45, 3)  # the paper's 90x90 then 6x6 box kernels


def resize_matte(matte: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bilinear resize of a float matte to ``width`` x ``height``, clipped to 0..1."""
    if matte.shape == (height, width):
        return matte.astype(np.float32, copy=False)
    image = Image.fromarray(matte.astype(np.float32, copy=False), "F")
    resized = np.asarray(image.resize((width, height), Image.Resampling.BILINEAR))
    return np.clip(resized, 0.0, 1.0)


def to_u8(alpha: np.ndarray) -> np.ndarray:
    return (alpha * 255.0 + 0.5).astype(np.uint8)


# ---- person: the general model's edges, the selfie model's idea of what is a person --------------
def fuse_person(general: np.ndarray, person_probability: np.ndarray) -> np.ndarray:
    """ISNet's matte, less the regions that do not touch a person.

    ISNet draws crisp edges and hair but cuts out whatever is salient, people or not; the selfie
    model knows people but draws coarse 256 px edges and misses worn or held things (bags, shoes).
    So the selfie model only chooses *which* of ISNet's regions stay: every ISNet region connected
    to a selfie person pixel is kept whole, with ISNet's own edges; the others are dropped. Where
    the selfie model sees no person at all, ISNet's matte is kept as it is (a person seen from
    an angle the selfie model does not know is still the subject). The README lists the
    alternatives measured on shared/eval/person.
    """
    height, width = general.shape
    size = person_probability.shape
    small = resize_matte(general, size[1], size[0])
    regions = small >= 0.5
    seeds = regions & (person_probability >= 0.5)
    if not seeds.any():
        return general
    keep = _reconstruct(seeds, regions)
    if keep.sum() == regions.sum():
        return general  # every region touches the person: nothing to drop
    # grow the kept area a little so that ISNet's soft edges (below 0.5) survive the gate
    gate = _dilate(keep.astype(np.float32), radius=max(2, round(size[0] * 0.03)))
    return general * resize_matte(gate, width, height)


def _reconstruct(seeds: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Morphological reconstruction: the parts of ``mask`` 8-connected to ``seeds``."""
    current = seeds & mask
    while True:
        grown = current.copy()
        grown[1:] |= current[:-1]
        grown[:-1] |= current[1:]
        grown[:, 1:] |= grown[:, :-1].copy()
        grown[:, :-1] |= grown[:, 1:].copy()
        grown &= mask
        if np.array_equal(grown, current):
            return current
        current = grown


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation by a square of side 2r+1 (max filter), via box sums."""
    return (box_mean(mask, radius) > 1e-6).astype(np.float32)


# ---- stamps: coloured ink on paper ----------------------------------------------------------------
def stamp_matte(rgb: np.ndarray, low: float = 0.08, high: float = 0.28) -> tuple[np.ndarray, np.ndarray]:
    """Alpha and ink colour of red or blue seals/stamps on a scanned page.

    A pixel's "ink strength" is how far its red (or blue) channel stands above the other two:
    paper and black text have none, seal ink has a lot. The alpha ramps softly from ``low`` to
    ``high``; the ink colour is un-mixed from the paper colour so faint strokes keep their hue.
    """
    f = rgb.astype(np.float32) * (1.0 / 255.0)
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    redness = r - np.maximum(g, b)
    blueness = b - np.maximum(r, g)
    strength = np.maximum(redness, blueness)
    t = np.clip((strength - low) / (high - low), 0.0, 1.0)
    alpha = t * t * (3.0 - 2.0 * t)  # smoothstep: no hard step at the thresholds
    paper_pixels = (strength < low / 2) & (f.mean(axis=2) > 0.55)
    paper = np.median(f[paper_pixels], axis=0) if paper_pixels.sum() > 64 else np.ones(3, np.float32)
    a = np.maximum(alpha, 1e-3)[..., None]
    ink = np.clip(paper + (f - paper) / a, 0.0, 1.0)
    ink = np.where(alpha[..., None] > 0, ink, f)
    return alpha.astype(np.float32), to_u8(ink)


# ---- foreground colour: Blur-Fusion ---------------------------------------------------------------
def _window_sums(x: np.ndarray, radius: int, axis: int) -> np.ndarray:
    n = x.shape[axis]
    zero_shape = list(x.shape)
    zero_shape[axis] = 1
    cumulative = np.concatenate([np.zeros(zero_shape, np.float32), np.cumsum(x, axis=axis, dtype=np.float32)],
                                axis=axis)
    index = np.arange(n)
    upper = np.minimum(index + radius + 1, n)
    lower = np.maximum(index - radius, 0)
    return np.take(cumulative, upper, axis=axis) - np.take(cumulative, lower, axis=axis)


def box_mean(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2r+1)^2 window, the window cut at the borders (axes 0 and 1)."""
    height, width = x.shape[:2]
    sums = _window_sums(_window_sums(x, radius, 0), radius, 1)
    rows = np.minimum(np.arange(height) + radius + 1, height) - np.maximum(np.arange(height) - radius, 0)
    cols = np.minimum(np.arange(width) + radius + 1, width) - np.maximum(np.arange(width) - radius, 0)
    counts = (rows[:, None] * cols[None, :]).astype(np.float32)
    return sums / (counts if x.ndim == 2 else counts[:, :, None])


def _blur_fusion_step(image, foreground, background, alpha, radius):
    blurred_alpha = box_mean(alpha, radius)
    blurred_f = box_mean(foreground * alpha, radius) / (blurred_alpha + 1e-5)
    blurred_b = box_mean(background * (1.0 - alpha), radius) / ((1.0 - blurred_alpha) + 1e-5)
    foreground = blurred_f + alpha * (image - alpha * blurred_f - (1.0 - alpha) * blurred_b)
    return np.clip(foreground, 0.0, 1.0), blurred_b


def estimate_foreground(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """True foreground colours under a soft alpha (Blur-Fusion x2). Returns uint8 RGB.

    Only pixels with 0 < alpha < 1 change, so the work is limited to the box around them
    (grown by the blur radii so that the blurs see the same neighbourhood).
    """
    edge = (alpha > _EDGE_LOW) & (alpha < _EDGE_HIGH)
    rows, cols = np.nonzero(edge.any(axis=1))[0], np.nonzero(edge.any(axis=0))[0]
    if rows.size == 0:
        return rgb
    grow = sum(_BLUR_RADII) + 1
    height, width = alpha.shape
    y0, y1 = max(rows[0] - grow, 0), min(rows[-1] + grow + 1, height)
    x0, x1 = max(cols[0] - grow, 0), min(cols[-1] + grow + 1, width)
    image = rgb[y0:y1, x0:x1].astype(np.float32) * (1.0 / 255.0)
    a = alpha[y0:y1, x0:x1, None].astype(np.float32)
    foreground, background = _blur_fusion_step(image, image, image, a, _BLUR_RADII[0])
    foreground, _ = _blur_fusion_step(image, foreground, background, a, _BLUR_RADII[1])
    out = rgb.copy()
    window = out[y0:y1, x0:x1]
    window_edge = edge[y0:y1, x0:x1]
    window[window_edge] = to_u8(foreground)[window_edge]
    return out
