"""remove.bg's API (POST /v1.0/removebg, GET /v1.0/account) over HTTP on the local stack: every
parameter, every error code, the answer headers, the details clients written for remove.bg rely on,
and three remove.bg clients nobody here wrote (the npm package remove.bg 1.3.0, PyPI's removebg 0.04
and remove-bg-api 0.2.1), unchanged, pointed at the stack."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
import pytest
import requests
from PIL import Image

from tests.conftest import image_bytes
from tests.stack_fixtures import Api, credit_key, new_key

ROUTE = "/v1.0/removebg"
NODE_CLIENT = Path(__file__).resolve().parents[1] / "clients" / "removebg_node"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _image(response: requests.Response) -> Image.Image:
    assert response.status_code == 200, response.text
    image = Image.open(io.BytesIO(response.content))
    image.load()
    return image


def _error(response: requests.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    errors = response.json()["errors"]
    assert len(errors) == 1 and errors[0]["code"] == code and errors[0]["title"]
    return errors[0]


def _foreground(response: requests.Response) -> tuple[int, int, int, int]:
    return tuple(int(response.headers[f"X-Foreground-{name}"]) for name in ("Left", "Top", "Width", "Height"))


@pytest.fixture(scope="module")
def removebg(stack, admin) -> Api:
    """A key of its own: remove.bg's headers count its results (its plan comes with the key from
    its first call)."""
    return new_key(admin, stack)


@pytest.fixture(scope="module")
def upload(photo):
    return {"image_file": ("photo.jpg", photo, "image/jpeg")}


# ---- sources and bodies ---------------------------------------------------------------------------
def test_multipart_file_answers_the_image_with_remove_bg_headers(removebg, upload, photo):
    response = removebg.post(ROUTE, files=upload)
    image = _image(response)
    assert image.format == "PNG" and image.mode == "RGBA"  # format=auto: transparency -> png
    assert image.width * image.height <= 250_000  # size=preview is the default
    assert (image.width, image.height) == (
        int(response.headers["X-Width"]),
        int(response.headers["X-Height"]),
    )
    assert response.headers["X-Credits-Charged"] == "1" and response.headers["X-Type"] == "other"
    left, top, width, height = _foreground(response)
    alpha = np.asarray(image)[:, :, 3]
    rows, cols = np.flatnonzero((alpha >= 13).any(axis=1)), np.flatnonzero((alpha >= 13).any(axis=0))
    assert (left, top, width, height) == (cols[0], rows[0], cols[-1] + 1 - cols[0], rows[-1] + 1 - rows[0])
    assert int(response.headers["X-RateLimit-Limit"]) == 100000
    assert int(response.headers["X-RateLimit-Remaining"]) < 100000
    assert (
        int(response.headers["X-RateLimit-Reset"]) % 86400 == 0
        and int(response.headers["X-RateLimit-Reset"]) > time.time()
    )


def test_json_base64_and_form_url_sources_give_the_same_cutout(removebg, photo, image_server):
    by_json = removebg.post(ROUTE, json={"image_file_b64": _b64(photo)})
    by_form = removebg.post(ROUTE, data={"image_url": image_server.url("photo.jpg")})
    assert _image(by_json).size == _image(by_form).size
    assert np.array_equal(np.asarray(_image(by_json)), np.asarray(_image(by_form)))


def test_accept_json_answers_result_b64_and_the_foreground_box(removebg, photo):
    response = removebg.post(
        ROUTE, json={"image_file_b64": _b64(photo)}, headers={"Accept": "application/json"}
    )
    data = response.json()["data"]
    image = Image.open(io.BytesIO(base64.b64decode(data["result_b64"])))
    assert image.size == (int(response.headers["X-Width"]), int(response.headers["X-Height"]))
    assert (
        data["foreground_left"],
        data["foreground_top"],
        data["foreground_width"],
        data["foreground_height"],
    ) == _foreground(response)
    assert set(response.json()) == {"data"}  # remove.bg's envelope, nothing added


# ---- parameters -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "size,most_pixels", [("preview", 250_000), ("small", 250_000), ("regular", 250_000), ("0.1MP", 100_000)]
)
def test_sizes_cap_the_result(removebg, upload, size, most_pixels):
    image = _image(removebg.post(ROUTE, files=upload, data={"size": size}))
    assert most_pixels * 0.9 <= image.width * image.height <= most_pixels


@pytest.mark.parametrize("size", ["full", "4k", "auto", "hd", "medium", "50MP"])
def test_larger_sizes_keep_a_photo_that_fits_them(removebg, upload, photo, size):
    original = Image.open(io.BytesIO(photo)).size
    assert _image(removebg.post(ROUTE, files=upload, data={"size": size})).size == original


@pytest.mark.parametrize(
    "kind,level,expected",
    [
        ("person", "1", "person"),
        ("product", "1", "product"),
        ("car", "2", "car"),
        ("graphic", "1", "other"),
        ("graphic", "2", "graphics"),
        ("animal", "latest", "animal"),
        ("transportation", "2", "transportation"),
        ("auto", "2", "other"),
    ],
)
def test_type_and_type_level_name_x_type(removebg, upload, kind, level, expected):
    response = removebg.post(ROUTE, files=upload, data={"type": kind, "type_level": level})
    assert response.status_code == 200 and response.headers["X-Type"] == expected


def test_type_level_none_sends_no_x_type(removebg, upload):
    response = removebg.post(ROUTE, files=upload, data={"type_level": "none"})
    assert response.status_code == 200 and "X-Type" not in response.headers


def test_type_person_runs_the_person_pipeline(removebg, upload, pipeline, photo):
    from alphacut.options import CutoutOptions

    response = removebg.post(ROUTE, files=upload, data={"type": "person", "channels": "alpha"})
    local = pipeline.run(photo, CutoutOptions(type="person", size="preview", output="mask"))
    assert np.array_equal(np.asarray(_image(response)), np.asarray(Image.open(io.BytesIO(local.mask))))


@pytest.mark.parametrize(
    "params,fmt,mode",
    [
        ({"format": "png"}, "PNG", "RGBA"),
        ({"format": "jpg"}, "JPEG", "RGB"),
        ({"format": "webp"}, "WEBP", "RGBA"),
        ({"bg_color": "81d4fa"}, "JPEG", "RGB"),
        ({"bg_color": "81d4fa80"}, "PNG", "RGBA"),
        ({"channels": "alpha"}, "PNG", "L"),
    ],
)
def test_formats_channels_and_colours(removebg, upload, params, fmt, mode):
    image = _image(removebg.post(ROUTE, files=upload, data=params))
    assert (image.format, image.mode) == (fmt, mode)


def test_zip_holds_color_jpg_and_alpha_png_of_the_result(removebg, upload):
    response = removebg.post(ROUTE, files=upload, data={"format": "zip"})
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    colour, alpha = (Image.open(io.BytesIO(archive.read(name))) for name in ("color.jpg", "alpha.png"))
    assert colour.mode == "RGB" and alpha.mode == "L"
    assert colour.size == alpha.size == (int(response.headers["X-Width"]), int(response.headers["X-Height"]))


def test_roi_keeps_only_the_subject_inside_the_region(removebg, upload):
    whole = _foreground(removebg.post(ROUTE, files=upload))
    response = removebg.post(ROUTE, files=upload, data={"roi": "0% 0% 100% 40%"})
    _left, top, _width, height = _foreground(response)
    assert top + height <= round(0.4 * int(response.headers["X-Height"])) + 1
    assert height < whole[3]


def test_crop_with_a_margin_adds_it_around_the_subject(removebg, upload):
    plain = removebg.post(ROUTE, files=upload, data={"crop": "true"})
    margin = removebg.post(ROUTE, files=upload, data={"crop": "true", "crop_margin": "10px 20px"})
    assert _foreground(plain)[:2] == (0, 0)
    assert _foreground(margin)[:2] == (20, 10)
    assert int(margin.headers["X-Width"]) <= int(plain.headers["X-Width"]) + 40


@pytest.mark.parametrize("margin", ["51%", "501px", "1px 2px 3px"])
def test_crop_margin_over_remove_bg_limits_is_refused(removebg, upload, margin):
    detail = _error(
        removebg.post(ROUTE, files=upload, data={"crop": "true", "crop_margin": margin}),
        400,
        "invalid_parameters",
    )["detail"]
    assert detail.startswith("crop_margin")


def test_scale_puts_the_subject_in_the_centre_at_that_share(removebg, upload):
    response = removebg.post(ROUTE, files=upload, data={"scale": "50%"})
    left, top, width, height = _foreground(response)
    canvas_w, canvas_h = int(response.headers["X-Width"]), int(response.headers["X-Height"])
    assert max(width / canvas_w, height / canvas_h) == pytest.approx(0.5, abs=0.03)
    assert abs((left + width / 2) - canvas_w / 2) <= 3 and abs((top + height / 2) - canvas_h / 2) <= 3


def test_position_moves_the_subject_to_a_corner(removebg, upload):
    response = removebg.post(ROUTE, files=upload, data={"position": "100% 0%", "scale": "40%"})
    left, top, width, _height = _foreground(response)
    assert top <= 1 and left + width >= int(response.headers["X-Width"]) - 1


def test_background_image_by_url_and_by_file_fill_the_picture(removebg, upload, image_server, photo):
    by_url = _image(removebg.post(ROUTE, files=upload, data={"bg_image_url": image_server.url("photo.jpg")}))
    by_file = _image(removebg.post(ROUTE, files={**upload, "bg_image_file": ("bg.jpg", photo, "image/jpeg")}))
    assert by_url.format == by_file.format == "JPEG" and by_url.mode == "RGB"  # format=auto over a picture
    assert np.abs(np.asarray(by_url, np.int16) - np.asarray(by_file, np.int16)).max() <= 2


def test_semitransparency_is_accepted_and_changes_nothing(removebg, upload):
    plain = removebg.post(ROUTE, files=upload)
    asked = removebg.post(ROUTE, files=upload, data={"semitransparency": "false"})
    assert asked.status_code == 200 and asked.content == plain.content
    _error(removebg.post(ROUTE, files=upload, data={"add_shadow": "sometimes"}), 400, "invalid_parameters")


def _shaded_more(picture: Image.Image, plain: Image.Image) -> int:
    """How many more pixels the picture shades than the plain cutout (alpha, or darker than white):
    a shadow, wherever its light put it."""

    def shaded(image: Image.Image) -> int:
        if image.mode == "RGBA":
            return int(np.count_nonzero(np.asarray(image)[..., 3] > 20))
        return int(np.count_nonzero(np.asarray(image.convert("L")) < 235))

    return shaded(picture) - shaded(plain)


def test_add_shadow_and_shadow_type_draw_a_visible_shadow(removebg, upload):
    plain = _image(removebg.post(ROUTE, files=upload, data={"crop": "true"}))
    for params in ({"add_shadow": "true"}, {"shadow_type": "3D"}, {"shadow_type": "car"}):
        shaded = _image(removebg.post(ROUTE, files=upload, data={"crop": "true", **params}))
        assert shaded.height > plain.height and _shaded_more(shaded, plain) > 1000, params
    faint = _image(
        removebg.post(ROUTE, files=upload, data={"crop": "true", "add_shadow": "1", "shadow_opacity": "0"})
    )
    assert faint.tobytes() == plain.tobytes()


def test_a_preset_on_the_remove_bg_route_says_its_check_in_a_header(removebg, upload):
    response = removebg.post(ROUTE, files=upload, data={"preset": "ebay", "size": "full"})
    assert response.status_code == 200 and response.headers["X-Alphacut-Check"] == "ebay passed"
    assert _image(response).size == (1600, 1600) and "X-Alphacut-Ignored" not in response.headers


def test_parameters_remove_bg_does_not_have_are_ignored_and_named(removebg, upload):
    response = removebg.post(ROUTE, files=upload, data={"frobnicate": "1", "zzz": "2"})
    assert response.status_code == 200 and response.headers["X-Alphacut-Ignored"] == "frobnicate,zzz"


# ---- errors -------------------------------------------------------------------------------------------
def test_no_source_is_missing_source(removebg):
    _error(removebg.post(ROUTE, data={"size": "preview"}), 400, "missing_source")


def test_two_sources_are_multiple_sources(removebg, upload, photo):
    _error(removebg.post(ROUTE, files=upload, data={"image_file_b64": _b64(photo)}), 400, "multiple_sources")


def test_an_image_url_over_the_byte_limit_is_file_too_large(removebg, image_server):
    detail = _error(
        removebg.post(ROUTE, data={"image_url": image_server.url("huge.jpg")}), 400, "file_too_large"
    )
    assert detail["detail"].startswith("image_url")


def test_a_blank_picture_is_unknown_foreground_and_not_charged(removebg):
    blank = image_bytes(Image.new("RGB", (300, 200), (255, 255, 255)), "PNG")
    response = removebg.post(ROUTE, files={"image_file": ("blank.png", blank, "image/png")})
    _error(response, 400, "unknown_foreground")
    assert response.headers["X-Credits-Charged"] == "0"


@pytest.mark.parametrize(
    "data,code",
    [
        (image_bytes(Image.new("RGB", (5000, 60)), "PNG"), "resolution_too_high"),
        (image_bytes(Image.new("RGB", (20, 20)), "PNG"), "resolution_too_low"),
        (b"this is not an image", "invalid_file_type"),
        (image_bytes(Image.effect_noise((300, 300), 60).convert("RGB"), "PNG")[:20000], "invalid_image"),
    ],
)
def test_bad_files_name_remove_bg_codes(removebg, data, code):
    _error(removebg.post(ROUTE, files={"image_file": ("x.png", data, "image/png")}), 400, code)


@pytest.mark.parametrize(
    "params",
    [
        {"size": "huge"},
        {"type": "cat"},
        {"type_level": "3"},
        {"format": "gif"},
        {"roi": "0 0 10"},
        {"scale": "5%"},
        {"position": "leftish"},
        {"channels": "rgb"},
        {"bg_color": "nope"},
    ],
)
def test_bad_parameters_are_invalid_parameters_naming_the_field(removebg, upload, params):
    detail = _error(removebg.post(ROUTE, files=upload, data=params), 400, "invalid_parameters")["detail"]
    assert detail.startswith(next(iter(params)))


def test_a_private_image_url_is_refused(removebg):
    _error(
        removebg.post(ROUTE, data={"image_url": "http://169.254.169.254/latest/meta-data"}),
        400,
        "failed_to_download",
    )


def test_a_bad_key_is_403_in_remove_bg_shape(stack):
    for key in ("not-a-key-0000000000000000", None):
        response = Api(stack.url, key).post(ROUTE, data={"image_url": "http://example.com/a.jpg"})
        _error(response, 403, "auth_failed")


def test_over_the_rate_is_429_with_retry_after(default_key_api):
    time.sleep(2.5)  # let the default key's bucket (2/s, burst 4) refill
    answers = [default_key_api.get("/v1.0/account") for _ in range(10)]
    refused = next(r for r in answers if r.status_code == 429)
    _error(refused, 429, "rate_limit_exceeded")
    assert int(refused.headers["Retry-After"]) >= 1


def test_a_spent_daily_quota_is_402_insufficient_credits(stack, admin, upload):
    tiny = new_key(admin, stack, "tiny")  # 3 results a day
    credits = [tiny.get("/v1.0/account").json()["data"]["attributes"]["credits"]["total"] for _ in range(3)]
    assert credits == [3, 3, 3]  # reading the account spends nothing
    left = [int(tiny.post(ROUTE, files=upload).headers["X-RateLimit-Remaining"]) for _ in range(3)]
    assert left == [2, 1, 0]
    _error(tiny.post(ROUTE, files=upload), 402, "insufficient_credits")


def test_account_answers_numbers_from_a_keys_first_call_and_counts_results_only(stack, admin, upload):
    fresh = new_key(admin, stack)  # made this instant: its first call
    first = fresh.get("/v1.0/account")
    attributes = first.json()["data"]["attributes"]
    assert first.status_code == 200 and first.headers["X-Credits-Charged"] == "0"
    # the day's results as subscription credits; no free previews: never one figure twice
    assert attributes["credits"] == {"total": 100000, "subscription": 100000, "payg": 0, "enterprise": 0}
    assert attributes["api"] == {"free_calls": 0, "sizes": "all"}
    assert attributes["plan"]["daily_quota"] == 100000 and attributes["plan"]["name"] == "bulk"
    for _ in range(10):
        assert fresh.post(ROUTE, data={"size": "nonsense"}, files=upload).status_code == 400
        assert fresh.get("/v1.0/account").status_code == 200
    assert fresh.get("/v1/usage").json()["remain"] == 100000  # ten 400s, ten reads: nothing spent
    assert fresh.post(ROUTE, files=upload).headers["X-RateLimit-Remaining"] == "99999"
    assert fresh.get("/v1.0/account").json()["data"]["attributes"]["credits"]["total"] == 99999
    credited = credit_key(admin, stack, "2.5")
    account = credited.get("/v1.0/account").json()["data"]["attributes"]
    assert (
        account["credits"]["total"] == account["credits"]["payg"] == 2.5 and account["api"]["free_calls"] == 0
    )


def test_the_pypi_removebg_cli_prints_the_account_of_a_key_just_made(stack, admin, monkeypatch, capsys):
    """removebg-cli (PyPI) adds free calls and credits: both must be numbers, and not one figure twice."""
    import removebg_cli
    import requests as real

    key = credit_key(admin, stack, "7")

    def to_stack(call):  # only the URL changes
        return lambda url, *args, **kwargs: call(
            url.replace("https://api.remove.bg", stack.url), *args, **kwargs
        )

    monkeypatch.setattr(removebg_cli.requests, "get", to_stack(real.get))
    monkeypatch.setattr(removebg_cli.requests, "post", to_stack(real.post))
    monkeypatch.setenv("REMOVE_BG_API_KEY", key.key)
    monkeypatch.setattr(sys, "argv", ["removebg", "--account"])
    removebg_cli.main()
    printed = capsys.readouterr().out
    assert "7" in printed.split("Credits:")[1].splitlines()[0]  # 总 Credits: 7
    assert "0/" in printed.split("免费调用:")[1].splitlines()[0] and "剩余额度:" in printed  # free calls: 0


def test_the_remove_bg_clients_see_their_credits_spent_and_then_402_in_remove_bg_shape(
    stack, admin, photo, tmp_path, monkeypatch
):
    from removebg import RemoveBg
    from removebg import removebg as module

    key = credit_key(admin, stack, "2")
    source = tmp_path / "photo.jpg"
    source.write_bytes(photo)

    def balance() -> float:
        return key.get("/v1.0/account").json()["data"]["attributes"]["credits"]["total"]

    seen = []
    for size in ("full", "preview", "full"):
        (call,) = _drive_node(
            stack,
            key.key,
            [{"fn": "removeBackgroundFromImageFile", "options": {"path": str(source), "size": size}}],
            tmp_path,
        )
        seen.append(
            (call["ok"], call["result"]["creditsCharged"] if call["ok"] else call["errors"], balance())
        )
    assert seen[0] == (True, "1", 1) and seen[1] == (True, "0.25", 0.75)
    refused, errors, left = seen[2]
    assert not refused and errors[0]["code"] == "insufficient_credits" and left == 0.75
    monkeypatch.setattr(module, "API_ENDPOINT", stack.url + ROUTE)
    with pytest.raises(requests.HTTPError) as spent:
        RemoveBg(key.key, str(tmp_path / "errors.log")).remove_background_from_img_file(
            str(source), size="full"
        )
    assert spent.value.response.status_code == 402
    assert spent.value.response.json()["errors"][0]["code"] == "insufficient_credits"
    assert balance() == 0.75


# ---- clients nobody here wrote -----------------------------------------------------------------------------
def _drive_node(stack, key: str, calls: list[dict], tmp_path: Path) -> list[dict]:
    if not (NODE_CLIENT / "node_modules" / "remove.bg").exists():
        pytest.fail("the npm client is not installed: run `make setup`")
    plan = tmp_path / "plan.json"
    plan.write_text(
        json.dumps(
            {
                "base": stack.url,
                "calls": [{**call, "options": {"apiKey": key, **call["options"]}} for call in calls],
            }
        )
    )
    done = subprocess.run(
        ["node", str(NODE_CLIENT / "drive.js"), str(plan)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_the_npm_remove_bg_client_works_unchanged(stack, removebg, image_server, photo, tmp_path):
    source = tmp_path / "photo.jpg"
    source.write_bytes(photo)
    calls = [
        {
            "fn": "removeBackgroundFromImageFile",
            "options": {"path": str(source), "outputFile": str(tmp_path / "file.png"), "crop": True},
        },
        {
            "fn": "removeBackgroundFromImageBase64",
            "options": {
                "base64img_file": str(source),
                "outputFile": str(tmp_path / "b64.png"),
                "size": "medium",
                "type": "person",
                "bg_color": "00ff00",
                "scale": "80%",
            },
        },
        {
            "fn": "removeBackgroundFromImageUrl",
            "options": {
                "url": image_server.url("photo.jpg"),
                "outputFile": str(tmp_path / "url.png"),
                "channels": "alpha",
                "roi": "0% 0% 100% 50%",
            },
        },
        {
            "fn": "removeBackgroundFromImageFile",
            "options": {"path": str(source), "apiKey": "wrong-key-000000000000"},
        },
        {
            "fn": "removeBackgroundFromImageFile",
            "options": {
                "path": str(source),
                "outputFile": str(tmp_path / "shadow.png"),
                "crop": True,
                "add_shadow": True,
            },
        },
    ]
    file_call, b64_call, url_call, bad_key, shadow_call = _drive_node(stack, removebg.key, calls, tmp_path)
    assert shadow_call["ok"], shadow_call
    plain, shaded = Image.open(tmp_path / "file.png"), Image.open(tmp_path / "shadow.png")
    assert shaded.height > plain.height and _shaded_more(shaded, plain) > 1000  # add_shadow is honoured
    for call, name, mode in (
        (file_call, "file.png", "RGBA"),
        (b64_call, "b64.png", "RGB"),
        (url_call, "url.png", "L"),
    ):
        assert call["ok"], call
        result = call["result"]
        saved = Image.open(tmp_path / name)
        assert saved.mode == mode and saved.size == (int(result["resultWidth"]), int(result["resultHeight"]))
        assert result["creditsCharged"] == "1" and int(result["rateLimitRemaining"]) < int(
            result["rateLimit"]
        )
    assert int(file_call["result"]["resultWidth"]) < Image.open(source).width  # cropped to the subject
    assert b64_call["result"]["detectedType"] == "person"
    assert (
        Image.open(tmp_path / "b64.png").format == "JPEG"
    )  # format auto over a colour (the file name is the client's)
    assert not bad_key["ok"] and bad_key["errors"][0]["code"] == "auth_failed"


def test_the_pypi_removebg_client_works_unchanged(
    stack, removebg, image_server, photo, tmp_path, monkeypatch
):
    from removebg import RemoveBg
    from removebg import removebg as module

    monkeypatch.setattr(module, "API_ENDPOINT", stack.url + ROUTE)
    client = RemoveBg(removebg.key, str(tmp_path / "errors.log"))
    source = tmp_path / "photo.jpg"
    source.write_bytes(photo)
    client.remove_background_from_img_file(str(source), bg_color="white")
    client.remove_background_from_img_url(
        image_server.url("photo.jpg"), new_file_name=str(tmp_path / "url.png")
    )
    client.remove_background_from_base64_img(_b64(photo), size="hd", new_file_name=str(tmp_path / "b64.png"))
    on_white = Image.open(str(source) + "_no_bg.png")
    assert on_white.format == "JPEG" and on_white.width * on_white.height <= 250_000  # size regular = preview
    assert Image.open(tmp_path / "url.png").mode == "RGBA"
    assert Image.open(tmp_path / "b64.png").size == Image.open(source).size  # hd: the photo fits 4 MP
    with pytest.raises(requests.HTTPError) as refused:
        RemoveBg("wrong-key-000000000000", str(tmp_path / "errors.log")).remove_background_from_img_file(
            str(source)
        )
    assert refused.value.response.status_code == 403


# ---- details clients written for remove.bg rely on ------------------------------------------------
def test_a_background_url_and_file_together_are_multiple_bg_sources(removebg, upload, image_server, photo):
    response = removebg.post(
        ROUTE,
        files={**upload, "bg_image_file": ("bg.jpg", photo, "image/jpeg")},
        data={"bg_image_url": image_server.url("photo.jpg")},
    )
    error = _error(response, 400, "multiple_bg_sources")
    assert "bg_image_url" in error["detail"] and "bg_image_file" in error["detail"]
    assert response.headers["X-Credits-Charged"] == "0"


def test_an_empty_bg_color_is_no_colour(removebg, upload):
    plain = _image(removebg.post(ROUTE, files=upload, data={"format": "png"}))
    blank = _image(removebg.post(ROUTE, files=upload, data={"format": "png", "bg_color": ""}))
    assert blank.mode == "RGBA" and np.array_equal(np.asarray(plain), np.asarray(blank))


def test_a_region_with_bare_zeros_is_read_as_pixels(removebg, upload):
    whole = _image(removebg.post(ROUTE, files=upload, data={"roi": "0 0 100% 100%"}))
    plain = _image(removebg.post(ROUTE, files=upload))
    assert np.array_equal(np.asarray(whole), np.asarray(plain))


@pytest.mark.parametrize("crop", ["true", "True", "1"])
def test_booleans_as_text_in_a_form(removebg, upload, crop):
    cropped = _image(removebg.post(ROUTE, files=upload, data={"crop": crop}))
    plain = _image(removebg.post(ROUTE, files=upload, data={"crop": "false"}))
    assert cropped.width * cropped.height < plain.width * plain.height


def test_booleans_as_json_booleans(removebg, photo):
    body = {"image_file_b64": _b64(photo), "crop": True, "add_shadow": False, "semitransparency": True}
    cropped = _image(removebg.post(ROUTE, json=body))
    plain = _image(removebg.post(ROUTE, json={**body, "crop": False}))
    assert cropped.width * cropped.height < plain.width * plain.height


def test_a_form_urlencoded_base64_photo_of_several_mb(removebg):
    noise = np.random.default_rng(7).integers(0, 255, (1100, 1100, 3), dtype=np.uint8)
    noise[300:800, 300:800] = (200, 30, 30)  # something to cut out
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, "PNG")
    photo = buffer.getvalue()
    form = urlencode({"image_file_b64": _b64(photo), "size": "preview"})
    assert len(photo) > 2_500_000 and len(form) > 4_000_000  # base64, percent-escaped: some 4 MB
    response = removebg.post(ROUTE, data=form, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200, response.text[:300]
    assert int(response.headers["X-Width"]) * int(response.headers["X-Height"]) <= 250_000


def test_the_answer_says_the_largest_result_this_photo_can_have(removebg, upload, photo):
    response = removebg.post(ROUTE, files=upload, data={"size": "preview"})
    width, height = Image.open(io.BytesIO(photo)).size
    assert response.status_code == 200
    assert (int(response.headers["X-Max-Width"]), int(response.headers["X-Max-Height"])) == (width, height)
    assert int(response.headers["X-Width"]) < width  # preview is smaller than the photo


def test_account_is_json_with_a_utf8_charset(removebg):
    response = removebg.get("/v1.0/account")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"


def test_the_pypi_remove_bg_api_client_works_unchanged(stack, removebg, image_server, photo, monkeypatch):
    import remove_bg_api

    monkeypatch.setattr(remove_bg_api, "API_URL", stack.url + "/v1.0")
    client = remove_bg_api.RemoveBg(removebg.key)  # reads /account in its constructor
    before = client.account.balance()
    assert isinstance(before, int) and before > 0
    from_bytes = Image.open(io.BytesIO(client.remove_bg_bytes(photo)))
    from_url = Image.open(io.BytesIO(client.remove_bg_url(image_server.url("photo.jpg"))))
    from_b64 = Image.open(io.BytesIO(client.remove_bg_base64(_b64(photo), size="medium")))
    assert from_bytes.mode == from_url.mode == "RGBA" and from_bytes.width * from_bytes.height <= 250_000
    assert from_b64.width * from_b64.height > 250_000
    assert client.account.balance() == before - 3  # X-Credits-Charged read as an integer, per call
    client.account.refresh_balance()
    assert client.account.balance() == before - 3  # the three cutouts (reading the account spends nothing)
    with pytest.raises(remove_bg_api.Errors.ApiErrorCode403):
        remove_bg_api.RemoveBg("wrong-key-000000000000")
