"""The mark on a test key's results: "ALPHACUT TEST" in bold rows across the whole picture, over the
subject as well as the background, whose pixels are destroyed, not blended: the colours and the alpha
under the text are replaced by noise. A result made before the store paid shows an integration
working and is of no use in a shop's window: nothing of the pixels under the mark survives to be
inverted, and thresholding the alpha does not give the mask back (docs/security.md, "Test keys").

Where the rows lie and the noise under them are the account's own (drawn from its id), the same on
every call: marks that moved with each call were taken off by a per-pixel mode over a few results of
one photo (the unmarked pixels agree from call to call, the noise does not). The rows are laid in
the subject's own frame, not the picture's: they start at the subject's box, their size follows
the box's, and they are mirrored about its centre both ways. A mark fixed to the picture came off
the photo padded at eight offsets (the subject moved under the mark: 8 results, IoU 0.994, 43 dB);
anchored to the subject, a shifted, scaled or mirrored photo loses the same pixels of its subject.
Another account draws another mark.

One mark is drawn per result and laid on everything it delivers (its picture, its mask, a costume's
class map), so no two outputs of one call fill each other's holes.

Usage::

    mark = Watermark.drawn(width, height, account, subject=(x0, y0, x1, y1))  # laid on the subject
    rgb, alpha = mark.on_picture(rgb, alpha)      # H x W x 3 and H x W uint8, new arrays
    mask = mark.on_mask(alpha)                    # the alpha alone (output=mask)
    ids[mark.where] = 0                           # a class map: the text cut out of its labels
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from alphacut.masks import dilate_disk, largest_part

TEXT = "ALPHACUT TEST"


def _rows(width: int, height: int, rng: np.random.Generator, box: tuple[int, int, int, int]) -> np.ndarray:
    """Where the text lies: a boolean H x W, bold text in rows across the whole picture, sized by
    and anchored at the subject's ``box`` (left, top, right, bottom), shifted by the account's
    fraction of a step and mirrored about the box's centre both ways."""
    left_edge, top_edge, right_edge, bottom_edge = box
    size = max(10, min(right_edge - left_edge, bottom_edge - top_edge) // 9)
    font = ImageFont.load_default(size=size)
    stroke = max(1, size // 5)
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    left, top, right, bottom = draw.textbbox((0, 0), TEXT, font=font, stroke_width=stroke)
    step_x, step_y = int(right - left) + size // 2, int((bottom - top) * 3.2)
    start_x = left_edge + int(rng.random() * step_x)
    start_y = top_edge + int(rng.random() * step_y)
    first_row = -((start_y + step_y) // step_y)
    for row in range(first_row, (height - start_y) // step_y + 2):
        y = start_y + row * step_y
        offset = start_x - (row % 2) * step_x // 2
        for x in range(offset - ((offset + step_x) // step_x) * step_x, width + step_x, step_x):
            draw.text((x, y), TEXT, fill=255, font=font, stroke_width=stroke, stroke_fill=255)
    where = np.asarray(canvas) > 127
    return _mirrored(_mirrored(where, left_edge + right_edge - 1, 1), top_edge + bottom_edge - 1, 0)


def _mirrored(where: np.ndarray, twice_centre: int, axis: int) -> np.ndarray:
    """``where`` with its mirror about ``twice_centre / 2`` along ``axis`` laid over it."""
    length = where.shape[axis]
    source = twice_centre - np.arange(length)  # the index each one mirrors
    inside = (source >= 0) & (source < length)
    mirror = np.zeros_like(where)
    if axis == 1:
        mirror[:, inside] = where[:, source[inside]]
    else:
        mirror[inside, :] = where[source[inside], :]
    mirror |= where
    return mirror


@dataclass(frozen=True)
class Watermark:
    """One result's mark: where it lies and the noise that replaces what is under it."""

    where: np.ndarray  # H x W bool
    rng: np.random.Generator

    @classmethod
    def drawn(
        cls, width: int, height: int, account: str, subject: tuple[int, int, int, int] | None = None
    ) -> Watermark:
        """The account's mark on a ``width`` x ``height`` picture, laid on the ``subject``'s box
        (left, top, right, bottom; None: the whole picture)."""
        seed = int.from_bytes(hashlib.sha256(f"alphacut-test-mark:{account}".encode()).digest()[:8], "big")
        rng = np.random.default_rng(seed)
        return cls(_rows(width, height, rng, subject or (0, 0, width, height)), rng)

    @classmethod
    def on_subject(cls, alpha: np.ndarray, account: str) -> Watermark:
        """The account's mark laid on the subject ``alpha`` (H x W uint8) shows: on a square about
        the centre of mass of its largest part, as wide as the root of that part's area (weighed
        over every pixel of it, so a matte a pixel different moves them by a fraction of one; a
        box's edges jump whole pixels; an object pasted beside the subject is another part and
        moves nothing); the whole picture where there is no subject."""
        height, width = alpha.shape
        held = alpha >= 128
        # parts told apart with a gap of a few pixels bridged: a thin link the matte keeps in one
        # call and breaks in the next must not split the subject (it moved the anchor)
        bridge = max(4, round(0.02 * max(height, width)))
        main = largest_part(dilate_disk(held, bridge))  # the part and the soft edge around it
        return cls.centred_on(np.where(main, alpha, 0), account)

    @classmethod
    def centred_on(cls, weight: np.ndarray, account: str) -> Watermark:
        """The account's mark on a square about ``weight``'s centre of mass (H x W, alpha units),
        as wide as the root of its area; the whole picture where it weighs next to nothing."""
        height, width = weight.shape
        weight = weight.astype(np.float64)
        total = float(weight.sum())
        if total < 255.0 * 16:
            return cls.drawn(width, height, account)
        centre_x = float((weight.sum(axis=0) * np.arange(width)).sum()) / total
        centre_y = float((weight.sum(axis=1) * np.arange(height)).sum()) / total
        half = max(8.0, (total / 255.0) ** 0.5 / 2)
        left, top = round(centre_x - half), round(centre_y - half)
        return cls.drawn(width, height, account, (left, top, left + round(2 * half), top + round(2 * half)))

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
