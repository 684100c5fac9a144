"""Turn an API Gateway REST proxy event into image bytes and string parameters.

Accepted bodies (native API v1):

- raw image: ``Content-Type: image/*`` (or application/octet-stream); options in the query string
- multipart/form-data: the file in ``image_file`` (or ``image``), a background picture in
  ``bg_image_file``, touch-up strokes in ``refine``; options as form fields
- application/json: ``image_base64`` (plain or a data: URL) or ``image_url``, a background picture
  in ``bg_image_base64``, touch-up strokes in ``refine_base64``; options as keys

A touch-up (``result_id``: ``alphacut.touchup``) sends no image: multipart or JSON, its source is
``result``.

Query-string options apply to every kind; body fields win over them.

Usage::

    request = parse_image_request(event, settings, max_bytes=limits.max_bytes)
    request.image, request.params["format"]
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qsl

from alphacut.errors import ImageTooLarge, InvalidOption, UnsupportedMediaType
from alphacut.settings import ServiceSettings
from alphacut.urlfetch import parse_url

FILE_FIELDS = ("image_file", "image")
SOURCE_FIELDS = ("image_file", "image", "image_base64", "image_url")
BACKGROUND_FIELDS = ("bg_image_file", "bg_image_base64")
REFINE_FIELDS = ("refine", "refine_base64")


@dataclass
class ImageRequest:
    image: bytes
    params: dict[str, str] = field(default_factory=dict)
    source: str = "body"  # body | multipart | base64 | url
    accept: str = ""
    background: bytes | None = None  # an uploaded background picture (bg_image_file / bg_image_base64)
    refine: bytes | None = None  # touch-up strokes (refine / refine_base64), a PNG


def header(event: dict[str, Any], name: str, default: str = "") -> str:
    """A request header, case-insensitively."""
    wanted = name.lower()
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == wanted and value is not None:
            return str(value)
    return default


def declared_length(value: str | None, limit: int) -> int:
    """A Content-Length header checked before any body is read: a whole number, at most
    ``limit`` (servers that read bodies themselves: the local gateway, the model server)."""
    text = (value or "0").strip()
    if not text.isdigit():
        raise InvalidOption(f"must be a whole number of bytes, not {text[:40]!r}", field="Content-Length")
    length = int(text)
    if length > limit:
        raise ImageTooLarge(
            f"is {length} bytes; at most {limit} are accepted", field="Content-Length", limit=limit
        )
    return length


def raw_body(event: dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body)
        except (binascii.Error, ValueError):
            raise InvalidOption("is not valid base64", field="body") from None
    return body.encode("utf-8") if isinstance(body, str) else body


MAX_JSON_DEPTH = 16


def _depth(value: object) -> int:
    """How deeply a parsed JSON value nests (iteratively: no recursion to exhaust)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def parse_json_object(body: bytes, hint: str = "") -> dict[str, Any]:
    """A request body that must be a JSON object, nested at most ``MAX_JSON_DEPTH`` deep.
    Anything else is a 400 naming the body (never a RecursionError's 500)."""
    try:
        document = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise InvalidOption(f"is not valid JSON{hint}", field="body") from None
    except RecursionError:
        document = None
        depth = MAX_JSON_DEPTH + 1
    else:
        depth = _depth(document)
    if depth > MAX_JSON_DEPTH:
        raise InvalidOption(f"nests deeper than {MAX_JSON_DEPTH} levels", field="body", limit=MAX_JSON_DEPTH)
    if not isinstance(document, dict):
        raise InvalidOption(f"must be a JSON object{hint}", field="body")
    return document


def json_fields(document: dict[str, Any]) -> dict[str, str]:
    """A JSON object's members as string parameters, as forms send them (true/false, nested values
    as JSON text); nulls left out."""
    return {
        k: v
        if isinstance(v, str)
        else json.dumps(v)
        if isinstance(v, (dict, list))
        else str(v).lower()
        if isinstance(v, bool)
        else str(v)
        for k, v in document.items()
        if v is not None
    }


BODY_TYPES = ("multipart/form-data", "application/json", "application/x-www-form-urlencoded")


@dataclass
class Body:
    """A request body read by its Content-Type: multipart/form-data (files and fields), a JSON
    object (its members as ``json_fields``) or a url-encoded form; another type gives neither."""

    content_type: str
    media_type: str
    fields: dict[str, str]
    files: dict[str, bytes]

    @property
    def understood(self) -> bool:
        return self.media_type in (
            "multipart/form-data",
            "application/json",
            "application/x-www-form-urlencoded",
        )


def read_body(event: dict[str, Any]) -> Body:
    """The body's fields and files, one reader for every route that takes forms or JSON."""
    content_type = header(event, "content-type").strip()
    media_type = content_type.split(";")[0].strip().lower()
    body = Body(content_type, media_type, {}, {})
    if media_type == "multipart/form-data":
        body.files, body.fields = parse_multipart(content_type, raw_body(event))
    elif media_type == "application/json":
        body.fields = json_fields(parse_json_object(raw_body(event)))
    elif media_type == "application/x-www-form-urlencoded":
        body.fields = dict(parse_qsl(raw_body(event).decode("utf-8", "replace"), keep_blank_values=True))
    return body


def _query(event: dict[str, Any]) -> dict[str, str]:
    return dict(event.get("queryStringParameters") or {})


def decode_base64_image(value: str, max_bytes: int, field_name: str = "image_base64") -> bytes:
    """Base64 (standard or URL-safe, with or without a ``data:image/...;base64,`` prefix) to bytes."""
    text = value.strip()
    if text.startswith("data:"):
        _, _, text = text.partition(",")
    text = "".join(text.split())
    if len(text) * 3 // 4 > max_bytes + 3:
        raise ImageTooLarge(f"decodes to more than {max_bytes} bytes", field=field_name, limit=max_bytes)
    padded = text + "=" * (-len(text) % 4)
    try:
        alphabet = b"-_" if ("-" in text or "_" in text) else None
        data = base64.b64decode(padded, altchars=alphabet, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidOption("is not valid base64", field=field_name) from None
    if not data:
        raise InvalidOption("is empty", field=field_name)
    return data


def parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, bytes], dict[str, str]]:
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        raise InvalidOption("is not a valid multipart/form-data body (boundary missing?)", field="body")
    files: dict[str, bytes] = {}
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or not name:  # a tuple only for RFC 2231 encoded names
            continue
        payload = part.get_payload(decode=True)
        payload = payload if isinstance(payload, bytes) else b""
        if part.get_filename() is not None or name in FILE_FIELDS:
            files[name] = payload
        else:
            fields[name] = payload.decode("utf-8", "replace")
    return files, fields


def parse_image_request(
    event: dict[str, Any], settings: ServiceSettings, max_bytes: int, fetch_urls: bool = True
) -> ImageRequest:
    """The image and parameters of a request. With ``fetch_urls=False`` an ``image_url`` is not
    downloaded here (async tasks fetch it in their own step): ``image`` is empty, the URL stays
    in ``params``."""
    content_type = header(event, "content-type").strip()
    media_type = content_type.split(";")[0].strip().lower()
    params = _query(event)
    accept = header(event, "accept")

    if media_type.startswith("image/") or media_type == "application/octet-stream":
        image = raw_body(event)
        if not image:
            raise InvalidOption("the request body is empty: send the image bytes", field="body")
        _no_image_with_result_id(params, "body")
        return ImageRequest(image, params, "body", accept)

    if media_type == "multipart/form-data":
        files = (body := read_body(event)).files
        params.update(body.fields)
        background = files.get("bg_image_file") or None
        if params.get("result_id"):
            return _touch_up(params, accept, background, files.get("refine") or None, files)
        for name in FILE_FIELDS:
            if name in files:
                if not files[name]:
                    raise InvalidOption("is an empty file", field=name)
                _check_unused_url(params, settings)
                return ImageRequest(files[name], params, "multipart", accept, background, files.get("refine"))
        if "image_url" in params or "image_base64" in params:
            request = _from_fields(params, settings, max_bytes, accept, fetch_urls)
            request.background, request.refine = background, files.get("refine") or None
            return request
        raise InvalidOption("no image: send the file in image_file (or image)", field="image_file")

    if media_type == "application/json":
        params.update(read_body(event).fields)
        refine = params.pop("refine_base64", None)
        strokes = decode_base64_image(refine, max_bytes, "refine_base64") if refine else None
        encoded = params.pop("bg_image_base64", None)
        pictured = decode_base64_image(encoded, max_bytes, "bg_image_base64") if encoded else None
        if params.get("result_id"):
            return _touch_up(params, accept, pictured, strokes, params)
        request = _from_fields(params, settings, max_bytes, accept, fetch_urls)
        request.background, request.refine = pictured, strokes
        return request

    if not media_type and params.get("image_url"):
        return _from_fields(params, settings, max_bytes, accept, fetch_urls)
    raise UnsupportedMediaType(
        f"{content_type or '(none)'} is not accepted: send image/*, multipart/form-data "
        "(image_file) or application/json (image_base64 or image_url)",
        field="Content-Type",
    )


def _no_image_with_result_id(params: dict[str, str], source: str) -> None:
    if params.get("result_id"):
        raise InvalidOption("a touch-up takes no image: result_id names the result to redo", field=source)


def _touch_up(
    params: dict[str, str],
    accept: str,
    background: bytes | None,
    refine: bytes | None,
    sent: dict[str, Any],
) -> ImageRequest:
    """A touch-up's request: no image (``sent``: the files or JSON members, none a source)."""
    for name in SOURCE_FIELDS:
        if sent.get(name):
            _no_image_with_result_id(params, name)
    return ImageRequest(b"", params, "result", accept, background, refine)


def _from_fields(
    params: dict[str, str], settings: ServiceSettings, max_bytes: int, accept: str, fetch_urls: bool = True
) -> ImageRequest:
    _check_unused_url(params, settings)
    if params.get("image_base64"):
        return ImageRequest(decode_base64_image(params["image_base64"], max_bytes), params, "base64", accept)
    if params.get("image_url") and not fetch_urls:
        parse_url(
            params["image_url"], settings.url_allowed_hosts, settings.url_allowed_ports
        )  # said now, not later
        return ImageRequest(b"", params, "url", accept)
    if params.get("image_url"):
        return ImageRequest(settings.fetch(params["image_url"], max_bytes), params, "url", accept)
    raise InvalidOption("no image: send image_base64 or image_url", field="image_base64")


def downloaded(request: ImageRequest, settings: ServiceSettings, max_bytes: int) -> ImageRequest:
    """A request parsed with ``fetch_urls=False``, its ``image_url`` downloaded now: a paid route
    reserves the price of what was asked first, so a balance that cannot pay fetches nothing."""
    if request.source != "url" or request.image:
        return request
    image = settings.fetch(request.params["image_url"], max_bytes)
    return ImageRequest(
        image, request.params, request.source, request.accept, request.background, request.refine
    )


def _check_unused_url(params: dict[str, str], settings: ServiceSettings) -> None:
    """An ``image_url`` beside the source that wins must still be a URL: what the documents say a
    request may hold, the parser holds it to, used or not."""
    if params.get("image_url"):
        parse_url(params["image_url"], settings.url_allowed_hosts, settings.url_allowed_ports)


def background_image(
    request: ImageRequest, settings: ServiceSettings, max_bytes: int, fetch_urls: bool = True
) -> bytes | None:
    """The request's background picture: uploaded, or fetched from ``bg_image_url`` under the same
    rules as ``image_url`` (``fetch_urls=False``: the URL is checked now, fetched by the task)."""
    url = (request.params.get("bg_image_url") or "").strip()
    if url and request.background is not None:
        raise InvalidOption(
            "give one background picture: bg_image_url or the uploaded file", field="bg_image_url"
        )
    if request.background is not None or not url:
        return request.background
    if not fetch_urls:
        parse_url(url, settings.url_allowed_hosts, settings.url_allowed_ports, field="bg_image_url")
        return None
    return settings.fetch(url, max_bytes, field="bg_image_url")


RETURN_FORMS = {"mask": {"output": "mask"}, "whitebk": {"bg_color": "#ffffff"}, "": {}}


def apply_return_form(params: dict[str, str]) -> dict[str, str]:
    """The AILabTools-style ``return_form`` (mask | whiteBK | unset = 4-channel PNG) as native options."""
    form = params.pop("return_form", None)
    if form is None:
        return params
    try:
        changes = RETURN_FORMS[form.strip().lower()]
    except KeyError:
        raise InvalidOption(
            f"must be mask or whiteBK (or unset for a 4-channel PNG), not {form!r}", field="return_form"
        ) from None
    return {**params, **changes}
