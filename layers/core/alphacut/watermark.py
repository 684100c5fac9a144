"""The mark on a test key's results: "ALPHACUT TEST" in bold rows across the whole picture, over the
subject as well as the background, whose pixels are destroyed, not blended: the colours and the alpha
under the text are replaced by noise. A result made before the store paid shows an integration
working and is of no use in a shop's window: nothing of the pixels under the mark survives to be
inverted, and thresholding the alpha does not give the mask back (docs/security.md, "Test keys").

Where the rows lie and the noise under them are the account's own (drawn from its id), the same on
every call: marks that moved with each call were taken off by a per-pixel mode over a few results of
one photo (the unmarked pixels agree from call to call, the noise does not), while one account's
results of a photo all lose the same pixels. Another account draws another mark.

One mark is drawn per result and laid on everything it delivers (its picture, its mask, a costume's
class map), so no two outputs of one call fill each other's holes.

Usage::

    mark = Watermark.drawn(width, height, account)  # the account's rows and noise
    rgb, alpha = mark.on_picture(rgb, alpha)      # H x W x 3 and H x W uint8, new arrays
    mask = mark.on_mask(alpha)                    # the alpha alone (output=mask)
    ids[mark.where] = 0                           # a class map: the text cut out of its labels
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

TEXT = "ALPHACUT TEST"


def _rows(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """Where the text lies: a boolean H x W, bold text in rows across the whole picture, the rows
    shifted by a random offset (a quarter or more of the picture is covered)."""
    size = max(10, min(width, height) // 9)
    font = ImageFont.load_default(size=size)
    stroke = max(1, size // 9)
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    left, top, right, bottom = draw.textbbox((0, 0), TEXT, font=font, stroke_width=stroke)
    step_x, step_y = int(right - left) + size // 2, int((bottom - top) * 1.6)
    shift_x, shift_y = int(rng.integers(0, step_x)), int(rng.integers(0, step_y))
    for row, y in enumerate(range(shift_y - step_y, height + step_y, step_y)):
        for x in range(shift_x - step_x - (row % 2) * step_x // 2, width + step_x, step_x):
            draw.text((x, y), TEXT, fill=255, font=font, stroke_width=stroke, stroke_fill=255)
    return np.asarray(canvas) > 127


@dataclass(frozen=True)
class Watermark:
    """One result's mark: where it lies and the noise that replaces what is under it."""

    where: np.ndarray  # H x W bool
    rng: np.random.Generator

    @classmethod
    def drawn(cls, width: int, height: int, account: str) -> Watermark:
        seed = int.from_bytes(hashlib.sha256(f"alphacut-test-mark:{account}".encode()).digest()[:8], "big")
        rng = np.random.default_rng(seed)
        return cls(_rows(width, height, rng), rng)

    def on_picture(self, rgb: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The colours and the alpha with noise in place of every marked pixel."""
        count = int(self.where.sum())
        marked_rgb, marked_alpha = rgb.copy(), alpha.copy()
        marked_rgb[self.where] = self.rng.integers(0, 256, (count, 3), dtype=np.uint8)
        marked_alpha[self.where] = self.rng.integers(0, 256, count, dtype=np.uint8)
        return marked_rgb, marked_alpha

    def on_mask(self, alpha: np.ndarray) -> np.ndarray:
        marked = alpha.copy()
        marked[self.where] = self.rng.integers(0, 256, int(self.where.sum()), dtype=np.uint8)
        return marked
