"""Pages of a key's recent tasks (GET /v1/tasks/recent): the page size asked, the opaque cursor
that carries DynamoDB's LastEvaluatedKey to the next call, and the name a task is listed by (a label
of the store's own, the photo's file name: ``name`` on POST /v1/tasks, answered back with the task,
so a list read in another browser still says which photo each task is).

The cursor comes back from the caller: it is checked to be a key of the caller's own part of the
index (the same owner, only the index's own attributes), so a crafted one is a 400, never another
key's tasks nor DynamoDB's own error.

Usage::

    limit = read_limit(query.get("limit"))                   # 1..50, 20 by default
    after = read_cursor(query.get("cursor"), owner)           # None on the first page
    next_cursor(last_evaluated_key)                           # a string, or None after the last page
    task_name(params.get("name"))                             # "" when none; 400 past 200 characters
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from decimal import Decimal
from typing import Any

from alphacut.errors import InvalidOption

PAGE, DEFAULT_PAGE = 50, 20
TASK_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")  # uuid4, as made
NAME_MOST = 200  # a file name's length on most file systems is 255 bytes; a label, not a path
# what a name may not hold: controls (C0, DEL, C1), lone surrogates (not text: they cannot be
# stored), line and paragraph separators, zero-width and direction marks and overrides (a name
# shown as "photo.jpg" that is "photo\u202egpj.exe"), the byte order mark; one list for the check
# and the OpenAPI pattern, so the documents and the answers agree
NAME_REFUSED = (
    ("\u0000", "\u001f"),
    ("\u007f", "\u009f"),
    ("\u200b", "\u200f"),
    ("\u2028", "\u202e"),
    ("\u2066", "\u2069"),
    ("\ud800", "\udfff"),
    ("\ufeff", "\ufeff"),
)
_REFUSED = re.compile("[" + "".join(f"{low}-{high}" for low, high in NAME_REFUSED) + "]")
# a task's name as the OpenAPI documents say it: printable text
TASK_NAME: dict[str, Any] = {
    "type": "string",
    "maxLength": NAME_MOST,
    "pattern": "^[^" + "".join(f"\\u{ord(low):04x}-\\u{ord(high):04x}" for low, high in NAME_REFUSED) + "]*$",
    "description": "a label of the task's own (the photo's file name), answered back with the task",
}


def task_name(value: str | None) -> str:
    """A task's name as given (surrounding spaces dropped): at most ``NAME_MOST`` characters, none
    of ``NAME_REFUSED``; "" when none."""
    name = (value or "").strip()
    if len(name) > NAME_MOST:
        raise InvalidOption(f"is {len(name)} characters; at most {NAME_MOST}", field="name", limit=NAME_MOST)
    refused = _REFUSED.search(name)
    if refused:
        raise InvalidOption(
            f"holds U+{ord(refused.group()):04X}, a control, separator or direction character: "
            "a file name's printable text only",
            field="name",
        )
    return name


def read_limit(value: str | None) -> int:
    if value is None or value == "":
        return DEFAULT_PAGE
    try:
        limit = int(value)
    except ValueError:
        raise InvalidOption(f"must be a whole number from 1 to {PAGE}", field="limit", limit=PAGE) from None
    if not 1 <= limit <= PAGE:
        raise InvalidOption(f"must be from 1 to {PAGE}", field="limit", limit=PAGE)
    return limit


def next_cursor(last: dict[str, Any] | None) -> str | None:
    if not last:
        return None
    plain = {k: int(v) if isinstance(v, Decimal) else v for k, v in last.items()}
    return base64.urlsafe_b64encode(json.dumps(plain, sort_keys=True).encode()).decode().rstrip("=")


def read_cursor(value: str | None, owner: str) -> dict[str, Any] | None:
    from alphacut.aws.tasks.table import LISTED_OWNER  # boto3 only in the function that lists tasks

    if not value:
        return None
    try:
        after: Any = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        after = None
    usable = (
        isinstance(after, dict)
        and set(after) == {"task_id", LISTED_OWNER, "created_at"}  # the table's key and the index's
        and after[LISTED_OWNER] == owner
        and isinstance(after["task_id"], str)
        and TASK_ID.fullmatch(after["task_id"]) is not None
        and type(after["created_at"]) is int  # not a bool, not a float
        and 0 < after["created_at"] < 2**40
    )
    if not usable:
        raise InvalidOption(
            "is not a cursor this key was given: use the next of the page before", field="cursor"
        )
    return {str(name): part for name, part in after.items()}
