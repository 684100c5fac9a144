"""ICC colour profiles written from their primaries, for tests and benchmarks: Pillow's ImageCms
makes only sRGB, Lab and XYZ, and no other profile ships with the system or the packages.

A matrix/TRC display profile (ICC v2): the three colorants and the white point in the PCS (D50
adapted XYZ, as the published profiles carry them) and one gamma for the three channels.

Usage::

    from alphacut_dev.icc import ADOBE_RGB
    image.save(buffer, "JPEG", icc_profile=ADOBE_RGB)   # a photo in Adobe RGB (1998)
"""

from __future__ import annotations

import struct

D50 = (0.9642, 1.0, 0.8249)


def _fixed(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz(xyz: tuple[float, float, float]) -> bytes:
    return b"XYZ \0\0\0\0" + b"".join(_fixed(v) for v in xyz)


def _curve(gamma: float) -> bytes:
    return b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"


def _description(text: str) -> bytes:
    ascii_text = text.encode("ascii") + b"\0"
    body = b"desc\0\0\0\0" + struct.pack(">I", len(ascii_text)) + ascii_text
    return body + struct.pack(">II", 0, 0) + struct.pack(">HB", 0, 0) + b"\0" * 67


def _text(text: str) -> bytes:
    return b"text\0\0\0\0" + text.encode("ascii") + b"\0"


def matrix_profile(
    description: str,
    red: tuple[float, float, float],
    green: tuple[float, float, float],
    blue: tuple[float, float, float],
    gamma: float,
    white: tuple[float, float, float] = D50,
) -> bytes:
    """An RGB display profile: colorants in PCS XYZ, one gamma (its 8.8 fixed-point value)."""
    tags = [
        (b"desc", _description(description)),
        (b"cprt", _text("No copyright: written by alphacut_dev.icc")),
        (b"wtpt", _xyz(white)),
        (b"rXYZ", _xyz(red)),
        (b"gXYZ", _xyz(green)),
        (b"bXYZ", _xyz(blue)),
        (b"rTRC", _curve(gamma)),
        (b"gTRC", _curve(gamma)),
        (b"bTRC", _curve(gamma)),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, data = [], b""
    for signature, body in tags:
        table.append(struct.pack(">4sII", signature, offset + len(data), len(body)))
        data += body + b"\0" * (-len(body) % 4)
    size = offset + len(data)
    header = (
        struct.pack(">I4sI", size, b"\0\0\0\0", 0x02100000)
        + b"mntrRGB XYZ "
        + struct.pack(">6H", 2026, 11, 26, 0, 0, 0)
        + b"acsp"
        + b"\0" * 24  # platform, flags, manufacturer, model, attributes
        + struct.pack(">I", 0)  # rendering intent: perceptual
        + b"".join(_fixed(v) for v in D50)
        + b"\0" * 4  # creator
        + b"\0" * 16  # profile id
        + b"\0" * 28
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + b"".join(table) + data


# Adobe RGB (1998): its colorants and gamma 563/256 as Adobe's own profile carries them
ADOBE_RGB = matrix_profile(
    "Adobe RGB (1998)",
    red=(0.60974, 0.31111, 0.01947),
    green=(0.20528, 0.62567, 0.06087),
    blue=(0.14919, 0.06322, 0.74457),
    gamma=563 / 256,
)
