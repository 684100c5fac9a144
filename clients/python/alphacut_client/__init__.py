"""A small client for alphacut's API: cutout, selfie, costume, tasks, usage, and batches.

Every thread of a client is paced by what the answers say of the key's limits (``pacing``: the
IETF RateLimit fields, remove.bg's X-RateLimit-*, ``Retry-After``), so a batch runs at the key's
rate and a 429 never spends an item's retries; 5xx and dropped connections are retried with
exponential backoff and full jitter. A POST carries an ``Idempotency-Key`` made once per call and
reused by its retries, so a retry is answered from the first attempt and never charged twice.
Errors raise ``ApiError`` with the API's code, field and limit; a credit-based key whose balance
does not cover a call gets ``InsufficientCredits`` (402, never retried; ``client.balance()``).

Usage::

    from alphacut_client import Client

    client = Client("https://abc.execute-api.eu-west-1.amazonaws.com/Prod", api_key="...")
    result = client.cutout("shoe.jpg", format="webp", crop=True)      # a path, bytes or an http(s) URL
    result.save("shoe.webp"); result.bbox, result.charge, result.remain
    task = client.wait(client.submit("big.jpg", output="both"))       # async; state 1 = done
    client.usage()["total"]
    for item in client.batch(Path("photos").glob("*.jpg"), out_dir="out", concurrency=4, deadline=3600):
        print(item.path, item.error or item.output)
"""

from alphacut_client.client import ApiError, BatchItem, Client, InsufficientCredits, Result

__all__ = ["ApiError", "BatchItem", "Client", "InsufficientCredits", "Result"]
__version__ = "0.1.0"
