"""Marketplace presets: named bundles of options for a store's main image, and the rules a result
is checked against, measured on the product (what the matte keeps) in the delivered pixels, never
on what the compositor painted without looking at it.

A preset fills the options a request leaves out; an option given beside it wins. Each rule's source
(the marketplace's document and when it was read) is in docs/api.md ("Presets"). What a
marketplace only recommends, or what has no source, is advice: said, never failed on.

Usage::

    PRESETS["amazon"].options          # {"padding": "3%", "bg_color": "#ffffff", ...}
    PRESETS["amazon"].choose_canvas(fill_at, most=4.0)   # CanvasChoice((1450, 1450), (2000, 2000), ...)
    check = PRESETS["amazon"].check(Delivered(pixels, product, shade, "jpg", len(data), 1.4))
    check.passed, check.to_dict()      # {"preset": "amazon", "passed": True, "rules": [...]}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from alphacut.masks import box_of, grow_one
from alphacut.verdict import SEE_THROUGH_LIMIT

# JPEG and lossy WebP ring around an edge, within the 16 x 16 blocks that hold it (4:2:0 chroma)
# and a pixel into the next ones: there a background pixel may be some levels under white (measured
# at quality 95: >= 250 around the eval car, >= 237 at a saturated blue corner); everywhere else it
# must be exactly 255
JPEG_BLOCK = 16
RINGING_FLOOR = 230
LOSSY = ("jpg", "webp")
SOLID = 128  # a product pixel, for its box and its edges: at least half opaque
VISIBLE_SHADOW = 3  # shadow alpha under this darkens white by less than one level
EDGE_RUN = 0.005  # the product runs into the photo's edge: solid on this share of it (at least 4 px)
CANVAS_CUT = 0.01  # the share of the product the canvas may lose (resampling's own rounding)
# Amazon's "minimal" shadow, as alphacut reads it: its darkness (the sum of what it takes from
# white) at most this share of the product's area at full black; the default drop and contact shadows
# take 2-6 %
MINIMAL_SHADOW = 0.12
# alphacut's limit where a marketplace names none: a whole product from an 854 x 480 photo (the eval
# car, 465 px long) still fills amazon's 2000 px canvas (3.7x to 85 %); 9x fails (docs/api.md)
DEFAULT_MAX_ENLARGEMENT = 4.0


@dataclass(frozen=True)
class RuleResult:
    rule: str
    passed: bool
    measured: Any
    required: Any
    advice: bool = False  # a recommendation (or an unsourced rule): said, never failed on

    def to_dict(self) -> dict[str, Any]:
        said = {
            "rule": self.rule,
            "passed": self.passed,
            "measured": self.measured,
            "required": self.required,
        }
        return {**said, "advice": True} if self.advice else said


@dataclass(frozen=True)
class CanvasRange:
    """A marketplace's canvas as the marketplace states it: sizes of its long side (smallest it
    takes, the one it recommends, largest it takes) at one aspect (width over height). Fixed where
    the three are one size."""

    smallest: int
    recommended: int
    largest: int
    aspect: float = 1.0

    def size(self, long_side: int) -> tuple[int, int]:
        """The canvas (width, height) whose long side is ``long_side``."""
        if self.aspect >= 1:
            return long_side, max(1, round(long_side / self.aspect))
        return max(1, round(long_side * self.aspect)), long_side

    @property
    def fixed(self) -> bool:
        return self.smallest == self.recommended == self.largest


@dataclass(frozen=True)
class CanvasChoice:
    """The canvas a result was laid on, and why it is smaller than recommended (None: it is not)."""

    size: tuple[int, int]
    recommended: tuple[int, int]
    reduced: str | None = None

    def to_dict(self) -> dict[str, Any]:
        said: dict[str, Any] = {"size": list(self.size), "recommended": list(self.recommended)}
        return {**said, "reduced": self.reduced} if self.reduced else said


@dataclass(frozen=True)
class PresetCheck:
    preset: str
    rules: list[RuleResult]
    canvas: CanvasChoice | None = None  # where the preset chose the canvas (no target size given)
    # the result's verdict doubts it (``alphacut.verdict``): a pass then says so, with the reasons
    unsure: bool = False
    reasons: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return all(rule.passed or rule.advice for rule in self.rules)

    @property
    def failed(self) -> list[str]:
        return [rule.rule for rule in self.rules if not rule.passed and not rule.advice]

    def to_dict(self) -> dict[str, Any]:
        said: dict[str, Any] = {"preset": self.preset, "passed": self.passed, "unsure": self.unsure}
        if self.unsure:
            said["reasons"] = list(self.reasons)
        said["rules"] = [r.to_dict() for r in self.rules]
        return {**said, "canvas": self.canvas.to_dict()} if self.canvas is not None else said

    def header(self) -> str:
        """``X-Alphacut-Check``: ``amazon passed``, ``amazon passed, unsure: little_contrast`` or
        ``amazon failed: fill_ratio,background_white`` (never a plain pass for an unsure result)."""
        if not self.passed:
            return f"{self.preset} failed: {','.join(self.failed)}"
        if self.unsure:
            return f"{self.preset} passed, unsure: {','.join(self.reasons) or 'low confidence'}"
        return f"{self.preset} passed"


@dataclass(frozen=True)
class Delivered:
    """What a check measures: the delivered picture decoded again (H x W x 3 or 4), the product's
    alpha on it (the matte alone), the shadow's alpha (None: no shadow), the format and size in
    bytes, how much the product was enlarged from the photo as sent (linear), the photo's edges the
    product runs into, and the share of the product the canvas cut off."""

    pixels: np.ndarray
    product: np.ndarray
    shade: np.ndarray | None
    fmt: str
    size_bytes: int
    enlargement: float = 1.0
    photo_edges: tuple[str, ...] = ()
    canvas_cut: float = 0.0
    see_through: float = 0.0  # the share of the product's inside left partly see-through (verdict)


@dataclass(frozen=True)
class Preset:
    """A marketplace's main image: the canvas range and background it is made on, and its rules."""

    name: str
    canvas: CanvasRange
    padding: str  # free space at the canvas's edges, as the ``padding`` option takes it
    formats: tuple[str, ...]  # the formats the marketplace takes (of those alphacut writes)
    min_long_side: int | None = None  # the long side (Amazon's and Walmart's zoom)
    min_size: tuple[int, int] | None = None  # both sides at least (width, height)
    max_size: tuple[int, int, int] | None = None  # width, height, pixels at most
    min_fill: float | None = None  # the product's box over the frame, on its fuller axis
    white_background: bool = False  # every pixel that is not product exactly white
    minimal_shadow: bool = False  # a shadow only "minimal" (``MINIMAL_SHADOW``)
    max_enlargement: float = DEFAULT_MAX_ENLARGEMENT
    max_bytes: int | None = None
    aspect: float | None = None  # width over height, to 1 %
    advice: tuple[tuple[str, Any], ...] = field(default=())  # ("long_side", 2000): said, never failed
    source: str = ""  # the document the rules come from (docs/api.md: where and when read)

    @property
    def recommended(self) -> tuple[int, int]:
        return self.canvas.size(self.canvas.recommended)

    @property
    def options(self) -> dict[str, str]:
        """The request parameters the preset stands for, as a form would send them. The canvas's size
        is not one of them: it is chosen per photo (``choose_canvas``) unless the caller gives one."""
        return {
            "padding": self.padding,
            "bg_color": "#ffffff",
            "format": "jpg",
            "position": "center",
            "fit": "contain",
            "upscale": "limit",
        }

    def choose_canvas(self, fill_at: Callable[[tuple[int, int]], float], most: float | None) -> CanvasChoice:
        """The recommended canvas where the photo fills it as the marketplace asks within the
        enlargement limit; else the largest size of the range at which it does (``fill_at(size)``:
        the product's fill on a canvas of that size, enlarged at most ``most``); else the smallest,
        where the check then says by how much the fill falls short."""
        recommended = self.recommended
        if self.min_fill is None or self.canvas.fixed or fill_at(recommended) >= self.min_fill:
            return CanvasChoice(recommended, recommended)
        low, high = self.canvas.smallest, self.canvas.recommended
        if fill_at(self.canvas.size(low)) < self.min_fill:
            size = self.canvas.size(low)
            why = (
                f"canvas: reduced to {max(size)}, the smallest {self.name} takes; "
                "the photo is too small to fill it"
            )
            return CanvasChoice(size, recommended, why)
        while high - low > 1:  # the fill falls as the canvas grows past what the enlargement limit allows
            middle = (low + high) // 2
            low, high = (
                (middle, high) if fill_at(self.canvas.size(middle)) >= self.min_fill else (low, middle)
            )
        limit = f" at <= {most:g}x" if most is not None else ""
        return CanvasChoice(self.canvas.size(low), recommended, f"canvas: reduced to {low} for fill{limit}")

    def check(self, delivered: Delivered) -> PresetCheck:
        """The rules measured on the delivered result (``Delivered``)."""
        height, width = delivered.pixels.shape[:2]
        rules = [RuleResult("format", delivered.fmt in self.formats, delivered.fmt, list(self.formats))]
        rules += self._size_rules(width, height, delivered.size_bytes)
        rules += _product_rules(self, delivered)
        if self.white_background:
            off_white = off_white_pixels(delivered, shadow_apart=self.minimal_shadow)
            rules.append(RuleResult("background_white", off_white == 0, off_white, 0))
        rules += _shadow_rules(self, delivered)
        rules += [_advice(name, value, width, height) for name, value in self.advice]
        return PresetCheck(self.name, rules)

    def _size_rules(self, width: int, height: int, size_bytes: int) -> list[RuleResult]:
        rules = []
        if self.min_long_side is not None:
            long_side = max(width, height)
            rules.append(
                RuleResult("long_side", long_side >= self.min_long_side, long_side, self.min_long_side)
            )
        if self.min_size is not None:
            fits = width >= self.min_size[0] and height >= self.min_size[1]
            rules.append(RuleResult("min_size", fits, [width, height], list(self.min_size)))
        if self.max_size is not None:
            most_w, most_h, most_pixels = self.max_size
            fits = width <= most_w and height <= most_h and width * height <= most_pixels
            rules.append(RuleResult("max_size", fits, [width, height], list(self.max_size)))
        if self.aspect is not None:
            ratio = width / height
            rules.append(
                RuleResult(
                    "aspect", abs(ratio / self.aspect - 1) <= 0.01, round(ratio, 4), round(self.aspect, 4)
                )
            )
        if self.max_bytes is not None:
            rules.append(RuleResult("file_size", size_bytes <= self.max_bytes, size_bytes, self.max_bytes))
        return rules


def _product_rules(preset: Preset, delivered: Delivered) -> list[RuleResult]:
    """The product whole (not cut by the photo's frame nor by the canvas, its inside not left partly
    see-through), not blown up past the limit, and filling the frame as the marketplace asks."""
    height, width = delivered.product.shape
    rules = [
        RuleResult("cut_by_photo", not delivered.photo_edges, list(delivered.photo_edges), []),
        RuleResult(
            "cut_by_canvas", delivered.canvas_cut <= CANVAS_CUT, round(delivered.canvas_cut, 4), CANVAS_CUT
        ),
        RuleResult(
            "see_through_inside",
            delivered.see_through <= SEE_THROUGH_LIMIT,
            round(delivered.see_through, 4),
            SEE_THROUGH_LIMIT,
        ),
        RuleResult(
            "enlargement",
            delivered.enlargement <= preset.max_enlargement + 1e-6,
            round(delivered.enlargement, 3),
            preset.max_enlargement,
        ),
    ]
    if preset.min_fill is not None:
        fill = fill_ratio(product_box(delivered.product), width, height)
        rules.append(RuleResult("fill_ratio", fill >= preset.min_fill, round(fill, 4), preset.min_fill))
    return rules


def _shadow_rules(preset: Preset, delivered: Delivered) -> list[RuleResult]:
    """A shadow never reaches the canvas's edge; where the marketplace wants it minimal, its
    darkness is at most ``MINIMAL_SHADOW`` of the product's area."""
    shade = delivered.shade
    if shade is None:
        return []
    border = max(int(shade[0].max()), int(shade[-1].max()), int(shade[:, 0].max()), int(shade[:, -1].max()))
    rules = [RuleResult("shadow_inside", border < VISIBLE_SHADOW, border, VISIBLE_SHADOW - 1)]
    if preset.minimal_shadow:
        share = shadow_darkness(delivered)
        rules.append(RuleResult("shadow_minimal", share <= MINIMAL_SHADOW, round(share, 4), MINIMAL_SHADOW))
    return rules


def _advice(name: str, value: Any, width: int, height: int) -> RuleResult:
    if name == "long_side":
        return RuleResult(name, max(width, height) >= value, max(width, height), value, advice=True)
    if name == "min_size":
        return RuleResult(name, width >= value[0] and height >= value[1], [width, height], list(value), True)
    if name == "aspect":
        ratio = width / height
        return RuleResult(name, abs(ratio / value - 1) <= 0.01, round(ratio, 4), round(value, 4), True)
    raise ValueError(f"no advice named {name}")


def product_box(product: np.ndarray) -> tuple[int, int, int, int] | None:
    """The box of the product's solid pixels (at least half opaque)."""
    return box_of(product >= SOLID)


def fill_ratio(box: tuple[int, int, int, int] | None, width: int, height: int) -> float:
    """How much of the frame the product's box fills, on the axis it fills more (a tall bottle
    fills the height of a square frame, not its width)."""
    if box is None:
        return 0.0
    left, top, right, bottom = box
    return max((right - left) / width, (bottom - top) / height)


def photo_edges(alpha: np.ndarray) -> tuple[str, ...]:
    """The photo's edges the product runs into (its matte solid along ``EDGE_RUN`` of the edge, at
    least 4 px): there the photo cut it, and no layout can make it whole."""
    sides = {"top": alpha[0], "bottom": alpha[-1], "left": alpha[:, 0], "right": alpha[:, -1]}
    return tuple(
        name
        for name, line in sides.items()
        if np.count_nonzero(line >= SOLID) >= max(4, EDGE_RUN * line.size)
    )


def _whiteness(pixels: np.ndarray) -> np.ndarray:
    """Each pixel's lowest channel (alpha included: a see-through pixel is not white)."""
    lowest = pixels[..., 0].copy()
    for channel in range(1, pixels.shape[2]):
        np.minimum(lowest, pixels[..., channel], out=lowest)
    return lowest


def off_white_pixels(delivered: Delivered, shadow_apart: bool = False) -> int:
    """Pixels that are not product (nor shadow, where ``shadow_apart``: its own rule measures it)
    and are not exactly white; in a lossy format, in the blocks around the product or shadow, those
    under ``RINGING_FLOOR`` (compression rings there)."""
    kept = delivered.product > 0
    if shadow_apart and delivered.shade is not None:
        kept |= delivered.shade > 0
    lowest = _whiteness(delivered.pixels)
    off = (lowest < 255) & ~kept
    if delivered.fmt in LOSSY:
        off &= ~_blocks_around(kept) | (lowest < RINGING_FLOOR)
    return int(np.count_nonzero(off))


def _blocks_around(mask: np.ndarray) -> np.ndarray:
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


def shadow_darkness(delivered: Delivered) -> float:
    """What the shadow takes from white outside the product, over the product's area at full black
    (0: none; 1: as dark and large as the product)."""
    if delivered.shade is None:
        return 0.0
    area = float(np.count_nonzero(delivered.product >= SOLID))
    outside = delivered.product == 0
    darkness = 255 - _whiteness(delivered.pixels[..., :3]).astype(np.float64)
    taken = float(darkness[outside & (delivered.shade > 0)].sum()) / 255.0
    return taken / max(area, 1.0)


_SOURCES = {
    "amazon": "Amazon Seller Central, Product image requirements (main image)",
    "ebay": "eBay Help, Picture policy",
    "etsy": "no marketplace document: alphacut's advice only",
    "shopify": "Shopify Help Center, Product media types (images)",
    "walmart": "Walmart Marketplace Learn, Product detail page image guidelines",
    "google": "Google Merchant Center Help, Image [image_link] attribute",
    "zalando": "Zalando Partner University, Product image guidelines",
}
PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            "amazon",
            CanvasRange(1000, 2000, 10000),
            "3%",
            ("jpg", "png"),
            min_long_side=1000,
            min_fill=0.85,
            white_background=True,
            minimal_shadow=True,
            source=_SOURCES["amazon"],
        ),
        Preset(
            "ebay",
            CanvasRange(500, 1600, 1600),
            "5%",
            ("jpg", "png", "webp"),
            min_long_side=500,
            advice=(("long_side", 1600),),
            source=_SOURCES["ebay"],
        ),
        Preset(
            "etsy",
            CanvasRange(2000, 2000, 2000, 5 / 4),
            "8%",
            ("jpg", "png"),
            advice=(("long_side", 2000), ("aspect", 5 / 4)),
            source=_SOURCES["etsy"],
        ),
        Preset(
            "shopify",
            CanvasRange(2048, 2048, 4472),
            "6%",
            ("jpg", "png", "webp"),
            max_size=(4472, 4472, 20_000_000),
            advice=(("min_size", (2048, 2048)),),
            source=_SOURCES["shopify"],
        ),
        Preset(
            "walmart",
            CanvasRange(2200, 2200, 2200),
            "5%",
            ("jpg", "png"),
            min_long_side=1500,
            white_background=True,
            minimal_shadow=True,
            max_bytes=5 * 1024 * 1024,
            aspect=1.0,  # "Aspect Ratio: 1:1 (Square)" among the file type requirements
            advice=(("min_size", (2200, 2200)),),
            source=_SOURCES["walmart"],
        ),
        Preset(
            "google",
            CanvasRange(500, 1500, 8000),
            "5%",
            ("jpg", "png", "webp"),
            min_size=(500, 500),
            max_enlargement=1.0,
            advice=(("min_size", (1500, 1500)),),
            source=_SOURCES["google"],
        ),
        Preset(
            "zalando",
            CanvasRange(1100, 2600, 2600, 1801 / 2600),
            "5%",
            ("jpg",),
            min_size=(762, 1100),
            aspect=1 / 1.44,
            advice=(("min_size", (1801, 2600)),),
            source=_SOURCES["zalando"],
        ),
    )
}
