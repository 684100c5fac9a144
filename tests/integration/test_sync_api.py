"""POST /v1/cutout and /v1/selfie over real HTTP against the local stack: every input kind,
every output option, every error status."""

from __future__ import annotations

import base64
import io
import time

import numpy as np
import pytest
import requests
from PIL import Image

from tests.conftest import image_bytes

JPEG = {"Content-Type": "image/jpeg"}


def _image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _error(
    response: requests.Response, status: int, code: str | None = None, field: str | None = None
) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["request_id"]
    if code:
        assert body["error"]["code"] == code
    if field:
        assert body["error"]["field"] == field
    return body["error"]


# ---- input kinds ---------------------------------------------------------------------------
def test_raw_body_binary_answer(api, photo):
    response = api.post("/v1/cutout?return=binary", data=photo, headers=JPEG)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "image/png"
    image = _image(response.content)
    assert image.mode == "RGBA" and image.size == (550, 830)
    assert response.headers["X-Request-Id"] and response.headers["X-Alphacut-Bbox"].count(",") == 3
    assert "inference=" in response.headers["X-Alphacut-Timings"]


def test_accept_image_gets_binary_without_return(api, photo):
    response = api.post("/v1/cutout?format=webp", data=photo, headers={**JPEG, "Accept": "image/webp"})
    assert response.status_code == 200 and response.headers["Content-Type"] == "image/webp"
    assert _image(response.content).format == "WEBP"


def test_multipart_image_file_mask_base64(api, photo):
    response = api.post(
        "/v1/cutout",
        files={"image_file": ("p.jpg", photo, "image/jpeg")},
        data={"output": "mask", "return": "base64"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["image"] is None and body["mask"]["content_type"] == "image/png"
    mask = _image(base64.b64decode(body["mask"]["base64"]))
    assert mask.mode == "L" and mask.size == (550, 830)
    assert body["found"] is True and body["bbox"]["width"] > 100
    assert set(body["timings_ms"]) >= {"decode", "inference", "encode", "total"}


def test_multipart_image_field_jpg_on_colour(api, photo):
    response = api.post(
        "/v1/cutout",
        files={"image": ("p.jpg", photo, "image/jpeg")},
        data={"format": "jpg", "bg_color": "#00ff00"},
    )
    body = response.json()
    image = _image(base64.b64decode(body["image"]["base64"]))
    assert image.format == "JPEG" and body["image"]["content_type"] == "image/jpeg"
    corner = np.asarray(image)[2, 2].astype(int)
    assert corner[1] > 200 and corner[0] < 60 and corner[2] < 60


def test_json_base64_both_as_urls_equal_the_binary_answer(api, photo):
    data_url = "data:image/jpeg;base64," + base64.b64encode(photo).decode()
    response = api.post(
        "/v1/cutout", json={"image_base64": data_url, "output": "both", "return": "url", "crop": True}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["image"]["expires_at"] - time.time() == pytest.approx(3600, abs=60)
    fetched_image = requests.get(body["image"]["url"], timeout=30)
    fetched_mask = requests.get(body["mask"]["url"], timeout=30)
    assert fetched_image.status_code == fetched_mask.status_code == 200
    binary = api.post("/v1/cutout?return=binary&crop=1", data=photo, headers=JPEG)
    assert fetched_image.content == binary.content
    mask = api.post("/v1/cutout?return=binary&crop=1&output=mask", data=photo, headers=JPEG)
    assert fetched_mask.content == mask.content
    assert (
        _image(fetched_image.content).size
        == (body["width"], body["height"])
        == (body["bbox"]["width"], body["bbox"]["height"])
    )


def test_json_image_url(api, image_server):
    response = api.post(
        "/v1/cutout",
        json={
            "image_url": image_server.url("photo.jpg"),
            "target_width": 200,
            "target_height": 200,
            "output": "mask",
        },
    )
    assert response.status_code == 200, response.text
    assert _image(base64.b64decode(response.json()["mask"]["base64"])).size == (200, 200)


def test_selfie_route_is_the_person_pipeline(api, photo):
    response = api.post("/v1/selfie?return=base64&output=mask", data=photo, headers=JPEG)
    assert response.status_code == 200, response.text
    assert response.json()["type"] == "person"
    _error(api.post("/v1/selfie?type=object", data=photo, headers=JPEG), 400, "invalid_option", "type")


def test_stamp_type(api):
    from PIL import ImageDraw

    page = Image.new("RGB", (400, 300), "white")
    ImageDraw.Draw(page).ellipse((100, 50, 300, 250), outline=(200, 20, 20), width=12)
    response = api.post(
        "/v1/cutout?type=stamp&crop=1&return=binary",
        data=image_bytes(page, "PNG"),
        headers={"Content-Type": "image/png"},
    )
    assert response.status_code == 200
    assert _image(response.content).size == (201, 201)


# ---- errors --------------------------------------------------------------------------------
def test_no_key_and_wrong_key_are_401(stack, photo):
    missing = requests.post(stack.url + "/v1/cutout", data=photo, headers=JPEG, timeout=30)
    assert missing.status_code == 401 and "missing" in missing.json()["error"]["message"]
    wrong = requests.post(
        stack.url + "/v1/cutout", data=photo, headers={**JPEG, "x-api-key": "nope-" * 5}, timeout=30
    )
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"


def test_bad_base64_is_400(api):
    _error(
        api.post("/v1/cutout", json={"image_base64": "this is *not* base64!"}),
        400,
        "invalid_option",
        "image_base64",
    )


def test_not_an_image_is_415(api):
    _error(
        api.post("/v1/cutout", data=b"just some text, no pixels here" * 5, headers=JPEG),
        415,
        "unsupported_image_format",
        "image",
    )


def test_unreadable_content_type_is_415(api):
    _error(
        api.post("/v1/cutout", data="hello", headers={"Content-Type": "text/plain"}),
        415,
        "unsupported_media_type",
        "Content-Type",
    )


def test_damaged_image_is_422(api, photo):
    _error(api.post("/v1/cutout", data=photo[: len(photo) // 3], headers=JPEG), 422, "invalid_image", "image")


def test_too_large_is_413(api, image_server):
    huge = image_bytes(Image.new("L", (5000, 5000)), "PNG")
    error = _error(
        api.post("/v1/cutout", data=huge, headers={"Content-Type": "image/png"}), 413, "image_too_large"
    )
    assert "4096" in error["message"]
    _error(
        api.post("/v1/cutout", json={"image_url": image_server.url("huge.jpg")}),
        413,
        "image_too_large",
        "image_url",
    )


@pytest.mark.parametrize(
    "params,field",
    [
        ("format=gif", "format"),
        ("output=all", "output"),
        ("bg_color=blurple", "bg_color"),
        ("target_width=0", "target_width"),
        ("return=email", "return"),
        ("colour=red", "colour"),
        ("output=both&return=binary", "return"),
    ],
)
def test_bad_options_are_400_naming_the_field(api, photo, params, field):
    _error(api.post(f"/v1/cutout?{params}", data=photo, headers=JPEG), 400, field=field)


def test_missing_image_is_400(api):
    _error(api.post("/v1/cutout", json={"format": "png"}), 400, "invalid_option", "image_base64")
    _error(api.post("/v1/cutout", files={"other": ("x.txt", b"x")}), 400, "invalid_option", "image_file")


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x.jpg",
        "file:///etc/passwd",
        "http://host:99999/x.jpg",
        "http://example.com:8080/x.jpg",
        "http://" + "a" * 10_000 + ".com/x.jpg",
        "http://exa mple..com/x.jpg",
        "http://[::1/x.jpg",
    ],
)
def test_urls_that_may_not_be_fetched_are_400_naming_the_problem(api, url):
    _error(api.post("/v1/cutout", json={"image_url": url}), 400, "url_not_allowed", "image_url")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:80/",
        "http://10.0.0.1/x.jpg",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://[2002:a00:1::]/",
        "http://[::10.0.0.1]/",
        "http://no-such-host.invalid/x.jpg",
    ],
)
def test_refused_and_failed_fetches_get_one_answer(api, url, image_server):
    """A private address, a name that does not resolve and a missing file look the same to the
    caller: the API cannot be used to map a network."""
    answers = [api.post("/v1/cutout", json={"image_url": u}) for u in (url, image_server.url("missing.jpg"))]
    bodies = [_error(a, 422, "url_fetch_failed", "image_url") for a in answers]
    assert bodies[0]["message"] == bodies[1]["message"]


def test_redirect_to_loopback_is_refused(api, image_server):
    for target in (
        "http://127.0.0.1:9/photo.jpg",
        "http://169.254.169.254/latest/",
        "ftp://example.com/x.jpg",
    ):
        _error(
            api.post("/v1/cutout", json={"image_url": image_server.url(f"redirect?to={target}")}),
            422,
            "url_fetch_failed",
            "image_url",
        )


def test_over_the_rate_is_429(default_key_api):
    time.sleep(2.5)  # let the default key's bucket refill
    statuses = [default_key_api.get("/v1/openapi.json") for _ in range(10)]
    codes = [r.status_code for r in statuses]
    assert codes.count(200) >= 4 and 429 in codes
    refused = statuses[codes.index(429)]
    assert int(refused.headers["Retry-After"]) >= 1 and refused.json()["error"]["code"] == "rate_limited"


def test_unknown_route_is_api_gateways_403(api):
    response = api.get("/v1/nothing-here")
    assert response.status_code == 403 and response.json() == {"message": "Missing Authentication Token"}


def test_openapi_lists_routes_and_options(api):
    response = api.get("/v1/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    assert spec["openapi"].startswith("3.")
    assert {"/v1/cutout", "/v1/selfie", "/v1/openapi.json"} <= set(spec["paths"])
    cutout = spec["paths"]["/v1/cutout"]["post"]
    params = {p["name"]: p["schema"] for p in cutout["parameters"]}
    assert params["type"]["enum"] == ["auto", "object", "person", "stamp"]
    assert {"image/jpeg", "image/png", "multipart/form-data", "application/json"} <= set(
        cutout["requestBody"]["content"]
    )
    assert {"size", "roi", "scale", "position", "channels", "bg_image_url"} <= set(params)
    assert {"400", "401", "413", "415", "422", "429", "500"} <= set(cutout["responses"])
    assert spec["paths"]["/v1/selfie"]["post"]["parameters"][0]["schema"]["enum"] == ["person"]


# ---- both routes: every input kind, every output option ----------------------------------
def _send(api, route: str, kind: str, photo: bytes, image_server, options: dict) -> requests.Response:
    if kind == "raw":
        query = "&".join(f"{k}={v}" for k, v in options.items())
        return api.post(f"{route}?{query}", data=photo, headers=JPEG)
    if kind in ("image_file", "image"):
        return api.post(route, files={kind: ("p.jpg", photo, "image/jpeg")}, data=options)
    if kind == "image_base64":
        return api.post(route, json={"image_base64": base64.b64encode(photo).decode(), **options})
    return api.post(route, json={"image_url": image_server.url("photo.jpg"), **options})


MATRIX = [  # (input kind, options): together every kind, output, format and return
    ("raw", {"output": "image", "format": "png", "return": "binary"}),
    ("image_file", {"output": "mask", "return": "base64"}),
    ("image", {"output": "both", "format": "webp", "return": "url"}),
    ("image_base64", {"output": "image", "format": "jpg", "return": "base64"}),
    ("image_url", {"output": "both", "format": "png", "return": "base64"}),
]


@pytest.mark.parametrize("route", ["/v1/cutout", "/v1/selfie"])
@pytest.mark.parametrize("kind,options", MATRIX, ids=[kind for kind, _ in MATRIX])
def test_route_input_output_matrix(api, photo, image_server, route, kind, options):
    response = _send(api, route, kind, photo, image_server, options)
    assert response.status_code == 200, response.text
    expected_type = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp"}[
        options.get("format", "png")
    ]
    if options["return"] == "binary":
        assert response.headers["Content-Type"] == expected_type
        assert _image(response.content).size == (550, 830)
        return
    body = response.json()
    assert body["type"] == ("person" if route == "/v1/selfie" else "object")
    for part in ("image", "mask"):
        wanted = options["output"] in (part, "both")
        assert (body[part] is not None) == wanted
        if not wanted:
            continue
        data = (
            requests.get(body[part]["url"], timeout=30).content
            if options["return"] == "url"
            else base64.b64decode(body[part]["base64"])
        )
        image = _image(data)
        assert image.size == (550, 830)
        assert body[part]["content_type"] == (expected_type if part == "image" else "image/png")
        if part == "mask":
            assert image.mode == "L"


def test_result_links_redirect_without_a_key_and_expire(api, stack, photo):
    """A result URL is the API's own signed link: it needs no key, redirects to the image
    presigned on the spot (so a 24 h link outlives the credentials that made it), and expires."""
    from alphacut.result_links import LinkSigner

    body = api.post("/v1/cutout?return=url", data=photo, headers=JPEG).json()
    link = body["image"]["url"]
    assert link.startswith(f"{stack.url}/prod/v1/results/")
    first = requests.get(link, allow_redirects=False, timeout=30)
    assert first.status_code == 302 and "X-Amz-Expires=300" in first.headers["Location"]
    assert _image(requests.get(first.headers["Location"], timeout=30).content).mode == "RGBA"
    forged = requests.get(link[:-3] + "AAA", timeout=30)
    assert forged.status_code == 403 and forged.json()["error"]["code"] == "invalid_link"
    secret = (
        stack.client("secretsmanager")
        .get_secret_value(SecretId=stack.physical["ResultLinkSecret"])["SecretString"]
        .encode()
    )
    key = LinkSigner(secret).open(link.rsplit("/", 1)[1])
    late = LinkSigner(secret).token(key, int(time.time()) - 1)
    expired = requests.get(f"{stack.url}/v1/results/{late}", timeout=30)
    assert expired.status_code == 410 and expired.json()["error"]["code"] == "link_expired"


# ---- the options remove.bg brought, on the native routes ----------------------------------
def test_native_cutout_takes_size_roi_scale_and_position(api, photo):
    response = api.post(
        "/v1/cutout",
        files={"image_file": ("p.jpg", photo, "image/jpeg")},
        data={
            "size": "preview",
            "roi": "0% 0% 100% 60%",
            "scale": "50%",
            "position": "0% 0%",
            "return": "base64",
        },
    )
    body = response.json()
    image = _image(base64.b64decode(body["image"]["base64"]))
    assert response.status_code == 200 and image.width * image.height <= 250_000
    alpha = np.asarray(image)[:, :, 3]
    rows, cols = np.flatnonzero((alpha >= 13).any(axis=1)), np.flatnonzero((alpha >= 13).any(axis=0))
    assert rows[0] == 0 and cols[0] == 0  # moved to the top left corner
    assert max((rows[-1] + 1) / image.height, (cols[-1] + 1) / image.width) == pytest.approx(0.5, abs=0.03)
    assert body["input"] == {"width": image.width, "height": image.height}  # the preview-sized input


def test_native_cutout_composes_on_an_uploaded_or_linked_background(api, photo, image_server):
    files = {"image_file": ("p.jpg", photo, "image/jpeg"), "bg_image_file": ("bg.jpg", photo, "image/jpeg")}
    uploaded = api.post("/v1/cutout", files=files, data={"format": "auto", "return": "binary"})
    linked = api.post(
        "/v1/cutout",
        json={
            "image_base64": base64.b64encode(photo).decode(),
            "format": "auto",
            "bg_image_url": image_server.url("photo.jpg"),
            "return": "binary",
        },
    )
    assert uploaded.headers["Content-Type"] == linked.headers["Content-Type"] == "image/jpeg"
    assert (
        np.abs(
            np.asarray(_image(uploaded.content), np.int16) - np.asarray(_image(linked.content), np.int16)
        ).max()
        <= 2
    )
    refused = api.post("/v1/cutout", files=files, data={"bg_image_url": image_server.url("photo.jpg")})
    assert refused.status_code == 400 and refused.json()["error"]["field"] == "bg_image_url"
    dead = api.post(
        "/v1/cutout",
        json={"image_url": image_server.url("photo.jpg"), "bg_image_url": image_server.url("missing.jpg")},
    )
    assert dead.status_code == 422 and dead.json()["error"]["field"] == "bg_image_url"


def test_native_zip_answers_color_and_alpha(api, photo):
    import zipfile

    response = api.post(
        "/v1/cutout",
        files={"image_file": ("p.jpg", photo, "image/jpeg")},
        data={"format": "zip", "return": "binary"},
    )
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/zip"
    assert zipfile.ZipFile(io.BytesIO(response.content)).namelist() == ["color.jpg", "alpha.png"]
