"""CORS for both APIs: web pages call them directly with ``fetch()``, as remove.bg's own samples do.

API Gateway answers the preflight (``OPTIONS``, no key, no function) and puts the allowed origin on
its own answers (template.yaml: ``Cors`` and the gateway responses); every answer a function gives
carries it here, whether or not the request named its origin, with the headers a page may read.

Usage::

    app = APIGatewayRestResolver(cors=answer_cors(SETTINGS.cors_allow_origin))
"""

from __future__ import annotations

from aws_lambda_powertools.event_handler import CORSConfig

# what a page may send (the preflight's Access-Control-Allow-Headers, as template.yaml says it)
ALLOWED_REQUEST_HEADERS = ("Content-Type", "Accept", "x-api-key", "Idempotency-Key")

# every header an answer of either API may carry, with what it says (the OpenAPI document's too)
ANSWER_HEADERS: dict[str, str] = {
    "X-Request-Id": "this call's id: quote it when asking about the call",
    "X-Alphacut-Type": "the subject type cut out",
    "X-Alphacut-Width": "the result's width in pixels",
    "X-Alphacut-Height": "the result's height in pixels",
    "X-Alphacut-Bbox": "the subject's box in the result: left,top,right,bottom",
    "X-Alphacut-Timings": "milliseconds per stage: name=ms,...",
    "X-Alphacut-Check": (
        "with a preset: '<preset> passed', '<preset> passed, unsure: <reason>,...' or "
        "'<preset> failed: <rule>,...'"
    ),
    "X-Alphacut-Confidence": "0..1: how likely the matte is right (higher: more likely)",
    "X-Alphacut-Unsure": (
        "'false', or 'true' (a person should look at it); ': <reason>,...' follows when reasons are seen"
    ),
    "X-Alphacut-Enlargement": "the subject's scale from the photo as sent, where it was resized",
    "X-Alphacut-Model": "the matting model that made the matte",
    "X-Alphacut-Result-Id": "the result's id: send it with refine strokes to touch it up (24 h, charged 0)",
    "X-Alphacut-Charge": "true when this call is charged to the key",
    "X-Alphacut-Remain": "calls left today on the key's plan",
    "X-Alphacut-Ignored": "parameters the vendor API does not have, ignored as it ignores them",
    "X-Task-Id": "the task an answer belongs to",
    "Idempotent-Replayed": "true: the kept answer to an earlier call with the same Idempotency-Key",
    "Retry-After": "seconds to wait before the next call",
    "RateLimit-Policy": 'the key\'s limits, quota per window: "rate";q=2;w=1, "day";q=500;w=86400',
    "RateLimit": 'what is left of a window: "day";r=12;t=3600 (calls left, seconds to its reset)',
    "X-Credits-Charged": "remove.bg: credits charged by this call (1 or 0)",
    "X-Width": "remove.bg: the result's width",
    "X-Height": "remove.bg: the result's height",
    "X-Max-Width": "remove.bg: the largest width this photo gives (size=full)",
    "X-Max-Height": "remove.bg: the largest height this photo gives (size=full)",
    "X-Type": "remove.bg: the type asked for, at type_level",
    "X-Foreground-Top": "remove.bg: the subject's box in the result",
    "X-Foreground-Left": "remove.bg: the subject's box in the result",
    "X-Foreground-Width": "remove.bg: the subject's box in the result",
    "X-Foreground-Height": "remove.bg: the subject's box in the result",
    "X-RateLimit-Limit": "remove.bg: the key's calls a day",
    "X-RateLimit-Remaining": "remove.bg: the key's calls left today",
    "X-RateLimit-Reset": "remove.bg: when the day's calls reset (Unix time)",
}


class EveryAnswerCors(CORSConfig):
    """Powertools' CORS, on every answer: without an ``Origin`` header too (API Gateway's gateway
    responses carry the allowed origin the same way), and never an origin that is not allowed."""

    def allowed_origin(self, extracted_origin: str | None) -> str | None:
        if extracted_origin is None:
            return self._allowed_origins[0]
        return super().allowed_origin(extracted_origin)


def answer_cors(allow_origin: str) -> CORSConfig:
    return EveryAnswerCors(
        allow_origin=allow_origin or "*",
        allow_headers=list(ALLOWED_REQUEST_HEADERS),
        expose_headers=list(ANSWER_HEADERS),
    )
