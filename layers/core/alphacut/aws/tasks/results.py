"""Result objects in S3, handed out as links that last their whole promised lifetime.

With a link signer and the API's public base URL (requests that came through the API), a link
is ``<base>/v1/results/<token>`` (``alphacut.result_links``): the route checks the token and
redirects to a URL presigned on the spot, so a 24-hour link outlives the credentials of the
function that made it. Without them (the Notify function, the CLI), a presigned URL.

Usage::

    store = ResultStore("bucket", ttl_seconds=86400, base_url="https://api.example/prod", signer=signer)
    link = store.put("results/2026-11-22/abc/image.png", data, "image/png")
    link.url, link.expires_at
    store.presigned("results/2026-11-22/abc/image.png", seconds=300)   # what the route redirects to
    store.exists("results/2026-11-22/abc/image.png")   # False once the lifecycle expired it
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from alphacut.aws.objects import object_gone
from alphacut.result_links import ROUTE, LinkSigner
from alphacut.settings import ServiceSettings

URL_TTL_SECONDS = 3600
REDIRECT_SECONDS = 300


@dataclass(frozen=True)
class ResultLink:
    key: str
    url: str
    expires_at: int  # unix seconds


@cache
def s3_signing_client() -> Any:
    # SigV4 everywhere: presigned URLs must carry an expiry that S3 enforces
    return boto3.client("s3", config=Config(signature_version="s3v4"))


class ResultStore:
    def __init__(
        self,
        bucket: str,
        ttl_seconds: int = URL_TTL_SECONDS,
        base_url: str = "",
        signer: LinkSigner | None = None,
    ):
        if not bucket:
            raise ValueError("no results bucket configured (RESULTS_BUCKET)")
        self.bucket, self.ttl_seconds = bucket, ttl_seconds
        self.base_url, self.signer = base_url.rstrip("/"), signer

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> ResultStore:
        return cls(settings.require("results_bucket"), settings.result_url_ttl)

    @property
    def client(self) -> Any:
        return s3_signing_client()

    def put(self, key: str, data: bytes, content_type: str) -> ResultLink:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)
        return self.link(key)

    def link(self, key: str) -> ResultLink:
        expires_at = int(time.time()) + self.ttl_seconds
        if self.signer is not None and self.base_url:
            url = f"{self.base_url}{ROUTE}/{self.signer.token(key, expires_at)}"
        else:
            url = self.presigned(key, self.ttl_seconds)
        return ResultLink(key=key, url=url, expires_at=expires_at)

    def presigned(self, key: str, seconds: int = REDIRECT_SECONDS) -> str:
        url: str = self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=seconds
        )
        return url

    def exists(self, key: str) -> bool:
        """False once the object is gone (the bucket's lifecycle expired it)."""
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if object_gone(error):  # 403 too: S3's answer to a role that may not list the bucket
                return False
            raise
        return True

    def sign(self, key: str) -> str:
        return self.link(key).url
