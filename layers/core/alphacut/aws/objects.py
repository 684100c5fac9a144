"""Input objects in S3, as every task step sees them: where an ``s3://`` URI points, and the size
rule an input must meet before anything reads it (no pipeline imports: light for every function).

Usage::

    bucket, key = s3_location("s3://results/endpoint/output/x.out")
    refuse_oversized(head["ContentLength"], max_bytes)        # ImageTooLarge above it
    except ClientError as error: if object_gone(error): ...   # 404, or S3's 403 for a missing key
"""

from __future__ import annotations

from urllib.parse import urlparse

from alphacut import errors

# S3 answers a missing key with 404 only to a caller that may s3:ListBucket on the bucket; to
# any other, 403 AccessDenied (it will not say whether a key exists). The functions' roles grant no
# listing (a session that could list the results bucket could find every other key's results), and
# every read that may meet a gone object reads a prefix its role may GetObject: there a 403 can only
# mean the object is gone. A grant that is missing shows in the local stack's tests, which run each
# function as its role (alphacut_dev.local.iam): every read of an object that exists would fail.
GONE_CODES = frozenset({"404", "NoSuchKey", "NotFound", "403", "AccessDenied"})


def object_gone(error: Exception) -> bool:
    """Whether an S3 error on a read of a granted prefix says the object is not there."""
    response = getattr(error, "response", None) or {}
    return response.get("Error", {}).get("Code") in GONE_CODES


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
