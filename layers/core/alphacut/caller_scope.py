"""Who the work in this context is for (the API key id), for what must be kept apart per caller
without knowing of keys: the memory of recent model runs (``alphacut.models.recent``). A plain
context variable, so the light functions that set it import nothing heavy.

Usage::

    with caller_scope("k0123456789ab"):
        current_caller()                   # "k0123456789ab"; "" outside any scope
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_caller: ContextVar[str] = ContextVar("alphacut_caller", default="")


@contextmanager
def caller_scope(caller: str) -> Iterator[None]:
    token = _caller.set(caller)
    try:
        yield
    finally:
        _caller.reset(token)


def current_caller() -> str:
    return _caller.get()
