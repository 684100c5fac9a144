"""A page of a key's recent tasks: its size, and a cursor that comes back from the caller, checked
to be one of this key's index positions before DynamoDB ever sees it (a crafted one is a 400)."""

from __future__ import annotations

import base64
import json

import pytest
from alphacut.api.task_pages import next_cursor, read_cursor, read_limit
from alphacut.errors import InvalidOption

TASK = "0f8fad5b-d9cb-469f-a165-70867728950e"


def cursor(**fields) -> str:
    after = {"task_id": TASK, "listed_owner": "k-mine", "created_at": 1795950000, **fields}
    return base64.urlsafe_b64encode(json.dumps(after).encode()).decode().rstrip("=")


def test_a_cursor_given_to_a_key_comes_back_as_the_index_position_it_was():
    last = {"task_id": TASK, "listed_owner": "k-mine", "created_at": 1795950000}
    assert read_cursor(next_cursor(last), "k-mine") == last and next_cursor(None) is None


@pytest.mark.parametrize(
    "forged",
    [
        cursor(listed_owner="k-other"),  # another key's tasks
        cursor(created_at=True),  # a bool is no time
        cursor(created_at=10**40),  # past what DynamoDB's number encoding takes
        cursor(created_at=1.5),
        cursor(task_id=""),  # an empty key attribute
        cursor(task_id="x" * 3000),
        cursor(extra="field"),
        "not base64 at all!",
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
    ],
)
def test_a_cursor_not_made_for_this_key_is_a_400_naming_cursor(forged):
    with pytest.raises(InvalidOption) as refused:
        read_cursor(forged, "k-mine")
    assert refused.value.field == "cursor"


@pytest.mark.parametrize("limit", ["0", "51", "ten", "-1"])
def test_a_page_size_outside_1_to_50_is_a_400_naming_limit(limit):
    with pytest.raises(InvalidOption) as refused:
        read_limit(limit)
    assert refused.value.field == "limit"
    assert read_limit(None) == 20 and read_limit("50") == 50
