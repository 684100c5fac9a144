"""The one image pipeline: decode -> preprocess -> inference -> postprocess -> encode.

Every caller (the sync Lambdas, the task workers, the SageMaker server, the CLI, the tests) runs
this; they differ only in where the bytes come from and go to. Each stage's time is recorded.

Usage::

    pipeline = Pipeline.from_settings()
    result = pipeline.run(data, CutoutOptions(type="person", output="both"))
    result.image, result.mask, result.bbox, result.timings   # bytes, bytes, (l, t, r, b), {stage: ms}
"""

from __future__ import annotations

import contextvars
import dataclasses
import io
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Self

import numpy as np
from PIL import Image

from alphacut import geometry, shadows, touchup, verdict
from alphacut.caller_scope import current_account, is_test
from alphacut.codec import (
    FORMAT_MAX_SIDE,
    DecodedImage,
    compose_on_color,
    cover,
    decode_image,
    downscale,
    encode_cutout,
    encode_mask,
)
from alphacut.costume import CostumeParse, Garment, class_map_from_scores
from alphacut.errors import AlphacutError, InvalidOption
from alphacut.extras import refuse_bad_extras
from alphacut.matte import (
    alpha_to_uint8,
    clean_matte,
    estimate_foreground,
    fuse_person,
    mirror_confirmed,
    resize_matte,
    stamp_matte,
    unsure,
)
from alphacut.models import ModelStore, backbone, isnet, selfie
from alphacut.models.costume_head import head_inputs
from alphacut.models.registry import DEFAULT_MODEL, MattingSpec, check_model
from alphacut.options import (
    PREVIEW_MEGAPIXELS,
    CutoutOptions,
    ImageFormat,
    OutputKind,
    Quality,
    Roi,
    Shadow,
    ShadowFrame,
    SubjectType,
)
from alphacut.presets import PRESETS, CanvasChoice, Delivered, PresetCheck, photo_edges, product_box
from alphacut.settings import EngineSettings, ImageLimits, SettingError
from alphacut.watermark import Watermark

STAGES = ("decode", "preprocess", "inference", "postprocess", "encode")


class Timings(dict[str, float]):
    """Milliseconds per stage; ``with timings.stage("decode"):`` adds to that stage."""

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self[name] = self.get(name, 0.0) + (time.perf_counter() - start) * 1000.0

    @property
    def total(self) -> float:
        return sum(self.values(), 0.0)


@dataclass(frozen=True)
class MatteRequest:
    """One picture for ``Pipeline.mattes``."""

    image: DecodedImage
    subject: SubjectType
    quality: Quality = Quality.FAST
    model: str = DEFAULT_MODEL  # the matting model (``alphacut.models.registry``)


@dataclass(frozen=True)
class PreparedMatte:
    """A picture ready for the models (``Pipeline.prepare_matte``); a stamp needs none."""

    request: MatteRequest
    rgb: np.ndarray
    model_input: np.ndarray | None = None
    person_input: np.ndarray | None = None


@dataclass(frozen=True)
class RawMatte:
    """What the models gave for one picture: the matting model's matte (None for a stamp) and the
    selfie model's person matte (persons only)."""

    matte: np.ndarray | None
    person: np.ndarray | None = None


@dataclass
class Segmentation:
    """A matte at the input's resolution, with the colours to show under it."""

    alpha: np.ndarray  # H x W uint8
    foreground: np.ndarray  # H x W x 3 uint8 (edge colours de-contaminated)
    type: SubjectType  # the type that was run (auto resolved)
    model: str | None = None  # the matting model that made it (None: a stamp's ink, a costume)
    model_alpha: np.ndarray | None = None  # the matte before strokes (``options.refine``), where drawn

    @property
    def kept_alpha(self) -> np.ndarray:
        """The matte a touch-up starts from: the model's, never a stroke's."""
        return self.model_alpha if self.model_alpha is not None else self.alpha


@dataclass
class CutoutResult:
    image: bytes | None
    mask: bytes | None
    content_type: str | None  # of ``image``; the mask is always image/png
    width: int  # of the delivered result
    height: int
    input_width: int
    input_height: int
    bbox: geometry.Box | None  # the subject in the input image (None: nothing found)
    type: SubjectType
    timings: Timings = field(default_factory=Timings)
    subject_box: geometry.Box | None = None  # the subject in the delivered result
    source_size: tuple[int, int] = (0, 0)  # the image as sent (before size shrank it)
    check: PresetCheck | None = None  # the result measured against its preset's rules
    enlargement: float | None = None  # the subject's scale from the photo as sent, where it was resized
    model: str | None = None  # the matting model that made the matte
    verdict: verdict.Verdict | None = None  # how likely the matte is right (None: a garment's)
    # the model's matte at ``input_width`` x ``input_height`` (before layout), for a touch-up
    matte: np.ndarray | None = field(default=None, repr=False, compare=False)
    result_id: str | None = None  # where that matte is kept (``alphacut.touchup``), once it is

    @property
    def found(self) -> bool:
        return self.bbox is not None

    @property
    def single_image(self) -> tuple[bytes, str]:
        """What a one-image answer carries: the cutout when one was made, else the mask (PNG)."""
        if self.image is not None:
            return self.image, self.content_type or "image/png"
        if self.mask is None:
            raise ValueError("the result holds no image")
        return self.mask, "image/png"


@dataclass
class GarmentResult:
    garment: Garment
    share: float  # of the image's pixels
    result: CutoutResult | None  # None: the garment is not in the image

    @property
    def present(self) -> bool:
        return self.result is not None


@dataclass
class CostumeResult:
    outfit: CutoutResult  # clothes, bag, shoes and hat together (no skin, no hair)
    garments: list[GarmentResult]  # the ones asked for, in the order asked
    shares: dict[Garment, float]  # every garment's share of the image
    class_map: bytes | None  # one-channel PNG of class ids, when a mask is asked for
    timings: Timings


@dataclass
class Layout:
    """The cutout laid out: its colours and alpha, the subject's box in the input (None: nothing
    found), the shadow to draw (shortened where it had to be), how much the product was scaled
    from the photo as sent (linear), and the product's alpha mass the layout should show."""

    rgb: np.ndarray
    alpha: np.ndarray
    bbox: geometry.Box | None
    shadow: Shadow
    enlargement: float = 1.0
    expected_mass: float = 0.0
    canvas: CanvasChoice | None = None  # the canvas a preset chose for this photo


def _mirrored(batch: np.ndarray) -> np.ndarray:
    """A model input (N x C x H x W) flipped left to right."""
    return np.ascontiguousarray(batch[..., ::-1])


def check_preset(
    options: CutoutOptions,
    picture: bytes,
    laid: Layout,
    shade: np.ndarray | None,
    matte: np.ndarray,
    judged: verdict.Verdict | None = None,
) -> PresetCheck:
    """The preset's rules measured on the delivered bytes (decoded again: JPEG's own pixels), the
    product as laid out, and the matte in the photo (``matte``: where the photo's frame cut it); the
    verdict on the matte (``judged``) says how much of the product's inside is partly see-through,
    and whether a pass is unsure."""
    fmt = options.format.value
    if options.format is ImageFormat.ZIP:
        pixels = np.zeros(laid.alpha.shape + (3,), np.uint8)  # no one picture to measure: format fails
    else:
        pixels = np.asarray(Image.open(io.BytesIO(picture)))
        if pixels.ndim == 2:
            pixels = np.repeat(pixels[..., None], 3, axis=2)
    shown = float(laid.alpha.sum(dtype=np.int64))
    cut = max(0.0, 1.0 - shown / laid.expected_mass) if laid.expected_mass else 0.0
    see_through = judged.see_through if judged is not None else 0.0
    delivered = Delivered(
        pixels, laid.alpha, shade, fmt, len(picture), laid.enlargement, photo_edges(matte), cut, see_through
    )
    unsure, reasons = (judged.unsure, judged.reasons) if judged is not None else (False, ())
    check = PRESETS[options.preset or ""].check(delivered)
    return dataclasses.replace(check, canvas=laid.canvas, unsure=unsure, reasons=reasons)


# the models ``Pipeline.warm_up`` can load and run (ModelStore's names)
WARMABLE = ("isnet", "selfie", "isnet_features", "backbone", "costume")


def padding_with_room(options: CutoutOptions, canvas: tuple[int, int]) -> tuple[int, int, int, int]:
    """The options' padding in pixels on a ``canvas`` (width, height), or a 400 where it leaves no
    room for the subject: checked before the model where the canvas is the photo's own size, and
    in the layout where only the matte decides it."""
    padding = options.padding.sides_within(*canvas)
    if padding[1] + padding[3] >= canvas[0] or padding[0] + padding[2] >= canvas[1]:
        raise InvalidOption(
            f"leaves no room on the {canvas[0]}x{canvas[1]} canvas", field="padding", limit=canvas
        )
    return padding


class Pipeline:
    def __init__(self, models: ModelStore, limits: ImageLimits | None = None, place: str | None = "lambda"):
        self.models = models
        self.limits = limits or ImageLimits()
        # where this pipeline runs (a model's ``runs_on``): lambda | gpu; None: the CLI's machine
        self.place = place

    def model_spec(self, options: CutoutOptions) -> MattingSpec:
        """The matting model the options name (the default: ISNet), refused with a 400 naming it
        where it is not in the registry or does not run here, or for a costume (ISNet's own)."""
        name = options.model or DEFAULT_MODEL
        if options.type is SubjectType.COSTUME and name != DEFAULT_MODEL:
            raise InvalidOption(f"costume runs on {DEFAULT_MODEL} only, not {name}", field="model")
        return check_model(name, self.models.specs, self.place)

    def runs_here(self, name: str) -> bool:
        """Whether the registry has the model ``name`` and it may run where this pipeline runs."""
        spec = self.models.specs.get(name)
        return spec is not None and spec.runs_at(self.place)

    def view_side(self, options: CutoutOptions) -> int:
        """How large a view of the photo the matte needs: the chosen model's square input (a
        stamp's ink, which no model reads, at the default model's, without the registry)."""
        if options.type.resolved is SubjectType.STAMP:
            return isnet.INPUT_SIZE
        return self.model_spec(options).side

    @classmethod
    def from_settings(cls, settings: EngineSettings | None = None, place: str | None = "lambda") -> Self:
        settings = settings or EngineSettings.from_env()
        return cls(ModelStore.from_settings(settings), settings.limits, place)

    def warm_up(self, names: tuple[str, ...]) -> None:
        """Load the named models now (at cold start) and run each once on a blank picture: the
        first run of an onnxruntime session pays for its memory arena and lazy set-up (measured:
        2.9 s against 1.7 s for the next ones), and that belongs in init, not in a customer's call.
        Names as ``WARMABLE``; a Lambda function's come from its ALPHACUT_WARM_MODELS."""
        unknown = set(names) - set(WARMABLE)
        if unknown:
            raise SettingError(
                f"ALPHACUT_WARM_MODELS: unknown model {min(unknown)!r}; models are " + ", ".join(WARMABLE)
            )
        blank = DecodedImage(np.full((480, 640, 3), 128, np.uint8), None, "png")
        for name in names:
            getattr(self.models, name)
        if set(names) & {"isnet_features", "backbone", "costume"}:
            self.parse_costume(blank)
        for model, subject in (("isnet", SubjectType.OBJECT), ("selfie", SubjectType.PERSON)):
            if model in names:
                self.matte(blank, subject)

    def warm_batch(self) -> int:
        """Run ISNet once at the batch size its session always runs (``Engine.batch_size``), so
        that a GPU session's search for that shape's kernels happens now, not in a customer's call.
        Nothing where the engine runs one picture at a time. Returns the pictures it ran (0: none)."""
        if not self.models.isnet.session.batches:
            return 0
        self.models.isnet.run_many([isnet.preprocess(np.full((480, 640, 3), 128, np.uint8))])
        return self.models.isnet.session.batch_size

    # ---- stages ----------------------------------------------------------------------------------
    def decode(
        self, data: bytes, timings: Timings | None = None, options: CutoutOptions | None = None
    ) -> DecodedImage:
        """The image, at most as large as ``options.size`` allows (size=preview: 0.25 MP)."""
        with (timings if timings is not None else Timings()).stage("decode"):
            image = decode_image(data, self.limits)
            return image if options is None else self._at_size(image, options)

    def decode_views(
        self, data: bytes, timings: Timings | None = None, options: CutoutOptions | None = None
    ) -> tuple[DecodedImage, DecodedImage]:
        """(the image at most as large as ``options.size`` allows, the image the model is to see).

        The model sees the photo as large as its input needs (``geometry.covering``), never
        shrunk to a small result's size first: a preview's matte is the full result's scaled down,
        not a model run on a picture with less in it (``Pipeline.segment`` takes both)."""
        with (timings if timings is not None else Timings()).stage("decode"):
            image = decode_image(data, self.limits)
            if options is None:
                return image, image
            small = self._at_size(image, options)
            view = geometry.covering(image.width, image.height, self.view_side(options))
            if view[0] * view[1] <= small.width * small.height:
                return small, small
            return small, downscale(image, *view)

    @staticmethod
    def _at_size(image: DecodedImage, options: CutoutOptions) -> DecodedImage:
        """At most as large as the options ask; a test key's result at most a preview's size."""
        megapixels = options.size.megapixels
        if is_test():
            megapixels = min(megapixels or PREVIEW_MEGAPIXELS, PREVIEW_MEGAPIXELS)
        return downscale(image, *geometry.cap_megapixels(image.width, image.height, megapixels))

    def matte(
        self,
        image: DecodedImage,
        subject: SubjectType,
        timings: Timings | None = None,
        quality: Quality = Quality.FAST,
        model: str = DEFAULT_MODEL,
    ) -> np.ndarray:
        """The model part: the alpha (float32 0..1) at the input's resolution.

        This is what a GPU endpoint serves; ``segmentation_from_matte`` (foreground colours) runs wherever the
        result is composed. ``quality=best`` runs the model on the picture and on its mirror and keeps
        soft alpha only where both see it (``auto``: see ``Quality.on``). ``model``: the registry's
        name (``alphacut.models.registry``). Every matte but a stamp's is cleaned (``clean_matte``).
        """
        return self.mattes([MatteRequest(image, subject, quality, model)], timings)[0]

    def mattes(self, requests: list[MatteRequest], timings: Timings | None = None) -> list[np.ndarray]:
        """``matte`` for several pictures, each matting model run once on the pictures that asked
        for it (one batch where the engine takes batches: ``run_many``)."""
        timings = timings if timings is not None else Timings()
        with timings.stage("preprocess"):
            prepared = [self.prepare_matte(request) for request in requests]
        with timings.stage("inference"):
            raw = self.infer_mattes(prepared)
        with timings.stage("postprocess"):
            return [self.finish_matte(item, outputs) for item, outputs in zip(prepared, raw)]

    def prepare_matte(self, request: MatteRequest) -> PreparedMatte:
        """The model inputs of one picture (its CPU work before the models): the GPU server's
        request threads make them, so that its model thread only runs models."""
        request = dataclasses.replace(request, subject=request.subject.resolved)
        if request.subject is SubjectType.COSTUME:
            raise InvalidOption(
                "costume is not a single matte: use parse_costume (POST /v1/costume)", field="type"
            )
        rgb = self._model_rgb(request.image)
        if request.subject is SubjectType.STAMP:
            return PreparedMatte(request, rgb)
        model_input = self.models.matting(request.model).preprocess(rgb)
        person = selfie.preprocess(rgb) if request.subject is SubjectType.PERSON else None
        return PreparedMatte(request, rgb, model_input, person)

    def infer_mattes(self, prepared: list[PreparedMatte]) -> list[RawMatte]:
        """The model runs of several prepared pictures: each matting model once on the pictures
        that asked for it (one batch where the engine takes batches), the selfie model on persons."""
        groups: dict[str, list[tuple[int, np.ndarray]]] = {}
        for index, item in enumerate(prepared):
            if item.model_input is not None:
                groups.setdefault(item.request.model, []).append((index, item.model_input))
        general: dict[int, np.ndarray] = {}
        for name, items in groups.items():
            general.update(self._mattes_of(name, items, [prepared[i].request for i, _ in items]))
        return [
            RawMatte(
                general.get(index),
                self.models.selfie.run(item.person_input) if item.person_input is not None else None,
            )
            for index, item in enumerate(prepared)
        ]

    def finish_matte(self, item: PreparedMatte, raw: RawMatte) -> np.ndarray:
        """One picture's alpha from its model outputs (its CPU work after the models)."""
        if raw.matte is None:  # a stamp: no model, its ink found on the picture itself
            alpha = stamp_matte(item.rgb)[0]
        else:
            alpha = resize_matte(raw.matte, item.rgb.shape[1], item.rgb.shape[0])
            if raw.person is not None:
                alpha = fuse_person(alpha, raw.person)
            alpha = clean_matte(alpha)
        return self._respect_input_alpha(item.request.image, alpha)

    def _mattes_of(
        self, name: str, items: list[tuple[int, np.ndarray]], requests: list[MatteRequest]
    ) -> dict[int, np.ndarray]:
        """One matting model's raw mattes for its ``items`` (request index, model input), in one
        run of every picture and its mirror where ``quality`` asks for it; where the engine mirrors
        only unsure mattes, a second run of the mirrors of those that came out unsure."""
        engine, model = self.models.engine, self.models.matting(name)
        plans = [r.quality.on(engine.cheap_model, r.subject, engine.mirror_when_unsure) for r in requests]
        best = [n for n, plan in enumerate(plans) if plan is Quality.BEST]
        out = model.run_many([b for _, b in items] + [_mirrored(items[n][1]) for n in best])
        mattes = out[: len(items)]
        for k, n in enumerate(best):
            mattes[n] = mirror_confirmed(mattes[n], out[len(items) + k][:, ::-1])
        again = [n for n, plan in enumerate(plans) if plan is Quality.AUTO and unsure(mattes[n])]
        if again:
            for n, mirrored in zip(again, model.run_many([_mirrored(items[n][1]) for n in again])):
                mattes[n] = mirror_confirmed(mattes[n], mirrored[:, ::-1])
        return {i: matte for (i, _), matte in zip(items, mattes)}

    @staticmethod
    def _model_rgb(image: DecodedImage) -> np.ndarray:
        # the models never saw transparency: show them the image on white
        if image.alpha is not None:
            return compose_on_color(image.rgb, image.alpha, (255, 255, 255))
        return image.rgb

    @staticmethod
    def _respect_input_alpha(image: DecodedImage, alpha: np.ndarray) -> np.ndarray:
        if image.alpha is not None:
            within: np.ndarray = np.minimum(alpha, image.alpha.astype(np.float32) * (1.0 / 255.0))
            return within
        return alpha

    def segmentation_from_matte(
        self,
        image: DecodedImage,
        alpha: np.ndarray,
        subject: SubjectType,
        timings: Timings | None = None,
        roi: Roi | None = None,
        model: str | None = None,
        strokes: bytes | None = None,
    ) -> Segmentation:
        """Colours under the alpha: stamps get their ink colour, everything else Blur-Fusion.
        With a ``roi`` only the subject inside that region is kept; ``strokes`` (a touch-up's PNG,
        ``alphacut.touchup``) are laid over the matte, which is kept as it was beside."""
        timings = timings if timings is not None else Timings()
        subject = subject.resolved
        with timings.stage("postprocess"):
            if roi is not None:
                alpha = geometry.keep_inside(alpha, roi.box(image.width, image.height))
            model_alpha = None
            if strokes is not None:
                model_alpha = alpha_to_uint8(alpha)
                alpha = touchup.apply_strokes(alpha, image.rgb, strokes)
            if subject is SubjectType.STAMP:
                _, colours = stamp_matte(self._model_rgb(image))
            else:
                colours = estimate_foreground(image.rgb, alpha)
            made_by = None if subject is SubjectType.STAMP else model
            return Segmentation(alpha_to_uint8(alpha), colours, subject, made_by, model_alpha)

    def parse_costume(self, image: DecodedImage, timings: Timings | None = None) -> CostumeParse:
        """One ISNet forward pass gives the matte and the decoder features, EfficientNet-Lite0 what
        the garments are; the costume head turns both into class scores; the matte cuts the class map."""
        timings = timings if timings is not None else Timings()
        rgb = self._model_rgb(image)
        height, width = rgb.shape[:2]
        head = self.models.costume
        with timings.stage("preprocess"):
            batch = isnet.preprocess(rgb)
            backbone_batch = backbone.preprocess(rgb) if head.needs_backbone else None
        with timings.stage("inference"):
            output = self.models.isnet_features.run(batch, with_features=True)
            maps = self.models.backbone.run(backbone_batch) if backbone_batch is not None else None
            scores = head.run(head_inputs(rgb, output, maps))
        with timings.stage("postprocess"):
            alpha = clean_matte(resize_matte(output.matte, width, height))
            alpha = self._respect_input_alpha(image, alpha)
            class_map = class_map_from_scores(scores, alpha, rgb)
            return CostumeParse(
                alpha=alpha_to_uint8(alpha),
                class_map=class_map,
                foreground=estimate_foreground(image.rgb, alpha),
            )

    def segment(
        self,
        image: DecodedImage,
        options: CutoutOptions,
        timings: Timings | None = None,
        view: DecodedImage | None = None,
    ) -> Segmentation:
        """The alpha matte and foreground colours for ``image``, at its own resolution (for
        costume: the whole outfit), only inside ``options.roi`` when there is one. ``view``: the
        same photo larger, for the model (``decode_views``); the matte is scaled to ``image``."""
        timings = timings if timings is not None else Timings()
        if options.type is SubjectType.COSTUME:
            parse = self.parse_costume(image, timings)
            alpha = parse.outfit_alpha()
            if options.roi is not None:
                alpha = geometry.keep_inside(alpha, options.roi.box(image.width, image.height))
            return Segmentation(alpha=alpha, foreground=parse.foreground, type=options.type)
        model = self.model_spec(options).name
        alpha = self.matte(view or image, options.type, timings, quality=options.quality, model=model)
        if view is not None and view is not image:
            alpha = resize_matte(alpha, image.width, image.height)
        return self.segmentation_from_matte(
            image, alpha, options.type, timings, options.roi, model, options.refine
        )

    def background_picture(self, options: CutoutOptions, width: int, height: int) -> np.ndarray | None:
        """The background image scaled to cover the result, or None when there is none."""
        if options.bg_image is None:
            if options.bg_image_url is not None:
                raise ValueError("bg_image_url must be fetched into bg_image before composing")
            return None
        try:
            background = decode_image(options.bg_image, self.limits)
        except AlphacutError as error:
            error.field = "bg_image_url" if options.bg_image_url else "bg_image_file"
            raise
        return cover(background, width, height)

    def frame_limit(self, options: CutoutOptions) -> geometry.FrameLimit:
        """The largest result: the configured limits and the output format's own."""
        side = min(self.limits.max_side, FORMAT_MAX_SIDE.get(options.format, self.limits.max_side))
        return geometry.FrameLimit(side, self.limits.max_pixels)

    def layout(
        self, image: DecodedImage, rgb: np.ndarray, alpha: np.ndarray, options: CutoutOptions
    ) -> Layout:
        """Crop, place and fit the cutout as the options ask, with room for its shadow; also the
        subject's box in the input and the shadow to draw. On a canvas the product is fitted and
        placed by its own box, and its shadow takes the room the padding leaves (shortened to it);
        elsewhere the photo's frame grows where the shadow would leave it, never past the output's
        limits (a longer shadow is shortened)."""
        bbox = geometry.subject_bbox(alpha)
        if bbox is None:
            return Layout(rgb, alpha, None, options.shadow_spec)
        sent = image.width / image.original_size[0]  # decoded pixels per pixel as sent
        most = options.max_enlargement / sent if options.max_enlargement is not None else None
        if options.has_canvas:
            return self._on_canvas(image, rgb, alpha, bbox, options, sent, most)
        photo = (0, 0, image.width, image.height)
        limit = self.frame_limit(options)
        keep = options.shadow_frame is ShadowFrame.KEEP and not options.crop  # a crop frames the shadow

        def fits(room: tuple[int, int, int, int]) -> bool:
            reach = geometry.union(photo, geometry.grow(bbox, room))
            return reach == photo if keep else limit.admits(reach)

        spec, room = shadows.fitted_room(alpha, bbox, options.shadow_spec, fits)
        if keep and spec.drawn and not fits(room):  # no room inside the photo: faded out, never cut
            spec, room = dataclasses.replace(spec, opacity=0.0), (0, 0, 0, 0)
        content = geometry.grow(bbox, room)
        frame = limit.clip(geometry.union(photo, content), photo)
        content = geometry.intersection(content, frame)
        box = frame
        if options.crop:
            box = geometry.expand_box(content, options.crop_margin, image.width, image.height, within=frame)
        if box != photo:
            rgb, alpha = geometry.crop(rgb, alpha, box)
        kept, scale = int(alpha.sum(dtype=np.int64)), 1.0
        if options.placement is not None:
            subject = geometry.shift(content, -box[0], -box[1])
            scale = geometry.place_factor(alpha.shape[1], alpha.shape[0], subject, options.scale, most)
            rgb, alpha = geometry.place(rgb, alpha, subject, options.scale, options.placement, most)
        return Layout(rgb, alpha, bbox, spec, scale * sent, kept * scale * scale)

    def _on_canvas(
        self,
        image: DecodedImage,
        rgb: np.ndarray,
        alpha: np.ndarray,
        bbox: geometry.Box,
        options: CutoutOptions,
        sent: float,
        most: float | None,
    ) -> Layout:
        """The product's box (with ``crop_margin``) fitted into the canvas less its padding and
        placed by ``position``; the shadow drawn only as far as the canvas has room for it."""
        product = geometry.expand_box(bbox, options.crop_margin, image.width, image.height)
        width, height = product[2] - product[0], product[3] - product[1]
        canvas = (image.width, image.height)  # padding or cover alone: the photo's own size
        choice = None
        if options.resizes:
            canvas = geometry.target_size(width, height, options.target_width, options.target_height)
        elif options.preset is not None:
            choice = self._preset_canvas(alpha, bbox, product, options, most)
            canvas = choice.size
        padding = padding_with_room(options, canvas)
        on = geometry.Canvas(*canvas, padding, options.fit, options.scale, options.position, most)
        spot = on.spot(width, height)
        scale, scale_y = (spot[2] - spot[0]) / width, (spot[3] - spot[1]) / height
        # the room between the product's own box and the canvas's edges, in the photo's pixels
        room = (
            bbox[0] - product[0] + spot[0] / scale,
            bbox[1] - product[1] + spot[1] / scale,
            product[2] - bbox[2] + (canvas[0] - spot[2]) / scale,
            product[3] - bbox[3] + (canvas[1] - spot[3]) / scale,
        )

        def fits(reach: tuple[int, int, int, int]) -> bool:
            return all(r <= a for r, a in zip(reach, room, strict=True))

        spec, needed = shadows.fitted_room(alpha, bbox, options.shadow_spec, fits)
        if spec.drawn and not fits(needed):
            spec, needed = (
                dataclasses.replace(spec, opacity=0.0),
                (0, 0, 0, 0),
            )  # no room: faded out, never cut
        region = geometry.union(product, geometry.grow(bbox, needed))
        rgb, alpha = geometry.crop(rgb, alpha, region)
        kept = int(alpha.sum(dtype=np.int64))
        size = (max(1, round(alpha.shape[1] * scale)), max(1, round(alpha.shape[0] * scale_y)))
        rgb, alpha = geometry.resize_pair(rgb, alpha, *size)
        x = spot[0] - round((product[0] - region[0]) * scale)
        y = spot[1] - round((product[1] - region[1]) * scale_y)
        rgb, alpha = geometry.paste(rgb, alpha, *canvas, x, y)
        return Layout(rgb, alpha, bbox, spec, scale * sent, kept * scale * scale, choice)

    @staticmethod
    def _preset_canvas(
        alpha: np.ndarray,
        bbox: geometry.Box,
        product: geometry.Box,
        options: CutoutOptions,
        most: float | None,
    ) -> CanvasChoice:
        """The preset's canvas for this photo: the fill each size would give is the product's solid
        box (what the check measures) placed as the layout will place it."""
        width, height = product[2] - product[0], product[3] - product[1]
        solid = product_box(alpha[bbox[1] : bbox[3], bbox[0] : bbox[2]]) or (0, 0, 0, 0)
        share_w, share_h = (solid[2] - solid[0]) / width, (solid[3] - solid[1]) / height

        def fill_at(size: tuple[int, int]) -> float:
            padding = options.padding.sides_within(*size)
            on = geometry.Canvas(*size, padding, options.fit, options.scale, options.position, most)
            spot = on.spot(width, height)
            # a pixel short of the fill the layout's rounding could leave
            return max(
                ((spot[2] - spot[0]) * share_w - 1) / size[0], ((spot[3] - spot[1]) * share_h - 1) / size[1]
            )

        return PRESETS[options.preset or ""].choose_canvas(fill_at, options.max_enlargement)

    def compose(
        self,
        image: DecodedImage,
        segmentation: Segmentation,
        options: CutoutOptions,
        timings: Timings | None = None,
        judge: bool = True,
        mark_on: np.ndarray | None = None,
    ) -> CutoutResult:
        """Lay out as the options ask, draw the shadow under the subject, encode the image and/or
        mask (the mask is the subject's alone), judge the matte over the photo (``judge``: a
        costume's garments are not judged, their outfit is), and check the result against the
        preset's rules. ``mark_on``: the alpha a test key's mark is laid on where it is not this
        result's own (a costume's garments share their outfit's mark), in the result's frame."""
        timings = timings if timings is not None else Timings()
        judged = None
        if judge:
            with timings.stage("postprocess"):
                judged = verdict.judge(segmentation.alpha, image.rgb)
        with timings.stage("encode"):
            laid = self.layout(image, segmentation.foreground, segmentation.alpha, options)
            rgb, alpha, bbox, spec = laid.rgb, laid.alpha, laid.bbox, laid.shadow
            subject_box = geometry.subject_bbox(alpha) if bbox is not None else None
            shade = shadows.draw(alpha, spec) if spec.drawn and bbox is not None else None
            picture = mask = check = None
            # a test key's result: one mark over its picture and its mask (alphacut.watermark)
            anchor = mark_on if mark_on is not None and mark_on.shape == alpha.shape else alpha
            mark = Watermark.on_subject(anchor, current_account()) if is_test() else None
            if options.output in (OutputKind.IMAGE, OutputKind.BOTH):
                background = self.background_picture(options, alpha.shape[1], alpha.shape[0])
                shown_rgb, shown_alpha = (
                    shadows.lay_under(rgb, alpha, shade, spec.color) if shade is not None else (rgb, alpha)
                )
                if mark is not None:
                    shown_rgb, shown_alpha = mark.on_picture(shown_rgb, shown_alpha)
                picture = encode_cutout(
                    shown_rgb,
                    shown_alpha,
                    options.format,
                    background if background is not None else options.background,
                )
                if options.preset is not None:
                    check = check_preset(options, picture, laid, shade, segmentation.alpha, judged)
            if options.output in (OutputKind.MASK, OutputKind.BOTH):
                shown_mask = mark.on_mask(alpha) if mark is not None else alpha
                mask = encode_mask(np.ascontiguousarray(shown_mask))
        return CutoutResult(
            image=picture,
            mask=mask,
            content_type=options.format.content_type if picture is not None else None,
            width=alpha.shape[1],
            height=alpha.shape[0],
            input_width=image.width,
            input_height=image.height,
            bbox=bbox,
            type=segmentation.type,
            timings=timings,
            subject_box=subject_box,
            source_size=image.original_size,
            check=check,
            enlargement=round(laid.enlargement, 3) if abs(laid.enlargement - 1.0) > 1e-3 else None,
            model=segmentation.model,
            verdict=judged,
            matte=segmentation.kept_alpha,
        )

    def run(self, data: bytes, options: CutoutOptions | None = None) -> CutoutResult:
        """Bytes in, result out: the whole pipeline. For ``type=costume`` the image is the outfit
        and the mask the class map (ids as in ``alphacut.costume``)."""
        options = options or CutoutOptions()
        self.model_spec(options)  # a model that is not here is refused before any decoding
        if options.type is SubjectType.COSTUME:
            costume = self.cut_out_garments(data, options, garments=())
            return dataclasses.replace(costume.outfit, mask=costume.class_map)
        timings = Timings()
        image, view = self.decode_views(data, timings, options)
        self.refuse_bad_extras(options)  # before the model: a refusal after it would be a free run
        self.refuse_what_the_photo_rules_out(image, options)
        segmentation = self.segment(image, options, timings, view)
        return self.compose(image, segmentation, options, timings)

    def refuse_bad_extras(self, options: CutoutOptions) -> None:
        """The pictures that come with a photo checked before the model runs (``alphacut.extras``)."""
        refuse_bad_extras(options, self.limits)

    def refuse_what_the_photo_rules_out(self, image: DecodedImage, options: CutoutOptions) -> None:
        """What the photo's size alone refuses, checked before the model with the error the compose
        would raise after it: a ``roi`` holding none of its pixels, a ``padding`` that leaves no
        room on its own canvas (no resize, no preset: the canvas is the photo's size)."""
        if options.roi is not None:
            options.roi.box(image.width, image.height)
        if not options.resizes and options.preset is None:
            padding_with_room(options, (image.width, image.height))

    def retouch(self, kept: touchup.KeptMatte, options: CutoutOptions) -> CutoutResult:
        """A kept result made again without a model run: its photo decoded at the size the options
        ask (at most the kept matte's), its matte scaled to it with ``options.refine``'s strokes
        laid over, then the whole compose (background, shadow, preset and its check, format, size,
        verdict)."""
        timings = Timings()
        image = self.decode(kept.photo, timings, options)
        height, width = kept.alpha.shape
        if image.width * image.height > width * height:  # never more than was paid for (size=preview)
            image = downscale(image, width, height)
        alpha = resize_matte(kept.alpha.astype(np.float32) * (1.0 / 255.0), image.width, image.height)
        segmentation = self.segmentation_from_matte(
            image, alpha, kept.type, timings, options.roi, kept.model, options.refine
        )
        return self.compose(image, segmentation, options, timings)

    def cut_out_garments(
        self,
        data: bytes,
        options: CutoutOptions | None = None,
        garments: tuple[Garment, ...] = tuple(Garment),
    ) -> CostumeResult:
        """The outfit and one result per garment asked for (absent ones have no result).

        ``options.output`` mask/both adds the class map; crop, canvas and shadow apply to every
        image; the class map keeps the input's pixels, cropped to the outfit's box when ``crop`` is
        asked (ids do not interpolate, and a class map has no shadow).
        """
        options = (options or CutoutOptions()).with_changes(type=SubjectType.COSTUME)
        self.model_spec(options)  # the clothing head reads ISNet's features: another model is a 400
        wants_mask = options.output in (OutputKind.MASK, OutputKind.BOTH)
        timings = Timings()
        image = self.decode(data, timings, options)
        self.refuse_bad_extras(options)
        parse = self.parse_costume(image, timings)
        shares = parse.shares()
        present = [garment for garment in garments if parse.present(garment, shares)]
        alphas = [parse.outfit_alpha()] + [parse.garment_alpha(garment) for garment in present]

        # a test key's outputs of one call carry one mark, the outfit's, so they never fill each
        # other's holes: where every output keeps the photo's frame (no crop, canvas or preset)
        shared_frame = not options.crop and not options.has_canvas and options.preset is None
        outfit_mark = alphas[0] if shared_frame else None

        def compose_one(alpha: np.ndarray, judge: bool) -> CutoutResult:
            segmentation = Segmentation(alpha, parse.foreground, SubjectType.COSTUME)
            result = self.compose(image, segmentation, options, judge=judge, mark_on=outfit_mark)
            return dataclasses.replace(result, timings=timings)

        caller = contextvars.copy_context()  # the pool's threads work in the call's context (a test key)

        def in_call(alpha: np.ndarray, judge: bool) -> CutoutResult:
            return caller.copy().run(compose_one, alpha, judge)

        # up to nine PNGs: zlib and Pillow's encoders release the GIL, so they run on every core
        # (measured: 8 cutouts at 1024², 2 cores: 572 ms one after another, 279 ms in two threads)
        with timings.stage("encode"), ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            outfit, *composed = pool.map(in_call, alphas, [True] + [False] * (len(alphas) - 1))
        by_garment = dict(zip(present, composed))
        results = [GarmentResult(garment, shares[garment], by_garment.get(garment)) for garment in garments]
        class_map = None
        if wants_mask:
            with timings.stage("encode"):
                ids, outfit_alpha = parse.class_map, alphas[0]
                if options.crop and outfit.bbox is not None:
                    box = geometry.expand_box(outfit.bbox, options.crop_margin, image.width, image.height)
                    ids = ids[box[1] : box[3], box[0] : box[2]]
                    outfit_alpha = outfit_alpha[box[1] : box[3], box[0] : box[2]]
                if is_test():  # a test key's class map is marked too, with its outfit's mark
                    marked = Watermark.on_subject(outfit_alpha, current_account()).where
                    ids = np.where(marked, 0, ids).astype(ids.dtype)
                class_map = encode_mask(np.ascontiguousarray(ids))
        return CostumeResult(outfit, results, shares, class_map, timings)
