"""A touch-up: a delivered result's matte, kept 24 hours under its ``result_id``, and brush strokes
laid over it by a later call that runs no model.

A result's photo (as sent) and the model's matte (at the size it was composed at, before layout)
are what the whole compose needs again: background, shadow, preset and its check, format, size and
the verdict are redone from them (``Pipeline.retouch``). Strokes come as a PNG of the photo's size
(or scaled to it): opaque white pixels keep (alpha 1), opaque black ones erase (alpha 0),
transparent ones leave the model's matte. Just outside a stroke, the matte is refitted to the
photo's edges with a guided filter (He, Sun & Tang, TPAMI 2013), so a stroke's rough border meets
the subject's outline rather than drawing its own. Strokes always apply to the model's matte as
kept (a caller sends all its strokes each time), never to an earlier touch-up's.

Usage::

    kept = KeptMatte(photo=data, alpha=segmentation.alpha, type=SubjectType.OBJECT, model="isnet")
    blob = kept.to_bytes()                        # what the results bucket holds (alphacut.aws.kept_mattes)
    KeptMatte.from_bytes(blob).alpha
    alpha = apply_strokes(alpha, rgb, refine_png)  # float 0..1, H x W
"""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from alphacut.errors import InvalidOption
from alphacut.masks import dilate_disk
from alphacut.options import SubjectType

# a strokes PNG may be no larger than the largest photo (its pixels are decoded, then scaled to the
# photo's): a few kilobytes of PNG can claim billions of pixels
MAX_STROKE_PIXELS = 4096 * 4096  # the default ImageLimits.max_pixels
KEEP_SECONDS = 24 * 3600  # a result can be touched up for a day after it was made (then 410)
# a pixel of the strokes is opaque from this alpha, white (keep) from this grey level, else black
OPAQUE, WHITE = 128, 128
# the ring outside a stroke refitted to the photo's edges: its width and the guided filter's window
# radius in pixels per 1000 px of the picture's longer side (at least the second number), the
# filter's regulariser, and its passes (each carries a stroke's value a window further along a
# region of one colour, and stops at an edge). A dark square on white at 200 px, a keep stroke 4 px
# short of its edge: 1 / 3 / 6 / 10 passes leave 0.14-0.44 / 0.50-0.71 / 0.79-0.88 / 0.93-0.96 in
# the gap, and 0 past the edge (tests/unit/test_touchup.py).
EDGE_RING, GUIDE_RADIUS, GUIDE_EPS, GUIDE_PASSES = (10, 4), (6, 3), 1e-3, 10
GUIDE_SIDE = 512  # the passes' working size at most (a few ms each)


def new_result_id() -> str:
    """An id no one can guess (the options' ``RESULT_ID_PATTERN``)."""
    return f"r_{uuid.uuid4().hex}"


@dataclass(frozen=True)
class KeptMatte:
    """What a touch-up needs of a delivered result: the photo as sent and the model's matte."""

    photo: bytes
    alpha: np.ndarray  # H x W uint8, the model's matte at the size it was composed at
    type: SubjectType  # the type that ran (auto resolved)
    model: str | None

    def to_bytes(self) -> bytes:
        """A zip (stored, no pickles): the photo, the matte as a PNG, and what made it."""
        buffer = io.BytesIO()
        matte = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(self.alpha), "L").save(matte, "PNG", compress_level=1)
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            archive.writestr("photo", self.photo)
            archive.writestr("matte.png", matte.getvalue())
            archive.writestr("about.json", json.dumps({"type": self.type.value, "model": self.model}))
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> KeptMatte:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            about = json.loads(archive.read("about.json"))
            with Image.open(io.BytesIO(archive.read("matte.png"))) as matte:
                alpha = np.asarray(matte.convert("L"))
            return cls(archive.read("photo"), alpha, SubjectType(about["type"]), about["model"])


def read_strokes(
    data: bytes, width: int, height: int, field: str = "refine"
) -> tuple[np.ndarray, np.ndarray]:
    """(keep, erase): boolean H x W masks of the strokes PNG scaled to ``width`` x ``height``."""
    try:
        with Image.open(io.BytesIO(data)) as picture:
            if picture.format != "PNG":
                raise InvalidOption(f"must be a PNG, not {picture.format}", field=field)
            if picture.width * picture.height > MAX_STROKE_PIXELS:  # before its pixels are decoded
                raise InvalidOption(
                    f"is {picture.width} x {picture.height}: strokes may have at most {MAX_STROKE_PIXELS} "
                    "pixels (scale them to the photo's size)",
                    field=field,
                    limit=MAX_STROKE_PIXELS,
                )
            rgba = picture.convert("RGBA")
    except Image.DecompressionBombError:  # Pillow's own guard, at twice its pixel limit
        raise InvalidOption(
            f"has too many pixels: strokes may have at most {MAX_STROKE_PIXELS}",
            field=field,
            limit=MAX_STROKE_PIXELS,
        ) from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise InvalidOption("is not a PNG", field=field) from None
    if rgba.size != (width, height):
        rgba = rgba.resize((width, height), Image.Resampling.NEAREST)  # strokes stay opaque or not
    pixels = np.asarray(rgba)
    opaque = pixels[..., 3] >= OPAQUE
    white = pixels[..., :3].astype(np.uint16).sum(axis=2) >= 3 * WHITE
    return opaque & white, opaque & ~white


def apply_strokes(alpha: np.ndarray, rgb: np.ndarray, strokes: bytes, field: str = "refine") -> np.ndarray:
    """The matte (float 0..1) with the strokes laid on and the ring just outside them fitted to
    the photo's edges; untouched elsewhere."""
    height, width = alpha.shape
    keep, erase = read_strokes(strokes, width, height, field)
    stroked = alpha.astype(np.float32, copy=True)
    stroked[keep], stroked[erase] = 1.0, 0.0
    painted = keep | erase
    if not painted.any():
        return stroked
    ring = dilate_disk(painted, _pixels(EDGE_RING, width, height)) & ~painted
    if not ring.any():  # strokes over the whole picture: nothing left to fit
        return stroked
    rows, cols = np.nonzero(ring)
    radius = _pixels(GUIDE_RADIUS, width, height)
    top, left = max(rows.min() - 2 * radius, 0), max(cols.min() - 2 * radius, 0)
    bottom, right = min(rows.max() + 2 * radius + 1, height), min(cols.max() + 2 * radius + 1, width)
    window = (slice(top, bottom), slice(left, right))
    grey = Image.fromarray(np.ascontiguousarray(rgb[window])).convert("L")
    fitted = fitted_to_edges(stroked[window], np.asarray(grey, np.float32) / 255.0, ring[window], radius)
    stroked[window] = np.where(ring[window], fitted, stroked[window])
    return stroked.clip(0.0, 1.0)


def fitted_to_edges(values: np.ndarray, guide: np.ndarray, ring: np.ndarray, radius: int) -> np.ndarray:
    """``values`` in ``ring`` carried along the guide's regions by guided-filter passes, worked out
    at most ``GUIDE_SIDE`` across and applied to the guide at full size (He & Sun's fast guided
    filter: the linear coefficients are smooth, the guide's edges are not)."""
    height, width = values.shape
    shrink = min(1.0, GUIDE_SIDE / max(height, width))
    size = (max(1, round(width * shrink)), max(1, round(height * shrink)))
    small_guide = _resized(guide, size)
    small_values, small_ring = _resized(values, size), _resized(ring.astype(np.float32), size) > 0.5
    small_radius = max(1, round(radius * shrink))
    for _ in range(GUIDE_PASSES - 1):
        filtered = _coefficients(small_values, small_guide, small_radius)
        small_values = np.where(small_ring, filtered[0] * small_guide + filtered[1], small_values)
    mean_a, mean_b = _coefficients(small_values, small_guide, small_radius)
    fitted: np.ndarray = _resized(mean_a, (width, height)) * guide + _resized(mean_b, (width, height))
    return fitted


def _resized(plane: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if plane.shape == (size[1], size[0]):
        return plane.astype(np.float32, copy=False)
    resized = Image.fromarray(plane.astype(np.float32, copy=False), "F").resize(
        size, Image.Resampling.BILINEAR
    )
    return np.asarray(resized)


def _pixels(rule: tuple[int, int], width: int, height: int) -> int:
    per_1000, least = rule
    return max(least, round(per_1000 * max(width, height) / 1000))


def _coefficients(values: np.ndarray, guide: np.ndarray, radius: int) -> np.ndarray:
    """He, Sun & Tang's guided filter of ``values`` by a grey ``guide``: the window means of its
    linear coefficients (a, b); the filtered values are ``a * guide + b``, which change where
    the guide does."""
    mean_i, mean_ii, mean_p, mean_ip = box_mean(
        np.stack([guide, guide * guide, values, guide * values]), radius
    )
    a = (mean_ip - mean_i * mean_p) / (mean_ii - mean_i * mean_i + GUIDE_EPS)
    b = mean_p - a * mean_i
    return box_mean(np.stack([a, b]), radius)


def box_mean(planes: np.ndarray, radius: int) -> np.ndarray:
    """The mean over a (2r+1)^2 window, cut at the borders, of each C x H x W plane: running sums
    along each axis, linear in the pixels (a large stroke's box is too wide for
    ``matte.box_mean_planes``' matrices)."""
    _, height, width = planes.shape
    across = _window_sums(planes.astype(np.float32), radius, axis=2)
    sums = _window_sums(across, radius, axis=1)
    counts = np.outer(_window_sizes(height, radius), _window_sizes(width, radius))
    means: np.ndarray = sums / counts
    return means


def _window_sums(values: np.ndarray, radius: int, axis: int) -> np.ndarray:
    """Sums over [i - r, i + r] along ``axis``: running sums, zeros before them and their total
    after, each window a difference of two slices."""
    size = values.shape[axis]
    running = np.cumsum(values, axis=axis)
    before = np.zeros_like(np.take(running, [0], axis=axis)).repeat(radius + 1, axis=axis)
    after = np.take(running, [size - 1], axis=axis).repeat(radius, axis=axis)
    padded = np.concatenate([before, running, after], axis=axis)
    ends = np.take(padded, np.arange(2 * radius + 1, 2 * radius + 1 + size), axis=axis)
    starts = np.take(padded, np.arange(size), axis=axis)
    sums: np.ndarray = ends - starts
    return sums


def _window_sizes(size: int, radius: int) -> np.ndarray:
    index = np.arange(size)
    sizes: np.ndarray = np.minimum(index + radius, size - 1) - np.maximum(index - radius, 0) + 1
    return sizes.astype(np.float32)
