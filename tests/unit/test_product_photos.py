"""Shadows, a fixed canvas and marketplace presets, measured on the result: where the shadow falls,
that it is never cut, the canvas's exact size and padding, a preset's white and fill, and the
options' limits. A drawn bottle stands in for the photo (the engine tests use a real one)."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from alphacut import geometry, shadows
from alphacut.codec import DecodedImage
from alphacut.errors import InvalidOption
from alphacut.options import CutoutOptions, Shadow, ShadowType
from alphacut.pipeline import Pipeline, Segmentation
from alphacut.presets import MINIMAL_SHADOW, PRESETS, Delivered, fill_ratio, product_box
from alphacut.settings import ImageLimits
from PIL import Image

SUBJECT = (120, 60, 200, 260)  # a bottle: 80 x 200, standing on its lowest edge


def _photo(width: int = 400, height: int = 300, box: tuple[int, int, int, int] = SUBJECT):
    """A photo, and the matte and colours the model would give for a bottle in ``box``."""
    alpha = np.zeros((height, width), np.uint8)
    left, top, right, bottom = box
    alpha[top:bottom, left:right] = 255
    alpha[top : top + 30, left : left + 25] = 0  # a shoulder: the silhouette is not its box
    colours = np.zeros((height, width, 3), np.uint8)
    colours[...] = (30, 90, 160)
    return DecodedImage(colours.copy(), None, "png"), Segmentation(alpha, colours, CutoutOptions().type)


def _compose(params: dict, image=None, segmentation=None):
    if image is None:
        image, segmentation = _photo()
    return Pipeline(models=None, limits=ImageLimits()).compose(  # type: ignore[arg-type]
        image, segmentation, CutoutOptions.from_mapping(params)
    )


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def _centroid(weights: np.ndarray) -> tuple[float, float]:
    rows, cols = np.indices(weights.shape)
    total = float(weights.sum())
    return float((cols * weights).sum()) / total, float((rows * weights).sum()) / total


def _shade(spec: Shadow) -> tuple[np.ndarray, np.ndarray]:
    """The shadow alone, for the bottle on a canvas with room for it."""
    _, segmentation = _photo(900, 800, (410, 200, 490, 400))
    return segmentation.alpha, shadows.draw(segmentation.alpha, spec)


# ---- where the shadow falls ------------------------------------------------------------------
@pytest.mark.parametrize("kind", [ShadowType.DROP, ShadowType.CAST])
def test_the_shadow_falls_away_from_the_light_as_its_angle_turns(kind):
    for angle in (0, 45, 90, 135, 180, 225, 270, 315):
        alpha, shade = _shade(Shadow(kind, opacity=80, angle=angle, distance=10))
        shade_x, shade_y = _centroid(shade.astype(np.float64))
        if kind is ShadowType.DROP:
            subject_x, subject_y = _centroid(alpha.astype(np.float64))
        else:  # a cast shadow starts at the contact line: its direction is from where the subject stands
            subject_x, subject_y = 450.0, 400.0
        direction = math.atan2(shade_y - subject_y, shade_x - subject_x)
        expected = math.atan2(math.cos(math.radians(angle)), -math.sin(math.radians(angle)))
        turned = abs((direction - expected + math.pi) % (2 * math.pi) - math.pi)
        assert turned < math.radians(25), (angle, math.degrees(direction), math.degrees(expected))


def test_a_contact_shadow_touches_the_subjects_lowest_edge():
    alpha, shade = _shade(Shadow(ShadowType.CONTACT, opacity=60))
    bottom = geometry.subject_bbox(alpha)[3]
    under = shade[bottom, 410:490]  # the first row below the subject, under what stands on the floor
    assert under.min() > 0.3 * 0.6 * 255
    assert shade[bottom + 40 :].max() < under.min() and shade[:300].max() == 0  # a band, at the floor


def _angled_car() -> np.ndarray:
    """A car seen at an angle: its near wheel lower on the picture than its far one, its body above
    both, and nothing under the body between them."""
    alpha = np.zeros((600, 900), np.uint8)
    alpha[200:380, 200:700] = 255  # the body
    alpha[380:440, 240:330] = 255  # the near wheel: stands at row 440
    alpha[380:410, 580:660] = 255  # the far wheel: stands at row 410
    return alpha


def test_a_contact_shadow_lies_under_each_wheel_where_it_stands_not_under_the_box():
    alpha = _angled_car()
    shade = shadows.draw(alpha, Shadow(ShadowType.CONTACT, opacity=80, softness=10))
    near, far = shade[436:446, 260:310], shade[406:416, 600:640]
    assert near.max() > 100 and far.max() > 100  # both wheels grounded, the far one at its own height
    assert shade[436:446, 600:640].max() < far.max() / 4  # no band floating under the far wheel
    assert shade[420:460, 420:520].max() < near.max() / 4  # nothing under the body between the wheels


@pytest.mark.parametrize("angle", [150, 210])
def test_a_cast_shadow_lies_on_the_floor_through_both_wheels_not_under_the_box(angle):
    alpha = _angled_car()
    shade = shadows.draw(alpha, Shadow(ShadowType.CAST, opacity=80, angle=angle, elevation=45, softness=20))
    assert shade[408:414, 590:650].max() > 100 and shade[438:444, 250:320].max() > 100  # from each wheel
    # light from the front: the shadow falls behind, above the line through the wheels; a level
    # floor at the box's bottom laid the body's shadow under it (here its penumbra's edge: 10 and 15
    # with the floor fitted through the wheels alone, 3 and 6 when the body's overhangs counted too)
    assert shade[415:440, 430:500].max() < 20


def test_a_drop_shadow_falls_away_from_the_light_and_is_no_glow_on_its_side():
    _, shade = _shade(Shadow(ShadowType.DROP))  # the default: light from the top left
    light_side = max(shade[150:198, 410:490].max(), shade[200:400, 360:408].max())
    far_side = min(shade[402:450, 410:490].max(), shade[200:400, 492:540].max())
    assert far_side > 60 and light_side < 0.05 * shade.max()


def test_a_contact_shadow_lies_under_a_models_feet_and_never_beside_her_hand_or_bag():
    alpha = np.zeros((900, 600), np.uint8)
    alpha[100:560, 230:370] = 255  # the body
    alpha[560:850, 240:290] = 255  # the left leg: stands at row 850
    alpha[560:850, 310:360] = 255  # the right leg
    alpha[250:480, 190:230] = 255  # an arm hanging at the side, its hand at row 480
    alpha[400:520, 370:430] = 255  # a clutch bag held at the other side, its bottom at row 520
    shade = shadows.draw(alpha, Shadow(ShadowType.CONTACT, opacity=80, softness=10))
    assert shade[846:856, 250:280].max() > 100 and shade[846:856, 320:350].max() > 100  # the feet
    assert shade[470:500, 150:235].max() < 10  # nothing beside or under the hand
    assert shade[510:540, 365:440].max() < 10  # nor under the bag
    assert (
        shade[846:856, 190:230].max() < 30 and shade[846:856, 375:430].max() < 30
    )  # nor on the floor past the feet


def test_a_motorcycles_kickstand_and_both_wheels_are_grounded_by_one_line():
    alpha = np.zeros((500, 800), np.uint8)
    alpha[150:330, 150:650] = 255  # the frame and tank
    alpha[300:400, 150:260] = 255  # the rear wheel, at row 400
    alpha[300:380, 560:650] = 255  # the front wheel, at row 380 (the bike leans away)
    alpha[330:392, 400:406] = 255  # the kickstand, reaching the line between the wheels
    shade = shadows.draw(alpha, Shadow(ShadowType.CONTACT, opacity=80, softness=10))
    assert shade[396:404, 180:240].max() > 100 and shade[376:384, 580:630].max() > 100
    assert shade[388:396, 398:408].max() > 60  # the stand's foot, on the line, not a detached blob
    assert shade[400:420, 300:360].max() < 30  # between rear wheel and stand: the bike is in the air


def test_a_cast_shadow_is_sharp_at_the_contact_line_and_soft_far_from_it():
    # the light in front: the shadow lies behind, from the floor line (row 400) 173 rows up the picture
    _, shade = _shade(Shadow(ShadowType.CAST, opacity=100, angle=180, elevation=30, softness=60))
    near, far = shade[395].astype(float), shade[280].astype(float)

    def edge_width(row: np.ndarray) -> int:  # columns between 10 % and 90 % of the row's darkest
        return int(np.count_nonzero((row > 0.1 * row.max()) & (row < 0.9 * row.max())))

    assert edge_width(far) > 2 * edge_width(near) and far.max() < near.max()


# ---- what the result holds -------------------------------------------------------------------------
def test_opacity_zero_gives_the_same_bytes_as_no_shadow():
    plain = _compose({"format": "png", "crop": "true"})
    for kind in ("drop", "contact", "cast"):
        assert _compose({"format": "png", "crop": "true", "shadow": kind, "shadow_opacity": "0"}).image == (
            plain.image
        )


def test_the_same_request_twice_gives_the_same_bytes():
    params = {"format": "webp", "shadow": "cast", "shadow_angle": "120", "target_width": "300"}
    assert _compose(params).image == _compose(params).image


@pytest.mark.parametrize("kind", ["drop", "contact", "cast"])
@pytest.mark.parametrize(
    "layout", [{}, {"crop": "true"}, {"target_width": "500", "target_height": "500", "padding": "15%"}]
)
def test_a_shadow_is_never_cut_by_the_canvas(kind, layout):
    # the bottle stands on the photo's bottom edge, at its right: every shadow would leave the photo
    image, segmentation = _photo(400, 300, (300, 100, 400, 300))
    for angle in ("0", "90", "200", "315"):
        params = {"shadow": kind, "shadow_angle": angle, "shadow_opacity": "100", "output": "both", **layout}
        result = _compose(params, image, segmentation)
        # the shadow is what the picture has and the subject's own matte has not
        shadow = _pixels(result.image)[..., 3].astype(int) - _pixels(result.mask).astype(int)
        ring = np.concatenate([shadow[0], shadow[-1], shadow[:, 0], shadow[:, -1]])
        assert shadow.max() > 50 and ring.max() <= 0, (kind, angle, layout)


@pytest.mark.parametrize("kind", ["drop", "contact", "cast"])
def test_on_a_canvas_with_no_room_left_a_shadow_fades_out_rather_than_run_off_it(kind):
    params = {"shadow": kind, "shadow_opacity": "100", "output": "both", "format": "png"}
    result = _compose(
        {**params, "target_width": "500", "target_height": "500"}, *_photo(400, 300, (300, 100, 400, 300))
    )
    shadow = _pixels(result.image)[..., 3].astype(int) - _pixels(result.mask).astype(int)
    assert shadow.max() <= 0  # the bottle fills the canvas's height: no shadow rather than a cut one


def test_without_a_canvas_the_photo_grows_to_hold_the_shadow_and_the_mask_stays_the_subjects():
    image, segmentation = _photo(400, 300, (300, 100, 400, 300))
    result = _compose({"shadow": "drop", "output": "both"}, image, segmentation)
    assert result.width > 400 and result.height > 300
    mask = _pixels(result.mask)
    assert set(np.unique(mask)) == {0, 255} and np.count_nonzero(mask) == np.count_nonzero(segmentation.alpha)


def test_on_a_colour_the_shadow_darkens_it_and_on_transparency_it_is_see_through_black():
    asked = {"shadow": "drop", "shadow_angle": "0", "crop": "1", "output": "both"}
    white = _compose({**asked, "bg_color": "#ffffff"})
    on_white, see_through = _pixels(white.image), _pixels(_compose({**asked, "format": "png"}).image)
    below = white.subject_box[3] + 2, on_white.shape[1] // 2  # just under the bottle, in its shadow
    assert on_white[below][:3].max() < 230 and on_white[0, 0].tolist()[:3] == [255, 255, 255]
    assert see_through[below][:3].tolist() == [0, 0, 0] and 0 < see_through[below][3] < 255


# ---- the canvas ----------------------------------------------------------------------------------------
def test_a_canvas_has_the_exact_size_and_keeps_its_padding_free():
    result = _compose({"target_width": "640", "target_height": "480", "padding": "10% 20%", "format": "png"})
    alpha = _pixels(result.image)[..., 3]
    assert alpha.shape == (480, 640)
    box = geometry.subject_bbox(alpha)
    assert box[1] >= 48 and box[3] <= 432 and box[0] >= 128 and box[2] <= 512
    assert box[1] == 48 or box[3] == 432  # contain: the tall bottle touches the padding top and bottom


def test_padding_without_a_target_size_fits_the_subject_in_the_photos_own_size():
    alpha = _pixels(_compose({"padding": "10%", "position": "bottom", "format": "png"}).image)[..., 3]
    box = geometry.subject_bbox(alpha)
    assert alpha.shape == (300, 400) and box[1] == 30 and box[3] == 270  # the bottle, 240 px tall


def test_bottom_alignment_stands_the_subject_on_the_padding_line():
    alpha = _pixels(
        _compose(
            {"target_width": "500", "target_height": "500", "padding": "20px", "position": "bottom"}
        ).image
    )[..., 3]
    left, _top, right, bottom = geometry.subject_bbox(alpha)
    assert bottom == 480 and abs((left + right) / 2 - 250) <= 1


def test_cover_fills_the_canvas_and_contain_fits_inside_it():
    cover = geometry.subject_bbox(
        _pixels(_compose({"target_width": "400", "target_height": "400", "fit": "cover"}).image)[..., 3]
    )
    contain = geometry.subject_bbox(
        _pixels(_compose({"target_width": "400", "target_height": "400", "fit": "contain"}).image)[..., 3]
    )
    assert cover[0] == 0 and cover[2] == 400 and contain[1] == 0 and contain[3] == 400 and contain[0] > 0


# ---- presets ---------------------------------------------------------------------------------------------
STUDIO = (1600, 1200, (640, 200, 960, 1000))  # a studio photo: the bottle 320 x 800, on the floor


def _studio(box=STUDIO[2], width=STUDIO[0], height=STUDIO[1]):
    return _photo(width, height, box)


def _rules(result) -> dict:
    return {rule.rule: rule for rule in result.check.rules}


@pytest.mark.parametrize("name", list(PRESETS))
def test_a_preset_gives_its_size_and_format_and_a_whole_product_passes_its_check(name):
    preset = PRESETS[name]
    result = _compose({"preset": name, "shadow": "contact"}, *_studio())
    pixels = _pixels(result.image)
    chosen = result.check.canvas  # the recommended size, or one the check says it reduced to
    size = chosen.size
    assert chosen.recommended == preset.recommended and (size == preset.recommended or chosen.reduced)
    assert (pixels.shape[1], pixels.shape[0]) == size and result.image[:3] == b"\xff\xd8\xff"  # JPEG
    assert result.check is not None and result.check.passed, result.check.to_dict()
    assert (result.enlargement or 1.0) <= preset.max_enlargement  # None: not resized
    if preset.min_fill:
        bottle = (pixels[..., 2].astype(int) - pixels[..., 0] > 60).astype(np.uint8) * 255  # blue, not grey
        assert fill_ratio(product_box(bottle), *size) >= preset.min_fill
    corners = pixels[:16, :16].reshape(-1, 3)
    assert (corners == 255).all()


@pytest.mark.parametrize("shadow", ["drop", "contact"])
def test_amazon_passes_a_whole_product_with_the_default_drop_and_contact_shadows(shadow):
    result = _compose({"preset": "amazon", "shadow": shadow}, *_studio())
    assert result.check.passed, result.check.to_dict()
    assert 0 < _rules(result)["shadow_minimal"].measured <= MINIMAL_SHADOW


def test_the_white_rule_counts_every_off_white_background_pixel():
    result = _compose(
        {"preset": "amazon", "bg_color": "#fefefe"}, *_studio()
    )  # an option beside a preset wins
    rule = _rules(result)["background_white"]
    assert not result.check.passed and not rule.passed and rule.measured > 2000 * 2000 // 2
    assert result.check.header() == "amazon failed: background_white"


def test_amazon_fails_a_product_the_photos_frame_cut():
    result = _compose({"preset": "amazon"}, *_studio((640, 400, 960, 1200)))  # runs into the bottom edge
    assert _rules(result)["cut_by_photo"].measured == ["bottom"]
    assert result.check.header().startswith("amazon failed: cut_by_photo")


def test_amazon_fails_a_product_enlarged_past_its_limit_and_by_default_enlarges_no_further():
    tiny = _photo(400, 300, (170, 60, 230, 240))  # 60 x 180 px: ~10x to fill amazon's canvas
    allowed = _compose({"preset": "amazon", "upscale": "allow"}, *tiny)
    assert not _rules(allowed)["enlargement"].passed and _rules(allowed)["enlargement"].measured >= 9
    limited = _compose({"preset": "amazon"}, *tiny)  # upscale=limit: at most 4x, and says so
    assert limited.enlargement == 4.0 and _rules(limited)["enlargement"].passed
    assert not _rules(limited)["fill_ratio"].passed  # the product is as large as it can honestly be
    never = _compose({"preset": "amazon", "upscale": "never"}, *tiny)
    assert never.enlargement is None or never.enlargement <= 1.0


def test_a_854_by_480_photos_whole_product_still_fills_amazons_canvas():
    result = _compose({"preset": "amazon", "shadow": "contact"}, *_photo(854, 480, (60, 40, 794, 440)))
    assert result.check.passed, result.check.to_dict()
    assert 2.0 < result.enlargement <= 4.0


def test_amazon_fails_a_product_the_canvas_cut():
    result = _compose({"preset": "amazon", "fit": "cover", "shadow": "cast"}, *_studio())
    assert not _rules(result)["cut_by_canvas"].passed and _rules(result)["cut_by_canvas"].measured > 0.1


def test_amazon_fails_a_shadow_that_runs_off_the_canvas():
    pixels = np.full((400, 400, 3), 255, np.uint8)
    product = np.zeros((400, 400), np.uint8)
    product[20:380, 100:300] = 255
    shade = np.zeros((400, 400), np.uint8)
    shade[300:400, 50:350] = 90  # down to the bottom edge
    pixels[(shade > 0) & (product == 0)] = 220
    check = PRESETS["amazon"].check(Delivered(pixels, product, shade, "png", 1000))
    rule = {r.rule: r for r in check.rules}["shadow_inside"]
    assert not rule.passed and rule.measured == 90 and "shadow_inside" in check.failed


def test_ebay_on_light_grey_and_shopify_as_a_transparent_png_pass():
    grey = _compose({"preset": "ebay", "bg_color": "#eeeeee"}, *_studio())
    assert grey.check.passed and "background_white" not in _rules(grey), grey.check.to_dict()
    transparent = _compose({"preset": "shopify", "bg_color": "", "format": "png"}, *_studio())
    assert _pixels(transparent.image)[0, 0, 3] == 0 and transparent.check.passed, transparent.check.to_dict()


def test_what_a_marketplace_only_recommends_is_advice_never_a_failure():
    small = _compose({"preset": "etsy", "target_width": "1000", "target_height": "800"}, *_studio())
    advice = _rules(small)["long_side"]
    assert advice.advice and not advice.passed and small.check.passed
    assert small.check.to_dict()["rules"][-2]["advice"] is True


def test_zalandos_portrait_walmarts_square_and_file_size_are_rules():
    square = _compose({"preset": "zalando", "target_width": "1200", "target_height": "1200"}, *_studio())
    assert not _rules(square)["aspect"].passed
    walmart = _compose({"preset": "walmart"}, *_studio())
    assert walmart.check.passed and _rules(walmart)["file_size"].measured == len(walmart.image)
    wide = _compose({"preset": "walmart", "target_width": "2200", "target_height": "1600"}, *_studio())
    assert not wide.check.passed and not _rules(wide)["aspect"].passed


def test_options_given_beside_a_preset_win():
    options = CutoutOptions.from_mapping({"preset": "amazon", "format": "png", "target_width": "1200"})
    assert options.format.value == "png" and options.target_width == 1200 and options.target_height == 1200
    portrait = CutoutOptions.from_mapping({"preset": "zalando", "target_height": "1440"})
    assert (portrait.target_width, portrait.target_height) == (997, 1440)  # Zalando's 1 : 1.44


# ---- limits ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "params, field, limit",
    [
        ({"shadow": "soft"}, "shadow", None),
        ({"shadow": "drop", "shadow_opacity": "101"}, "shadow_opacity", [0, 100]),
        ({"shadow": "drop", "shadow_angle": "-5"}, "shadow_angle", [0, 360]),
        ({"shadow": "cast", "shadow_elevation": "90"}, "shadow_elevation", [5, 85]),
        ({"shadow": "drop", "shadow_distance": "60"}, "shadow_distance", [0, 50]),
        ({"shadow": "drop", "shadow_softness": "lots"}, "shadow_softness", [0, 100]),
        ({"shadow": "drop", "shadow_color": "nope"}, "shadow_color", None),
        ({"target_width": "500", "padding": "50%"}, "padding", "45%"),
        ({"target_width": "500", "fit": "stretch"}, "fit", None),
        ({"preset": "temu"}, "preset", None),
        ({"target_width": "500", "upscale": "always"}, "upscale", None),
    ],
)
def test_bad_values_name_their_field_and_limit(params, field, limit):
    with pytest.raises(InvalidOption) as error:
        CutoutOptions.from_mapping(params)
    assert error.value.field == field and error.value.limit == limit and error.value.to_dict()["message"]


def test_padding_that_leaves_no_room_is_refused_naming_the_canvas():
    with pytest.raises(InvalidOption) as error:
        _compose({"target_width": "100", "target_height": "100", "padding": "60px"})
    assert error.value.field == "padding" and error.value.limit == (100, 100)
