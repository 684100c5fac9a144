"""Where the subject is, and how the result is cropped and fitted to a target size.

Boxes are ``(left, top, right, bottom)`` in pixels, right/bottom exclusive (as Pillow's).

Usage::

    box = subject_bbox(alpha_u8)                          # None when nothing is there
    box = expand_box(box, Margin(5, percent=True), w, h)
    rgb, alpha = fit_into(rgb, alpha, 800, 600)           # seed 003's targetWidth/targetHeight
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from alphacut.options import Margin

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


def expand_box(box: Box, margin: Margin, width: int, height: int) -> Box:
    """Grow ``box`` by the margin on every side (percent of the box's longer side), within the image."""
    left, top, right, bottom = box
    pad = margin.pixels(max(right - left, bottom - top))
    return max(left - pad, 0), max(top - pad, 0), min(right + pad, width), min(bottom + pad, height)


def crop(rgb: np.ndarray, alpha: np.ndarray, box: Box) -> tuple[np.ndarray, np.ndarray]:
    left, top, right, bottom = box
    return rgb[top:bottom, left:right], alpha[top:bottom, left:right]


def target_size(width: int, height: int, target_width: int | None, target_height: int | None) -> tuple[int, int]:
    """The canvas size: both given, or one given and the other from the aspect ratio."""
    if target_width and target_height:
        return target_width, target_height
    if target_width:
        return target_width, max(1, round(height * target_width / width))
    if target_height:
        return max(1, round(width * target_height / height)), target_height
    return width, height


def fit_into(rgb: np.ndarray, alpha: np.ndarray, canvas_width: int, canvas_height: int
             ) -> tuple[np.ndarray, np.ndarray]:
    """Scale (up or down, aspect kept) to fit the canvas and centre it; the rest is transparent."""
    height, width = alpha.shape
    scale = min(canvas_width / width, canvas_height / height)
    new_width = min(canvas_width, max(1, round(width * scale)))
    new_height = min(canvas_height, max(1, round(height * scale)))
    if (new_width, new_height) != (width, height):
        method = Image.Resampling.LANCZOS
        rgb = np.asarray(Image.fromarray(rgb).resize((new_width, new_height), method))
        alpha = np.asarray(Image.fromarray(alpha).resize((new_width, new_height), method))
    out_rgb = np.zeros((canvas_height, canvas_width, 3), np.uint8)
    out_alpha = np.zeros((canvas_height, canvas_width), np.uint8)
    x = (canvas_width - new_width) // 2
    y = (canvas_height - new_height) // 2
    out_rgb[y:y + new_height, x:x + new_width] = rgb
    out_alpha[y:y + new_height, x:x + new_width] = alpha
    return out_rgb, out_alpha
