"""The five vendor-compatible routes against the vendors' published API documents, over HTTP on the
local stack: every parameter, the documented errors, the exact envelope (JSON schemas in
``envelopes.py``)."""

from __future__ import annotations

import base64
import io
import time

import jsonschema
import numpy as np
import pytest
import requests
from PIL import Image

from tests.conftest import image_bytes
from tests.contracts import envelopes


def _check(response: requests.Response, status: int, schema: dict) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    jsonschema.validate(body, schema)
    return body


def _fetch(url: str) -> Image.Image:
    answer = requests.get(url, timeout=30)
    assert answer.status_code == 200
    image = Image.open(io.BytesIO(answer.content))
    image.load()
    return image


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def look(eval_dir) -> bytes:
    return min((eval_dir / "clothing" / "images").iterdir()).read_bytes()


def _sized(width: int, height: int, fmt: str = "JPEG") -> bytes:
    rng = np.random.default_rng(width)
    picture = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    picture[height // 4 : 3 * height // 4, width // 4 : 3 * width // 4] = (200, 30, 30)
    return image_bytes(Image.fromarray(picture), fmt)


# ---- JD Cloud image matting ------------------------------------------------------------
def test_jd_cutout_raw_body(api, photo):
    response = api.post("/api/cutout/", data=photo, headers={"Content-Type": "application/octet-stream"})
    body = _check(response, 200, envelopes.JD_CUTOUT_OK)
    assert body["result"]["requestid"] == body["result"]["requestId"]
    cutout = _fetch(body["result"]["cutout_image_url"])
    assert cutout.mode == "RGBA" and cutout.size == Image.open(io.BytesIO(photo)).size


def test_jd_cutout_without_trailing_slash(api, photo):
    _check(
        api.post("/api/cutout", data=photo, headers={"Content-Type": "image/jpeg"}),
        200,
        envelopes.JD_CUTOUT_OK,
    )


@pytest.mark.parametrize(
    "data, status, words",
    [
        (b"", 400, "body"),
        (b"plain text, not a picture" * 4, 415, "image"),
    ],
)
def test_jd_cutout_errors(api, data, status, words):
    response = api.post("/api/cutout/", data=data, headers={"Content-Type": "application/octet-stream"})
    body = _check(response, status, envelopes.JD_CUTOUT_ERROR)
    assert body["result"]["status"] == status and words in body["result"]["message"]


# ---- JD NeuHub selfie segmentation ------------------------------------------------------
def test_jd_selfie_seg(api, photo):
    response = api.post("/jdai/SelfieSeg", json={"image": _b64(photo)})
    body = _check(response, 200, envelopes.JD_SELFIE)
    assert body["result"]["status"] == 1000 and body["result"]["used_time"] > 0
    assert body["charge"] is True and isinstance(body["remain"], int)
    cutout = Image.open(io.BytesIO(base64.b64decode(body["result"]["image"])))
    assert cutout.format == "PNG" and cutout.mode == "RGBA"


@pytest.mark.parametrize(
    "payload, status, code, words",
    [
        ({"image": _b64(_sized(1100, 600))}, 413, 1002, "1024"),
        ({"image": _b64(_sized(40, 80))}, 422, 1002, "50"),
        ({"image": _b64(_sized(300, 300, "WEBP"))}, 415, 1003, "webp"),
        ({"image": _b64(b"\xff\xd8\xff\xe0" + b"\x00" * (2 * 1024 * 1024))}, 413, 1002, "bytes"),
        ({"picture": "abc"}, 400, 1001, "image"),
        ({"image": "%%% not base64 %%%"}, 400, 1001, "base64"),
    ],
)
def test_jd_selfie_seg_limits_and_errors(api, payload, status, code, words):
    body = _check(api.post("/jdai/SelfieSeg", json=payload), status, envelopes.JD_SELFIE)
    assert body["result"]["status"] == code and words in body["result"]["message"]
    assert body["charge"] is False and body["result"]["image"] == ""


# ---- PicWish-style segmentation tasks ---------------------------------------------------
def test_picwish_sync_base64_image_and_mask(api, photo):
    response = api.post(
        "/api/tasks/visual/segmentation",
        headers={"X-API-KEY": api.key},
        files={"image_file": ("p.jpg", photo, "image/jpeg")},
        data={"sync": "1", "return_type": "2", "output_type": "1", "type": "person"},
    )
    body = _check(response, 200, envelopes.PICWISH_OK)
    data = body["data"]
    assert (
        data["state"] == 1
        and data["progress"] == 100
        and data["output_type"] == 1
        and data["return_type"] == 2
    )
    assert data["type"] == "person" and data["completed_at"] >= data["created_at"]
    assert Image.open(io.BytesIO(base64.b64decode(data["image"]))).mode == "RGBA"
    assert Image.open(io.BytesIO(base64.b64decode(data["mask"]))).mode == "L"


def test_picwish_async_then_poll_urls(api, photo):
    created = _check(
        api.post(
            "/api/tasks/visual/segmentation",
            files={"image_file": ("p.jpg", photo, "image/jpeg")},
            data={"crop": "1", "format": "jpg", "bg_color": "ff0000"},
        ),
        200,
        envelopes.PICWISH_OK,
    )
    task_id = created["data"]["task_id"]
    assert created["data"]["state"] in (0, 2, 3, 4, 1)
    deadline = time.time() + 90
    while True:
        polled = _check(api.get(f"/api/tasks/visual/segmentation/{task_id}"), 200, envelopes.PICWISH_OK)[
            "data"
        ]
        if polled["state"] == 1 or polled["state"] < 0 or time.time() > deadline:
            break
        time.sleep(1)
    assert polled["state"] == 1 and polled["return_type"] == 1 and polled["output_type"] == 2
    result = _fetch(polled["image"])
    assert result.format == "JPEG" and result.size[0] < Image.open(io.BytesIO(photo)).size[0]
    assert next(iter(np.asarray(result)[1, 1])) > 200  # red background
    assert "mask" not in polled


def test_picwish_sync_binary_mask_from_image_url(api, image_server):
    response = api.post(
        "/api/tasks/visual/segmentation",
        files={"image_url": (None, image_server.url("photo.jpg"))},
        data={"sync": "1", "return_type": "3", "output_type": "3", "type": "object"},
    )
    assert response.status_code == 200 and response.headers["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(response.content)).mode == "L"


def test_picwish_stamp_type(api):
    seal = Image.new("RGB", (240, 240), "white")
    seal.paste((220, 20, 20), (60, 60, 180, 180))
    response = api.post(
        "/api/tasks/visual/segmentation",
        files={"image_file": ("s.png", image_bytes(seal, "PNG"))},
        data={"sync": "1", "type": "stamp", "return_type": "2"},
    )
    assert _check(response, 200, envelopes.PICWISH_OK)["data"]["state"] == 1


@pytest.mark.parametrize(
    "fields, status, words",
    [
        ({"return_type": "3"}, 400, "sync"),
        ({"sync": "1", "return_type": "3", "output_type": "1"}, 400, "output_type"),
        ({"type": "banana"}, 400, "type"),
        ({"output_type": "7"}, 400, "output_type"),
        ({"format": "gif"}, 400, "format"),
        ({"shadow": "1"}, 400, "shadow"),
    ],
)
def test_picwish_bad_parameters(api, photo, fields, status, words):
    response = api.post(
        "/api/tasks/visual/segmentation", files={"image_file": ("p.jpg", photo, "image/jpeg")}, data=fields
    )
    assert words in _check(response, status, envelopes.PICWISH_ERROR)["message"]


def test_picwish_unknown_task_and_bad_key(api, stack):
    assert _check(api.get("/api/tasks/visual/segmentation/no-such-task"), 404, envelopes.PICWISH_ERROR)
    refused = requests.get(
        f"{stack.url}/api/tasks/visual/segmentation/x", headers={"X-API-KEY": "wrong-key-000"}, timeout=30
    )
    assert refused.status_code == 401


def test_picwish_invalid_image_ends_in_state_minus_7(api):
    response = api.post(
        "/api/tasks/visual/segmentation",
        data={"sync": "1"},
        files={"image_file": ("x.jpg", b"\xff\xd8\xff\xe0 broken", "image/jpeg")},
    )
    assert _check(response, 200, envelopes.PICWISH_OK)["data"]["state"] == -7


# ---- Alibaba AIDGE background removal ---------------------------------------------------
def test_aidge_get_with_image_url_transparent(api, image_server):
    response = api.get(
        "/ai/image/cut/out",
        params={"imageUrl": image_server.url("photo.jpg"), "backGroundType": "TRANSPARENT"},
    )
    body = _check(response, 200, envelopes.AIDGE_OK)
    assert _fetch(body["data"]["imageUrl"]).mode == "RGBA"


def test_aidge_post_base64_white_target_size_and_base64_wins(api, photo):
    response = api.post(
        "/ai/image/cut/out",
        json={
            "imageBase64": _b64(photo),
            "imageUrl": "http://10.0.0.1/x.jpg",
            "backGroundType": "WHITE_BACKGROUND",
            "targetWidth": 400,
            "targetHeight": 300,
        },
    )
    body = _check(response, 200, envelopes.AIDGE_OK)
    result = _fetch(body["data"]["imageUrl"])
    assert result.size == (400, 300) and result.mode == "RGB"
    assert tuple(np.asarray(result)[2, 2]) == (255, 255, 255)


@pytest.mark.parametrize(
    "params, status, code, field",
    [
        ({"backGroundType": "TRANSPARENT"}, 400, 700, "imageUrl"),
        ({"imageBase64": "PHOTO"}, 400, 700, "backGroundType"),
        ({"imageBase64": "PHOTO", "backGroundType": "GREEN"}, 400, 700, "backGroundType"),
        (
            {"imageBase64": "PHOTO", "backGroundType": "TRANSPARENT", "targetWidth": "50"},
            400,
            700,
            "targetWidth",
        ),
        (
            {"imageBase64": "PHOTO", "backGroundType": "TRANSPARENT", "targetHeight": "3001"},
            400,
            700,
            "targetHeight",
        ),
        ({"imageBase64": "SMALL", "backGroundType": "TRANSPARENT"}, 422, 700, "image"),
        (
            {"imageUrl": "http://169.254.169.254/latest", "backGroundType": "TRANSPARENT"},
            422,
            700,
            "imageUrl",
        ),
    ],
)
def test_aidge_invalid_input_is_700_naming_the_field(api, photo, params, status, code, field):
    values = {"PHOTO": _b64(photo), "SMALL": _b64(_sized(90, 90))}
    params = {k: values.get(v, v) for k, v in params.items()}
    body = _check(api.post("/ai/image/cut/out", json=params), status, envelopes.AIDGE_ERROR)
    assert body["resCode"] == code and field in body["resMessage"]


# ---- AILabTools-style costume -----------------------------------------------------------
COSTUME = "/api/cutout/general/apparel-background-removal"


def test_ailab_costume_classes(api, look):
    response = api.post(
        COSTUME,
        files={"image": ("look.jpg", look, "image/jpeg")},
        data={"cloth_class": "tops,coat,skirt,pants,bag,shoes,hat"},
    )
    body = _check(response, 200, envelopes.AILAB_OK)
    outfit = _fetch(body["data"]["elements"][0]["image_url"])
    assert outfit.mode == "RGBA"
    class_url = body["data"]["elements"][1]["class_url"]
    assert list(class_url) == ["tops", "coat", "skirt", "pants", "bag", "shoes", "hat"]
    present = [name for name, url in class_url.items() if url]
    assert present and len(present) < 7  # absent classes are "", not empty pictures
    assert _fetch(class_url[present[0]]).mode == "RGBA"


def test_ailab_costume_return_forms(api, look):
    mask = _check(
        api.post(
            COSTUME,
            files={"image": ("l.jpg", look, "image/jpeg")},
            data={"return_form": "mask", "cloth_class": "tops"},
        ),
        200,
        envelopes.AILAB_OK,
    )
    assert _fetch(mask["data"]["elements"][0]["image_url"]).mode == "L"
    white = _check(
        api.post(COSTUME, files={"image": ("l.jpg", look, "image/jpeg")}, data={"return_form": "whiteBK"}),
        200,
        envelopes.AILAB_OK,
    )
    assert _fetch(white["data"]["elements"][0]["image_url"]).mode == "RGB"


@pytest.mark.parametrize(
    "files, data, status, field",
    [
        ({"image": ("l.jpg", "LOOK", "image/jpeg")}, {"cloth_class": "socks"}, 400, "cloth_class"),
        ({"image": ("l.jpg", "LOOK", "image/jpeg")}, {"return_form": "sepia"}, 400, "return_form"),
        ({"image": ("l.webp", "WEBP", "image/webp")}, {}, 415, "image"),
        ({"photo": ("l.jpg", "LOOK", "image/jpeg")}, {}, 400, "image"),
        ({"image": ("l.jpg", "TINY", "image/jpeg")}, {}, 422, "image"),
    ],
)
def test_ailab_costume_errors(api, look, files, data, status, field):
    payloads = {"LOOK": look, "WEBP": _sized(200, 200, "WEBP"), "TINY": _sized(40, 40)}
    files = {k: (name, payloads[v], kind) for k, (name, v, kind) in files.items()}
    body = _check(api.post(COSTUME, files=files, data=data), status, envelopes.AILAB_ERROR)
    assert body["error_code"] == status and body["error_detail"]["status_code"] == status
    assert field in body["error_msg"]


def test_ailab_costume_needs_multipart(api, look):
    body = _check(
        api.post(COSTUME, data=look, headers={"Content-Type": "image/jpeg"}), 415, envelopes.AILAB_ERROR
    )
    assert "multipart" in body["error_msg"]
