import io
import struct
import zlib

import numpy as np
import pytest
from alphacut.codec import decode_image, encode_cutout, encode_mask, encode_png
from alphacut.errors import CorruptImage, ImageTooLarge, ImageTooSmall, UnsupportedImageFormat
from alphacut.options import ImageFormat
from alphacut.settings import ImageLimits
from PIL import Image

from tests.conftest import image_bytes


@pytest.mark.parametrize(
    "fmt,params",
    [
        ("JPEG", {"quality": 95}),
        ("PNG", {}),
        ("BMP", {}),
        ("WEBP", {"lossless": True}),
        ("TIFF", {}),
        ("GIF", {}),
    ],
)
def test_decodes_every_supported_format(fmt, params, gradient_rgb):
    data = image_bytes(Image.fromarray(gradient_rgb), fmt, **params)
    image = decode_image(data)
    assert image.rgb.shape == (120, 160, 3) and image.rgb.dtype == np.uint8
    assert image.format == fmt.lower().replace("jpeg", "jpeg")
    tolerance = {"JPEG": 12, "GIF": 40}.get(fmt, 0)
    assert np.abs(image.rgb.astype(int) - gradient_rgb.astype(int)).mean() <= max(tolerance, 0.5)


def test_gif_gives_the_first_frame():
    frames = [Image.new("RGB", (64, 64), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    data = image_bytes(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    rgb = decode_image(data).rgb
    assert tuple(rgb[32, 32]) == (255, 0, 0)


@pytest.mark.parametrize(
    "orientation,expected_shape", [(1, (60, 100)), (3, (60, 100)), (6, (100, 60)), (8, (100, 60))]
)
def test_exif_orientation_is_applied(orientation, expected_shape):
    pixels = np.zeros((60, 100, 3), np.uint8)
    pixels[:, :10] = 255  # a white band on the left edge
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = image_bytes(Image.fromarray(pixels), "JPEG", exif=exif.tobytes(), quality=95)
    rgb = decode_image(data).rgb
    assert rgb.shape[:2] == expected_shape
    # where the band went tells the rotation: 6 = rotate 90 cw -> band on top
    band = {1: rgb[:, :10], 3: rgb[:, -10:], 6: rgb[:10, :], 8: rgb[-10:, :]}[orientation]
    assert band.mean() > 200


def test_cmyk_jpeg_becomes_rgb():
    cmyk = Image.new("CMYK", (64, 64), (255, 0, 0, 0))  # pure cyan ink
    rgb = decode_image(image_bytes(cmyk, "JPEG", quality=95)).rgb
    r, g, b = rgb[32, 32].astype(int)
    assert r < 40 and g > 200 and b > 200


def test_sixteen_bit_grey_png_is_scaled_not_clipped():
    values = np.array([[0, 32768, 65535] * 20] * 60, dtype=np.uint16)
    data = image_bytes(Image.fromarray(values), "PNG")
    rgb = decode_image(data).rgb
    assert rgb[0, 0, 0] == 0 and rgb[0, 1, 0] == 128 and rgb[0, 2, 0] == 255


def test_palette_with_transparency_keeps_alpha():
    image = Image.new("P", (64, 64), 0)
    image.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    image.paste(1, (0, 0, 32, 64))
    data = image_bytes(image, "PNG", transparency=1)
    decoded = decode_image(data)
    assert decoded.alpha is not None
    assert decoded.alpha[10, 10] == 0 and decoded.alpha[10, 50] == 255
    assert tuple(decoded.rgb[10, 50]) == (255, 0, 0)


@pytest.mark.parametrize("mode,value", [("L", 77), ("LA", (77, 128)), ("1", 1)])
def test_grey_modes(mode, value):
    decoded = decode_image(image_bytes(Image.new(mode, (64, 64), value), "PNG"))
    expected = 255 if mode == "1" else 77
    assert tuple(decoded.rgb[5, 5]) == (expected,) * 3
    assert (decoded.alpha is not None) == (mode == "LA")
    if mode == "LA":
        assert decoded.alpha[5, 5] == 128


def test_opaque_rgba_has_no_alpha():
    decoded = decode_image(image_bytes(Image.new("RGBA", (64, 64), (1, 2, 3, 255)), "PNG"))
    assert decoded.alpha is None


def test_too_many_bytes():
    with pytest.raises(ImageTooLarge) as error:
        decode_image(b"\xff" * 2000, ImageLimits(max_bytes=1000))
    assert error.value.field == "image" and error.value.limit == 1000


def test_too_large_sides_and_too_small():
    with pytest.raises(ImageTooLarge) as error:
        decode_image(image_bytes(Image.new("L", (5000, 60)), "PNG"))
    assert "4096" in str(error.value)
    with pytest.raises(ImageTooSmall) as error:
        decode_image(image_bytes(Image.new("L", (49, 400)), "PNG"))
    assert "50" in str(error.value)


def _png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims a huge size (a decompression bomb's calling card)."""
    raw = b"".join(b"\x00" + b"\x00" * 8 for _ in range(8))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("width,height", [(30000, 30000), (4000, 4200), (100000, 100000)])
def test_decompression_bomb_is_refused_before_decoding(width, height):
    with pytest.raises(ImageTooLarge):
        decode_image(_png_claiming(width, height))


def test_truncated_jpeg_is_corrupt(gradient_rgb):
    data = image_bytes(Image.fromarray(gradient_rgb), "JPEG")
    with pytest.raises(CorruptImage) as error:
        decode_image(data[: len(data) // 2])
    assert error.value.field == "image"


@pytest.mark.parametrize(
    "data", [b"hello, this is text, not a picture" * 10, bytes(range(256)) * 8, b"%PDF-1.4\n"]
)
def test_non_image_data_is_unsupported(data):
    with pytest.raises(UnsupportedImageFormat) as error:
        decode_image(data)
    assert "JPEG, PNG" in str(error.value)


def test_empty_is_unsupported():
    with pytest.raises(UnsupportedImageFormat, match="empty"):
        decode_image(b"")


def test_unsupported_format_is_refused_even_if_pillow_reads_it():
    data = image_bytes(Image.new("RGB", (64, 64)), "PPM")
    with pytest.raises(UnsupportedImageFormat):
        decode_image(data)


def _alpha_ramp():
    rgb = np.zeros((60, 80, 3), np.uint8)
    rgb[..., 0] = 200
    alpha = np.tile(np.linspace(0, 255, 80).astype(np.uint8), (60, 1))
    return rgb, alpha


def test_png_and_webp_keep_alpha():
    rgb, alpha = _alpha_ramp()
    png = Image.open(io.BytesIO(encode_cutout(rgb, alpha, ImageFormat.PNG)))
    assert png.format == "PNG" and png.mode == "RGBA"
    assert np.array_equal(np.asarray(png)[..., 3], alpha)
    webp = Image.open(io.BytesIO(encode_cutout(rgb, alpha, ImageFormat.WEBP)))
    assert webp.format == "WEBP" and webp.mode == "RGBA"
    assert np.abs(np.asarray(webp)[..., 3].astype(int) - alpha).max() <= 2


def test_jpeg_is_composed_on_the_background():
    rgb, alpha = _alpha_ramp()
    jpeg = Image.open(io.BytesIO(encode_cutout(rgb, alpha, ImageFormat.JPG)))
    assert jpeg.format == "JPEG" and jpeg.mode == "RGB"
    pixels = np.asarray(jpeg).astype(int)
    assert pixels[30, 0].min() > 240  # alpha 0: white
    assert abs(pixels[30, 79, 0] - 200) < 8 and pixels[30, 79, 1] < 10  # alpha 255: the subject
    green = np.asarray(Image.open(io.BytesIO(encode_cutout(rgb, alpha, ImageFormat.PNG, (0, 255, 0)))))
    assert green.shape[2] == 3 and tuple(green[30, 0]) == (0, 255, 0)


def test_mask_is_one_channel_png():
    _, alpha = _alpha_ramp()
    mask = Image.open(io.BytesIO(encode_mask(alpha)))
    assert mask.format == "PNG" and mask.mode == "L"
    assert np.array_equal(np.asarray(mask), alpha)


@pytest.mark.parametrize("shape", [(1, 1), (1, 9, 3), (5, 1, 4), (37, 53), (64, 48, 3), (700, 900, 4)])
def test_png_writer_round_trips_every_channel_count(shape):
    # (700, 900, 4) is 2.5 MB of rows: deflated as two halves on two threads, then joined
    pixels = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    pixels[: shape[0] // 2] //= 16  # some runs that deflate finds, as in real cutouts
    data = encode_png(pixels)
    assert zlib.crc32(data[12:29]) == struct.unpack(">I", data[29:33])[0]  # IHDR's CRC
    idat_length = struct.unpack(">I", data[33:37])[0]
    assert data[37:41] == b"IDAT"
    rows = zlib.decompress(data[41 : 41 + idat_length])  # checks the joined stream's adler32
    assert len(rows) == shape[0] * (1 + pixels[0].size)
    decoded = Image.open(io.BytesIO(data))
    assert decoded.mode == {1: "L", 3: "RGB", 4: "RGBA"}[1 if len(shape) == 2 else shape[2]]
    assert np.array_equal(np.asarray(decoded), pixels)
