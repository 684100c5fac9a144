"""The mark on a test key's results: "TEST" written across the picture in rows, half opaque, so a
result made before the store paid is usable to build an integration and plainly not for a shop's
window. Drawn on the colours and on the alpha (a transparent corner shows it too, and a mask);
cut out of a costume's class map.

Usage::

    rgb, alpha = watermarked(rgb, alpha)        # H x W x 3 and H x W uint8, new arrays
    ids[watermark_mask(width, height)] = 0       # a class map: the text cut out of its labels
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

TEXT = "ALPHACUT TEST"
INK = (128, 128, 128)
STRENGTH = 0.5  # how much of the mark shows over the picture


def _mark(width: int, height: int) -> np.ndarray:
    """Where the text lies: an H x W mask in 0..1, the text in rows across the whole picture."""
    size = max(10, min(width, height) // 12)
    font = ImageFont.load_default(size=size)
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    left, top, right, bottom = draw.textbbox((0, 0), TEXT, font=font)
    step_x, step_y = int(right - left) + size, int(bottom - top) * 3
    for row, y in enumerate(range(0, height + step_y, step_y)):
        for x in range(-(row % 2) * step_x // 2, width + step_x, step_x):
            draw.text((x, y), TEXT, fill=255, font=font)
    return np.asarray(canvas, dtype=np.float32) / 255.0


def watermark_mask(width: int, height: int) -> np.ndarray:
    """Where the mark lies, as a boolean H x W: for pictures whose values are labels, not colours
    (a costume's class map), which the mark cuts out."""
    return _mark(width, height) > 0.25


def watermarked(rgb: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mark = _mark(alpha.shape[1], alpha.shape[0]) * STRENGTH
    ink = np.asarray(INK, np.float32)
    marked_rgb = rgb.astype(np.float32) * (1 - mark[..., None]) + ink * mark[..., None]
    marked_alpha = np.maximum(alpha.astype(np.float32), mark * 255)
    return marked_rgb.round().astype(np.uint8), marked_alpha.round().astype(np.uint8)
