"""Where the subject is, and how the result is cropped and fitted to a target size.

Boxes are ``(left, top, right, bottom)`` in pixels, right/bottom exclusive (as Pillow's).

Usage::

    box = subject_bbox(alpha_u8)                          # None when nothing is there
    box = expand_box(box, Length(5, percent=True), w, h)
    rgb, alpha = fit_into(rgb, alpha, Canvas(800, 600))   # AIDGE's targetWidth/targetHeight
    rgb, alpha = fit_into(rgb, alpha, Canvas(2000, 2000, padding=(100,) * 4, fit=Fit.CONTAIN,
                          position=Position(50, 100)))   # a fixed canvas, bottom-aligned
    rgb, alpha = place(rgb, alpha, box, scale=0.8, position=Position(50, 50))
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from alphacut.masks import box_of
from alphacut.options import Fit, Length, Margins, Position

Box = tuple[int, int, int, int]
SUBJECT_THRESHOLD = 13  # alpha/255 ~ 5%: faint haze is not subject, soft hair is


def subject_bbox(alpha: np.ndarray, threshold: int = SUBJECT_THRESHOLD) -> Box | None:
    """The box around every pixel with alpha >= threshold, or None if there is none."""
    return box_of(alpha >= threshold)


def expand_box(box: Box, margin: Length | Margins, width: int, height: int, within: Box | None = None) -> Box:
    """Grow ``box`` by the margin on each side (a percent is of the box's longer side), within the
    image (or within ``within``, which may reach past it: a shadow's room)."""
    left, top, right, bottom = box
    limit = within or (0, 0, width, height)
    pad_top, pad_right, pad_bottom, pad_left = margin.sides(max(right - left, bottom - top))
    return (
        max(left - pad_left, limit[0]),
        max(top - pad_top, limit[1]),
        min(right + pad_right, limit[2]),
        min(bottom + pad_bottom, limit[3]),
    )


def grow(box: Box, room: tuple[int, int, int, int]) -> Box:
    """``box`` with ``room`` (left, top, right, bottom pixels) added outside it."""
    return box[0] - room[0], box[1] - room[1], box[2] + room[2], box[3] + room[3]


def union(first: Box, second: Box) -> Box:
    return (
        min(first[0], second[0]),
        min(first[1], second[1]),
        max(first[2], second[2]),
        max(first[3], second[3]),
    )


def intersection(first: Box, second: Box) -> Box:
    return (
        max(first[0], second[0]),
        max(first[1], second[1]),
        min(first[2], second[2]),
        min(first[3], second[3]),
    )


class FrameLimit:
    """The largest result the output allows: a side and a pixel count (the configured limits and
    the format's own, WebP's 16,383 px). A shadow's room grows the frame only as far as this.

    Usage::

        limit = FrameLimit(4096, 4096 * 4096)
        frame = limit.clip(union(photo, content), photo)   # the photo fits already; its growth is cut
    """

    def __init__(self, max_side: int, max_pixels: int):
        self.max_side, self.max_pixels = max_side, max_pixels

    def admits(self, box: Box) -> bool:
        width, height = box[2] - box[0], box[3] - box[1]
        return width <= self.max_side and height <= self.max_side and width * height <= self.max_pixels

    def clip(self, frame: Box, inner: Box) -> Box:
        """``frame`` with what it adds around ``inner`` cut by one share on every side, the largest
        that fits (``inner`` itself is assumed to fit)."""
        if self.admits(frame):
            return frame
        low, high = 0.0, 1.0
        for _ in range(20):
            middle = (low + high) / 2
            if self.admits(_between(inner, frame, middle)):
                low = middle
            else:
                high = middle
        return _between(inner, frame, low)


def _between(inner: Box, outer: Box, share: float) -> Box:
    return (
        inner[0] - math.floor((inner[0] - outer[0]) * share),
        inner[1] - math.floor((inner[1] - outer[1]) * share),
        inner[2] + math.floor((outer[2] - inner[2]) * share),
        inner[3] + math.floor((outer[3] - inner[3]) * share),
    )


def shift(box: Box, dx: int, dy: int) -> Box:
    return box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy


def keep_inside(alpha: np.ndarray, box: Box) -> np.ndarray:
    """The alpha with everything outside ``box`` made transparent (a region of interest)."""
    left, top, right, bottom = box
    kept = np.zeros_like(alpha)
    kept[top:bottom, left:right] = alpha[top:bottom, left:right]
    return kept


def resize_pair(rgb: np.ndarray, alpha: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    if (width, height) == (alpha.shape[1], alpha.shape[0]):
        return rgb, alpha
    # Lanczos where it shrinks (no aliasing); bicubic where it enlarges: as sharp to the eye, and
    # a third of the time on a marketplace canvas made from a small photo
    shrinks = width * height < alpha.shape[0] * alpha.shape[1]
    method = Image.Resampling.LANCZOS if shrinks else Image.Resampling.BICUBIC
    return (
        np.asarray(Image.fromarray(rgb).resize((width, height), method)),
        np.asarray(Image.fromarray(alpha).resize((width, height), method)),
    )


def place(
    rgb: np.ndarray,
    alpha: np.ndarray,
    subject: Box,
    scale: float | None,
    position: Position,
    most: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The subject (the ``subject`` box) moved and scaled on a transparent canvas of the same size.

    ``scale`` fits it into that share of the canvas (aspect kept; None keeps its size); ``position``
    puts it at x%/y% of the free space (50/50 centres it) or, when original, keeps its centre where
    it was.
    """
    height, width = alpha.shape
    left, top, right, bottom = subject
    sub_rgb, sub_alpha = rgb[top:bottom, left:right], alpha[top:bottom, left:right]
    new_width, new_height = right - left, bottom - top
    if scale is not None:
        factor = place_factor(width, height, subject, scale, most)
        new_width, new_height = max(1, round(new_width * factor)), max(1, round(new_height * factor))
        sub_rgb, sub_alpha = resize_pair(sub_rgb, sub_alpha, new_width, new_height)
    if position.original:
        x = round((left + right) / 2 - new_width / 2)
        y = round((top + bottom) / 2 - new_height / 2)
    else:
        x = round((width - new_width) * position.x / 100)
        y = round((height - new_height) * position.y / 100)
    x, y = min(max(x, 0), max(width - new_width, 0)), min(max(y, 0), max(height - new_height, 0))
    out_rgb = np.zeros_like(rgb)
    out_alpha = np.zeros_like(alpha)
    shown_w, shown_h = min(new_width, width - x), min(new_height, height - y)
    out_rgb[y : y + shown_h, x : x + shown_w] = sub_rgb[:shown_h, :shown_w]
    out_alpha[y : y + shown_h, x : x + shown_w] = sub_alpha[:shown_h, :shown_w]
    return out_rgb, out_alpha


def crop(rgb: np.ndarray, alpha: np.ndarray, box: Box) -> tuple[np.ndarray, np.ndarray]:
    """The pixels inside ``box``; where it reaches past the image, transparent ones."""
    left, top, right, bottom = box
    height, width = alpha.shape
    if left >= 0 and top >= 0 and right <= width and bottom <= height:
        return rgb[top:bottom, left:right], alpha[top:bottom, left:right]
    out_rgb = np.zeros((bottom - top, right - left, 3), np.uint8)
    out_alpha = np.zeros((bottom - top, right - left), np.uint8)
    src = (max(left, 0), max(top, 0), min(right, width), min(bottom, height))
    if src[2] > src[0] and src[3] > src[1]:
        dst = np.s_[src[1] - top : src[3] - top, src[0] - left : src[2] - left]
        out_rgb[dst] = rgb[src[1] : src[3], src[0] : src[2]]
        out_alpha[dst] = alpha[src[1] : src[3], src[0] : src[2]]
    return out_rgb, out_alpha


def target_size(
    width: int, height: int, target_width: int | None, target_height: int | None
) -> tuple[int, int]:
    """The canvas size: both given, or one given and the other from the aspect ratio."""
    if target_width and target_height:
        return target_width, target_height
    if target_width:
        return target_width, max(1, round(height * target_width / width))
    if target_height:
        return max(1, round(width * target_height / height)), target_height
    return width, height


@dataclass(frozen=True)
class Canvas:
    """A fixed canvas and how a picture goes on it: ``padding`` (top, right, bottom, left pixels)
    kept free at the edges; ``contain`` fits the whole picture inside what is left, ``cover`` fills
    it (the overflow past the canvas is cut); ``scale`` shrinks it to that share of the area;
    ``position`` puts it at x%/y% of the free space (default centred); ``most``: the largest
    enlargement (None: as far as the canvas asks)."""

    width: int
    height: int
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    fit: Fit = Fit.CONTAIN
    scale: float | None = None
    position: Position | None = None
    most: float | None = None

    def factor(self, width: int, height: int) -> float:
        """How much a ``width`` x ``height`` picture is scaled (above 1: enlarged)."""
        top, right, bottom, left = self.padding
        inner_width, inner_height = self.width - left - right, self.height - top - bottom
        pick = max if self.fit is Fit.COVER else min
        factor = pick(inner_width / width, inner_height / height) * (self.scale or 1.0)
        return factor if self.most is None else min(factor, self.most)

    def spot(self, width: int, height: int) -> Box:
        """Where a ``width`` x ``height`` picture goes (it may reach past the canvas with cover)."""
        top, right, bottom, left = self.padding
        inner_width, inner_height = self.width - left - right, self.height - top - bottom
        factor = self.factor(width, height)
        new_width, new_height = max(1, round(width * factor)), max(1, round(height * factor))
        if self.fit is Fit.CONTAIN:
            new_width, new_height = min(new_width, inner_width), min(new_height, inner_height)
        where = (
            self.position if self.position is not None and not self.position.original else Position(50, 50)
        )
        x = left + math.floor((inner_width - new_width) * (where.x or 0.0) / 100)
        y = top + math.floor((inner_height - new_height) * (where.y or 0.0) / 100)
        return x, y, x + new_width, y + new_height


def place_factor(
    width: int, height: int, subject: Box, scale: float | None, most: float | None = None
) -> float:
    """How much ``place`` scales the subject on a ``width`` x ``height`` canvas (at most ``most``)."""
    if scale is None:
        return 1.0
    left, top, right, bottom = subject
    factor = min(width * scale / (right - left), height * scale / (bottom - top))
    return factor if most is None else min(factor, most)


def fit_into(rgb: np.ndarray, alpha: np.ndarray, canvas: Canvas) -> tuple[np.ndarray, np.ndarray]:
    """The picture scaled (up or down, aspect kept) onto ``canvas``; the rest is transparent."""
    height, width = alpha.shape
    spot = canvas.spot(width, height)
    rgb, alpha = resize_pair(rgb, alpha, spot[2] - spot[0], spot[3] - spot[1])
    return paste(rgb, alpha, canvas.width, canvas.height, spot[0], spot[1])


def paste(
    rgb: np.ndarray, alpha: np.ndarray, canvas_width: int, canvas_height: int, x: int, y: int
) -> tuple[np.ndarray, np.ndarray]:
    """The picture on a transparent canvas with its top left at (x, y); what falls outside is cut."""
    height, width = alpha.shape
    out_rgb = np.zeros((canvas_height, canvas_width, 3), np.uint8)
    out_alpha = np.zeros((canvas_height, canvas_width), np.uint8)
    shown = (max(x, 0), max(y, 0), min(x + width, canvas_width), min(y + height, canvas_height))
    if shown[2] <= shown[0] or shown[3] <= shown[1]:
        return out_rgb, out_alpha
    region = np.s_[shown[1] - y : shown[3] - y, shown[0] - x : shown[2] - x]
    out_rgb[shown[1] : shown[3], shown[0] : shown[2]] = rgb[region]
    out_alpha[shown[1] : shown[3], shown[0] : shown[2]] = alpha[region]
    return out_rgb, out_alpha


def covering(width: int, height: int, side: int) -> tuple[int, int]:
    """The smallest size with the same aspect whose sides are both at least ``side`` (a model's
    square input), never larger than the image itself."""
    factor = min(1.0, max(side / width, side / height))
    return max(1, round(width * factor)), max(1, round(height * factor))


def cap_megapixels(width: int, height: int, megapixels: float | None) -> tuple[int, int]:
    """The largest size with the same aspect within ``megapixels`` (None or already within: as is)."""
    if megapixels is None or width * height <= megapixels * 1_000_000:
        return width, height
    factor = (megapixels * 1_000_000 / (width * height)) ** 0.5
    return max(1, int(width * factor)), max(1, int(height * factor))
