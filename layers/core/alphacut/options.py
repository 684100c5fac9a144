"""The one options model: what a caller asks of the pipeline.

Every route (native or vendor-compatible), the CLI and the task workers translate their own
parameters into ``CutoutOptions``; validation happens here, once, and names the field.

Usage::

    options = CutoutOptions.from_mapping({"type": "person", "format": "jpg", "bg_color": "#00ff00"})
    options = CutoutOptions(output="mask")
    options = CutoutOptions(size="preview", roi="10% 10% 90% 90%", scale="80%", position="center",
                            bg_image_url="https://example.com/beach.jpg", format="zip")
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from typing import Any

from PIL import ImageColor

from alphacut.errors import InvalidOption
from alphacut.presets import DEFAULT_MAX_ENLARGEMENT, PRESETS

MAX_TARGET_SIDE = 4096


class SubjectType(StrEnum):
    AUTO = "auto"  # the general model: the main object, people included
    OBJECT = "object"  # the general model
    PERSON = "person"  # general model gated by the selfie model
    STAMP = "stamp"  # red or blue seals/stamps on scanned paper
    COSTUME = "costume"  # the clothes worn (ISNet + the costume head); the mask is a class map

    @property
    def resolved(self) -> SubjectType:
        """The type that actually runs: auto is the general model."""
        return SubjectType.OBJECT if self is SubjectType.AUTO else self


class Quality(StrEnum):
    AUTO = "auto"  # the best of the two that costs no more than one fp32 CPU run (see ``on``)
    FAST = "fast"  # the model once
    BEST = "best"  # the model on the picture and on its mirror, soft alpha only where both agree

    def on(self, cheap_model: bool, subject: SubjectType = SubjectType.OBJECT) -> Quality:
        """What ``auto`` means on an engine (``Engine.cheap_model``: a GPU, or bf16 on AMX) for a
        subject: the mirror pass where two model runs are cheap and it measured better on the eval
        set's dev half (objects, not people: docs/benchmarks.md), else the model once."""
        if self is not Quality.AUTO:
            return self
        return Quality.BEST if cheap_model and subject.resolved is not SubjectType.PERSON else Quality.FAST


class ShadowType(StrEnum):
    NONE = "none"
    DROP = "drop"  # the silhouette offset away from the light, blurred
    CONTACT = "contact"  # the soft dark band where the subject meets the floor
    CAST = "cast"  # the silhouette laid on the floor away from the light, its blur growing with distance


class Fit(StrEnum):
    CONTAIN = "contain"  # the subject whole inside the canvas less its padding (its shadow in the padding)
    COVER = "cover"  # the subject fills that area; what overflows the canvas is cut


class Upscale(StrEnum):
    ALLOW = "allow"  # the subject enlarged as far as the canvas asks
    LIMIT = "limit"  # at most the preset's factor (4x without one): a photo's pixels stay pixels
    NEVER = "never"  # never above its size in the photo as sent


class OutputKind(StrEnum):
    IMAGE = "image"
    MASK = "mask"
    BOTH = "both"


class ImageFormat(StrEnum):
    PNG = "png"
    JPG = "jpg"
    WEBP = "webp"
    ZIP = "zip"  # color.jpg (the colours) + alpha.png (the matte), as remove.bg's zip format

    @property
    def content_type(self) -> str:
        return {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp", "zip": "application/zip"}[
            self.value
        ]


_FORMAT_ALIASES = {"jpeg": "jpg"}
AUTO_FORMAT = "auto"  # png where the result has transparency, jpg where a background fills it
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
BOOLEAN_WORDS = sorted(_TRUE | _FALSE)  # what ``parse_bool`` reads as text (the OpenAPI documents say it)
_MARGIN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(px|%)?\s*$")
_SEPARATORS = re.compile(r"[\s,]+")


@dataclass(frozen=True)
class Margin:
    """A length: pixels, or a percent of some extent (the subject's size for crop margins, the
    image's width or height for a region of interest)."""

    value: float = 0.0
    percent: bool = False

    def pixels(self, extent: int) -> int:
        return round(extent * self.value / 100) if self.percent else round(self.value)

    def sides(self, extent: int) -> tuple[int, int, int, int]:
        """The same margin on every side: top, right, bottom, left."""
        return (self.pixels(extent),) * 4

    def sides_within(self, width: int, height: int) -> tuple[int, int, int, int]:
        """Top, right, bottom, left on a ``width`` x ``height`` canvas (a percent is of its height
        for top and bottom, of its width for left and right)."""
        return self.pixels(height), self.pixels(width), self.pixels(height), self.pixels(width)

    def __str__(self) -> str:
        return f"{self.value:g}%" if self.percent else f"{self.value:g}px"


@dataclass(frozen=True)
class Margins:
    """Crop margins per side, as CSS writes them: top, right, bottom, left."""

    top: Margin
    right: Margin
    bottom: Margin
    left: Margin

    def sides(self, extent: int) -> tuple[int, int, int, int]:
        return (
            self.top.pixels(extent),
            self.right.pixels(extent),
            self.bottom.pixels(extent),
            self.left.pixels(extent),
        )

    def sides_within(self, width: int, height: int) -> tuple[int, int, int, int]:
        return (
            self.top.pixels(height),
            self.right.pixels(width),
            self.bottom.pixels(height),
            self.left.pixels(width),
        )

    def __str__(self) -> str:
        return " ".join(str(side) for side in (self.top, self.right, self.bottom, self.left))


# remove.bg's output sizes: the most megapixels a result may have (None: the image's own size)
SIZE_MEGAPIXELS: dict[str, float | None] = {
    "preview": 0.25,
    "small": 0.25,
    "regular": 0.25,
    "medium": 1.5,
    "hd": 4.0,
    "full": None,
    "4k": None,
    "auto": None,
}
PREVIEW_MEGAPIXELS = 0.25
_MEGAPIXEL_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*mp$")


@dataclass(frozen=True)
class OutputSize:
    """How large the result may be: ``preview`` (0.25 MP; the model sees the photo as for a
    full result, and the matte is scaled down), ``medium`` (1.5 MP), ``hd`` (4 MP), ``full`` (the
    image's own size) or a megapixel count such as ``10MP``."""

    name: str = "full"
    megapixels: float | None = None

    @property
    def preview(self) -> bool:
        return self.megapixels is not None and self.megapixels <= PREVIEW_MEGAPIXELS

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Position:
    """Where the subject goes on the canvas: ``x``/``y`` in percent of the free space (0 = left/top,
    100 = right/bottom), or None for where it was in the photo."""

    x: float | None = None
    y: float | None = None

    @property
    def original(self) -> bool:
        return self.x is None

    def __str__(self) -> str:
        if self.original:
            return "original"
        return "center" if (self.x, self.y) == (50.0, 50.0) else f"{self.x:g}% {self.y:g}%"


@dataclass(frozen=True)
class Roi:
    """A region of interest: only the subject inside it is kept. Corners x1 y1 x2 y2, each in
    pixels or in percent of the image's width (x) or height (y)."""

    x1: Margin
    y1: Margin
    x2: Margin
    y2: Margin

    def box(self, width: int, height: int) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) inside a ``width`` x ``height`` image."""
        left, right = (min(max(c.pixels(width), 0), width) for c in (self.x1, self.x2))
        top, bottom = (min(max(c.pixels(height), 0), height) for c in (self.y1, self.y2))
        if right <= left or bottom <= top:
            raise InvalidOption(f"{self} holds no pixel of this {width}x{height} image", field="roi")
        return left, top, right, bottom

    def __str__(self) -> str:
        return " ".join(str(c) for c in (self.x1, self.y1, self.x2, self.y2))


def _choice[E: StrEnum](enum: type[E], value: Any, field: str, aliases: Mapping[str, str] | None = None) -> E:
    if isinstance(value, enum):
        return value
    text = str(value).strip().lower()
    text = (aliases or {}).get(text, text)
    try:
        return enum(text)
    except ValueError:
        allowed = ", ".join(member.value for member in enum)
        raise InvalidOption(f"must be one of {allowed}, not {value!r}", field=field) from None


def parse_bool(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InvalidOption(f"must be true or false (1 or 0), not {value!r}", field=field)


Color = tuple[int, int, int] | tuple[int, int, int, int]


def parse_color(value: Any, field: str = "bg_color") -> Color:
    """Hex (``#RRGGBB``, ``RRGGBB``, ``#RGB``; ``#RRGGBBAA`` or ``#RGBA`` for a see-through colour)
    or a CSS colour name, to an RGB tuple (RGBA when the colour is not opaque)."""
    if (
        isinstance(value, tuple)
        and len(value) in (3, 4)
        and all(isinstance(c, int) and 0 <= c <= 255 for c in value)
    ):
        return value if len(value) == 3 or value[3] != 255 else value[:3]
    text = str(value).strip()
    if re.fullmatch(r"[0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8}", text):
        text = "#" + text
    try:
        rgb = ImageColor.getrgb(text)
    except ValueError:
        raise InvalidOption(
            f"must be a hex colour such as #ffffff (#ffffff80 with alpha) or a colour name, not {value!r}",
            field=field,
        ) from None
    if len(rgb) == 4 and rgb[3] != 255:
        return (rgb[0], rgb[1], rgb[2], rgb[3])
    return (rgb[0], rgb[1], rgb[2])


def parse_dimension(value: Any, field: str, low: int = 1, high: int = MAX_TARGET_SIDE) -> int | None:
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        raise InvalidOption(f"must be a whole number of pixels, not {value!r}", field=field) from None
    if not low <= number <= high:
        raise InvalidOption(
            f"must be between {low} and {high} pixels, not {number}", field=field, limit=[low, high]
        )
    return number


def parse_length(
    value: Any, field: str, max_percent: float = 100, max_pixels: int = MAX_TARGET_SIDE
) -> Margin:
    """One length: ``12``, ``12px`` or ``5%``."""
    match = _MARGIN.match(str(value))
    if not match:
        raise InvalidOption(f"must be pixels (12 or 12px) or a percent (5%), not {value!r}", field=field)
    number, unit = float(match.group(1)), match.group(2)
    if unit == "%" and number > max_percent:
        raise InvalidOption(f"must be at most {max_percent:g}%", field=field, limit=f"{max_percent:g}%")
    if unit != "%" and number > max_pixels:
        raise InvalidOption(f"must be at most {max_pixels}px", field=field, limit=max_pixels)
    return Margin(number, unit == "%")


def parse_margin(
    value: Any, field: str = "crop_margin", max_percent: float = 100, max_pixels: int = MAX_TARGET_SIDE
) -> Margin | Margins:
    """One margin for every side, or two (top/bottom, left/right) or four (top, right, bottom, left)."""
    if isinstance(value, Margin | Margins):
        return value
    parts = [part for part in _SEPARATORS.split(str(value).strip()) if part]
    lengths = [parse_length(part, field, max_percent, max_pixels) for part in parts]
    if len(lengths) == 1:
        return lengths[0]
    if len(lengths) == 2:
        return Margins(lengths[0], lengths[1], lengths[0], lengths[1])
    if len(lengths) == 4:
        return Margins(*lengths)
    raise InvalidOption(f"takes one, two or four lengths (as CSS margins), not {value!r}", field=field)


def parse_size(value: Any, field: str = "size") -> OutputSize:
    if isinstance(value, OutputSize):
        return value
    text = str(value).strip().lower()
    if text in SIZE_MEGAPIXELS:
        return OutputSize(text, SIZE_MEGAPIXELS[text])
    match = _MEGAPIXEL_SIZE.match(text)
    if match and 0.1 <= float(match.group(1)) <= 100:
        return OutputSize(f"{float(match.group(1)):g}MP", float(match.group(1)))
    raise InvalidOption(
        f"must be one of {', '.join(SIZE_MEGAPIXELS)} or megapixels from 0.1MP to 100MP "
        f"(such as 10MP), not {value!r}",
        field=field,
    )


def parse_scale(value: Any, field: str = "scale") -> float | None:
    """``original`` (None) or 10% to 100%: the subject's share of the canvas, as a fraction."""
    if value is None or isinstance(value, float):
        return value
    text = str(value).strip().lower()
    if text in ("", "original"):
        return None
    try:
        percent = float(text.removesuffix("%"))
    except ValueError:
        percent = -1.0
    if not 10 <= percent <= 100:
        raise InvalidOption(
            f"must be original or a percent from 10% to 100%, not {value!r}",
            field=field,
            limit=["10%", "100%"],
        )
    return percent / 100


def parse_position(value: Any, field: str = "position") -> Position | None:
    """``original``, ``center``, one percent for both axes (``30%``) or two (``0% 100%``)."""
    if value is None or isinstance(value, Position):
        return value
    text = str(value).strip().lower()
    if text in ("", "original"):
        return Position()
    if text in POSITION_WORDS:
        return Position(*POSITION_WORDS[text])
    parts = [part for part in _SEPARATORS.split(text) if part]
    try:
        numbers = [float(part.removesuffix("%")) for part in parts]
    except ValueError:
        numbers = []
    if len(numbers) not in (1, 2) or not all(0 <= n <= 100 for n in numbers):
        raise InvalidOption(
            f"must be original, {', '.join(POSITION_WORDS)}, or one or two percents from 0% to 100%, "
            f"not {value!r}",
            field=field,
        )
    return Position(numbers[0], numbers[-1])


# alignment words: where the subject goes in the free space, as x% y%
POSITION_WORDS: dict[str, tuple[float, float]] = {
    "center": (50.0, 50.0),
    "top": (50.0, 0.0),
    "bottom": (50.0, 100.0),
    "left": (0.0, 50.0),
    "right": (100.0, 50.0),
    "top-left": (0.0, 0.0),
    "top-right": (100.0, 0.0),
    "bottom-left": (0.0, 100.0),
    "bottom-right": (100.0, 100.0),
}


def parse_number(value: Any, field: str, low: float, high: float) -> float:
    """A number within [low, high] (a trailing ``%``, ``deg`` or ``°`` is allowed)."""
    text = str(value).strip().lower()
    for suffix in ("%", "deg", "°"):
        text = text.removesuffix(suffix).strip()
    try:
        number = float(text)
    except ValueError:
        number = float("nan")
    if not low <= number <= high:  # NaN fails this too
        raise InvalidOption(
            f"must be a number from {low:g} to {high:g}, not {value!r}", field=field, limit=[low, high]
        )
    return number


@dataclass(frozen=True)
class Shadow:
    """A shadow drawn from the matte (``alphacut.shadows``). Lengths are shares of the subject's
    longer side, so the same request gives the same look at any size.

    - ``opacity``: 0-100 % at the darkest point; ``softness``: 0-100 (blur, 100 = 10 % of the subject)
    - ``angle``: where the light comes from, degrees clockwise from the top of the picture (0 above,
      90 right, 180 in front/below, 270 left): the shadow falls the opposite way
    - ``distance``: drop only, the offset (0-50 % of the subject)
    - ``elevation``: cast only, the light's height over the floor (5-85 degrees; low = long shadow)
    """

    type: ShadowType = ShadowType.NONE
    opacity: float = 50.0
    softness: float = 30.0
    angle: float = 315.0
    distance: float = 3.0
    elevation: float = 45.0
    color: tuple[int, int, int] = (0, 0, 0)

    @property
    def drawn(self) -> bool:
        return self.type is not ShadowType.NONE and self.opacity > 0


# each type's light when none is given: a drop falls down-right, a cast shadow lies behind the
# subject (the light in front, to its right)
DEFAULT_SHADOW_ANGLE = {ShadowType.DROP: 315.0, ShadowType.CONTACT: 0.0, ShadowType.CAST: 150.0}


# the shadow's numbers: (field, lowest, highest)
SHADOW_RANGES = (
    ("shadow_opacity", 0.0, 100.0),
    ("shadow_softness", 0.0, 100.0),
    ("shadow_angle", 0.0, 360.0),
    ("shadow_distance", 0.0, 50.0),
    ("shadow_elevation", 5.0, 85.0),
)


def parse_preset(value: Any, field: str = "preset") -> str:
    text = str(value).strip().lower()
    if text not in PRESETS:
        raise InvalidOption(f"must be one of {', '.join(PRESETS)}, not {value!r}", field=field)
    return text


def parse_roi(value: Any, field: str = "roi") -> Roi | None:
    """``x1 y1 x2 y2``, each in pixels (``px`` or none) or percent (``%``)."""
    if value is None or isinstance(value, Roi):
        return value
    parts = [part for part in _SEPARATORS.split(str(value).strip()) if part]
    if len(parts) != 4:
        raise InvalidOption(
            f"must be four corners x1 y1 x2 y2 (such as 0% 0% 100% 100% or 10px 20px 300px 400px), "
            f"not {value!r}",
            field=field,
        )
    x1, y1, x2, y2 = (parse_length(part, field, 100, 1_000_000) for part in parts)
    for low, high in ((x1, x2), (y1, y2)):
        if low.percent == high.percent and low.value >= high.value:
            raise InvalidOption(f"x1 must be less than x2 and y1 less than y2, not {value!r}", field=field)
    return Roi(x1, y1, x2, y2)


def parse_channels(value: Any, field: str = "channels") -> OutputKind:
    """remove.bg's ``channels``: rgba (the cutout) or alpha (the matte alone), as an output kind."""
    text = str(value).strip().lower()
    if text not in ("rgba", "alpha"):
        raise InvalidOption(f"must be rgba or alpha, not {value!r}", field=field)
    return OutputKind.MASK if text == "alpha" else OutputKind.IMAGE


@dataclass(frozen=True)
class CutoutOptions:
    """What to cut out and how to deliver it.

    - ``type``: auto | object | person | stamp | costume
    - ``output``: image (the cutout) | mask (one-channel alpha) | both; ``channels=alpha`` is mask
    - ``format``: png | jpg | webp | zip (color.jpg + alpha.png) | auto (png, or jpg when a
      background fills the picture); jpg has no alpha, so it is composed on white by default
    - ``size``: preview (0.25 MP) | medium | hd | full | ``<n>MP``: the result's most pixels
    - ``quality``: fast | best (the model on the picture and its mirror) | auto (``Quality.on``)
    - ``roi``: x1 y1 x2 y2 (px or %): only the subject inside this region is kept
    - ``bg_color`` / ``bg_image_url`` / ``bg_image``: compose the cutout on a colour (``#rrggbbaa``
      for a see-through one) or on an image scaled to cover the result, instead of transparency
    - ``crop`` / ``crop_margin``: cut the result to the subject's box, with a margin (1, 2 or 4 lengths)
    - ``scale`` / ``position``: the subject's size (10-100 % of the canvas) and place on it
    - ``target_width`` / ``target_height``: a fixed canvas: the subject cropped and scaled into it by
      its own box, its shadow in the padding (Alibaba AIDGE's targetWidth/targetHeight); with one
      of the two, the other follows the aspect ratio. ``padding`` (1, 2 or 4 lengths; a percent
      is of the canvas) keeps space free at its edges, ``fit`` contain | cover, ``position``
      (center, bottom, x% y%) aligns; padding or cover without a target size make the photo's own
      size the canvas
    - ``upscale``: allow | limit (the preset's factor, 4x without one) | never: how far the subject
      may be enlarged from the photo as sent
    - ``shadow``: none | drop | contact | cast, shaped by ``shadow_opacity``, ``shadow_softness``,
      ``shadow_angle``, ``shadow_distance`` (drop), ``shadow_elevation`` (cast), ``shadow_color``
    - ``preset``: amazon | ebay | etsy | shopify | walmart | google | zalando: that marketplace's
      canvas, background and format (and ``upscale=limit``)
      where the request does not say otherwise (``from_mapping`` applies it); the result is checked
      against its rules (``alphacut.presets``)
    """

    type: SubjectType = SubjectType.AUTO
    output: OutputKind = OutputKind.IMAGE
    format: ImageFormat = ImageFormat.PNG
    size: OutputSize = OutputSize()
    quality: Quality = Quality.AUTO
    roi: Roi | None = None
    bg_color: Color | None = None
    bg_image_url: str | None = None
    bg_image: bytes | None = field(default=None, repr=False, compare=False)  # the decoded-later file
    crop: bool = False
    crop_margin: Margin | Margins = Margin()
    scale: float | None = None
    position: Position | None = None
    target_width: int | None = None
    target_height: int | None = None
    padding: Margin | Margins = Margin()
    fit: Fit = Fit.CONTAIN
    upscale: Upscale = Upscale.ALLOW
    shadow: ShadowType = ShadowType.NONE
    shadow_opacity: float = 50.0
    shadow_softness: float = 30.0
    shadow_angle: float | None = None  # None: the type's own (``DEFAULT_SHADOW_ANGLE``)
    shadow_distance: float = 3.0
    shadow_elevation: float = 45.0
    shadow_color: Color = (0, 0, 0)
    preset: str | None = None  # the marketplace whose rules the result is checked against

    def __post_init__(self) -> None:
        # Normalise so that CutoutOptions(format="jpeg") and from_mapping agree.
        set_ = object.__setattr__
        set_(self, "type", _choice(SubjectType, self.type, "type"))
        set_(self, "output", _choice(OutputKind, self.output, "output"))
        set_(self, "size", parse_size(self.size))
        set_(self, "quality", _choice(Quality, self.quality, "quality"))
        set_(self, "roi", parse_roi(self.roi))
        if self.bg_color is not None:
            set_(self, "bg_color", parse_color(self.bg_color))
        set_(self, "bg_image_url", (self.bg_image_url or "").strip() or None)
        set_(self, "bg_image", self.bg_image or None)
        if self.bg_color is not None and self.has_background_image:
            raise InvalidOption(
                "give one background: bg_color, bg_image_url or bg_image_file", field="bg_color"
            )
        if str(self.format).strip().lower() == AUTO_FORMAT:
            set_(self, "format", ImageFormat.JPG if self.fills_background else ImageFormat.PNG)
        set_(self, "format", _choice(ImageFormat, self.format, "format", _FORMAT_ALIASES))
        set_(self, "crop", parse_bool(self.crop, "crop"))
        set_(self, "crop_margin", parse_margin(self.crop_margin))
        set_(self, "scale", parse_scale(self.scale))
        set_(self, "position", parse_position(self.position))
        set_(self, "target_width", parse_dimension(self.target_width, "target_width"))
        set_(self, "target_height", parse_dimension(self.target_height, "target_height"))
        self._parse_canvas()
        self._parse_shadow()
        if self.preset is not None:
            set_(self, "preset", parse_preset(self.preset))

    def _parse_canvas(self) -> None:
        set_ = object.__setattr__
        set_(self, "padding", parse_margin(self.padding, "padding", max_percent=45))
        set_(self, "fit", _choice(Fit, self.fit, "fit"))
        set_(self, "upscale", _choice(Upscale, self.upscale, "upscale"))

    def _parse_shadow(self) -> None:
        set_ = object.__setattr__
        set_(self, "shadow", _choice(ShadowType, self.shadow, "shadow"))
        for name, low, high in SHADOW_RANGES:
            value = getattr(self, name)
            if value is not None:
                set_(self, name, parse_number(value, name, low, high))
        set_(self, "shadow_color", parse_color(self.shadow_color, "shadow_color")[:3])

    @property
    def max_enlargement(self) -> float | None:
        """How far the subject may be enlarged from the photo as sent (None: as far as asked)."""
        if self.upscale is Upscale.NEVER:
            return 1.0
        if self.upscale is Upscale.LIMIT:
            return PRESETS[self.preset].max_enlargement if self.preset else DEFAULT_MAX_ENLARGEMENT
        return None

    @property
    def shadow_spec(self) -> Shadow:
        """The shadow asked for (``Shadow.drawn`` is False for none or opacity 0)."""
        angle = self.shadow_angle
        if angle is None:
            angle = DEFAULT_SHADOW_ANGLE.get(self.shadow, 0.0)
        return Shadow(
            self.shadow,
            self.shadow_opacity,
            self.shadow_softness,
            angle % 360,
            self.shadow_distance,
            self.shadow_elevation,
            (self.shadow_color[0], self.shadow_color[1], self.shadow_color[2]),
        )

    @property
    def fills_background(self) -> bool:
        """True when an opaque colour or an image fills everything behind the subject."""
        return (
            self.bg_image_url is not None
            or self.bg_image is not None
            or (self.bg_color is not None and len(self.bg_color) == 3)
        )

    @property
    def background(self) -> Color | None:
        """The colour the cutout is composed on, or None for transparency (or a background image)."""
        if self.bg_color is None and self.format is ImageFormat.JPG and not self.has_background_image:
            return (255, 255, 255)
        return self.bg_color

    @property
    def has_background_image(self) -> bool:
        return self.bg_image_url is not None or self.bg_image is not None

    @property
    def resizes(self) -> bool:
        return self.target_width is not None or self.target_height is not None

    @property
    def has_canvas(self) -> bool:
        """A fixed canvas: a target size, or padding or cover fit on the photo's own size."""
        return self.resizes or self.fit is Fit.COVER or self.padding.sides_within(100, 100) != (0, 0, 0, 0)

    @property
    def placement(self) -> Position | None:
        """Where the subject goes, or None to leave it where it is (scale implies center)."""
        position = (
            self.position
            if self.position is not None
            else (Position(50.0, 50.0) if self.scale is not None else Position())
        )
        return None if position.original and self.scale is None else position

    @classmethod
    def field_names(cls) -> list[str]:
        """The request parameters the options read (``bg_image`` arrives as ``bg_image_file``)."""
        return [f.name for f in fields(cls) if f.name != "bg_image"] + ["channels"]

    @classmethod
    def from_mapping(
        cls, params: Mapping[str, Any], *, strict: bool = False, bg_image: bytes | None = None
    ) -> CutoutOptions:
        """Options from request parameters (strings). ``strict`` refuses unknown names; ``bg_image``
        is an uploaded background file (or the one ``bg_image_url`` names, already fetched)."""
        known = set(cls.field_names())
        if strict:
            unknown = sorted(set(params) - known)
            if unknown:
                raise InvalidOption(
                    f"unknown parameter; known ones are {', '.join(sorted(known))}", field=unknown[0]
                )
        values = {k: v for k, v in params.items() if k in known and v is not None}
        preset = str(values.get("preset") or "").strip()
        if preset:
            values = {**PRESETS[parse_preset(preset)].options, **values}
        else:
            values.pop("preset", None)
        for name in ("bg_color", "bg_image_url", "roi", "position", "scale", "shadow_angle"):
            if name in values and str(values[name]).strip() == "":
                del values[name]
        channels = values.pop("channels", None)
        if channels is not None:
            output = parse_channels(channels)
            if "output" in values and _choice(OutputKind, values["output"], "output") is not output:
                raise InvalidOption(
                    f"channels={channels} contradicts output={values['output']}", field="channels"
                )
            values["output"] = output
        return cls(**values, bg_image=bg_image)

    def with_changes(self, **changes: Any) -> CutoutOptions:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The options as request parameters (JSON-safe; a background file is not included)."""
        color = None
        if self.bg_color:
            color = "#" + "".join(f"{c:02x}" for c in self.bg_color)
        return {
            "type": self.type.value,
            "output": self.output.value,
            "format": self.format.value,
            "size": str(self.size),
            "quality": self.quality.value,
            "roi": str(self.roi) if self.roi else None,
            "bg_color": color,
            "bg_image_url": self.bg_image_url,
            "crop": self.crop,
            "crop_margin": str(self.crop_margin),
            "scale": f"{self.scale * 100:g}%" if self.scale is not None else None,
            "position": str(self.position) if self.position is not None else None,
            "target_width": self.target_width,
            "target_height": self.target_height,
            "padding": str(self.padding),
            "fit": self.fit.value,
            "upscale": self.upscale.value,
            "shadow": self.shadow.value,
            "shadow_opacity": self.shadow_opacity,
            "shadow_softness": self.shadow_softness,
            "shadow_angle": self.shadow_angle,
            "shadow_distance": self.shadow_distance,
            "shadow_elevation": self.shadow_elevation,
            "shadow_color": "#" + "".join(f"{c:02x}" for c in self.shadow_color),
            "preset": self.preset,
        }
