"""Result objects in S3, handed out as presigned GET URLs.

Usage::

    store = ResultStore.from_env()                          # RESULTS_BUCKET
    link = store.put("results/2026-11-22/abc/image.png", data, "image/png")
    link.url, link.expires_at
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from functools import cached_property

import boto3
from botocore.config import Config

URL_TTL_SECONDS = 3600


@dataclass(frozen=True)
class ResultLink:
    key: str
    url: str
    expires_at: int  # unix seconds


class ResultStore:
    def __init__(self, bucket: str, ttl_seconds: int = URL_TTL_SECONDS):
        if not bucket:
            raise ValueError("no results bucket configured (RESULTS_BUCKET)")
        self.bucket = bucket
        self.ttl_seconds = ttl_seconds

    @classmethod
    def from_env(cls) -> ResultStore:
        return cls(os.environ.get("RESULTS_BUCKET", ""), int(os.environ.get("RESULT_URL_TTL", URL_TTL_SECONDS)))

    @cached_property
    def client(self):
        # SigV4 everywhere: presigned URLs must carry an expiry that S3 enforces
        return boto3.client("s3", config=Config(signature_version="s3v4"))

    def put(self, key: str, data: bytes, content_type: str) -> ResultLink:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)
        return self.link(key)

    def link(self, key: str) -> ResultLink:
        url = self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=self.ttl_seconds)
        return ResultLink(key=key, url=url, expires_at=int(time.time()) + self.ttl_seconds)

    def sign(self, key: str) -> str:
        return self.link(key).url
