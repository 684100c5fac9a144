"""The options remove.bg brought into the one options model, and the layout and encoding behind them."""

import io
import zipfile

import numpy as np
import pytest
from alphacut import geometry
from alphacut.codec import DecodedImage, cover, encode_cutout
from alphacut.options import CutoutOptions, ImageFormat, Length, Margins, OutputKind, Position, parse_margin
from PIL import Image


def test_sizes_cap_megapixels_and_only_the_smallest_is_a_preview():
    assert (
        CutoutOptions(size="preview").size.megapixels == 0.25 and CutoutOptions(size="regular").size.preview
    )
    assert CutoutOptions(size="hd").size.megapixels == 4.0 and not CutoutOptions(size="hd").size.preview
    assert (
        CutoutOptions(size="full").size.megapixels is None
        and CutoutOptions(size="4k").size.megapixels is None
    )
    assert (
        CutoutOptions(size="10mp").size.megapixels == 10.0 and str(CutoutOptions(size="10mp").size) == "10MP"
    )


def test_a_size_cap_keeps_the_aspect_and_never_enlarges():
    assert geometry.cap_megapixels(1000, 500, 0.25) == (707, 353)
    assert geometry.cap_megapixels(400, 300, 0.25) == (400, 300)
    assert geometry.cap_megapixels(5000, 5000, None) == (5000, 5000)


def test_the_model_sees_a_photo_as_large_as_its_square_input_needs_never_enlarged():
    assert geometry.covering(4000, 3000, 1024) == (1365, 1024)
    assert geometry.covering(3000, 4000, 1024) == (1024, 1365)
    assert geometry.covering(854, 480, 1024) == (854, 480)
    assert geometry.covering(2000, 600, 1024) == (2000, 600)  # 1024 high would enlarge it


def _jpeg(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, "JPEG")
    return out.getvalue()


def test_a_preview_is_decoded_small_but_the_model_sees_the_photo_as_for_a_full_result():
    from types import SimpleNamespace

    from alphacut.models.registry import MattingSpec
    from alphacut.pipeline import Pipeline

    specs = {
        name: MattingSpec(name, f"{name}.onnx", side, side, (0, 0, 0), (1, 1, 1))
        for name, side in (("isnet", 1024), ("small", 320))
    }
    pipeline = Pipeline(models=SimpleNamespace(specs=specs))  # type: ignore[arg-type]
    image, view = pipeline.decode_views(_jpeg(4000, 3000), options=CutoutOptions(size="preview"))
    assert (image.width, image.height) == (577, 433)
    assert (view.width, view.height) == (1365, 1024)
    image, view = pipeline.decode_views(_jpeg(854, 480), options=CutoutOptions(size="preview"))
    assert (image.width, image.height) == (666, 374) and (view.width, view.height) == (854, 480)
    image, view = pipeline.decode_views(_jpeg(4000, 3000), options=CutoutOptions(size="hd"))
    assert view is image and (image.width, image.height) == (2309, 1732)  # larger than the model needs
    # a model with a smaller input needs no more than the preview itself
    image, view = pipeline.decode_views(
        _jpeg(4000, 3000), options=CutoutOptions(size="preview", model="small")
    )
    assert view is image and (image.width, image.height) == (577, 433)


def test_auto_format_is_png_on_transparency_and_jpg_over_a_background():
    assert CutoutOptions(format="auto").format is ImageFormat.PNG
    assert CutoutOptions(format="auto", bg_color="#00ff00").format is ImageFormat.JPG
    assert CutoutOptions(format="auto", bg_image=b"picture").format is ImageFormat.JPG
    assert CutoutOptions(format="auto", bg_color="#00ff0080").format is ImageFormat.PNG  # still see-through


def test_channels_alpha_is_the_mask_output():
    assert CutoutOptions.from_mapping({"channels": "alpha"}).output is OutputKind.MASK
    assert CutoutOptions.from_mapping({"channels": "rgba"}).output is OutputKind.IMAGE


def test_a_region_of_interest_takes_pixels_or_percent_of_each_axis():
    roi = CutoutOptions(roi="10% 20% 50% 100%").roi
    assert roi.box(200, 100) == (20, 20, 100, 100)
    assert CutoutOptions(roi="5px 6px 70 80px").roi.box(200, 100) == (5, 6, 70, 80)
    assert CutoutOptions(roi="0 0 5000px 5000px").roi.box(200, 100) == (0, 0, 200, 100)


def test_a_region_of_interest_outside_the_image_names_the_field():
    from alphacut.errors import InvalidOption

    with pytest.raises(InvalidOption) as error:
        CutoutOptions(roi="300px 0px 400px 50px").roi.box(200, 100)
    assert error.value.field == "roi"


def test_crop_margins_take_one_two_or_four_lengths_as_css_does():
    assert parse_margin("10px") == Length(10)
    two = parse_margin("10px 5%")
    assert two == Margins(Length(10), Length(5, True), Length(10), Length(5, True))
    assert parse_margin("1px 2px 3px 4px").sides(100) == (1, 2, 3, 4)
    assert geometry.expand_box((50, 20, 120, 40), two, 200, 100) == (46, 10, 124, 50)


def test_remove_bg_margin_limits_refuse_over_half_the_subject_or_500_px():
    from alphacut.errors import InvalidOption

    for value in ("51%", "501px"):
        with pytest.raises(InvalidOption):
            parse_margin(value, max_percent=50, max_pixels=500)


def test_scale_implies_center_and_position_alone_moves_the_subject():
    assert CutoutOptions(scale="50%").placement == Position(50.0, 50.0)
    assert CutoutOptions().placement is None
    assert CutoutOptions(position="0% 100%").placement == Position(0.0, 100.0)
    assert CutoutOptions(scale="50%", position="original").placement == Position()


def _square(canvas=(100, 200), box=(10, 10, 30, 50)):
    height, width = canvas
    alpha = np.zeros((height, width), np.uint8)
    left, top, right, bottom = box
    alpha[top:bottom, left:right] = 255
    return np.full((height, width, 3), 200, np.uint8), alpha


def test_scaling_to_half_the_canvas_centres_the_subject_at_half_the_size():
    rgb, alpha = _square()
    _, placed = geometry.place(rgb, alpha, (10, 10, 30, 50), 0.5, Position(50, 50))
    assert geometry.subject_bbox(placed) == (88, 25, 113, 75)  # 25 x 50: half the canvas height


def test_a_position_in_percent_puts_the_subject_in_that_corner():
    rgb, alpha = _square()
    _, placed = geometry.place(rgb, alpha, (10, 10, 30, 50), None, Position(100, 100))
    assert geometry.subject_bbox(placed) == (180, 60, 200, 100)


def test_scaling_at_the_original_position_keeps_the_subject_centre():
    rgb, alpha = _square(box=(80, 30, 120, 70))
    _, placed = geometry.place(rgb, alpha, (80, 30, 120, 70), 0.2, Position())
    assert geometry.subject_bbox(placed) == (90, 40, 110, 60)


def test_a_see_through_background_colour_keeps_partial_transparency():
    rgb, alpha = _square()
    png = encode_cutout(rgb, alpha, ImageFormat.PNG, (255, 0, 0, 128))
    pixels = np.asarray(Image.open(io.BytesIO(png)))
    assert pixels[0, 0].tolist() == [255, 0, 0, 128]
    assert pixels[20, 20].tolist() == [200, 200, 200, 255]


def test_zip_holds_the_colours_as_jpeg_and_the_alpha_as_png():
    rgb, alpha = _square()
    archive = zipfile.ZipFile(io.BytesIO(encode_cutout(rgb, alpha, ImageFormat.ZIP)))
    assert archive.namelist() == ["color.jpg", "alpha.png"]
    colour = Image.open(io.BytesIO(archive.read("color.jpg")))
    matte = Image.open(io.BytesIO(archive.read("alpha.png")))
    assert (colour.format, colour.mode, matte.mode) == ("JPEG", "RGB", "L")
    assert np.array_equal(np.asarray(matte), alpha)


def test_a_background_picture_is_scaled_to_cover_and_centred():
    stripes = np.zeros((50, 100, 3), np.uint8)
    stripes[:, 50:] = 255  # left half black, right half white
    covered = cover(DecodedImage(stripes, None, "png"), 40, 40)
    assert covered.shape == (40, 40, 3)
    assert covered[20, 5].tolist() == [0, 0, 0] and covered[20, 35].tolist() == [255, 255, 255]


def test_the_new_options_survive_a_round_trip_through_request_parameters():
    options = CutoutOptions(
        size="hd",
        roi="1% 2% 90% 95%",
        scale="80%",
        position="10% 90%",
        crop_margin="4px 2%",
        bg_image_url="https://example.com/b.jpg",
        format="zip",
    )
    again = CutoutOptions.from_mapping({k: v for k, v in options.to_dict().items() if v is not None})
    assert again == options


def test_a_preset_keeps_its_recommended_canvas_where_the_photo_fills_it_and_reduces_it_where_not():
    from alphacut.presets import PRESETS

    amazon = PRESETS["amazon"]

    # a product 500 px long enlarged at most 4x: 2000 px long on any canvas, fill = 2000 / side
    def fill_at(size):
        return min(2000, 0.94 * size[0]) / size[0]

    assert amazon.choose_canvas(fill_at, 4.0).size == (2000, 2000)  # fills 94 % at 2000

    def small(size):  # 300 px long: 1200 px at 4x
        return min(1200, 0.94 * size[0]) / size[0]

    reduced = amazon.choose_canvas(small, 4.0)
    assert reduced.size == (1411, 1411) and small(reduced.size) >= 0.85 > small((1412, 1412))
    assert reduced.reduced == "canvas: reduced to 1411 for fill at <= 4x"
    tiny = amazon.choose_canvas(lambda size: 600 / size[0], 4.0)  # 150 px long: 60 % even at 1000
    assert tiny.size == (1000, 1000) and "the smallest amazon takes" in tiny.reduced
    # a marketplace with no fill rule, or a fixed size, keeps its size; a portrait range keeps its aspect
    assert PRESETS["walmart"].choose_canvas(small, 4.0).size == (2200, 2200)
    assert PRESETS["zalando"].recommended == (1801, 2600) and PRESETS["zalando"].canvas.size(1100) == (
        762,
        1100,
    )
