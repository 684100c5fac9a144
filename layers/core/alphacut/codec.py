"""Image I/O: bytes in, pixels out, and back.

``decode_image`` reads JPEG, PNG, BMP, WEBP, TIFF and GIF (first frame), applies EXIF orientation,
turns CMYK, 16-bit, palette, grey and grey+alpha into 8-bit RGB (+ alpha), and refuses what is too
large, too small, not an image or damaged with an error that says which. The size check reads only
the header, so a decompression bomb is refused before any pixel is decoded.

Usage::

    image = decode_image(data, ImageLimits())
    png = encode_cutout(image.rgb, alpha, ImageFormat.PNG)
    mask_png = encode_mask(alpha)
"""

from __future__ import annotations

import io
import os
import struct
import warnings
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageCms, ImageFile, ImageOps, UnidentifiedImageError

from alphacut.errors import (
    CorruptImage,
    ImageTooLarge,
    ImageTooSmall,
    ResolutionTooHigh,
    UnsupportedImageFormat,
)
from alphacut.options import ImageFormat
from alphacut.settings import ImageLimits

ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file is an error, never a grey half-image

# MPO is the multi-picture JPEG that many phone cameras write.
READABLE_FORMATS = {
    "JPEG": "jpeg",
    "MPO": "jpeg",
    "PNG": "png",
    "BMP": "bmp",
    "WEBP": "webp",
    "TIFF": "tiff",
    "GIF": "gif",
}
_FORMAT_LIST = "JPEG, PNG, BMP, WEBP, TIFF, GIF"
_OPENERS = ["JPEG", "PNG", "BMP", "WEBP", "TIFF", "GIF"]  # the JPEG opener also yields MPO
PNG_COMPRESS_LEVEL = 3  # level 6 costs ~2x the time for ~15% smaller files
JPEG_QUALITY = 92
WEBP_QUALITY = 90


@dataclass
class DecodedImage:
    rgb: np.ndarray  # H x W x 3, uint8, upright
    alpha: np.ndarray | None  # H x W, uint8, when the input had transparency
    format: str  # jpeg, png, bmp, webp, tiff, gif
    source_size: tuple[int, int] | None = None  # width, height as sent, when ``downscale`` made this

    @property
    def original_size(self) -> tuple[int, int]:
        """Width and height of the image as sent (upright), before any downscale."""
        return self.source_size or (self.width, self.height)

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])


def _check_dimensions(width: int, height: int, limits: ImageLimits) -> None:
    if width > limits.max_side or height > limits.max_side:
        raise ResolutionTooHigh(
            f"is {width}x{height} px; at most {limits.max_side}x{limits.max_side} px is accepted",
            field="image",
            limit=[limits.max_side, limits.max_side],
        )
    if width * height > limits.max_pixels:
        raise ResolutionTooHigh(
            f"has {width * height} pixels; at most {limits.max_pixels} are accepted",
            field="image",
            limit=limits.max_pixels,
        )
    if min(width, height) < limits.min_side:
        raise ImageTooSmall(
            f"is {width}x{height} px; each side must be at least {limits.min_side} px",
            field="image",
            limit=limits.min_side,
        )


_SRGB = ImageCms.createProfile("sRGB")


def _sixteen_bit_to_u8(array: np.ndarray) -> np.ndarray:
    # 16-bit samples span 0..65535: scale, do not clip (Pillow's convert("L") clips at 255).
    return ((array.astype(np.uint32) + 128) // 257).clip(0, 255).astype(np.uint8)


_MANAGED_MODES = ("RGB", "RGBA", "L", "LA", "P", "PA")


def _in_srgb(image: Image.Image) -> Image.Image:
    """An image whose embedded colour profile is not sRGB (Adobe RGB, Display P3, a grey one),
    converted to sRGB with its alpha kept: the model and the compose work in sRGB, and results are
    sRGB (untagged, as the web reads an untagged image). CMYK is converted in ``_to_rgb_alpha``; a
    profile that cannot be read or does not fit the image leaves it as it is."""
    icc = image.info.get("icc_profile")
    if not icc or image.mode not in _MANAGED_MODES:
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if "srgb" in ImageCms.getProfileDescription(source).lower().replace(" ", ""):
            return image
        see_through = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
        alpha = image.convert("RGBA").getchannel("A") if see_through else None
        base = image if image.mode in ("RGB", "L") else image.convert("L" if image.mode == "LA" else "RGB")
        converted = ImageCms.profileToProfile(base, source, _SRGB, outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, TypeError, ValueError):
        return image
    if converted is None:
        return image
    if alpha is not None and alpha.getextrema() != (255, 255):
        converted.putalpha(alpha)
    return converted


def _to_rgb_alpha(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        array = np.asarray(image)
        grey = (
            _sixteen_bit_to_u8(array) if array.max(initial=0) > 255 or mode != "I" else array.astype(np.uint8)
        )
        return np.repeat(grey[:, :, None], 3, axis=2), None
    if mode == "F":
        array = np.asarray(image, dtype=np.float32)
        scale = 255.0 if array.max(initial=0) <= 1.0 else 1.0
        grey = np.clip(array * scale + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2), None
    if mode == "CMYK":
        icc = image.info.get("icc_profile")
        if icc:
            try:
                source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
                converted = ImageCms.profileToProfile(image, source, _SRGB, outputMode="RGB")
                image = converted if converted is not None else image.convert("RGB")
            except (ImageCms.PyCMSError, OSError):
                image = image.convert("RGB")
        else:
            image = image.convert("RGB")
        return np.asarray(image), None
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        mode in ("P", "L", "RGB") and "transparency" in image.info
    )
    if has_alpha:
        rgba = np.asarray(image.convert("RGBA"))
        alpha = rgba[:, :, 3]
        opaque = alpha.min() == 255
        return np.ascontiguousarray(rgba[:, :, :3]), (None if opaque else np.ascontiguousarray(alpha))
    return np.asarray(image.convert("RGB") if mode != "RGB" else image), None


def decode_image(data: bytes, limits: ImageLimits | None = None) -> DecodedImage:
    """Decode ``data`` into an upright 8-bit RGB array and its alpha, within ``limits``."""
    limits = limits or ImageLimits()
    if not data:
        raise UnsupportedImageFormat("is empty", field="image")
    if len(data) > limits.max_bytes:
        raise ImageTooLarge(
            f"is {len(data)} bytes; at most {limits.max_bytes} bytes are accepted",
            field="image",
            limit=limits.max_bytes,
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            opened: Image.Image = Image.open(io.BytesIO(data), formats=_OPENERS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ResolutionTooHigh(
            "declares more pixels than any accepted image", field="image", limit=limits.max_pixels
        ) from None
    except UnidentifiedImageError:
        raise UnsupportedImageFormat(
            f"is not an image in a supported format ({_FORMAT_LIST})", field="image"
        ) from None
    except (OSError, SyntaxError, ValueError) as error:
        raise CorruptImage(f"cannot be read: {error}", field="image") from None
    image = opened
    fmt = READABLE_FORMATS[image.format or ""]
    if limits.formats is not None and fmt not in limits.formats:
        raise UnsupportedImageFormat(
            f"is {fmt}; this route accepts {', '.join(sorted(limits.formats))}", field="image"
        )
    _check_dimensions(*image.size, limits)
    try:
        image.seek(0)  # GIF/TIFF/MPO: the first frame
        image.load()
        image = ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise CorruptImage(
            f"is damaged or truncated and cannot be decoded ({error})", field="image"
        ) from None
    rgb, alpha = _to_rgb_alpha(_in_srgb(image))
    return DecodedImage(rgb=np.ascontiguousarray(rgb, dtype=np.uint8), alpha=alpha, format=fmt)


def compose_on_color(rgb: np.ndarray, alpha: np.ndarray, color: tuple[int, ...] | np.ndarray) -> np.ndarray:
    """Alpha-blend an RGB cutout onto a solid colour (or an H x W x 3 picture): opaque uint8 RGB."""
    if isinstance(color, tuple):
        # a colour: blend only the box where the cutout is; the rest is the colour itself (a
        # marketplace canvas is mostly empty: half the time of blending all of it)
        height, width = alpha.shape
        out = np.array(Image.new("RGB", (width, height), tuple(color[:3])))  # Pillow fills in C
        rows = np.flatnonzero(alpha.any(axis=1))
        if rows.size:
            cols = np.flatnonzero(alpha.any(axis=0))
            box = np.s_[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
            out[box] = _blend(rgb[box], alpha[box], np.asarray(color[:3], np.uint8))
        return out
    return _blend(rgb, alpha, np.asarray(color, dtype=np.uint8))


def _blend(rgb: np.ndarray, alpha: np.ndarray, background: np.ndarray) -> np.ndarray:
    """rgb * a + background * (1 - a), rounded, in 16-bit integers (three times float32's speed):
    x / 255 rounded is (x + 128 + ((x + 128) >> 8)) >> 8 for every x up to 255 * 255."""
    a = alpha.astype(np.uint16)[:, :, None]
    mixed = rgb.astype(np.uint16) * a
    mixed += background.astype(np.uint16) * (255 - a)
    mixed += 128
    mixed += mixed >> 8
    mixed >>= 8
    blended: np.ndarray = mixed.astype(np.uint8)
    return blended


def over_color(
    rgb: np.ndarray, alpha: np.ndarray, color: tuple[int, ...], under: float | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The cutout over a layer of one colour whose alpha is ``under`` (0..1: one number for a
    see-through background colour, or H x W for a shadow): the two layers' colours and alpha merged."""
    a = alpha.astype(np.float32)[:, :, None] * (1.0 / 255.0)
    below = under[:, :, None] if isinstance(under, np.ndarray) else under
    out_alpha = a + below * (1.0 - a)
    mixed = rgb.astype(np.float32) * a + np.asarray(color[:3], np.float32) * below * (1.0 - a)
    colours = mixed / np.maximum(out_alpha, 1e-6)
    return (np.clip(colours, 0, 255) + 0.5).astype(np.uint8), (out_alpha[:, :, 0] * 255.0 + 0.5).astype(
        np.uint8
    )


def cover(image: DecodedImage, width: int, height: int) -> np.ndarray:
    """A background picture scaled to cover ``width`` x ``height`` (aspect kept) and centred:
    H x W x 3 uint8. A transparent background picture shows white where it is see-through."""
    rgb = image.rgb if image.alpha is None else compose_on_color(image.rgb, image.alpha, (255, 255, 255))
    factor = max(width / image.width, height / image.height)
    scaled_w, scaled_h = max(width, round(image.width * factor)), max(height, round(image.height * factor))
    picture = Image.fromarray(rgb)
    if (scaled_w, scaled_h) != picture.size:
        picture = picture.resize((scaled_w, scaled_h), Image.Resampling.LANCZOS)
    left, top = (scaled_w - width) // 2, (scaled_h - height) // 2
    return np.asarray(picture.crop((left, top, left + width, top + height)))


def downscale(image: DecodedImage, width: int, height: int) -> DecodedImage:
    """The image at ``width`` x ``height`` (Lanczos), alpha included; as is when already that size."""
    if (width, height) == (image.width, image.height):
        return image
    rgb = np.asarray(Image.fromarray(image.rgb).resize((width, height), Image.Resampling.LANCZOS))
    alpha = None
    if image.alpha is not None:
        alpha = np.asarray(Image.fromarray(image.alpha).resize((width, height), Image.Resampling.LANCZOS))
    return DecodedImage(rgb, alpha, image.format, image.original_size)


# ---- PNG: written here rather than by Pillow, which takes twice as long --------------------------
_PNG_COLOUR_TYPES = {1: 0, 3: 2, 4: 6}  # channels -> PNG colour type (grey, RGB, RGBA), 8 bits each
_PARALLEL_DEFLATE_BYTES = 1 << 20  # below this one thread is as quick
_deflate_pools: dict[int, ThreadPoolExecutor] = {}  # per process: a forked child has no parent threads


def _deflate_pool() -> ThreadPoolExecutor:
    pool = _deflate_pools.get(os.getpid())
    if pool is None:
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="png-deflate")
        _deflate_pools[os.getpid()] = pool
    return pool


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


def _raw_deflate(data: memoryview, last: bool) -> bytes:
    compressor = zlib.compressobj(PNG_COMPRESS_LEVEL, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


def _zlib_stream(data: memoryview) -> bytes:
    """``zlib.compress(data)`` of a flat buffer, the two halves deflated at once (as pigz does).

    Each half is a raw deflate stream; the first ends on a byte boundary (sync flush) without a
    final block, so the two concatenate into one valid stream. The second half does not look back
    into the first (0.1 % larger). zlib releases the GIL, so the halves really run in parallel.
    """
    if len(data) < _PARALLEL_DEFLATE_BYTES:
        return zlib.compress(data, PNG_COMPRESS_LEVEL)
    middle = len(data) // 2
    first = _deflate_pool().submit(_raw_deflate, data[:middle], False)
    second = _raw_deflate(data[middle:], True)
    header = b"\x78\x5e"  # deflate, 32 KB window, levels 2..5; FCHECK makes it a multiple of 31
    return header + first.result() + second + struct.pack(">I", zlib.adler32(data))


def encode_png(pixels: np.ndarray) -> bytes:
    """An 8-bit PNG of H x W (grey), H x W x 3 (RGB) or H x W x 4 (RGBA) ``uint8`` pixels.

    Every row uses PNG's "Up" filter (difference to the row above): on cutouts (colour zeroed
    under alpha 0) it compresses as well as Pillow's per-row adaptive choice, is one numpy
    subtraction, and leaves the work to zlib, which runs on two threads for large images.
    """
    height, width = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    rows = np.ascontiguousarray(pixels, dtype=np.uint8).reshape(height, width * channels)
    filtered = np.empty((height, width * channels + 1), np.uint8)
    filtered[:, 0] = 2  # filter type Up; the first row's "above" is zeros, so it is the row itself
    filtered[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])
    header = struct.pack(">IIBBBBB", width, height, 8, _PNG_COLOUR_TYPES[channels], 0, 0, 0)
    idat = _zlib_stream(memoryview(filtered).cast("B"))
    return b"".join(
        [
            b"\x89PNG\r\n\x1a\n",
            _png_chunk(b"IHDR", header),
            _png_chunk(b"IDAT", idat),
            _png_chunk(b"IEND", b""),
        ]
    )


# the largest side each format can hold (Pillow's JPEG writer: 65,500; libwebp: 16,383)
FORMAT_MAX_SIDE = {ImageFormat.JPG: 65_500, ImageFormat.ZIP: 65_500, ImageFormat.WEBP: 16_383}


def _save(pixels: np.ndarray, fmt: ImageFormat) -> bytes:
    """H x W x 3 or 4 ``uint8`` pixels as PNG (``encode_png``), JPEG or WEBP (Pillow)."""
    if fmt is ImageFormat.PNG:
        return encode_png(pixels)
    image = Image.fromarray(pixels, "RGBA" if pixels.shape[2] == 4 else "RGB")
    buffer = io.BytesIO()
    if fmt is ImageFormat.JPG:
        image.save(buffer, "JPEG", quality=JPEG_QUALITY)
    else:
        image.save(buffer, "WEBP", quality=WEBP_QUALITY, alpha_quality=100, method=4)
    return buffer.getvalue()


def encode_cutout(
    rgb: np.ndarray,
    alpha: np.ndarray,
    fmt: ImageFormat,
    background: tuple[int, ...] | np.ndarray | None = None,
) -> bytes:
    """PNG/WEBP keep the alpha; with a background (always for JPEG) the cutout is composed on it: a
    colour, a see-through colour (RGBA: the result keeps some transparency) or an H x W x 3 picture.
    ZIP holds ``color.jpg`` (the colours) and ``alpha.png`` (the alpha) of the result."""
    if isinstance(background, tuple) and len(background) == 4:
        rgb, alpha = over_color(rgb, alpha, background, background[3] / 255.0)
        background = None
    if fmt is ImageFormat.ZIP:
        return encode_zip(rgb, alpha, background)
    if background is None and fmt is ImageFormat.JPG:
        background = (255, 255, 255)
    if background is not None:
        return _save(compose_on_color(rgb, alpha, background), fmt)
    rgba = np.empty(alpha.shape + (4,), np.uint8)
    rgba[:, :, :3] = rgb
    rgba[:, :, 3] = alpha
    # colour under alpha 0 is invisible: zero it so PNG/WEBP compress it away (2-3x smaller, faster);
    # one 32-bit store per pixel is 4x quicker than a boolean index over the 4 channels
    rgba.view(np.uint32)[:, :, 0][alpha == 0] = 0
    return _save(rgba, fmt)


def encode_zip(
    rgb: np.ndarray, alpha: np.ndarray, background: tuple[int, ...] | np.ndarray | None = None
) -> bytes:
    """remove.bg's zip format: ``color.jpg`` (the foreground colours, composed on the background if
    one is given) and ``alpha.png`` (the matte; all opaque over a background). JPEG keeps the colour
    small, PNG keeps the edges exact."""
    if background is not None:
        rgb = compose_on_color(rgb, alpha, background)
        alpha = np.full_like(alpha, 255)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:  # both members are compressed already
        archive.writestr("color.jpg", _save(np.ascontiguousarray(rgb), ImageFormat.JPG))
        archive.writestr("alpha.png", encode_mask(np.ascontiguousarray(alpha)))
    return buffer.getvalue()


def encode_mask(alpha: np.ndarray) -> bytes:
    """The alpha as a one-channel 8-bit PNG (0 background .. 255 subject)."""
    return encode_png(alpha)
