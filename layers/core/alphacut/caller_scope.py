"""Who the work in this context is for (the API key id), for what must be kept apart per caller
without knowing of keys: the memory of recent model runs (``alphacut.models.recent``); whose account
it is (a task stored in this context records it, ``alphacut.aws.tasks.service``); and whether the
key is a test key (``alphacut.watermark``: its results are marked). A plain context variable, so the
light functions that set it import nothing heavy.

Usage::

    with caller_scope("k0123456789ab"):
        current_caller()                   # "k0123456789ab"; "" outside any scope
    with caller_scope("k0123456789ab", account="k00000000000a", test=True):
        current_account(), is_test()       # ("k00000000000a", True)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class _Scope:
    caller: str = ""
    account: str = ""
    test: bool = False


_NOBODY = _Scope()
_scope: ContextVar[_Scope | None] = ContextVar("alphacut_caller", default=None)


def _current() -> _Scope:
    return _scope.get() or _NOBODY


@contextmanager
def caller_scope(caller: str, account: str = "", test: bool = False) -> Iterator[None]:
    token = _scope.set(_Scope(caller, account or caller, test))
    try:
        yield
    finally:
        _scope.reset(token)


def current_caller() -> str:
    return _current().caller


def current_account() -> str:
    """The account the caller's key spends from ("" outside any scope)."""
    return _current().account


def is_test() -> bool:
    """Whether the work is a test key's: never charged, its results marked."""
    return _current().test


def test_payer(account: str) -> str:
    """Whose count a test key's results go on: its account's own test count, apart from the
    account's usage and balance (never charged)."""
    return f"test.{account}"
