"""What every rule the local stack teaches moto shares: it replaces moto's own functions while
the stack runs, and puts them back when it stops.

Usage::

    class MyRule(MotoPatches):
        def apply(self) -> None:
            self._patch(SomeMotoClass, "method", replacement)
    rule = MyRule(); rule.apply() ... rule.restore()
"""

from __future__ import annotations

from typing import Any

_MISSING = object()  # a method moto lacks, added by a rule (deleted again on restore)


class MotoPatches:
    def __init__(self) -> None:
        self._originals: list[tuple[Any, str, Any]] = []

    def _patch(self, owner: Any, name: str, replacement: Any) -> None:
        self._originals.append((owner, name, getattr(owner, name, _MISSING)))
        setattr(owner, name, replacement)

    def restore(self) -> None:
        """moto as it was, the last patch undone first."""
        while self._originals:
            owner, name, original = self._originals.pop()
            if original is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, original)
