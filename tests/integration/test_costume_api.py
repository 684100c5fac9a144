"""POST /v1/costume over real HTTP against the local stack (its own Lambda function)."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import requests
from PIL import Image

GARMENTS = ["tops", "coat", "dress", "skirt", "pants", "shoes", "bag", "hat"]


@pytest.fixture(scope="module")
def look(eval_dir) -> bytes:
    return min((eval_dir / "clothing" / "images").iterdir()).read_bytes()


def _decode(entry: dict) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(entry["base64"])))
    image.load()
    return image


def test_default_answer_has_outfit_every_class_and_shares(api, look):
    response = api.post("/v1/costume", files={"image": ("look.jpg", look, "image/jpeg")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["type"] == "costume" and body["request_id"] and body["found"] is True
    outfit = _decode(body["outfit"]["image"])
    assert outfit.mode == "RGBA" and outfit.size == (body["input"]["width"], body["input"]["height"])
    assert body["outfit"]["mask"] is None and body["class_map"] is None
    assert [c["class"] for c in body["classes"]] == GARMENTS
    found = {c["class"]: c["share"] for c in body["classes_found"]}
    for entry in body["classes"]:
        if entry["present"]:
            assert entry["class"] in found and entry["share"] == found[entry["class"]]
            cutout = _decode(entry["image"])
            alpha = np.asarray(cutout)[..., 3]
            assert (alpha > 0).mean() == pytest.approx(entry["share"], abs=0.02)
        else:
            # an absent class is said to be absent, never drawn as an empty picture
            assert "image" not in entry and entry["class"] not in found
    assert any(e["present"] for e in body["classes"]) and not all(e["present"] for e in body["classes"])
    # the outfit has no skin or hair: it is the union of the garments, smaller than the person
    outfit_alpha = np.asarray(outfit)[..., 3]
    assert 0 < (outfit_alpha > 0).mean() <= sum(found.values()) + 0.02


def test_classes_filter_and_mask_with_class_map(api, look):
    response = api.post(
        "/v1/costume",
        json={"image_base64": base64.b64encode(look).decode(), "classes": "hat,tops", "output": "mask"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [c["class"] for c in body["classes"]] == ["hat", "tops"]
    ids = np.asarray(_decode(body["class_map"]))
    assert ids.ndim == 2 and ids.max() <= 9
    for entry in body["classes"]:
        if entry["present"]:
            mask = _decode(entry["mask"])
            assert mask.mode == "L" and entry["image"] is None


def test_seed_004_return_forms(api, look):
    files = {"image": ("look.jpg", look, "image/jpeg")}
    white = api.post("/v1/costume", files=files, data={"return_form": "whiteBK", "classes": "tops"}).json()
    picture = _decode(white["outfit"]["image"])
    assert picture.mode == "RGB" and tuple(np.asarray(picture)[1, 1]) == (255, 255, 255)
    masked = api.post("/v1/costume", files=files, data={"return_form": "mask"}).json()
    assert _decode(masked["outfit"]["mask"]).mode == "L" and masked["outfit"]["image"] is None


def test_url_delivery_signs_every_image(api, look):
    body = api.post(
        "/v1/costume?return=url&classes=tops,pants,coat,skirt,dress",
        data=look,
        headers={"Content-Type": "image/jpeg"},
    ).json()
    urls = [body["outfit"]["image"]["url"]] + [c["image"]["url"] for c in body["classes"] if c["present"]]
    assert len(urls) >= 2
    for url in urls:
        fetched = requests.get(url, timeout=30)
        assert fetched.status_code == 200 and Image.open(io.BytesIO(fetched.content)).mode == "RGBA"


@pytest.mark.parametrize(
    "params, field",
    [
        ({"classes": "tops,socks"}, "classes"),
        ({"return_form": "gif"}, "return_form"),
        ({"return": "binary"}, "return"),
        ({"type": "person"}, "type"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_parameters_are_400_naming_the_field(api, look, params, field):
    response = api.post("/v1/costume", files={"image": ("look.jpg", look, "image/jpeg")}, data=params)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == field


def test_costume_is_not_a_cutout_type(api, look):
    response = api.post("/v1/cutout?type=costume", data=look, headers={"Content-Type": "image/jpeg"})
    assert response.status_code == 400 and response.json()["error"]["field"] == "type"


def test_not_an_image_is_415(api):
    response = api.post(
        "/v1/costume", data=b"just some text, no pixels here" * 5, headers={"Content-Type": "image/jpeg"}
    )
    assert response.status_code == 415, response.text
    assert response.json()["error"]["code"] == "unsupported_image_format"
