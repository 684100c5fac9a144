"""remove.bg's request parameters as native options, and alphacut's errors as remove.bg's codes."""

import base64
import json

import pytest
from alphacut.api.vendors import removebg
from alphacut.errors import (
    CorruptImage,
    ImageTooLarge,
    ImageTooSmall,
    InvalidOption,
    NoSubjectFound,
    ResolutionTooHigh,
    ResponseTooLarge,
    UnsupportedImageFormat,
    UrlFetchFailed,
    UrlNotAllowed,
)
from alphacut.options import ImageFormat, OutputKind, SubjectType


@pytest.mark.parametrize(
    "error,status,code",
    [
        (NoSubjectFound("x"), 400, "unknown_foreground"),
        (ResolutionTooHigh("x"), 400, "resolution_too_high"),
        (ImageTooLarge("x"), 400, "file_too_large"),
        (ImageTooSmall("x"), 400, "resolution_too_low"),
        (UnsupportedImageFormat("x"), 400, "invalid_file_type"),
        (CorruptImage("x"), 400, "invalid_image"),
        (UrlNotAllowed("x"), 400, "invalid_image_url"),
        (UrlFetchFailed("x"), 400, "failed_to_download"),
        (ResponseTooLarge("x"), 400, "result_too_large"),
        (InvalidOption("x", field="size"), 400, "invalid_parameters"),
        (RuntimeError("boom"), 500, "internal_error"),
    ],
)
def test_every_error_has_remove_bg_status_and_code(error, status, code):
    got_status, entry = removebg.error_entry(error)
    assert (got_status, entry["code"]) == (status, code) and entry["title"] and entry["detail"]
    assert "boom" not in entry["detail"]  # an unexpected error never shows its text


def test_defaults_are_remove_bg_defaults_preview_and_auto_format():
    options = removebg.translate({}, {}, 1000)
    assert options.size.preview and options.format is ImageFormat.PNG and options.type is SubjectType.AUTO


@pytest.mark.parametrize(
    "kind,subject",
    [
        ("person", SubjectType.PERSON),
        ("product", SubjectType.OBJECT),
        ("car", SubjectType.OBJECT),
        ("animal", SubjectType.OBJECT),
        ("graphic", SubjectType.OBJECT),
        ("transportation", SubjectType.OBJECT),
    ],
)
def test_types_map_to_the_model_that_runs(kind, subject):
    assert removebg.translate({"type": kind}, {}, 1000).type is subject


def test_every_translated_parameter_reaches_the_options():
    options = removebg.translate(
        {
            "size": "hd",
            "format": "zip",
            "roi": "0% 0% 50% 50%",
            "crop": "true",
            "crop_margin": "10px 5%",
            "scale": "80%",
            "position": "center",
            "channels": "alpha",
            "bg_color": "fff",
        },
        {},
        1000,
    )
    assert (options.size.megapixels, options.format, options.crop, options.scale) == (
        4.0,
        ImageFormat.ZIP,
        True,
        0.8,
    )
    assert str(options.roi) == "0% 0% 50% 50%" and str(options.crop_margin) == "10px 5% 10px 5%"
    assert options.output is OutputKind.MASK and options.bg_color == (255, 255, 255)


def test_an_uploaded_background_goes_into_the_options():
    options = removebg.translate({}, {"bg_image_file": b"picture"}, 1000)
    assert options.bg_image == b"picture" and options.format is ImageFormat.JPG


@pytest.mark.parametrize(
    "level,kind,expected",
    [
        ("1", "graphic", "other"),
        ("2", "graphic", "graphics"),
        ("latest", "car", "car"),
        ("none", "person", None),
        ("1", "auto", "other"),
    ],
)
def test_type_level_chooses_the_names_x_type_uses(level, kind, expected):
    assert removebg.type_header({"type_level": level, "type": kind}) == expected


def _event(content_type: str, body: bytes) -> dict:
    return {
        "headers": {"Content-Type": content_type},
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }


def test_json_form_and_multipart_bodies_give_the_same_fields():
    as_json = removebg.read_fields(
        _event("application/json", json.dumps({"image_url": "u", "crop": True}).encode())
    )
    as_form = removebg.read_fields(_event("application/x-www-form-urlencoded", b"image_url=u&crop=true"))
    multipart = (
        b'--b\r\nContent-Disposition: form-data; name="image_url"\r\n\r\nu\r\n'
        b'--b\r\nContent-Disposition: form-data; name="crop"\r\n\r\ntrue\r\n'
        b'--b\r\nContent-Disposition: form-data; name="image_file"; filename="p.jpg"\r\n\r\nJPEG\r\n--b--\r\n'
    )
    params, files = removebg.read_fields(_event("multipart/form-data; boundary=b", multipart))
    assert as_json == as_form == ({"image_url": "u", "crop": "true"}, {})
    assert params == {"image_url": "u", "crop": "true"} and files == {"image_file": b"JPEG"}


def test_sources_must_be_exactly_one():
    with pytest.raises(removebg.RemoveBgRefusal) as none:
        removebg.read_source({}, {}, 1000)
    with pytest.raises(removebg.RemoveBgRefusal) as two:
        removebg.read_source({"image_url": "u", "image_file_b64": "AAAA"}, {}, 1000)
    assert (none.value.code, two.value.code) == ("missing_source", "multiple_sources")


def test_usage_headers_say_the_credit_and_the_day():
    from alphacut.api.metering import Usage

    headers = removebg.usage_headers(Usage(True, None, 7, 10))
    assert headers["X-Credits-Charged"] == "1" and headers["X-RateLimit-Remaining"] == "7"
    assert int(headers["X-RateLimit-Reset"]) % 86400 == 0
    assert removebg.usage_headers(Usage(False)) == {"X-Credits-Charged": "0"}
    # a credit-based key: the credits it paid, and no daily limit
    assert removebg.usage_headers(Usage(True, 0.25, 36.75)) == {"X-Credits-Charged": "0.25"}


@pytest.mark.parametrize(
    "params, shadow",
    [
        ({}, "none"),
        ({"add_shadow": "false"}, "none"),
        ({"add_shadow": "true"}, "drop"),
        ({"add_shadow": "true", "type": "car"}, "contact"),
        ({"shadow_type": "drop"}, "drop"),
        ({"shadow_type": "3D"}, "cast"),
        ({"shadow_type": "car", "add_shadow": "true"}, "contact"),
        ({"shadow_type": "none", "add_shadow": "true"}, "none"),
    ],
)
def test_remove_bg_shadow_switches_draw_the_shadow_they_name(params, shadow):
    assert removebg.translate(params, {}, 1000).shadow.value == shadow


def test_remove_bg_shadow_opacity_and_alphacut_extensions_reach_the_options():
    options = removebg.translate(
        {"add_shadow": "1", "shadow_opacity": "30", "preset": "ebay", "shadow_angle": "90"}, {}, 1000
    )
    assert options.shadow_spec.opacity == 30 and options.shadow_spec.angle == 90
    assert options.preset == "ebay" and options.target_width is None  # the canvas: chosen per photo


@pytest.mark.parametrize(
    "params, field",
    [
        ({"shadow_type": "soft"}, "shadow_type"),
        ({"add_shadow": "maybe"}, "add_shadow"),
        ({"shadow_opacity": "200"}, "shadow_opacity"),
    ],
)
def test_bad_remove_bg_shadow_values_name_the_field(params, field):
    with pytest.raises(InvalidOption) as error:
        removebg.translate(params, {}, 1000)
    assert error.value.field == field
