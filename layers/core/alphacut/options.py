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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from typing import Any

from PIL import ImageColor

from alphacut.errors import InvalidOption
from alphacut.presets import DEFAULT_MAX_ENLARGEMENT, PRESETS
from alphacut.urlfetch import IMAGE_URL

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
    AUTO = "auto"  # the most quality for no more than one fp32 CPU run's time (see ``on``)
    FAST = "fast"  # the model once
    BEST = "best"  # the model on the picture and on its mirror, soft alpha only where both agree

    def on(
        self, cheap_model: bool, subject: SubjectType = SubjectType.OBJECT, when_unsure: bool = False
    ) -> Quality:
        """What ``auto`` means on an engine for a subject: the mirror pass where two model runs
        are cheap (``Engine.cheap_model``: a GPU, or bf16 on AMX) and it measured better on the
        eval set's dev half (objects, not people: docs/benchmarks.md), else the model once. On an
        engine that mirrors only unsure mattes (``Engine.mirror_when_unsure``: int8 on a CPU) an
        object's ``auto`` stays ``AUTO``: decided after the first run (``alphacut.matte.unsure``)."""
        if self is not Quality.AUTO:
            return self
        if subject.resolved is SubjectType.PERSON:
            return Quality.FAST
        if cheap_model:
            return Quality.BEST
        return Quality.AUTO if when_unsure else Quality.FAST


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


def _other_side(preset: str, values: Mapping[str, Any]) -> dict[str, str]:
    """One side of the canvas given beside a preset: the other at the marketplace's aspect (a square
    marketplace's 1200 wide is 1200 high), unless given too or not a number (its parser says so)."""
    width, height = (str(values.get(name) or "").strip() for name in ("target_width", "target_height"))
    aspect = PRESETS[parse_preset(preset)].canvas.aspect
    if width.isdigit() and not height:
        return {"target_height": str(max(1, round(int(width) / aspect)))}
    if height.isdigit() and not width:
        return {"target_width": str(max(1, round(int(height) * aspect)))}
    return {}


class ShadowFrame(StrEnum):
    GROW = "grow"  # without a canvas or crop, the photo's frame grows where the shadow would leave it
    KEEP = "keep"  # the photo's own size: the shadow shortened (or faded out) to fit inside it


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
_LENGTH = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(px|%)?\s*$")
_SEPARATORS = re.compile(r"[\s,]+")


@dataclass(frozen=True)
class Length:
    """A length: pixels, or a percent of some extent (the subject's size for crop margins, the
    canvas for padding, the image's width or height for a region of interest's corners). As a
    margin, one length stands for every side (``sides``)."""

    value: float = 0.0
    percent: bool = False

    def pixels(self, extent: int) -> int:
        return round(extent * self.value / 100) if self.percent else round(self.value)

    def sides(self, extent: int) -> tuple[int, int, int, int]:
        """As a margin, the same on every side: top, right, bottom, left."""
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

    top: Length
    right: Length
    bottom: Length
    left: Length

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

    x1: Length
    y1: Length
    x2: Length
    y2: Length

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
) -> Length:
    """One length: ``12``, ``12px`` or ``5%``."""
    match = _LENGTH.match(str(value))
    if not match:
        raise InvalidOption(f"must be pixels (12 or 12px) or a percent (5%), not {value!r}", field=field)
    number, unit = float(match.group(1)), match.group(2)
    if unit == "%" and number > max_percent:
        raise InvalidOption(f"must be at most {max_percent:g}%", field=field, limit=f"{max_percent:g}%")
    if unit != "%" and number > max_pixels:
        raise InvalidOption(f"must be at most {max_pixels}px", field=field, limit=max_pixels)
    return Length(number, unit == "%")


def parse_margin(
    value: Any, field: str = "crop_margin", max_percent: float = 100, max_pixels: int = MAX_TARGET_SIDE
) -> Length | Margins:
    """One margin for every side, or two (top/bottom, left/right) or four (top, right, bottom, left)."""
    if isinstance(value, Length | Margins):
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


MODEL_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"  # a model's name in the registry (and its folder's)
DEFAULT_MODEL = "isnet"  # the matting model when a request names none (alphacut.models.registry)


def parse_model_name(value: Any, field: str = "model") -> str:
    """A model's name (whether the registry has it is the pipeline's to say)."""
    text = str(value)
    if not re.fullmatch(MODEL_PATTERN, text):
        raise InvalidOption(
            f"must be a model's name (a-z, 0-9, . _ -; at most 64), not {value!r}", field=field
        )
    return text


RESULT_ID_PATTERN = "^r_[0-9a-f]{32}$"  # alphacut.touchup.new_result_id


def parse_result_id(value: Any, field: str = "result_id") -> str:
    text = str(value).strip()
    if not re.fullmatch(RESULT_ID_PATTERN, text):
        raise InvalidOption("is not a result id: use the result_id of an earlier answer", field=field)
    return text


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


# ---- the option table -----------------------------------------------------------------------------
# Each option is one row: a field of ``CutoutOptions`` declared with ``option(...)``, which says how
# a request's value is read (``parse``), its OpenAPI schema (with its description), its flag on
# ``alphacut remove``, whether an empty value means "not given", its form in ``to_dict`` and
# whether remove.bg's route takes it. The OpenAPI documents (``alphacut.api.openapi``), the CLI
# (``alphacut.cli``) and remove.bg's field map (``alphacut.api.vendors.removebg``) are made from
# the rows; a new option is a row here plus the code that uses it.

OPTION_ROW = "alphacut.option"  # the key of a field's row in its metadata
# a JSON schema value the forms' empty field may take, meaning "not given"
EMPTY = {"type": "string", "maxLength": 0}
_PERCENT = r"(100(\.0+)?|\d{1,2}(\.\d+)?)%?"
COLOR: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "pattern": r"^#?([0-9A-Fa-f]{3,4}|[0-9A-Fa-f]{6}|[0-9A-Fa-f]{8})$"},
        {"type": "string", "enum": sorted(ImageColor.colormap)},
        EMPTY,
    ]
}
# the values the parsers take, as patterns (each says exactly what its parser reads)
SIZE_PATTERN = "^(" + "|".join(SIZE_MEGAPIXELS) + r"|(100(\.0+)?|[1-9]\d?(\.\d+)?|0\.[1-9]\d*)\s*[Mm][Pp])$"
SCALE_PATTERN = r"^(original|(100(\.0+)?|[1-9]\d(\.\d+)?)%?)?$"
POSITION_PATTERN = "^(original|" + "|".join(POSITION_WORDS) + f"|{_PERCENT}([\\s,]+{_PERCENT})?)?$"


def empty_unset(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter whose empty value means not given (``?to=``), as forms send it."""
    return {"anyOf": [schema, EMPTY]}


class RemoveBg(StrEnum):
    """How remove.bg's route takes an option."""

    NO = ""  # not at all (remove.bg has its own way to say it, or none)
    TRANSLATED = "translated"  # remove.bg's own parameter of that name, read as the native one
    EXTENSION = "extension"  # alphacut's own, taken there too and documented as an extension


@dataclass(frozen=True)
class Flag:
    """An option's flag on ``alphacut remove``: argparse's arguments (the value goes to the
    option's name; ``metavar`` is the flag's, as argparse would make it). ``name``: the option's
    own with dashes unless given."""

    name: str = ""
    help: str | None = None
    choices: tuple[str, ...] | None = None
    default: Any = None
    type: Callable[[str], Any] | None = None
    switch: bool = False  # a flag without a value (store_true; None when absent)

    def flag_for(self, dest: str) -> str:
        return self.name or "--" + dest.replace("_", "-")

    def arguments(self, dest: str) -> dict[str, Any]:
        arguments: dict[str, Any] = {"dest": dest, "default": self.default}
        if self.switch:
            return arguments | {"action": "store_true", "help": self.help}
        metavar = self.flag_for(dest).lstrip("-").replace("-", "_").upper()
        extra = {"choices": list(self.choices)} if self.choices else {"metavar": metavar}
        return arguments | extra | {"type": self.type, "help": self.help}


@dataclass(frozen=True)
class OptionField:
    """One option: its request parameter ``name``, how its value is read (``parse(value, name)``,
    raising ``InvalidOption`` that names it), its OpenAPI ``schema``, its CLI ``flag``, whether an
    empty value means not given (``empty_unset``), its JSON-safe form (``text``), remove.bg's use
    of it, and (``sets``) the field an alias parameter sets."""

    parse: Callable[[Any, str], Any]
    schema: dict[str, Any]
    flag: Flag | None = None
    empty_unset: bool = False
    text: Callable[[Any], Any] = lambda value: value.value if isinstance(value, StrEnum) else value
    removebg: RemoveBg = RemoveBg.NO
    removebg_schema: dict[str, Any] | None = None  # remove.bg's document, where it differs
    name: str = ""
    sets: str = ""


def row(parse: Callable[[Any, str], Any], schema: dict[str, Any], **columns: Any) -> dict[str, OptionField]:
    """A ``CutoutOptions`` field's metadata: its row of the table."""
    return {OPTION_ROW: OptionField(parse, schema, **columns)}


def choice_of(enum: type[StrEnum], aliases: Mapping[str, str] | None = None) -> Callable[[Any, str], Any]:
    return lambda value, name: _choice(enum, value, name, aliases)


def values_of(enum: type[StrEnum]) -> tuple[str, ...]:
    return tuple(member.value for member in enum)


def unless_none(parse: Callable[[Any, str], Any]) -> Callable[[Any, str], Any]:
    return lambda value, name: None if value is None else parse(value, name)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _hex(color: Color | None) -> str | None:
    return None if color is None else "#" + "".join(f"{c:02x}" for c in color)


def _format(value: Any, name: str) -> ImageFormat | str:
    """``auto`` is kept until the background is known (``CutoutOptions.__post_init__``)."""
    if str(value).strip().lower() == AUTO_FORMAT:
        return AUTO_FORMAT
    return _choice(ImageFormat, value, name, _FORMAT_ALIASES)


def _shadow_number(
    default: float | None, low: float, high: float, description: str, **columns: Any
) -> dict[str, OptionField]:
    """A shadow's number's row: ``low`` to ``high`` (a trailing ``%``, ``deg`` or ``°`` allowed)."""
    schema: dict[str, Any] = {"type": "number", "minimum": low, "maximum": high}
    schema |= {"default": default} if default is not None else {}
    return row(
        unless_none(lambda value, name: parse_number(value, name, low, high)),
        schema | {"description": description},
        flag=Flag(help=f"{low:g} to {high:g}"),
        **columns,
    )


# remove.bg's own schema for the canvas size it takes as an extension
WHOLE_SIDE = {"type": "integer", "minimum": 1, "maximum": MAX_TARGET_SIDE, "description": "a fixed canvas"}


@dataclass(frozen=True)
class CutoutOptions:
    """What to cut out and how to deliver it: one field per option, each declared with its row
    of the option table (its description is its OpenAPI schema's). Across fields: ``format=auto``
    is png, or jpg when a background fills the picture; one background at most (``bg_color``,
    ``bg_image_url`` or the uploaded ``bg_image``); a ``preset`` supplies its marketplace's canvas,
    background and format where the request does not say otherwise (``from_mapping``)."""

    type: SubjectType = field(
        default=SubjectType.AUTO,
        metadata=row(
            choice_of(SubjectType),
            {"type": "string"},  # its values and default are the route's types
            flag=Flag("--type", default="auto", choices=values_of(SubjectType)),
        ),
    )
    output: OutputKind = field(
        default=OutputKind.IMAGE,
        metadata=row(
            choice_of(OutputKind),
            {"type": "string", "enum": list(values_of(OutputKind)), "default": "image"},
            flag=Flag("--output", choices=values_of(OutputKind), help="default: image"),
        ),
    )
    format: ImageFormat = field(
        default=ImageFormat.PNG,
        metadata=row(
            _format,
            {
                "type": "string",
                "enum": [*values_of(ImageFormat), "jpeg", "auto"],
                "default": "png",
                "description": "zip: color.jpg + alpha.png; auto: png, or jpg when a background fills it",
            },
            flag=Flag(
                "--format",
                choices=(*values_of(ImageFormat), "jpeg", "auto"),
                help="zip: color.jpg + alpha.png; auto: png, or jpg over a background",
            ),
            removebg=RemoveBg.TRANSLATED,
        ),
    )
    size: OutputSize = field(
        default=OutputSize(),
        metadata=row(
            parse_size,
            {
                "type": "string",
                "pattern": SIZE_PATTERN,
                "default": "full",
                "description": "the result's most pixels: preview (0.25 MP), medium (1.5 MP), "
                "hd (4 MP), full, or megapixels such as 10MP",
            },
            flag=Flag("--size", help="preview (0.25 MP), medium, hd, full or e.g. 10MP"),
            text=str,
            removebg=RemoveBg.TRANSLATED,
        ),
    )
    quality: Quality = field(
        default=Quality.AUTO,
        metadata=row(
            choice_of(Quality),
            {
                "type": "string",
                "enum": ["auto", "fast", "best"],
                "default": "auto",
                "description": "best: the model on the picture and its mirror, soft alpha only where "
                "both see it (twice the model time); auto: best for objects where the engine makes two "
                "runs cheap (a GPU, bf16 on AMX), on int8 the mirror only where the first matte is "
                "unsure, else fast",
            },
            flag=Flag(
                "--quality",
                default="auto",
                choices=values_of(Quality),
                help="best: the model on the photo and its mirror, soft alpha where both see it (twice "
                "the time)",
            ),
        ),
    )
    model: str | None = field(
        default=None,
        metadata=row(
            unless_none(parse_model_name),
            {
                "type": "string",
                "pattern": MODEL_PATTERN,
                "description": "the matting model: isnet (the default), u2netp, or one an operator added "
                "(`alphacut models list`); the answer names the one used",
            },
            flag=Flag(
                "--model", help="the matting model: isnet (default), u2netp, ... (alphacut models list)"
            ),
            removebg=RemoveBg.EXTENSION,
        ),
    )
    roi: Roi | None = field(
        default=None,
        metadata=row(
            parse_roi,
            {"type": "string", "description": "x1 y1 x2 y2 in px or %: only the subject inside is kept"},
            flag=Flag("--roi", help="keep only the subject inside x1 y1 x2 y2 (px or %%)"),
            empty_unset=True,
            text=_text,
            removebg=RemoveBg.TRANSLATED,
        ),
    )
    bg_color: Color | None = field(
        default=None,
        metadata=row(
            unless_none(parse_color),
            {
                **COLOR,
                "description": "hex (#ffffff, fff; #ffffff80 see-through) or colour name; jpg defaults to "
                "white",
            },
            flag=Flag("--bg-color", help="hex colour or name to compose on (#rrggbbaa: see-through)"),
            empty_unset=True,
            text=_hex,
            removebg=RemoveBg.TRANSLATED,
        ),
    )
    bg_image_url: str | None = field(
        default=None,
        metadata=row(
            lambda value, name: (value or "").strip() or None,
            empty_unset(
                {
                    **IMAGE_URL,
                    "description": "a background picture, scaled to cover (or upload bg_image_file, "
                    "or bg_image_base64 in JSON)",
                }
            ),
            # the CLI's --bg-image takes a file as well as a URL (``alphacut.cli``)
            flag=Flag("--bg-image", help="a picture (file or http(s) URL) to compose on, scaled to cover"),
            empty_unset=True,
            removebg=RemoveBg.TRANSLATED,
        ),
    )
    bg_image: bytes | None = field(default=None, repr=False, compare=False)  # the file, decoded later
    crop: bool = field(
        default=False,
        metadata=row(
            parse_bool,
            {"type": "boolean", "default": False, "description": "crop to the subject"},
            flag=Flag("--crop", help="crop to the subject", switch=True),
            removebg=RemoveBg.TRANSLATED,
        ),
    )
    crop_margin: Length | Margins = field(
        default=Length(),
        metadata=row(
            parse_margin,
            {
                "type": "string",
                "default": "0",
                "description": "12, 12px or 5%; two or four lengths as CSS margins",
            },
            flag=Flag("--crop-margin", help="margin around the crop: 12, 12px or 5%%, or 2 or 4 of them"),
            text=str,
            removebg=RemoveBg.TRANSLATED,
        ),
    )
    scale: float | None = field(
        default=None,
        metadata=row(
            parse_scale,
            {
                "type": "string",
                "pattern": SCALE_PATTERN,
                "description": "original, or 10% to 100%: the subject's share of the canvas",
            },
            flag=Flag("--scale", help="the subject's share of the canvas: 10%% to 100%%"),
            empty_unset=True,
            text=lambda scale: None if scale is None else f"{scale * 100:g}%",
            removebg=RemoveBg.TRANSLATED,
        ),
    )
    position: Position | None = field(
        default=None,
        metadata=row(
            parse_position,
            {
                "type": "string",
                "pattern": POSITION_PATTERN,
                "description": "original, center, top, bottom, left, right, top-left.., or x% y% "
                "(scale implies center)",
            },
            flag=Flag("--position", help="original, center, bottom, top-left, ... or x%% y%%"),
            empty_unset=True,
            text=_text,
            removebg=RemoveBg.TRANSLATED,
        ),
    )
    target_width: int | None = field(
        default=None,
        metadata=row(
            parse_dimension,
            {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_TARGET_SIDE,
                "description": "a fixed canvas: the subject fitted into it by its own box, its shadow in "
                "the padding",
            },
            flag=Flag("--width", type=int, help="target width (fits the subject)"),
            removebg=RemoveBg.EXTENSION,
            removebg_schema=WHOLE_SIDE,
        ),
    )
    target_height: int | None = field(
        default=None,
        metadata=row(
            parse_dimension,
            {"type": "integer", "minimum": 1, "maximum": MAX_TARGET_SIDE},
            flag=Flag("--height", type=int, help="target height (fits the subject)"),
            removebg=RemoveBg.EXTENSION,
            removebg_schema=WHOLE_SIDE,
        ),
    )
    padding: Length | Margins = field(
        default=Length(),
        metadata=row(
            lambda value, name: parse_margin(value, name, max_percent=45),
            {
                "type": "string",
                "default": "0",
                "description": "with a canvas: space kept free at its edges, 1, 2 or 4 lengths (px, or % of "
                "the canvas, at most 45%) as CSS margins",
            },
            flag=Flag("--padding", help="with --width/--height: free space at the edges"),
            text=str,
            removebg=RemoveBg.EXTENSION,
        ),
    )
    fit: Fit = field(
        default=Fit.CONTAIN,
        metadata=row(
            choice_of(Fit),
            {
                "type": "string",
                "enum": list(values_of(Fit)),
                "default": "contain",
                "description": "with a canvas: contain (whole inside the padding) or cover (fills it)",
            },
            flag=Flag("--fit", choices=values_of(Fit), help="default: contain"),
            removebg=RemoveBg.EXTENSION,
        ),
    )
    upscale: Upscale = field(
        default=Upscale.ALLOW,
        metadata=row(
            choice_of(Upscale),
            {
                "type": "string",
                "enum": list(values_of(Upscale)),
                "default": "allow",
                "description": "how far the subject may be enlarged from the photo as sent: allow, "
                "limit (the preset's factor, 4x without one; a preset's default) or never; the answer's "
                "enlargement says the factor",
            },
            flag=Flag(
                "--upscale",
                choices=values_of(Upscale),
                help="how far the subject may be enlarged: allow (default), limit (a preset's default), "
                "never",
            ),
            removebg=RemoveBg.EXTENSION,
        ),
    )
    shadow: ShadowType = field(
        default=ShadowType.NONE,
        metadata=row(
            choice_of(ShadowType),
            {
                "type": "string",
                "enum": list(values_of(ShadowType)),
                "default": "none",
                "description": "drop (offset, blurred), contact (under the lowest edge), cast (on the floor)",
            },
            flag=Flag("--shadow", choices=values_of(ShadowType), help="drop, contact or cast"),
        ),
    )
    shadow_frame: ShadowFrame = field(
        default=ShadowFrame.GROW,
        metadata=row(
            choice_of(ShadowFrame),
            {
                "type": "string",
                "enum": list(values_of(ShadowFrame)),
                "default": "grow",
                "description": "without a canvas or crop: grow the photo's frame where the shadow would "
                "leave it (default), or keep the photo's size and shorten the shadow to fit (remove.bg's "
                "route keeps it, as remove.bg does)",
            },
            flag=Flag("--shadow-frame", choices=values_of(ShadowFrame), help="grow (default) or keep"),
            removebg=RemoveBg.EXTENSION,
        ),
    )
    shadow_opacity: float = field(
        default=50.0,
        metadata=_shadow_number(
            50.0, 0.0, 100.0, "percent, at the shadow's darkest; 0 draws none", removebg=RemoveBg.TRANSLATED
        ),
    )
    shadow_softness: float = field(
        default=30.0,
        metadata=_shadow_number(
            30.0,
            0.0,
            100.0,
            "blur: 100 is 10% of the subject's longer side (15% for cast)",
            removebg=RemoveBg.EXTENSION,
        ),
    )
    shadow_angle: float | None = field(
        default=None,
        metadata=_shadow_number(  # None: the type's own (``DEFAULT_SHADOW_ANGLE``)
            None,
            0.0,
            360.0,
            "where the light comes from, degrees clockwise from the top (0 above, 90 right, 180 in front); "
            "unset: "
            + ", ".join(f"{kind.value} {angle:g}" for kind, angle in DEFAULT_SHADOW_ANGLE.items() if angle),
            empty_unset=True,
            removebg=RemoveBg.EXTENSION,
        ),
    )
    shadow_distance: float = field(
        default=3.0,
        metadata=_shadow_number(
            3.0,
            0.0,
            50.0,
            "drop: the offset, percent of the subject's longer side",
            removebg=RemoveBg.EXTENSION,
        ),
    )
    shadow_elevation: float = field(
        default=45.0,
        metadata=_shadow_number(
            45.0,
            5.0,
            85.0,
            "cast: the light's height over the floor in degrees (low: a long shadow)",
            removebg=RemoveBg.EXTENSION,
        ),
    )
    shadow_color: Color = field(
        default=(0, 0, 0),
        metadata=row(
            lambda value, name: parse_color(value, name)[:3],
            {**COLOR, "default": "#000000", "description": "hex or colour name"},
            flag=Flag(help="default: black"),
            text=_hex,
            removebg=RemoveBg.EXTENSION,
        ),
    )
    preset: str | None = field(
        default=None,
        metadata=row(
            unless_none(parse_preset),
            {
                "type": "string",
                "enum": list(PRESETS),
                "description": "a marketplace's canvas, background and format (options given win); the "
                "answer's check says whether the result meets its rules",
            },
            flag=Flag("--preset", choices=tuple(PRESETS), help="a marketplace's canvas, background, format"),
            removebg=RemoveBg.EXTENSION,
        ),
    )
    result_id: str | None = field(
        default=None,
        metadata=row(
            unless_none(parse_result_id),
            {
                "type": "string",
                "pattern": RESULT_ID_PATTERN,
                "description": "a touch-up of an earlier answer of this account (its result_id, kept 24 h; "
                "then 410): no image, no model run, charged 0; the whole result is made again from its "
                "matte with these options and the strokes in refine",
            },
            empty_unset=True,
        ),
    )
    # brush strokes over the matte (a PNG: opaque white keeps, opaque black erases; alphacut.touchup),
    # uploaded as ``refine`` or ``refine_base64`` like a background file
    refine: bytes | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Normalise so that CutoutOptions(format="jpeg") and from_mapping agree.
        for row in OPTION_FIELDS:
            object.__setattr__(self, row.name, row.parse(getattr(self, row.name), row.name))
        object.__setattr__(self, "bg_image", self.bg_image or None)
        object.__setattr__(self, "refine", self.refine or None)
        if self.bg_color is not None and self.has_background_image:
            raise InvalidOption(
                "give one background: bg_color, bg_image_url or bg_image_file", field="bg_color"
            )
        if self.format == AUTO_FORMAT:
            object.__setattr__(self, "format", ImageFormat.JPG if self.fills_background else ImageFormat.PNG)

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
        return [row.name for row in OPTION_FIELDS] + [row.name for row in ALIASES]

    @classmethod
    def from_mapping(
        cls,
        params: Mapping[str, Any],
        *,
        strict: bool = False,
        bg_image: bytes | None = None,
        refine: bytes | None = None,
    ) -> CutoutOptions:
        """Options from request parameters (strings). ``strict`` refuses unknown names; ``bg_image``
        is an uploaded background file (or the one ``bg_image_url`` names, already fetched);
        ``refine`` the uploaded strokes (``alphacut.touchup``)."""
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
            values = {**PRESETS[parse_preset(preset)].options, **values, **_other_side(preset, values)}
        else:
            values.pop("preset", None)
        for row in OPTION_FIELDS:
            if row.empty_unset and row.name in values and str(values[row.name]).strip() == "":
                del values[row.name]
        channels = values.pop("channels", None)
        if channels is not None:
            output = parse_channels(channels)
            if "output" in values and _choice(OutputKind, values["output"], "output") is not output:
                raise InvalidOption(
                    f"channels={channels} contradicts output={values['output']}", field="channels"
                )
            values["output"] = output
        return cls(**values, bg_image=bg_image, refine=refine)

    def with_changes(self, **changes: Any) -> CutoutOptions:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The options as request parameters (JSON-safe; a background file is not included)."""
        return {row.name: row.text(getattr(self, row.name)) for row in OPTION_FIELDS}


# the table's rows, in the order the documents list them
OPTION_FIELDS: tuple[OptionField, ...] = tuple(
    replace(f.metadata[OPTION_ROW], name=f.name) for f in fields(CutoutOptions) if OPTION_ROW in f.metadata
)
# parameters that set another option's field
ALIASES: tuple[OptionField, ...] = (
    OptionField(
        parse_channels,
        {"type": "string", "enum": ["rgba", "alpha"], "description": "alpha = output=mask"},
        flag=Flag("--channels", choices=("rgba", "alpha"), help="alpha: the matte alone"),
        removebg=RemoveBg.TRANSLATED,
        name="channels",
        sets="output",
    ),
)


def option_rows() -> list[OptionField]:
    """Every request parameter's row in the documents' order, an alias after the field it sets."""
    rows: list[OptionField] = []
    for row in OPTION_FIELDS:
        rows += [row, *(alias for alias in ALIASES if alias.sets == row.name)]
    return rows
