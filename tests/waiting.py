"""Waiting for a condition, never for a time: a test that sleeps a fixed while and then asserts
passes on an idle machine and fails on a loaded one.

Usage::

    from tests.waiting import wait_until

    wait_until(lambda: charged() == before + 10, "each image charged once")
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest


def wait_until[T](condition: Callable[[], T], what: str, timeout: float = 60.0, every: float = 0.1) -> T:
    """``condition()``'s first true value, looked at every ``every`` s; the test fails naming ``what``
    after ``timeout`` s (a bound for a loaded machine, not the time it usually takes)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"{what}: not so after {timeout:g} s (last: {value!r})")
        time.sleep(every)
