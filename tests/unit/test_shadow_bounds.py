"""Hostile shadows: a shadow's room never takes the result past the output's limits (the configured
side and pixels, and the format's own: WebP's 16,383 px). A shadow that would is shortened, never
cut by an error; a subject one row tall at the photo's top edge answers as any other photo does.
No model: the matte is drawn."""

from __future__ import annotations

import io
import tracemalloc

import numpy as np
import pytest
from alphacut import geometry, shadows
from alphacut.codec import DecodedImage
from alphacut.options import CutoutOptions, Shadow, ShadowType
from alphacut.pipeline import Pipeline, Segmentation
from alphacut.settings import ImageLimits
from PIL import Image


def _matte(width: int, height: int, box: tuple[int, int, int, int]) -> tuple[DecodedImage, Segmentation]:
    alpha = np.zeros((height, width), np.uint8)
    alpha[box[1] : box[3], box[0] : box[2]] = 255
    colours = np.full((height, width, 3), (30, 90, 160), np.uint8)
    return DecodedImage(colours.copy(), None, "png"), Segmentation(alpha, colours, CutoutOptions().type)


def _compose(params: dict, photo: tuple[DecodedImage, Segmentation], limits: ImageLimits | None = None):
    image, segmentation = photo
    pipeline = Pipeline(models=None, limits=limits or ImageLimits())  # type: ignore[arg-type]
    return pipeline.compose(image, segmentation, CutoutOptions.from_mapping(params))


def _opened(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


LOW_SIDE_LIGHT = {"shadow": "cast", "shadow_elevation": "5", "shadow_angle": "90", "shadow_opacity": "80"}


@pytest.mark.parametrize("kind", ["contact", "drop", "cast"])
def test_a_subject_one_row_tall_at_the_photos_top_edge_gets_its_shadow_as_any_photo_does(kind):
    photo = _matte(300, 400, (50, 0, 250, 1))
    result = _compose({"shadow": kind, "format": "png"}, photo)
    assert _opened(result.image).size == (result.width, result.height)
    assert result.height >= 400 and result.width >= 300


def test_a_long_cast_shadow_is_shortened_to_the_configured_side_not_an_error():
    photo = _matte(200, 2000, (80, 50, 120, 1990))  # a pole: its shadow at 5 degrees is 21,000 px long
    result = _compose({**LOW_SIDE_LIGHT, "format": "webp"}, photo)
    picture = np.asarray(_opened(result.image))
    assert max(picture.shape[:2]) <= 4096 and picture.shape[0] * picture.shape[1] <= 4096 * 4096
    assert result.width > 2000  # still a long shadow to the left, as far as the limit lets it go
    floor = picture[1990:, : result.width - 300, 3]  # on the floor left of the pole: the shadow
    shaded = np.flatnonzero(floor.max(axis=0))
    assert shaded.size and shaded[-1] - shaded[0] > 1000


def test_webps_own_side_limit_holds_where_the_configured_limits_are_larger():
    roomy = ImageLimits(max_side=40_000, max_pixels=400_000_000)
    photo = _matte(200, 2000, (80, 50, 120, 1990))
    result = _compose({**LOW_SIDE_LIGHT, "format": "webp"}, photo, roomy)
    assert 16_000 < result.width <= 16_383 and _opened(result.image).format == "WEBP"


def test_a_tall_photos_cast_shadow_stays_within_the_pixel_limit_and_its_memory_is_bounded():
    photo = _matte(400, 4000, (150, 50, 250, 3990))  # once a 45,656 x 4,766 frame: 3.5 GB at peak
    tracemalloc.start()
    try:
        result = _compose({**LOW_SIDE_LIGHT, "format": "png"}, photo)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.width <= 4096 and result.height <= 4096 and result.width * result.height <= 4096 * 4096
    assert peak < 600 * 1024 * 1024, peak  # a 4096 x 4096 frame's planes: within the function's memory


def test_a_shadow_with_room_to_spare_is_drawn_as_asked():
    alpha = np.zeros((800, 900), np.uint8)
    alpha[200:400, 410:490] = 255
    spec = Shadow(ShadowType.CAST, opacity=60, angle=150, elevation=30)
    box = geometry.subject_bbox(alpha)
    assert shadows.fitted(alpha, box, spec, lambda room: True) == spec


@pytest.mark.parametrize("kind", [ShadowType.DROP, ShadowType.CAST, ShadowType.CONTACT])
def test_a_shortened_shadow_reaches_less_far_the_shorter_it_is(kind):
    alpha = np.zeros((800, 900), np.uint8)
    alpha[200:400, 410:490] = 255
    box = geometry.subject_bbox(alpha)
    spec = Shadow(kind, opacity=60, softness=60, angle=110, distance=30, elevation=10)
    rooms = [sum(shadows.reach(alpha, box, shadows.shortened(spec, share))) for share in (1.0, 0.5, 0.1)]
    assert rooms[0] > rooms[1] > rooms[2]


def test_the_frame_limit_cuts_what_a_frame_adds_around_the_photo_never_the_photo():
    limit = geometry.FrameLimit(1000, 600_000)
    photo = (0, 0, 800, 600)
    clipped = limit.clip((-500, -10, 900, 700), photo)
    assert limit.admits(clipped)
    assert clipped[0] <= 0 and clipped[1] <= 0 and clipped[2] >= 800 and clipped[3] >= 600
    assert limit.clip(photo, photo) == photo


@pytest.mark.parametrize("kind", ["drop", "contact", "cast"])
@pytest.mark.parametrize(
    "footprint",
    ["faint (nothing solid)", "one pixel", "cut by the frame's bottom", "floating", "a column"],
)
def test_every_shadow_is_defined_for_every_footprint_a_matte_can_have(kind, footprint):
    """Real mattes have footprints the drawn boxes above never have: a subject all below the solid
    level (a faint base), one solid pixel, one cut by the frame's bottom, one floating in the air,
    one a single column wide. Every shadow type draws or leaves nothing, never raises."""
    alpha = np.zeros((120, 160), np.uint8)
    if footprint == "faint (nothing solid)":
        alpha[30:90, 40:120] = 90  # above the subject threshold, below what stands on a floor
    elif footprint == "one pixel":
        alpha[60, 80] = 255
    elif footprint == "cut by the frame's bottom":
        alpha[50:, 30:130] = 255
    elif footprint == "floating":
        alpha[10:30, 60:100] = 255
        alpha[30:60, 79:81] = 60  # a faint string it hangs from
    else:
        alpha[20:100, 70] = 255
    spec = Shadow(type=ShadowType(kind))
    box = geometry.subject_bbox(alpha)
    assert box is not None
    room = shadows.reach(alpha, box, spec)
    assert all(side >= 0 for side in room)
    shade = shadows.draw(alpha, spec)
    assert shade.shape == alpha.shape and shade.dtype == np.uint8
    colours = np.full((120, 160, 3), (30, 90, 160), np.uint8)
    params = {"shadow": kind, "format": "png", "output": "image"}
    result = _compose(
        params,
        (DecodedImage(colours.copy(), None, "png"), Segmentation(alpha, colours, CutoutOptions().type)),
    )
    assert result.image
