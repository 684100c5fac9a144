"""Property-based fuzzing (hypothesis) of what reads untrusted input: the image decoder, the
request parser and the options model, and the image_url checks. The property is the same for
all: whatever the input, the only exception is one of alphacut's own errors (a 4xx that names
the problem), never anything that would be a 500.

The tests run each property briefly; ``benchmarks/fuzz.py`` runs them for minutes.

Usage::

    for name in PROPERTIES:
        check(name, examples=300)      # raises on a failing input
"""

from __future__ import annotations

import base64
import io
import json
from collections import Counter

from alphacut.api.request import parse_image_request
from alphacut.codec import decode_image
from alphacut.errors import AlphacutError, UrlNotAllowed
from alphacut.options import CutoutOptions
from alphacut.settings import ImageLimits, ServiceSettings
from alphacut.urlfetch import parse_url
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

CASES: Counter[str] = Counter()  # inputs each property was given (benchmarks/fuzz.py prints them)
LIMITS = ImageLimits()
SERVICE = ServiceSettings()
OPTION_NAMES = sorted(CutoutOptions.field_names()) + ["classes", "return", "image_url", "x"]


def _seed_images() -> list[bytes]:
    """Small valid files of every format read, to mutate (most random bytes are not images)."""
    out = []
    for fmt, mode in (
        ("PNG", "RGBA"),
        ("JPEG", "RGB"),
        ("WEBP", "RGB"),
        ("GIF", "P"),
        ("BMP", "RGB"),
        ("TIFF", "RGB"),
        ("PNG", "L"),
        ("PNG", "I;16"),
    ):
        buffer = io.BytesIO()
        Image.new("RGB", (64, 48), (200, 30, 30)).convert(mode).save(buffer, fmt)
        out.append(buffer.getvalue())
    return out


SEEDS = _seed_images()


@st.composite
def mutated_images(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        position = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            data[position] = draw(st.integers(0, 255))
        elif action == "cut":
            del data[position : position + draw(st.integers(1, 64))]
        else:
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
        if not data:
            break
    return bytes(data)


def _only_our_errors(call) -> None:
    try:
        call()
    except AlphacutError:
        pass


def decoder_property(data: bytes) -> None:
    CASES["image decoder"] += 1
    _only_our_errors(lambda: decode_image(data, LIMITS))


text = st.text(max_size=40)
params = st.dictionaries(
    st.sampled_from(OPTION_NAMES),
    st.one_of(
        text,
        st.sampled_from(
            ["png", "jpg", "webp", "both", "mask", "1", "0", "#ffffff", "person", "-1", "99999", "1e9", "NaN"]
        ),
    ),
    max_size=6,
)


def options_property(values: dict) -> None:
    CASES["options model"] += 1
    _only_our_errors(lambda: CutoutOptions.from_mapping(values))


@st.composite
def api_events(draw) -> dict:
    content_type = draw(
        st.one_of(
            st.sampled_from(
                [
                    "image/jpeg",
                    "application/octet-stream",
                    "application/json",
                    "multipart/form-data; boundary=x",
                    "multipart/form-data",
                    "text/plain",
                    "",
                ]
            ),
            text,
        )
    )
    kind = draw(st.sampled_from(["raw", "json", "multipart", "junk"]))
    if kind == "raw":
        body = draw(st.one_of(mutated_images(), st.binary(max_size=512)))
    elif kind == "json":
        document = draw(
            st.recursive(
                st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), text),
                lambda children: st.lists(children, max_size=3) | st.dictionaries(text, children, max_size=3),
                max_leaves=12,
            )
        )
        if draw(st.booleans()):
            document = {"image_base64": base64.b64encode(draw(mutated_images())).decode(), **draw(params)}
        body = json.dumps(document).encode()
    elif kind == "multipart":
        field = draw(st.sampled_from(["image_file", "image", "format", "x"]))
        body = (
            b'--x\r\nContent-Disposition: form-data; name="'
            + field.encode()
            + b'"; filename="a"\r\n\r\n'
            + draw(st.one_of(mutated_images(), st.binary(max_size=64)))
            + b"\r\n--x--\r\n"
        )
    else:
        body = draw(st.binary(max_size=512))
    encoded = draw(st.booleans())
    return {
        "headers": {"content-type": content_type},
        "queryStringParameters": draw(params) or None,
        "body": base64.b64encode(body).decode() if encoded else body.decode("utf-8", "replace"),
        "isBase64Encoded": encoded,
    }


def request_property(event: dict) -> None:
    CASES["request parser"] += 1

    def parse():
        request = parse_image_request(event, SERVICE, LIMITS.max_bytes, fetch_urls=False)
        CutoutOptions.from_mapping({k: v for k, v in request.params.items() if k in OPTION_NAMES[:-4]})

    _only_our_errors(parse)


def url_property(url: str) -> None:
    CASES["image_url checks"] += 1
    try:
        parse_url(url)
    except UrlNotAllowed:
        pass


urls = st.one_of(
    text,
    st.builds(
        lambda scheme, host, port, path: f"{scheme}://{host}{port}{path}",
        st.sampled_from(["http", "https", "ftp", "HTTP", ""]),
        text,
        st.sampled_from(["", ":80", ":443", ":99999", ":-1", ":x", ":0"]),
        text,
    ),
)

# name -> (what to generate, the property)
PROPERTIES = {
    "image decoder": (st.one_of(mutated_images(), st.binary(max_size=2048)), decoder_property),
    "options model": (params, options_property),
    "request parser": (api_events(), request_property),
    "image_url checks": (urls, url_property),
}


def check(name: str, examples: int) -> None:
    """Run one property on ``examples`` inputs; raises (with the smallest failing input) on a failure."""
    strategy, prop = PROPERTIES[name]
    settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))(
        given(strategy)(prop)
    )()
