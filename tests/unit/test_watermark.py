"""A test key's mark is laid in the subject's own frame: the same photo moved, scaled or mirrored
on its canvas loses the same pixels of its subject, so results of one photo padded at several
offsets (the attack that took a picture-fixed mark off with eight) give nothing more back."""

from __future__ import annotations

import numpy as np
from alphacut.watermark import Watermark
from PIL import Image

ACCOUNT = "k-mark-frame"


def subject(width: int, height: int, at: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """An alpha with a filled ellipse of ``size`` whose box starts at ``at``."""
    alpha = Image.new("L", (width, height), 0)
    from PIL import ImageDraw

    ImageDraw.Draw(alpha).ellipse((at[0], at[1], at[0] + size[0] - 1, at[1] + size[1] - 1), fill=255)
    return np.asarray(alpha)


def in_frame(alpha: np.ndarray, at: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """The mark's pixels inside the subject's box."""
    where = Watermark.on_subject(alpha, ACCOUNT).where
    return where[at[1] : at[1] + size[1], at[0] : at[0] + size[0]]


def test_a_subject_moved_on_its_canvas_loses_the_same_pixels():
    size = (220, 300)
    marks = [
        in_frame(subject(600, 400, at, size), at, size) for at in [(0, 0), (37, 11), (301, 90), (150, 53)]
    ]
    assert 0.2 < marks[0].mean() < 0.8  # a good part of the subject, not all of it
    assert all(np.array_equal(marks[0], other) for other in marks[1:])


def test_a_mirrored_subject_loses_the_mirrored_pixels_and_another_account_other_ones():
    size, at = (220, 300), (40, 30)
    alpha = subject(600, 400, at, size)
    mark = in_frame(alpha, at, size)
    assert np.array_equal(mark, mark[:, ::-1]) and np.array_equal(mark, mark[::-1, :])
    elsewhere = Watermark.on_subject(alpha, "k-another").where[
        at[1] : at[1] + size[1], at[0] : at[0] + size[0]
    ]
    assert (mark != elsewhere).mean() > 0.05


def test_a_scaled_subject_loses_nearly_the_same_share_of_the_same_places():
    small, large = (200, 280), (300, 420)
    mark_small = in_frame(subject(500, 500, (10, 10), small), (10, 10), small)
    mark_large = in_frame(subject(500, 500, (60, 40), large), (60, 40), large)
    scaled = (
        np.asarray(Image.fromarray(mark_large.astype(np.uint8) * 255).resize(small, Image.Resampling.NEAREST))
        > 127
    )
    assert (scaled & mark_small).sum() / (scaled | mark_small).sum() > 0.6  # the text's pixels drift a little


def test_with_no_subject_the_whole_picture_is_marked():
    where = Watermark.on_subject(np.zeros((200, 300), np.uint8), ACCOUNT).where
    assert 0.2 < where.mean() < 0.8
