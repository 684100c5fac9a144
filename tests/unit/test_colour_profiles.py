"""Colour managed at decode: a photo with an embedded profile other than sRGB (Adobe RGB here,
written from its primaries by ``alphacut_dev.icc``) is converted to sRGB as ImageCms converts it,
its alpha kept; sRGB and untagged photos are left as they are, and a profile that cannot be read
is ignored, never an error."""

from __future__ import annotations

import io

import numpy as np
from alphacut.codec import decode_image
from alphacut_dev.icc import ADOBE_RGB
from PIL import Image, ImageCms

SRGB = ImageCms.createProfile("sRGB")


def _picture(size: tuple[int, int] = (96, 64)) -> Image.Image:
    """Saturated and grey patches: where Adobe RGB and sRGB differ most, and least."""
    pixels = np.zeros((size[1], size[0], 3), np.uint8)
    pixels[:, : size[0] // 3] = (200, 30, 30)
    pixels[:, size[0] // 3 : 2 * size[0] // 3] = (30, 180, 60)
    pixels[:, 2 * size[0] // 3 :] = np.linspace(0, 255, size[1], dtype=np.uint8)[:, None, None]
    return Image.fromarray(pixels)


def _saved(image: Image.Image, fmt: str, icc: bytes | None) -> bytes:
    buffer = io.BytesIO()
    extra = {"icc_profile": icc} if icc else {}
    image.save(buffer, fmt, **({"quality": 95} if fmt == "JPEG" else {}), **extra)
    return buffer.getvalue()


def _reference(data: bytes) -> np.ndarray:
    """What ImageCms makes of the file's own pixels in sRGB."""
    opened = Image.open(io.BytesIO(data))
    source = ImageCms.ImageCmsProfile(io.BytesIO(opened.info["icc_profile"]))
    return np.asarray(ImageCms.profileToProfile(opened.convert("RGB"), source, SRGB, outputMode="RGB"))


def test_an_adobe_rgb_jpeg_decodes_to_the_srgb_imagecms_gives():
    data = _saved(_picture(), "JPEG", ADOBE_RGB)
    decoded = decode_image(data).rgb.astype(int)
    assert np.abs(decoded - _reference(data)).max() <= 3
    as_written = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)
    assert np.abs(decoded - as_written).max() > 20  # the numbers were not read as sRGB


def test_an_adobe_rgb_png_keeps_its_alpha_while_its_colours_are_converted():
    picture = _picture().convert("RGBA")
    alpha = np.zeros((64, 96), np.uint8)
    alpha[10:50, 20:80] = 255
    alpha[10:50, 20:30] = 128
    picture.putalpha(Image.fromarray(alpha))
    data = _saved(picture, "PNG", ADOBE_RGB)
    decoded = decode_image(data)
    assert np.array_equal(decoded.alpha, alpha)
    inside = alpha > 0
    assert np.abs(decoded.rgb.astype(int) - _reference(data))[inside].max() <= 3


def test_an_srgb_or_untagged_photo_is_left_as_it_is():
    picture = _picture()
    profile = ImageCms.ImageCmsProfile(SRGB).tobytes()
    for data in (_saved(picture, "PNG", profile), _saved(picture, "PNG", None)):
        assert np.array_equal(decode_image(data).rgb, np.asarray(picture))


def test_a_profile_that_cannot_be_read_is_ignored():
    data = _saved(_picture(), "PNG", b"not a colour profile at all" * 8)
    assert np.array_equal(decode_image(data).rgb, np.asarray(_picture()))
