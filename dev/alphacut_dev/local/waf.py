"""AWS WAF's rate-based rule on the local stack, as the template declares it (``WebAcl``): a client
address that sends more than ``limit`` requests within 5 minutes to the paths the rule's scope-down
names is blocked (403, ``WAF_FILTERED``) until its count falls back; other addresses go on. Off
while the stack's ``WebAclRateLimit`` is 0 (the template makes no web ACL then); a test may set
``limit``. Counted exactly per address (WAF's own counting is approximate and lags by up to a
minute: a test that relies on the exact moment would be wrong on AWS).

Usage::

    waf = WebAcl(); waf.load(template_resources.get("WebAcl"), limit=100)
    if waf.blocks("203.0.113.9", "/Prod/v1/results/abc"): ...   # 403 Forbidden
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

WINDOW_SECONDS = 300  # the rule's EvaluationWindowSec


class WebAcl:
    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock, self.limit, self.window = clock, 0, WINDOW_SECONDS
        self.scope: tuple[str, ...] = ()  # the scope-down's URI path fragments (CONTAINS)
        self.blocked = 0
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def load(self, resource: dict[str, Any] | None, limit: int) -> None:
        """The rule's scope from the template's web ACL resource (its first rate-based rule)."""
        self.limit = limit
        for rule in ((resource or {}).get("Properties") or {}).get("Rules", []):
            statement = (rule.get("Statement") or {}).get("RateBasedStatement")
            if statement is None:
                continue
            self.window = int(statement.get("EvaluationWindowSec", WINDOW_SECONDS))
            scope = (statement.get("ScopeDownStatement") or {}).get("OrStatement", {}).get("Statements", [])
            self.scope = tuple(
                str(part["ByteMatchStatement"]["SearchString"])
                for part in scope
                if part.get("ByteMatchStatement", {}).get("PositionalConstraint") == "CONTAINS"
            )
            return

    def blocks(self, source: str, path: str) -> bool:
        """Count one request of ``source`` to ``path``: whether the rule blocks it."""
        if not self.limit or not any(fragment in path for fragment in self.scope):
            return False
        now = self.clock()
        with self._lock:
            seen = self._seen.setdefault(source, deque())
            while seen and seen[0] <= now - self.window:
                seen.popleft()
            seen.append(now)
            if len(seen) > self.limit:
                self.blocked += 1
                return True
        return False

    def forget(self) -> None:
        with self._lock:
            self._seen.clear()
