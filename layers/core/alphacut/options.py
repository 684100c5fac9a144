"""The one options model: what a caller asks of the pipeline.

Every route (native or vendor-compatible), the CLI and the task workers translate their own
parameters into ``CutoutOptions``; validation happens here, once, and names the field.

Usage::

    options = CutoutOptions.from_mapping({"type": "person", "format": "jpg", "bg_color": "#00ff00"})
    options = CutoutOptions(output="mask")
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from enum import StrEnum
from typing import Any

from PIL import ImageColor

from alphacut.errors import InvalidOption

MAX_TARGET_SIDE = 4096


class SubjectType(StrEnum):
    AUTO = "auto"        # the general model: the main object, people included
    OBJECT = "object"    # the general model
    PERSON = "person"    # general model gated by the selfie model
    STAMP = "stamp"      # red or blue seals/stamps on scanned paper
    COSTUME = "costume"  # the clothes worn (ISNet + the costume head); the mask is a class map

    @property
    def resolved(self) -> SubjectType:
        """The type that actually runs: auto is the general model."""
        return SubjectType.OBJECT if self is SubjectType.AUTO else self


class OutputKind(StrEnum):
    IMAGE = "image"
    MASK = "mask"
    BOTH = "both"


class ImageFormat(StrEnum):
    PNG = "png"
    JPG = "jpg"
    WEBP = "webp"

    @property
    def content_type(self) -> str:
        return {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp"}[self.value]


_FORMAT_ALIASES = {"jpeg": "jpg"}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_MARGIN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(px|%)?\s*$")


@dataclass(frozen=True)
class Margin:
    """Space kept around the subject when cropping: pixels, or a percent of the subject's size."""

    value: float = 0.0
    percent: bool = False

    def pixels(self, extent: int) -> int:
        return round(extent * self.value / 100) if self.percent else round(self.value)

    def __str__(self) -> str:
        return f"{self.value:g}%" if self.percent else f"{self.value:g}px"


def _choice(enum: type[StrEnum], value: Any, field: str, aliases: Mapping[str, str] | None = None):
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


def parse_color(value: Any, field: str = "bg_color") -> tuple[int, int, int]:
    """Hex (``#RRGGBB``, ``RRGGBB``, ``#RGB``) or a CSS colour name, to an RGB tuple."""
    if isinstance(value, tuple) and len(value) == 3 and all(isinstance(c, int) and 0 <= c <= 255 for c in value):
        return value
    text = str(value).strip()
    if re.fullmatch(r"[0-9a-fA-F]{3}|[0-9a-fA-F]{6}", text):
        text = "#" + text
    try:
        rgb = ImageColor.getrgb(text)
    except ValueError:
        raise InvalidOption(f"must be a hex colour such as #ffffff or a colour name, not {value!r}",
                            field=field) from None
    if len(rgb) == 4 and rgb[3] != 255:
        raise InvalidOption("must be an opaque colour (no alpha)", field=field)
    return tuple(rgb[:3])


def parse_dimension(value: Any, field: str, low: int = 1, high: int = MAX_TARGET_SIDE) -> int | None:
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        raise InvalidOption(f"must be a whole number of pixels, not {value!r}", field=field) from None
    if not low <= number <= high:
        raise InvalidOption(f"must be between {low} and {high} pixels, not {number}", field=field,
                            limit=[low, high])
    return number


def parse_margin(value: Any, field: str = "crop_margin") -> Margin:
    if isinstance(value, Margin):
        return value
    match = _MARGIN.match(str(value))
    if not match:
        raise InvalidOption(f"must be pixels (12 or 12px) or a percent (5%), not {value!r}", field=field)
    number, unit = float(match.group(1)), match.group(2)
    if unit == "%" and number > 100:
        raise InvalidOption("must be at most 100%", field=field, limit=100)
    if unit != "%" and number > MAX_TARGET_SIDE:
        raise InvalidOption(f"must be at most {MAX_TARGET_SIDE}px", field=field, limit=MAX_TARGET_SIDE)
    return Margin(number, unit == "%")


@dataclass(frozen=True)
class CutoutOptions:
    """What to cut out and how to deliver it.

    - ``type``: auto | object | person | stamp | costume
    - ``output``: image (the cutout) | mask (one-channel alpha) | both
    - ``format``: png | jpg | webp; jpg has no alpha, so it is composed on ``bg_color`` (white default)
    - ``bg_color``: compose the cutout on this colour instead of transparency
    - ``crop`` / ``crop_margin``: cut the result to the subject's box, with a margin
    - ``target_width`` / ``target_height``: crop the blank margins and scale the subject into this box
      (seed 003); with one of the two, the other follows the subject's aspect ratio
    """

    type: SubjectType = SubjectType.AUTO
    output: OutputKind = OutputKind.IMAGE
    format: ImageFormat = ImageFormat.PNG
    bg_color: tuple[int, int, int] | None = None
    crop: bool = False
    crop_margin: Margin = Margin()
    target_width: int | None = None
    target_height: int | None = None

    def __post_init__(self):
        # Normalise so that CutoutOptions(format="jpeg") and from_mapping agree.
        object.__setattr__(self, "type", _choice(SubjectType, self.type, "type"))
        object.__setattr__(self, "output", _choice(OutputKind, self.output, "output"))
        object.__setattr__(self, "format", _choice(ImageFormat, self.format, "format", _FORMAT_ALIASES))
        if self.bg_color is not None:
            object.__setattr__(self, "bg_color", parse_color(self.bg_color))
        object.__setattr__(self, "crop", parse_bool(self.crop, "crop"))
        object.__setattr__(self, "crop_margin", parse_margin(self.crop_margin))
        object.__setattr__(self, "target_width", parse_dimension(self.target_width, "target_width"))
        object.__setattr__(self, "target_height", parse_dimension(self.target_height, "target_height"))

    @property
    def background(self) -> tuple[int, int, int] | None:
        """The colour the cutout is composed on, or None for transparency."""
        if self.bg_color is None and self.format is ImageFormat.JPG:
            return (255, 255, 255)
        return self.bg_color

    @property
    def resizes(self) -> bool:
        return self.target_width is not None or self.target_height is not None

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_mapping(cls, params: Mapping[str, Any], *, strict: bool = False) -> CutoutOptions:
        """Options from request parameters (strings). ``strict`` refuses unknown names."""
        known = set(cls.field_names())
        if strict:
            unknown = sorted(set(params) - known)
            if unknown:
                raise InvalidOption(f"unknown parameter; known ones are {', '.join(sorted(known))}",
                                    field=unknown[0])
        values = {k: v for k, v in params.items() if k in known and v is not None}
        if "bg_color" in values and str(values["bg_color"]).strip() == "":
            del values["bg_color"]
        return cls(**values)

    def with_changes(self, **changes: Any) -> CutoutOptions:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type.value, "output": self.output.value, "format": self.format.value,
            "bg_color": "#%02x%02x%02x" % self.bg_color if self.bg_color else None,
            "crop": self.crop, "crop_margin": str(self.crop_margin),
            "target_width": self.target_width, "target_height": self.target_height,
        }
