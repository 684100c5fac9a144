"""API Gateway's integrations as AWS runs them, read from the translated template's API body.

- Binary media types (``x-amazon-apigateway-binary-media-types``): a request whose Content-Type
  matches one is binary to API Gateway (a Lambda proxy gets it base64-encoded). ``*/*`` matches
  every request, one without a Content-Type too (a browser's CORS preflight).
- A mock integration (the CORS preflights) maps the request through its request template before
  it answers. A binary request cannot be mapped: API Gateway answers 500 ("Internal server error",
  API_CONFIGURATION_ERROR) unless the integration's ``contentHandling`` is ``CONVERT_TO_TEXT``.
  SAM's ``Cors`` makes its mocks without it, so under ``*/*`` every preflight fails on AWS.

Usage::

    mock = MockIntegration.from_swagger(operation["x-amazon-apigateway-integration"], types, resolve)
    if mock.fails(request_content_type): answer 500
    else: answer 200 with mock.headers
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


def static_headers(parameters: dict[str, str], prefix: str) -> dict[str, str]:
    """Response parameters as API Gateway sends them: ``<prefix><name>`` -> the quoted static value."""
    return {name.removeprefix(prefix): value.strip("'") for name, value in parameters.items()}


def is_binary(content_type: str | None, binary_media_types: Sequence[str]) -> bool:
    """Whether API Gateway treats a request with this Content-Type as binary."""
    media = (content_type or "").split(";")[0].strip().lower()
    return any(
        kind == "*/*" or (media and fnmatch.fnmatch(media, kind.lower())) for kind in binary_media_types
    )


@dataclass(frozen=True)
class MockIntegration:
    headers: dict[str, str]  # the default response's header mappings, resolved
    content_handling: str  # "" (passthrough), CONVERT_TO_TEXT or CONVERT_TO_BINARY
    binary_media_types: tuple[str, ...]  # the API's

    @classmethod
    def from_swagger(
        cls, integration: dict[str, Any], binary_media_types: Sequence[str], resolve: Callable[[Any], Any]
    ) -> MockIntegration:
        parameters = resolve(integration["responses"]["default"].get("responseParameters", {}))
        return cls(
            static_headers(parameters, "method.response.header."),
            integration.get("contentHandling", ""),
            tuple(binary_media_types),
        )

    def fails(self, content_type: str | None) -> bool:
        """True where AWS answers 500: the request is binary and not converted to text."""
        return self.content_handling != "CONVERT_TO_TEXT" and is_binary(content_type, self.binary_media_types)
