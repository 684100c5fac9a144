"""AWS WAF's rate-based rules on the local stack, as the template declares them (``WebAcl``): each
rule counts, per client address, the requests to the paths its scope-down names within its
evaluation window (5 minutes), and blocks an address past the rule's ``limit`` (403,
``WAF_FILTERED``); other addresses go on. Each rule keeps counts of its own: result links have a
rule of their own, so a burst on them spends nothing of the sign-up rule's count. Rules run in
priority order and a block ends the evaluation, as WAF's terminating actions do.

WAF is not instant. AWS's "Rate-based rule caveats" say it estimates each address's rate
periodically, so an address can send too fast "for up to several minutes" before WAF blocks it
("usually, this delay is below 30 seconds"), and stay blocked as long after its rate fell back.
``delay`` emulates that usual worst case (``DETECTION_SECONDS``; the stack's
``waf_detection_seconds``, which the test stack sets small): an address over a rule's limit is
blocked only from ``delay`` seconds after it went over, and until ``delay`` seconds after its count
fell back to the limit. Until then only the stage's method throttle (``KeylessRateLimit`` and
``KeylessBurstLimit``, all callers together) bounds it. A change of a rule's limit resets that
rule's counts, as AWS says a change of its rate settings does (``set_limit``; a ``load`` keeps the
counts of a rule whose settings are unchanged). Counts are exact here: WAF's estimate weighs recent
requests more and only comes near the limit.

Off while the stack's ``WebAclRateLimit`` is 0 (the template makes no web ACL then): the rules are
read with limit 0, and a test may ``set_limit`` one.

Usage::

    waf = WebAcl(delay=2.0); waf.load(resolved_web_acl_resource, on=True)
    if waf.blocks("203.0.113.9", "/Prod/v1/results/abc"): ...   # 403 Forbidden
    waf.set_limit("result-links-per-address", 10)                 # its counts start again
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

WINDOW_SECONDS = 300  # a rule's EvaluationWindowSec when it names none
DETECTION_SECONDS = 30.0  # AWS: "usually, this delay is below 30 seconds"


@dataclass
class RateRule:
    """One rate-based rule: its name, its limit (0: off), its window and the URI path fragments its
    scope-down matches (CONTAINS)."""

    name: str
    limit: int
    window: int
    scope: tuple[str, ...]
    seen: dict[str, deque[float]] = field(default_factory=dict)  # address -> its requests' times
    # address -> (when it went over the limit, when its count falls back to the limit)
    over: dict[str, tuple[float, float]] = field(default_factory=dict)

    def covers(self, path: str) -> bool:
        return bool(self.limit) and any(fragment in path for fragment in self.scope)

    def count(self, source: str, now: float, delay: float) -> bool:
        """Count one request of ``source``: whether WAF, ``delay`` behind the counts, blocks it."""
        seen = self.seen.setdefault(source, deque())
        while seen and seen[0] <= now - self.window:
            seen.popleft()
        seen.append(now)
        went, until = self.over.get(source, (math.inf, -math.inf))
        if now >= until + delay:  # not over, or fallen back long enough ago for WAF to have seen it
            went = math.inf
        if len(seen) > self.limit:
            # over while the limit-th request before this one is in the window
            went, until = min(went, now), seen[-self.limit - 1] + self.window
            self.over[source] = (went, until)
        elif went == math.inf:
            self.over.pop(source, None)
        return went + delay <= now < until + delay

    def settings(self) -> tuple[int, int, tuple[str, ...]]:
        return self.limit, self.window, self.scope


class WebAcl:
    def __init__(self, clock: Callable[[], float] = time.monotonic, delay: float = DETECTION_SECONDS):
        self.clock, self.delay = clock, delay
        self.rules: list[RateRule] = []  # in priority order
        self.blocked = 0
        self._lock = threading.Lock()

    @property
    def scope(self) -> tuple[str, ...]:
        """Every path fragment some rule counts."""
        return tuple(fragment for rule in self.rules for fragment in rule.scope)

    def rule(self, name: str) -> RateRule:
        return next(rule for rule in self.rules if rule.name == name)

    def load(self, resource: dict[str, Any] | None, on: bool) -> None:
        """The rate-based rules of the template's web ACL resource, its intrinsics resolved where
        ``on`` (its condition holds); limit 0 where not."""
        rules = []
        listed = ((resource or {}).get("Properties") or {}).get("Rules", [])
        for declared in sorted(listed, key=lambda rule: rule.get("Priority", 0)):
            statement = (declared.get("Statement") or {}).get("RateBasedStatement")
            if statement is None:
                continue
            down = statement.get("ScopeDownStatement") or {}
            parts = down["OrStatement"]["Statements"] if "OrStatement" in down else [down]
            scope = tuple(
                str(part["ByteMatchStatement"]["SearchString"])
                for part in parts
                if part.get("ByteMatchStatement", {}).get("PositionalConstraint") == "CONTAINS"
            )
            window = int(statement.get("EvaluationWindowSec", WINDOW_SECONDS))
            rules.append(RateRule(declared["Name"], int(statement["Limit"]) if on else 0, window, scope))
        with self._lock:
            kept = {rule.name: rule for rule in self.rules}
            self.rules = [
                kept[rule.name]
                if rule.name in kept and kept[rule.name].settings() == rule.settings()
                else rule
                for rule in rules
            ]

    def set_limit(self, name: str, limit: int) -> None:
        """A new limit for the rule ``name`` (0: off); as on AWS, a change resets its counts."""
        with self._lock:
            rule = self.rule(name)
            if rule.limit != limit:
                rule.limit = limit
                rule.seen.clear()
                rule.over.clear()

    def blocks(self, source: str, path: str) -> bool:
        """Count one request of ``source`` to ``path``: whether a rule blocks it."""
        now = self.clock()
        with self._lock:
            for rule in self.rules:
                if rule.covers(path) and rule.count(source, now, self.delay):
                    self.blocked += 1
                    return True
        return False

    def forget(self) -> None:
        with self._lock:
            for rule in self.rules:
                rule.seen.clear()
                rule.over.clear()
