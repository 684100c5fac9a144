"""Parsing API Gateway proxy events into image bytes and parameters (no server, no models)."""

import base64
import json

import pytest
from alphacut.api.request import decode_base64_image, parse_image_request
from alphacut.errors import ImageTooLarge, InvalidOption, UnsupportedMediaType
from alphacut.settings import ServiceSettings

SETTINGS = ServiceSettings()
PNG = b"\x89PNG\r\n\x1a\n" + b"pixels" * 10


def event(body: bytes, content_type: str, query=None, binary=True) -> dict:
    return {
        "headers": {"Content-Type": content_type, "Accept": "*/*"},
        "queryStringParameters": query,
        "body": base64.b64encode(body).decode() if binary else body.decode(),
        "isBase64Encoded": binary,
    }


def test_raw_body_with_query_options():
    request = parse_image_request(event(PNG, "image/png", {"format": "webp"}), SETTINGS, 10**6)
    assert request.image == PNG and request.params == {"format": "webp"} and request.source == "body"


def test_multipart_file_and_fields():
    boundary = "XyZ"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="output"\r\n\r\nmask\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="image_file"; filename="a.png"\r\n'
            f"Content-Type: image/png\r\n\r\n"
        ).encode()
        + PNG
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = parse_image_request(
        event(body, f"multipart/form-data; boundary={boundary}", {"format": "jpg"}), SETTINGS, 10**6
    )
    assert request.image == PNG and request.params == {"format": "jpg", "output": "mask"}


def test_json_base64_and_types():
    body = json.dumps(
        {"image_base64": base64.b64encode(PNG).decode(), "crop": True, "target_width": 300}
    ).encode()
    request = parse_image_request(event(body, "application/json", binary=False), SETTINGS, 10**6)
    assert (
        request.image == PNG and request.params["crop"] == "true" and request.params["target_width"] == "300"
    )


@pytest.mark.parametrize(
    "text",
    [
        base64.b64encode(PNG).decode(),
        "data:image/png;base64," + base64.b64encode(PNG).decode(),
        base64.urlsafe_b64encode(PNG).decode().rstrip("="),
        "\n".join(base64.b64encode(PNG).decode()[i : i + 20] for i in range(0, 100, 20)),
    ],
)
def test_base64_variants(text):
    assert decode_base64_image(text, 10**6) == PNG


def test_base64_errors():
    with pytest.raises(InvalidOption) as error:
        decode_base64_image("@@@not base64@@@", 10**6)
    assert error.value.field == "image_base64"
    with pytest.raises(ImageTooLarge):
        decode_base64_image(base64.b64encode(b"x" * 5000).decode(), 1000)


def test_unknown_content_type_is_415():
    with pytest.raises(UnsupportedMediaType) as error:
        parse_image_request(event(b"hi", "text/plain"), SETTINGS, 10**6)
    assert error.value.field == "Content-Type"


def test_empty_body_and_missing_file():
    with pytest.raises(InvalidOption, match="empty"):
        parse_image_request(event(b"", "image/png"), SETTINGS, 10**6)
    with pytest.raises(InvalidOption) as error:
        parse_image_request(event(b"{}", "application/json", binary=False), SETTINGS, 10**6)
    assert error.value.field == "image_base64"


def test_the_caller_is_the_key_id_and_never_the_keys_secret_value():
    from alphacut.api.services import api_key_owner

    let_in = {"principalId": "k1", "key_id": "k1", "plan": "starter", "quota": "50", "credit_based": "false"}
    identity = {"apiKey": "ac_secret-value-of-a-key", "sourceIp": "203.0.113.9"}
    assert api_key_owner({"requestContext": {"authorizer": let_in, "identity": identity}}) == "k1"
    assert api_key_owner({"requestContext": {"identity": identity}}) == "anonymous"


def test_one_body_reader_gives_every_route_the_same_fields_whatever_the_form():
    from alphacut.api.request import read_body

    document = {"size": "preview", "crop": True, "margins": [1, 2], "skip": None, "width": 800}
    json_body = read_body(event(json.dumps(document).encode(), "application/json"))
    form_body = read_body(
        event(b"size=preview&crop=true&margins=%5B1%2C+2%5D&width=800", "application/x-www-form-urlencoded")
    )
    expected = {"size": "preview", "crop": "true", "margins": "[1, 2]", "width": "800"}
    assert json_body.fields == form_body.fields == expected and json_body.understood
    other = read_body(event(b"<xml/>", "text/xml"))
    assert (other.fields, other.files, other.understood) == ({}, {}, False)
