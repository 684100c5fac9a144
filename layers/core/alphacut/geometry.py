"""Where the subject is, and how the result is cropped and fitted to a target size.

Boxes are ``(left, top, right, bottom)`` in pixels, right/bottom exclusive (as Pillow's).

Usage::

    box = subject_bbox(alpha_u8)                          # None when nothing is there
    box = expand_box(box, Margin(5, percent=True), w, h)
    rgb, alpha = fit_into(rgb, alpha, 800, 600)           # AIDGE's targetWidth/targetHeight
    rgb, alpha = place(rgb, alpha, box, scale=0.8, position=Position(50, 50))
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from alphacut.options import Margin, Margins, Position

Box = tuple[int, int, int, int]
SUBJECT_THRESHOLD = 13  # alpha/255 ~ 5%: faint haze is not subject, soft hair is


def subject_bbox(alpha: np.ndarray, threshold: int = SUBJECT_THRESHOLD) -> Box | None:
    """The box around every pixel with alpha >= threshold, or None if there is none."""
    mask = alpha >= threshold
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def expand_box(box: Box, margin: Margin | Margins, width: int, height: int) -> Box:
    """Grow ``box`` by the margin on each side (a percent is of the box's longer side), within the image."""
    left, top, right, bottom = box
    pad_top, pad_right, pad_bottom, pad_left = margin.sides(max(right - left, bottom - top))
    return (
        max(left - pad_left, 0),
        max(top - pad_top, 0),
        min(right + pad_right, width),
        min(bottom + pad_bottom, height),
    )


def keep_inside(alpha: np.ndarray, box: Box) -> np.ndarray:
    """The alpha with everything outside ``box`` made transparent (a region of interest)."""
    left, top, right, bottom = box
    kept = np.zeros_like(alpha)
    kept[top:bottom, left:right] = alpha[top:bottom, left:right]
    return kept


def _resize_pair(
    rgb: np.ndarray, alpha: np.ndarray, width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    if (width, height) == (alpha.shape[1], alpha.shape[0]):
        return rgb, alpha
    method = Image.Resampling.LANCZOS
    return (
        np.asarray(Image.fromarray(rgb).resize((width, height), method)),
        np.asarray(Image.fromarray(alpha).resize((width, height), method)),
    )


def place(
    rgb: np.ndarray, alpha: np.ndarray, subject: Box, scale: float | None, position: Position
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
        factor = min(width * scale / new_width, height * scale / new_height)
        new_width, new_height = max(1, round(new_width * factor)), max(1, round(new_height * factor))
        sub_rgb, sub_alpha = _resize_pair(sub_rgb, sub_alpha, new_width, new_height)
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
    left, top, right, bottom = box
    return rgb[top:bottom, left:right], alpha[top:bottom, left:right]


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


def fit_into(
    rgb: np.ndarray, alpha: np.ndarray, canvas_width: int, canvas_height: int
) -> tuple[np.ndarray, np.ndarray]:
    """Scale (up or down, aspect kept) to fit the canvas and centre it; the rest is transparent."""
    height, width = alpha.shape
    scale = min(canvas_width / width, canvas_height / height)
    new_width = min(canvas_width, max(1, round(width * scale)))
    new_height = min(canvas_height, max(1, round(height * scale)))
    rgb, alpha = _resize_pair(rgb, alpha, new_width, new_height)
    out_rgb = np.zeros((canvas_height, canvas_width, 3), np.uint8)
    out_alpha = np.zeros((canvas_height, canvas_width), np.uint8)
    x = (canvas_width - new_width) // 2
    y = (canvas_height - new_height) // 2
    out_rgb[y : y + new_height, x : x + new_width] = rgb
    out_alpha[y : y + new_height, x : x + new_width] = alpha
    return out_rgb, out_alpha


def cap_megapixels(width: int, height: int, megapixels: float | None) -> tuple[int, int]:
    """The largest size with the same aspect within ``megapixels`` (None or already within: as is)."""
    if megapixels is None or width * height <= megapixels * 1_000_000:
        return width, height
    factor = (megapixels * 1_000_000 / (width * height)) ** 0.5
    return max(1, int(width * factor)), max(1, int(height * factor))
