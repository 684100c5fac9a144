"""The model a key's plan runs when a call names none (the usage plan's ``model`` tag, read with
the plan: ``alphacut.aws.ledger.plans``). The metering middleware opens it for the call; the paid
pipeline and the task routes apply it to options that name no model. A costume call keeps
ISNet (the clothing head's own); a sync call whose plan names a model that cannot run here (a
GPU-only one) runs the registry's default: the caller asked for nothing, so nothing is refused.

Usage::

    with plan_model(plan.model if plan else None):        # the metering middleware, per call
        options = with_plan_model(options, runs_here)     # model=None -> the plan's model
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from alphacut.options import DEFAULT_MODEL, CutoutOptions, SubjectType

_current: ContextVar[str | None] = ContextVar("plan_model", default=None)


@contextmanager
def plan_model(name: str | None) -> Iterator[None]:
    token = _current.set(name)
    try:
        yield
    finally:
        _current.reset(token)


def with_plan_model(options: CutoutOptions, runs_here: Callable[[str], bool] | None = None) -> CutoutOptions:
    """``options`` with the plan's model where they name none (``runs_here``: whether a model
    can run where this call runs; None: it is decided later, as for a task)."""
    name = _current.get()
    if options.model is not None or name in (None, DEFAULT_MODEL) or options.type is SubjectType.COSTUME:
        return options
    if runs_here is not None and not runs_here(name):
        return options
    return options.with_changes(model=name)
