"""Settings of the HTTP service, read once from the environment.

Usage::

    settings = ServiceSettings.from_env()
    data = settings.fetch("https://example.com/bg.jpg", max_bytes, field="bg_image_url")
"""

from __future__ import annotations

import os
from dataclasses import dataclass


def _split(raw: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (raw or "").split(",") if part.strip())


@dataclass(frozen=True)
class ServiceSettings:
    results_bucket: str = ""
    result_url_ttl: int = 3600
    fetch_timeout: float = 10.0
    # Hosts exempt from the image_url address check. Empty in production; the local stack's
    # tests name their own image server here. Never derived from a request.
    url_allowed_hosts: tuple[str, ...] = ()
    # Ports other than 80 and 443 an image_url may use (empty in production)
    url_allowed_ports: tuple[int, ...] = ()
    warm_models: tuple[str, ...] = ()
    result_link_secret_arn: str = ""  # signs /v1/results links (empty: presigned S3 URLs)

    @classmethod
    def from_env(cls) -> ServiceSettings:
        return cls(
            results_bucket=os.environ.get("RESULTS_BUCKET", ""),
            result_url_ttl=int(os.environ.get("RESULT_URL_TTL", "3600")),
            fetch_timeout=float(os.environ.get("IMAGE_URL_TIMEOUT", "10")),
            url_allowed_hosts=_split(os.environ.get("IMAGE_URL_ALLOWED_HOSTS")),
            url_allowed_ports=tuple(int(p) for p in _split(os.environ.get("IMAGE_URL_ALLOWED_PORTS"))),
            warm_models=_split(os.environ.get("ALPHACUT_WARM_MODELS")),
            result_link_secret_arn=os.environ.get("RESULT_LINK_SECRET_ARN", ""),
        )

    def fetch(self, url: str, max_bytes: int, field: str = "image_url") -> bytes:
        """An image from a URL under this deployment's rules (time limit, allowed hosts and ports);
        errors name ``field``."""
        from alphacut.urlfetch import fetch_image

        return fetch_image(
            url, max_bytes, self.fetch_timeout, self.url_allowed_hosts, self.url_allowed_ports, field=field
        )
