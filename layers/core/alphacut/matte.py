"""Mattes: from model output to a full-resolution alpha, person fusion, stamps, and edge colours.

Foreground colour estimation uses Blur-Fusion (Forte & Pitié, "Approximate Fast Foreground Colour
Estimation", ICIP 2021): two passes of box-blurred foreground/background estimates (radius 45,
then 3). It removes the old background's colour from the soft edge, so a cutout placed on a new
background shows no fringe, at the cost of a few box blurs (no iterative solver).

A clean-up (``clean_matte``) runs on every model matte: soft alpha that no confident part of the
subject holds is background the model half-kept ("ghosts": spectators beside a dancer, a fence
behind a dog). docs/benchmarks.md has its figures on the eval set.

Usage::

    alpha = resize_matte(model_matte, width, height)     # float32 0..1
    alpha = clean_matte(alpha)                           # without ghosts of the background
    colours = estimate_foreground(rgb, alpha)            # uint8 RGB, true colours at the edges
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from alphacut.masks import box_of, dilate_disk, reconstruct

# Alpha below/above these counts as fully transparent/opaque: such pixels keep their own colour.
_EDGE_LOW, _EDGE_HIGH = 1.0 / 255.0, 254.0 / 255.0
_BLUR_RADII = (45, 3)  # the paper's 90x90 then 6x6 box kernels


def resize_matte(matte: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bilinear resize of a float matte to ``width`` x ``height``, clipped to 0..1."""
    if matte.shape == (height, width):
        return matte.astype(np.float32, copy=False)
    image = Image.fromarray(matte.astype(np.float32, copy=False), "F")
    resized: np.ndarray = np.asarray(image.resize((width, height), Image.Resampling.BILINEAR))
    return resized.clip(0.0, 1.0)


def alpha_to_uint8(alpha: np.ndarray) -> np.ndarray:
    return (alpha * 255.0 + 0.5).astype(np.uint8)


# ---- person: the general model's edges, the selfie model's idea of what is a person --------------
def fuse_person(general: np.ndarray, person_probability: np.ndarray) -> np.ndarray:
    """ISNet's matte, less the regions that do not touch a person.

    ISNet draws crisp edges and hair but cuts out whatever is salient, people or not; the selfie
    model knows people but draws coarse 256 px edges and misses worn or held things (bags, shoes).
    So the selfie model only chooses *which* of ISNet's regions stay: every ISNet region connected
    to a selfie person pixel is kept whole, with ISNet's own edges; the others are dropped. Where
    the selfie model sees no person at all, ISNet's matte is kept as it is (a person seen from
    an angle the selfie model does not know is still the subject). docs/models.md lists the
    alternatives measured on the person eval photos.
    """
    height, width = general.shape
    size = person_probability.shape
    small = resize_matte(general, size[1], size[0])
    regions = small >= 0.5
    seeds = regions & (person_probability >= 0.5)
    if not seeds.any():
        return general
    keep = reconstruct(seeds, regions)
    if keep.sum() == regions.sum():
        return general  # every region touches the person: nothing to drop
    # grow the kept area a little so that ISNet's soft edges (below 0.5) survive the gate
    gate = dilate_square(keep.astype(np.float32), radius=max(2, round(size[0] * 0.03)))
    gated: np.ndarray = general * resize_matte(gate, width, height)
    return gated


def dilate_square(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation by a square of side 2r+1 (a max filter), via box means; float 0/1 out."""
    dilated: np.ndarray = box_mean_planes(mask[None], radius)[0] > 1e-6
    return dilated.astype(np.float32)


def mirror_confirmed(matte: np.ndarray, mirrored: np.ndarray) -> np.ndarray:
    """One matte from a picture's and its mirror's (flipped back): their mean where that is at
    least one half, else the smaller of the two, so soft alpha that one pass does not see goes."""
    mean = (matte + mirrored) * 0.5
    confirmed: np.ndarray = np.where(mean >= 0.5, mean, np.minimum(matte, mirrored))
    return confirmed


# Where a second run is not cheap enough to spend on every photo (int8 on a CPU), the mirror runs
# only where the first matte is unsure: its soft alpha (between UNSURE_SOFT's bounds) covers more
# than UNSURE_SHARE of the area it holds above one half. Chosen on the eval set's dev half as the
# gate that mirrors the fewest dev photos while keeping dev within 0.005 IoU of mirroring every one
# (docs/benchmarks.md, "The mirror where the first run is unsure").
UNSURE_SOFT, UNSURE_SHARE = (0.05, 0.95), 0.48


def unsure(matte: np.ndarray) -> bool:
    """Whether a model's raw matte (0..1) is soft over more than ``UNSURE_SHARE`` of what it holds:
    ghosts, a subject half seen, hesitant edges; a confident matte is mostly 0 and 1."""
    low, high = UNSURE_SOFT
    held = int(np.count_nonzero(matte > 0.5))
    soft = int(np.count_nonzero((matte > low) & (matte < high)))
    return bool(soft > UNSURE_SHARE * max(held, 1))


# ---- clean-up: the ghosts of the background ------------------------------------------------------
# Chosen on the eval set's dev half (docs/benchmarks.md): a region is the subject when it holds alpha
# of at least CLEAN_CORE; it reaches as far as alpha of at least CLEAN_LINK connects to that core;
# softer alpha stays within CLEAN_REACH (of the long side) of it: edges and hair, not ghosts.
CLEAN_CORE, CLEAN_LINK, CLEAN_REACH = 0.95, 0.5, 0.01
_CLEAN_SIDE = 1024  # the gate is worked out at most this many pixels across, then scaled


def clean_matte(alpha: np.ndarray) -> np.ndarray:
    """``alpha`` less what no confident subject holds, by hysteresis (as edges in Canny's detector).

    Ghosts hang on the subject by faint bridges, so "touches the subject" keeps them; "joined to
    a confident core through alpha of at least one half" does not. Within a short reach of what is
    kept, alpha stays as the model drew it (soft edges, hair); beyond, it fades to zero over half
    that reach. A matte with no confident pixel at all is left as it is (nothing to anchor on).
    """
    height, width = alpha.shape
    scale = min(1.0, _CLEAN_SIDE / max(height, width))
    small = resize_matte(alpha, max(1, round(width * scale)), max(1, round(height * scale)))
    core = small >= CLEAN_CORE
    if not core.any():
        return alpha
    kept = reconstruct(core, small >= CLEAN_LINK)
    reach = max(1, round(CLEAN_REACH * max(small.shape)))
    gate = box_mean_mask(dilate_disk(kept, reach), max(1, reach // 2))
    cleaned: np.ndarray = alpha * resize_matte(gate, width, height)
    return cleaned


def box_mean_mask(mask: np.ndarray, radius: int) -> np.ndarray:
    """``box_mean_planes`` of one boolean mask, from running counts in the box of the mask grown by
    ``radius`` (zero outside it): exact, a few ms where the banded matrix products took 12 on a
    854x480 gate (their cost grows with the width squared)."""
    height, width = mask.shape
    means = np.zeros(mask.shape, np.float32)
    box = box_of(mask)
    if box is None:
        return means
    x0, y0 = max(box[0] - radius, 0), max(box[1] - radius, 0)
    x1, y1 = min(box[2] + radius, width), min(box[3] + radius, height)
    across = _row_window_sums(mask[y0:y1, x0:x1].astype(np.int32), radius)
    counts = _row_window_sums(np.ascontiguousarray(across.T), radius).T
    sizes = np.outer(_window_sizes(height, radius)[y0:y1], _window_sizes(width, radius)[x0:x1])
    means[y0:y1, x0:x1] = counts / sizes.astype(np.float32)
    return means


def _row_window_sums(values: np.ndarray, radius: int) -> np.ndarray:
    """Sums over [x - r, x + r] along each row (the mask's box grown by r: every one it holds is
    inside, so a window past the box's end sees zeros there, as in the whole picture)."""
    width = values.shape[1]
    # running sums with zeros before and the row's total after: each window is a slice
    padded = np.pad(np.cumsum(values, axis=1, dtype=np.int32), ((0, 0), (radius + 1, radius)), mode="edge")
    padded[:, : radius + 1] = 0
    sums: np.ndarray = padded[:, 2 * radius + 1 : 2 * radius + 1 + width] - padded[:, :width]
    return sums


def _window_sizes(size: int, radius: int) -> np.ndarray:
    index = np.arange(size)
    sizes: np.ndarray = np.minimum(index + radius, size - 1) - np.maximum(index - radius, 0) + 1
    return sizes


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
    return alpha.astype(np.float32), alpha_to_uint8(ink)


# ---- foreground colour: Blur-Fusion ---------------------------------------------------------------
def _box_matrix(n: int, radius: int) -> np.ndarray:
    """n x n: row i averages entries [i - r, i + r], the window cut at the ends."""
    index = np.arange(n)
    band = (np.abs(index[:, None] - index[None, :]) <= radius).astype(np.float32)
    return band / band.sum(axis=1, keepdims=True)


def box_mean_planes(planes: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2r+1)^2 window, the window cut at the borders, of each C x H x W plane.

    Two matrix products with banded averaging matrices: for the few hundred pixels across that
    Blur-Fusion, the guided filter and the person gate work at, BLAS (on every core) beats running
    sums, and channel-first planes need no transposes.
    """
    channels, height, width = planes.shape
    across = planes.reshape(channels * height, width) @ _box_matrix(width, radius).T
    means: np.ndarray = np.matmul(_box_matrix(height, radius), across.reshape(channels, height, width))
    return means


def _blur_fusion_step(
    image: np.ndarray, foreground: np.ndarray, background: np.ndarray, alpha: np.ndarray, radius: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One Blur-Fusion pass on C x H x W planes: the new foreground and the blurred F and B."""
    # one box blur over the 7 stacked planes [a, F*a, B*(1-a)] instead of three calls
    stacked = np.concatenate([alpha, foreground * alpha, background * (1.0 - alpha)], axis=0)
    blurred = box_mean_planes(stacked, radius)
    blurred_alpha = blurred[:1]
    blurred_f = blurred[1:4] / (blurred_alpha + 1e-5)
    blurred_b = blurred[4:7] / ((1.0 - blurred_alpha) + 1e-5)
    return _fuse(image, alpha, blurred_f, blurred_b), blurred_f, blurred_b


def _fuse(image: np.ndarray, alpha: np.ndarray, blurred_f: np.ndarray, blurred_b: np.ndarray) -> np.ndarray:
    fused: np.ndarray = blurred_f + alpha * (image - alpha * blurred_f - (1.0 - alpha) * blurred_b)
    return fused.clip(0.0, 1.0)


def _sample_planes(planes: np.ndarray, fy: np.ndarray, fx: np.ndarray) -> np.ndarray:
    """Bilinear samples of C x h x w ``planes`` at fractional row/column positions: N x C."""
    h, w = planes.shape[1:]
    fy, fx = np.clip(fy, 0, h - 1), np.clip(fx, 0, w - 1)
    y0, x0 = fy.astype(np.int32), fx.astype(np.int32)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    wy, wx = (fy - y0).astype(np.float32), (fx - x0).astype(np.float32)
    flat = planes.reshape(planes.shape[0], -1)
    top = flat[:, y0 * w + x0] * (1 - wx) + flat[:, y0 * w + x1] * wx
    bottom = flat[:, y1 * w + x0] * (1 - wx) + flat[:, y1 * w + x1] * wx
    return (top * (1 - wy) + bottom * wy).T


def estimate_foreground(rgb: np.ndarray, alpha: np.ndarray, work_side: int = 384) -> np.ndarray:
    """True foreground colours under a soft alpha (Blur-Fusion x2). Returns uint8 RGB.

    Only pixels with 0 < alpha < 1 change, so the work is limited to the box around them. The
    blurred foreground/background estimates are smooth by construction, so they are computed on
    the box reduced by a whole factor to at most ``work_side`` pixels across (box averages, radii
    scaled to match) and sampled bilinearly at the edge pixels, where the final per-pixel formula
    runs at full resolution.
    """
    edge = (alpha > _EDGE_LOW) & (alpha < _EDGE_HIGH)
    rows, cols = np.flatnonzero(edge.any(axis=1)), np.flatnonzero(edge.any(axis=0))
    if rows.size == 0:
        return rgb
    height, width = alpha.shape
    factor = -(-max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1) // work_side)
    radii = [max(1, round(r / factor)) for r in _BLUR_RADII]
    grow = (sum(radii) + 1) * factor  # the blurs see the same neighbourhood at any factor
    y0, y1 = max(rows[0] - grow, 0), min(rows[-1] + grow + 1, height)
    x0, x1 = max(cols[0] - grow, 0), min(cols[-1] + grow + 1, width)
    window_rgb = rgb[y0:y1, x0:x1]
    window_alpha = alpha[y0:y1, x0:x1].astype(np.float32)
    small_rgb, small_alpha = window_rgb, window_alpha
    if factor > 1:
        small_rgb = np.asarray(Image.fromarray(window_rgb).reduce(factor))
        small_alpha = np.asarray(Image.fromarray(window_alpha, "F").reduce(factor))
    image = small_rgb.transpose(2, 0, 1).astype(np.float32) * (1.0 / 255.0)
    a = small_alpha[None]
    foreground, _, background = _blur_fusion_step(image, image, image, a, radii[0])
    _, blurred_f, blurred_b = _blur_fusion_step(image, foreground, background, a, radii[1])

    ys, xs = np.nonzero(edge[y0:y1, x0:x1])
    planes = np.concatenate([blurred_f, blurred_b], axis=0)
    if factor > 1:  # pixel centres: full-resolution x sits at (x + 0.5) / factor - 0.5 in the reduced box
        sampled = _sample_planes(planes, (ys + 0.5) / factor - 0.5, (xs + 0.5) / factor - 0.5)
    else:
        sampled = planes[:, ys, xs].T
    edge_alpha = window_alpha[ys, xs][:, None]
    observed = window_rgb[ys, xs].astype(np.float32) * (1.0 / 255.0)
    out = rgb.copy()
    out[y0 + ys, x0 + xs] = alpha_to_uint8(_fuse(observed, edge_alpha, sampled[:, :3], sampled[:, 3:]))
    return out
