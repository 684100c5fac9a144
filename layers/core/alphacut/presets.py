"""Marketplace presets: named bundles of options for a store's main image, and the rules a result
is checked against (measured on the delivered pixels, not on the options asked for).

A preset fills the options a request leaves out; an option given beside it wins. The rules and
where each comes from are in docs/api.md ("Presets").

Usage::

    PRESETS["amazon"].options          # {"target_width": "2000", "bg_color": "#ffffff", ...}
    check = PRESETS["amazon"].check(pixels, covered, subject_box, "jpg")
    check.passed, check.to_dict()      # {"preset": "amazon", "passed": True, "rules": [...]}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from alphacut.masks import grow_one

# JPEG rings around an edge within its 16 x 16 block (4:2:0 chroma): the pure-white rule is
# measured outside those blocks and their neighbours for JPEG, everywhere outside the subject and
# shadow for PNG/WEBP
JPEG_BLOCK = 16


@dataclass(frozen=True)
class RuleResult:
    rule: str
    passed: bool
    measured: Any
    required: Any

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "passed": self.passed,
            "measured": self.measured,
            "required": self.required,
        }


@dataclass(frozen=True)
class Check:
    preset: str
    rules: list[RuleResult]

    @property
    def passed(self) -> bool:
        return all(rule.passed for rule in self.rules)

    @property
    def failed(self) -> list[str]:
        return [rule.rule for rule in self.rules if not rule.passed]

    def to_dict(self) -> dict[str, Any]:
        return {"preset": self.preset, "passed": self.passed, "rules": [r.to_dict() for r in self.rules]}

    def header(self) -> str:
        """``X-Alphacut-Check``: ``amazon passed`` or ``amazon failed: fill_ratio,background_white``."""
        return f"{self.preset} passed" if self.passed else f"{self.preset} failed: {','.join(self.failed)}"


@dataclass(frozen=True)
class Preset:
    """A marketplace's main image: a canvas on white in JPEG, and the rules it is checked against."""

    name: str
    canvas: tuple[int, int]  # width, height
    padding: str  # free space at the canvas's edges, as the ``padding`` option takes it
    formats: tuple[str, ...]  # the formats the marketplace takes
    min_long_side: int
    min_fill: float | None = None  # the subject's box over the frame, on its fuller axis
    white_background: bool = False
    source: str = ""  # where the rules come from (docs/api.md says more)

    @property
    def options(self) -> dict[str, str]:
        """The request parameters the preset stands for, as a form would send them."""
        width, height = self.canvas
        return {
            "target_width": str(width),
            "target_height": str(height),
            "padding": self.padding,
            "bg_color": "#ffffff",
            "format": "jpg",
            "position": "center",
            "fit": "contain",
        }

    def check(
        self, pixels: np.ndarray, covered: np.ndarray, subject_box: tuple[int, int, int, int] | None, fmt: str
    ) -> Check:
        """The rules measured on the result: ``pixels`` the decoded image (H x W x 3 or 4),
        ``covered`` where subject or shadow is (H x W bool), ``subject_box`` the subject's box."""
        height, width = pixels.shape[:2]
        long_side = max(width, height)
        rules = [
            RuleResult("format", fmt in self.formats, fmt, list(self.formats)),
            RuleResult("long_side", long_side >= self.min_long_side, long_side, self.min_long_side),
        ]
        if self.min_fill is not None:
            fill = fill_ratio(subject_box, width, height)
            rules.append(RuleResult("fill_ratio", fill >= self.min_fill, round(fill, 4), self.min_fill))
        if self.white_background:
            off_white = off_white_pixels(pixels, covered, fmt)
            rules.append(RuleResult("background_white", off_white == 0, off_white, 0))
        return Check(self.name, rules)


def fill_ratio(box: tuple[int, int, int, int] | None, width: int, height: int) -> float:
    """How much of the frame the subject's box fills, on the axis it fills more (a tall bottle
    fills the height of a square frame, not its width)."""
    if box is None:
        return 0.0
    left, top, right, bottom = box
    return max((right - left) / width, (bottom - top) / height)


def off_white_pixels(pixels: np.ndarray, covered: np.ndarray, fmt: str) -> int:
    """Background pixels that are not exactly (255, 255, 255) and opaque."""
    background = ~(_grow_blocks(covered) if fmt == "jpg" else covered)
    # every channel (and alpha) 255 <=> their bitwise AND is 255; numpy's reduce over a last axis
    # of 3 is ten times slower than these two passes
    together = pixels[..., 0].copy()
    for channel in range(1, pixels.shape[2]):
        together &= pixels[..., channel]
    return int(np.count_nonzero((together != 255) & background))


def _grow_blocks(mask: np.ndarray) -> np.ndarray:
    """``mask`` grown to whole JPEG blocks (16 x 16, from the top left as the encoder tiles) and
    one block more each way: the ringing of an edge stays in its block, and chroma upsampling
    reaches a pixel into the next one."""
    height, width = mask.shape
    rows, cols = -(-height // JPEG_BLOCK), -(-width // JPEG_BLOCK)
    padded = np.zeros((rows * JPEG_BLOCK, cols * JPEG_BLOCK), bool)
    padded[:height, :width] = mask
    grown = grow_one(padded.reshape(rows, JPEG_BLOCK, cols, JPEG_BLOCK).any(axis=(1, 3)))
    full = np.repeat(np.repeat(grown, JPEG_BLOCK, axis=0), JPEG_BLOCK, axis=1)
    return full[:height, :width]


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            "amazon",
            (2000, 2000),
            "3%",
            ("jpg", "png"),
            1000,
            0.85,
            True,
            "Amazon Seller Central, product image requirements (main image)",
        ),
        Preset("ebay", (1600, 1600), "5%", ("jpg", "png", "webp"), 500, None, True, "eBay picture policy"),
        Preset(
            "etsy",
            (2000, 1600),
            "8%",
            ("jpg", "png"),
            2000,
            None,
            False,
            "Etsy Seller Handbook, listing photo sizes (5:4, 2000 px)",
        ),
        Preset(
            "shopify",
            (2048, 2048),
            "6%",
            ("jpg", "png", "webp"),
            800,
            None,
            True,
            "Shopify Help Center, product media (square 2048 x 2048 recommended)",
        ),
    )
}
