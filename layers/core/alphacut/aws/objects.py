"""Input objects in S3, as every task step sees them: where an ``s3://`` URI points, and the size
rule an input must meet before anything reads it (no pipeline imports: light for every function).

Usage::

    bucket, key = s3_location("s3://results/endpoint/output/x.out")
    refuse_oversized(head["ContentLength"], max_bytes)        # ImageTooLarge above it
"""

from __future__ import annotations

from urllib.parse import urlparse

from alphacut import errors


def refuse_oversized(size: int, max_bytes: int) -> None:
    """An input object over the limit, refused by its stored size (never read to find out)."""
    if size > max_bytes:
        raise errors.ImageTooLarge(
            f"is {size} bytes; at most {max_bytes} are accepted", field="image", limit=max_bytes
        )


def s3_location(uri: str) -> tuple[str, str]:
    """(bucket, key) of an ``s3://bucket/key`` URI."""
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")
