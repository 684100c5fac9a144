"""Touch-up strokes over a kept matte (``alphacut.touchup``): what they keep and erase, how their
borders meet the photo's edges, and what is kept of a result."""

from __future__ import annotations

import io

import numpy as np
import pytest
from alphacut.errors import InvalidOption
from alphacut.options import CutoutOptions, SubjectType
from alphacut.touchup import KeptMatte, apply_strokes, new_result_id
from PIL import Image


def png(picture: Image.Image, kind: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, kind)
    return buffer.getvalue()


def dark_square_on_white() -> np.ndarray:
    rgb = np.full((200, 200, 3), 240, np.uint8)
    rgb[50:150, 50:150] = 30
    return rgb


def test_a_keep_strokes_border_short_of_the_subjects_edge_is_carried_to_that_edge_and_no_further():
    strokes = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    strokes.paste((255, 255, 255, 255), (56, 56, 146, 140))  # 4 px short of the square's right edge
    alpha = apply_strokes(np.zeros((200, 200), np.float32), dark_square_on_white(), png(strokes))
    assert (alpha[60:140, 56:146] == 1.0).all()
    assert (alpha[100, 146:150] >= 0.9).all()  # the gap to the edge: the same dark region
    assert (alpha[100, 150:170] <= 0.02).all()  # past the edge: the white, left to the model's 0


def test_transparent_pixels_leave_the_matte_and_black_ones_erase_at_any_stroke_size():
    matte = np.full((200, 200), 0.6, np.float32)
    strokes = Image.new("RGBA", (50, 50), (0, 0, 0, 0))  # a quarter of the photo's size: scaled
    strokes.paste((0, 0, 0, 255), (0, 0, 10, 10))
    alpha = apply_strokes(matte, dark_square_on_white(), png(strokes))
    assert (alpha[:40, :40] == 0.0).all() and np.allclose(alpha[100:, 100:], 0.6)


def test_strokes_that_are_no_png_are_a_400_naming_refine():
    with pytest.raises(InvalidOption) as refused:
        apply_strokes(
            np.zeros((20, 20), np.float32),
            np.zeros((20, 20, 3), np.uint8),
            png(Image.new("RGB", (20, 20)), "JPEG"),
        )
    assert refused.value.field == "refine"


def test_strokes_claiming_more_pixels_than_a_photo_may_have_are_a_400_before_they_are_decoded():
    bomb = png(Image.new("1", (20000, 20000)))  # a few kilobytes, 400 million pixels
    assert len(bomb) < 100_000
    with pytest.raises(InvalidOption) as refused:
        apply_strokes(np.zeros((20, 20), np.float32), np.zeros((20, 20, 3), np.uint8), bomb)
    assert refused.value.field == "refine" and refused.value.limit == 4096 * 4096


def test_a_kept_matte_comes_back_as_it_was_kept_and_a_result_id_is_checked():
    alpha = (np.arange(48 * 64) % 256).astype(np.uint8).reshape(48, 64)
    kept = KeptMatte(b"the photo", alpha, SubjectType.STAMP, None)
    again = KeptMatte.from_bytes(kept.to_bytes())
    assert again.photo == b"the photo" and (again.alpha == alpha).all() and again.type is SubjectType.STAMP
    assert CutoutOptions(result_id=new_result_id()).result_id is not None
    with pytest.raises(InvalidOption) as refused:
        CutoutOptions.from_mapping({"result_id": "../tasks/someone-else"})
    assert refused.value.field == "result_id"
