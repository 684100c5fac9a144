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
from alphacut.matte import box_mean_planes
from alphacut.options import SubjectType

KEEP_SECONDS = 24 * 3600  # a result can be touched up for a day after it was made (then 410)
# a pixel of the strokes is opaque from this alpha, white (keep) from this grey level, else black
OPAQUE, WHITE = 128, 128
# the ring outside a stroke refitted to the photo's edges: its width and the guided filter's
# window radius in pixels per 1000 px of the picture's longer side, and the filter's regulariser
EDGE_RING_PER_1000, GUIDE_RADIUS_PER_1000, GUIDE_EPS = 6, 4, 1e-3
# the size of the box the guided filter works on at most (its box means are matrix products)
GUIDE_SIDE = 1024


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
            rgba = picture.convert("RGBA")
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
    scale = max(width, height) / 1000
    ring = dilate_disk(painted, max(2, round(EDGE_RING_PER_1000 * scale))) & ~painted
    fitted = _guided_in_box(stroked, rgb, ring, max(1, round(GUIDE_RADIUS_PER_1000 * scale)))
    return np.where(ring, fitted, stroked).clip(0.0, 1.0).astype(np.float32)


def _guided_in_box(alpha: np.ndarray, rgb: np.ndarray, ring: np.ndarray, radius: int) -> np.ndarray:
    """The guided filter of ``alpha`` with the photo's grey levels as guide, worked out in the box
    of ``ring`` (grown by the window) and at most ``GUIDE_SIDE`` across; ``alpha`` elsewhere."""
    rows, cols = np.nonzero(ring)
    top, bottom = max(rows.min() - 2 * radius, 0), min(rows.max() + 2 * radius + 1, alpha.shape[0])
    left, right = max(cols.min() - 2 * radius, 0), min(cols.max() + 2 * radius + 1, alpha.shape[1])
    box_alpha = alpha[top:bottom, left:right]
    grey = Image.fromarray(np.ascontiguousarray(rgb[top:bottom, left:right])).convert("L")
    size = (right - left, bottom - top)
    shrink = min(1.0, GUIDE_SIDE / max(size))
    small = (max(1, round(size[0] * shrink)), max(1, round(size[1] * shrink)))
    guide = np.asarray(grey.resize(small, Image.Resampling.BOX), np.float32) / 255.0
    p = np.asarray(Image.fromarray(box_alpha, "F").resize(small, Image.Resampling.BILINEAR))
    r = max(1, round(radius * shrink))
    means = box_mean_planes(np.stack([guide, guide * guide, p, guide * p]), r)
    mean_i, mean_ii, mean_p, mean_ip = means
    a = (mean_ip - mean_i * mean_p) / (mean_ii - mean_i * mean_i + GUIDE_EPS)
    b = mean_p - a * mean_i
    mean_a, mean_b = box_mean_planes(np.stack([a, b]), r)
    if shrink < 1.0:  # the linear coefficients are smooth: scaled up, then applied to the full guide
        mean_a = np.asarray(Image.fromarray(mean_a, "F").resize(size, Image.Resampling.BILINEAR))
        mean_b = np.asarray(Image.fromarray(mean_b, "F").resize(size, Image.Resampling.BILINEAR))
        guide = np.asarray(grey, np.float32) / 255.0
    out = alpha.copy()
    out[top:bottom, left:right] = mean_a * guide + mean_b
    return out
