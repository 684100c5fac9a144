"""The whole pipeline on real photos with the real models."""

import io

import numpy as np
import pytest
from alphacut.errors import CorruptImage, ImageTooLarge, InvalidOption
from alphacut.options import CutoutOptions, SubjectType
from PIL import Image

from tests.conftest import image_bytes


def _open(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_png_cutout_has_alpha_and_finds_the_person(pipeline, photo_bytes):
    result = pipeline.run(photo_bytes, CutoutOptions(type="person", output="both"))
    image, mask = _open(result.image), _open(result.mask)
    assert image.mode == "RGBA" and mask.mode == "L"
    assert image.size == mask.size == (result.input_width, result.input_height)
    alpha = np.asarray(mask)
    assert 0.05 < (alpha > 127).mean() < 0.9  # a person, not all or nothing
    assert alpha[0, 0] < 10 and alpha[0, -1] < 10  # corners are background
    left, top, right, bottom = result.bbox
    assert alpha[top:bottom, left:right].max() == 255
    assert set(result.timings) == {"decode", "preprocess", "inference", "postprocess", "encode"}
    assert np.array_equal(np.asarray(image)[..., 3], alpha)


@pytest.mark.parametrize(
    "fmt,mode,content_type",
    [("png", "RGBA", "image/png"), ("webp", "RGBA", "image/webp"), ("jpg", "RGB", "image/jpeg")],
)
def test_formats(pipeline, photo_bytes, fmt, mode, content_type):
    result = pipeline.run(photo_bytes, CutoutOptions(format=fmt))
    assert result.content_type == content_type and result.mask is None
    assert _open(result.image).mode == mode


def test_background_colour(pipeline, photo_bytes):
    result = pipeline.run(photo_bytes, CutoutOptions(bg_color="#00ff00", output="both"))
    image = np.asarray(_open(result.image))
    alpha = np.asarray(_open(result.mask))
    assert image.shape[2] == 3
    assert np.all(image[alpha == 0] == (0, 255, 0))


def test_crop_is_the_subject_box_with_margin(pipeline, photo_bytes):
    tight = pipeline.run(photo_bytes, CutoutOptions(crop=True))
    left, top, right, bottom = tight.bbox
    assert (tight.width, tight.height) == (right - left, bottom - top)
    margin = pipeline.run(photo_bytes, CutoutOptions(crop=True, crop_margin="10px"))
    assert margin.width == min(right + 10, margin.input_width) - max(left - 10, 0)
    assert margin.height == min(bottom + 10, margin.input_height) - max(top - 10, 0)


def test_target_size_fits_the_subject(pipeline, photo_bytes):
    result = pipeline.run(photo_bytes, CutoutOptions(target_width=300, target_height=300, output="mask"))
    mask = np.asarray(_open(result.mask))
    assert mask.shape == (300, 300)
    rows, cols = np.flatnonzero(mask.max(axis=1) > 12), np.flatnonzero(mask.max(axis=0) > 12)
    # a standing person is taller than wide: it fills the height and is centred across
    assert rows[0] <= 2 and rows[-1] >= 297
    assert abs((cols[0] + cols[-1]) / 2 - 150) < 8


def test_mask_only(pipeline, photo_bytes):
    result = pipeline.run(photo_bytes, CutoutOptions(output="mask"))
    assert result.image is None and result.content_type is None
    assert _open(result.mask).mode == "L"


def test_input_transparency_is_respected(pipeline, photo_bytes):
    rgba = Image.open(io.BytesIO(photo_bytes)).convert("RGBA")
    pixels = np.asarray(rgba).copy()
    pixels[:, : pixels.shape[1] // 2, 3] = 0  # the left half was already removed
    result = pipeline.run(image_bytes(Image.fromarray(pixels), "PNG"), CutoutOptions(output="mask"))
    alpha = np.asarray(_open(result.mask))
    assert alpha[:, : pixels.shape[1] // 2].max() == 0
    assert alpha[:, pixels.shape[1] // 2 :].max() == 255


@pytest.mark.parametrize("folder", ["general", "person"])
def test_a_preview_is_the_full_results_matte_scaled_down(pipeline, eval_dir, folder):
    photo = min((eval_dir / folder / "images").iterdir()).read_bytes()
    subject = SubjectType.PERSON if folder == "person" else SubjectType.OBJECT
    preview = _open(pipeline.run(photo, CutoutOptions(type=subject, size="preview", output="mask")).mask)
    full = _open(pipeline.run(photo, CutoutOptions(type=subject, output="mask")).mask)
    assert preview.width * preview.height <= 250_000 < full.width * full.height
    scaled = np.asarray(full.resize(preview.size, Image.Resampling.LANCZOS), dtype=np.float32)
    gap = np.abs(np.asarray(preview, dtype=np.float32) - scaled)
    # the same model run scaled two ways (the float matte, the 8-bit mask): only edges differ, by little
    assert gap.mean() < 1.0 and np.quantile(gap, 0.999) < 40, (gap.mean(), np.quantile(gap, 0.999))


def test_nothing_found_is_reported_not_invented(pipeline):
    blank = image_bytes(Image.new("RGB", (300, 200), (128, 128, 128)), "PNG")
    result = pipeline.run(blank, CutoutOptions(crop=True, output="mask"))
    if result.bbox is None:
        assert (result.width, result.height) == (300, 200)  # nothing to crop to: the full frame


def test_stamp_type_on_a_scan(pipeline):
    from PIL import ImageDraw

    page = Image.new("RGB", (400, 300), "white")
    draw = ImageDraw.Draw(page)
    draw.text((10, 10), "Contract", fill="black")
    draw.ellipse((150, 80, 300, 230), outline=(210, 30, 30), width=10)
    result = pipeline.run(image_bytes(page, "PNG"), CutoutOptions(type="stamp", crop=True, output="both"))
    assert result.type is SubjectType.STAMP
    assert result.bbox == pytest.approx((150, 80, 301, 231), abs=2)
    image = np.asarray(_open(result.image))
    assert image[..., 3].max() == 255 and image[5, image.shape[1] // 2, 3] > 200  # ring's top edge


def test_errors_name_the_problem(pipeline):
    with pytest.raises(CorruptImage):
        pipeline.run(image_bytes(Image.new("RGB", (300, 300)), "JPEG")[:200])
    with pytest.raises(ImageTooLarge):
        pipeline.run(image_bytes(Image.new("L", (4097, 64)), "PNG"))
    with pytest.raises(InvalidOption):
        CutoutOptions(type="dog")


@pytest.mark.parametrize("quality", ["fast", "best"])
def test_the_spectators_beside_a_dancer_are_not_kept_half_transparent(pipeline, eval_dir, quality):
    """The raw model keeps 28 % of this photo's far background at ghost alpha (0.05..0.5)."""
    from alphacut.evaluate import score

    stem = "breakdance_00042"
    data = (eval_dir / "general" / "images" / f"{stem}.jpg").read_bytes()
    truth = np.asarray(Image.open(eval_dir / "general" / "gt" / f"{stem}.png").convert("L"))
    result = pipeline.run(data, CutoutOptions(output="mask", quality=quality))
    shown = score(stem, np.asarray(_open(result.mask)), truth)
    assert not shown.ghosted and shown.iou > 0.7  # the dancer is still there


def test_the_costume_outfit_matte_is_cleaned_too(pipeline, eval_dir):
    from alphacut.evaluate import ghost_share

    photo = min((eval_dir / "person" / "images").iterdir())
    truth = np.asarray(Image.open(eval_dir / "person" / "gt" / f"{photo.stem}.png").convert("L")) >= 128
    parse = pipeline.parse_costume(pipeline.decode(photo.read_bytes()))
    assert ghost_share(parse.alpha, truth) < 0.01


def test_a_preview_then_the_full_size_of_one_photo_run_isnet_once_and_answer_as_runs_would(
    pipeline, eval_dir
):
    import dataclasses

    from alphacut.models import ModelStore
    from alphacut.pipeline import Pipeline

    recent = pipeline.models.engine.recent
    assert recent is not None  # the template's setting, as the suite's pipelines run
    photo = max((eval_dir / "general" / "images").iterdir()).read_bytes()
    hits, misses = recent.hits, recent.misses
    pipeline.run(photo, CutoutOptions(size="preview", output="both"))
    full = pipeline.run(photo, CutoutOptions(size="full", output="both"))  # from memory
    assert recent.misses - misses <= 1 and recent.hits - hits >= 1  # one photo, one input: one run
    engine = dataclasses.replace(pipeline.models.engine, recent=None)
    runs_each_time = Pipeline(ModelStore(pipeline.models.models_dir, engine=engine))
    assert runs_each_time.run(photo, CutoutOptions(size="full", output="both")).mask == full.mask
