"""AWS WAF's rules on the local stack, as the template declares them (``WebAcl``): a rate-based
rule counts, per client address, the requests its scope-down statement matches (paths, a header)
within its evaluation window (5 minutes), and blocks an address past the rule's ``limit`` (403,
``WAF_FILTERED``); other addresses go on. Each rule keeps counts of its own: result links have a
rule of their own, so a burst on them spends nothing of the sign-up rule's count. A rule that is
not rate-based blocks what its statement matches at once (Stripe's webhook from an address outside
the IP set of Stripe's). Rules run in priority order and a block ends the evaluation, as WAF's
terminating actions do. Statements read: ByteMatch on the URI path (CONTAINS, STARTS_WITH,
ENDS_WITH, EXACTLY; NONE or URL_DECODE), SizeConstraint on one header, IPSetReference, And, Or, Not.

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

    waf = WebAcl(delay=2.0)
    waf.load(template_web_acl, on=True, resolver=resolver, ip_sets={arn: ["54.187.174.169/32"]})
    if waf.blocks("203.0.113.9", "/Prod/v1/results/abc", {"x-api-key": "..."}): ...   # 403 Forbidden
    waf.set_limit("result-links-per-address", 10)                 # its counts start again
"""

from __future__ import annotations

import ipaddress
import json
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

WINDOW_SECONDS = 300  # a rule's EvaluationWindowSec when it names none
DETECTION_SECONDS = 30.0  # AWS: "usually, this delay is below 30 seconds"


@dataclass(frozen=True)
class Request:
    """What WAF's statements read of a request: its address, URI path and headers (lower-cased)."""

    source: str
    path: str
    headers: Mapping[str, str]
    ip_sets: Mapping[str, tuple[str, ...]]  # the web ACL's IP sets: ARN -> CIDR blocks


def matches(statement: dict[str, Any] | None, request: Request) -> bool:
    """Whether WAF's ``statement`` matches ``request`` (None: a rate rule without a scope-down)."""
    if statement is None:
        return True
    ((kind, body),) = statement.items()
    if kind == "OrStatement":
        return any(matches(part, request) for part in body["Statements"])
    if kind == "AndStatement":
        return all(matches(part, request) for part in body["Statements"])
    if kind == "NotStatement":
        return not matches(body["Statement"], request)
    if kind == "IPSetReferenceStatement":
        source = ipaddress.ip_address(request.source)
        return any(source in ipaddress.ip_network(block) for block in request.ip_sets.get(body["Arn"], ()))
    if kind == "ByteMatchStatement":
        text = _field(body["FieldToMatch"], request)
        if text is None:
            return False
        if any(t.get("Type") == "URL_DECODE" for t in body.get("TextTransformations", [])):
            text = unquote(text)
        wanted, where = str(body["SearchString"]), body["PositionalConstraint"]
        return {
            "CONTAINS": wanted in text,
            "STARTS_WITH": text.startswith(wanted),
            "ENDS_WITH": text.endswith(wanted),
            "EXACTLY": text == wanted,
        }[where]
    if kind == "SizeConstraintStatement":
        text = _field(body["FieldToMatch"], request)
        if text is None:
            return False
        size, limit = len(text.encode()), int(body["Size"])
        return {"GT": size > limit, "GE": size >= limit, "EQ": size == limit, "LT": size < limit,
                "LE": size <= limit, "NE": size != limit}[body["ComparisonOperator"]]  # fmt: skip
    raise ValueError(f"WAF statement {kind} is not emulated locally")


def _field(field_to_match: dict[str, Any], request: Request) -> str | None:
    """The part of the request a statement reads: one header (None where it is missing: WAF's
    statements do not match a missing header) or the URI path."""
    if "SingleHeader" in field_to_match:
        return request.headers.get(field_to_match["SingleHeader"]["Name"].lower())
    return request.path


def path_fragments(statement: dict[str, Any] | None) -> tuple[str, ...]:
    """The URI path fragments a statement's ByteMatches name (CONTAINS), anywhere within it."""
    if not isinstance(statement, dict):
        return ()
    found: tuple[str, ...] = ()
    for kind, body in statement.items():
        if kind == "ByteMatchStatement" and body.get("PositionalConstraint") == "CONTAINS":
            found += (str(body["SearchString"]),)
        elif isinstance(body, dict):
            parts = body.get("Statements") or [body.get("Statement")]
            for part in parts:
                found += path_fragments(part)
    return found


@dataclass(frozen=True)
class Answer:
    """What WAF answers a request a rule blocks: 403 by default, or the rule's custom response."""

    status: int = 403
    headers: tuple[tuple[str, str], ...] = ()
    body: str = '{"message":"Forbidden"}'  # WAF's own block page is HTML; API Gateway's is this


def action_of(declared: dict[str, Any], bodies: Mapping[str, Any]) -> tuple[str, Answer]:
    """A rule's action (Block or Count) and, for Block, the answer it gives (``bodies``: the web
    ACL's CustomResponseBodies)."""
    action = declared.get("Action") or {"Block": {}}
    if "Count" in action:
        return "Count", Answer()
    custom = (action.get("Block") or {}).get("CustomResponse")
    if not custom:
        return "Block", Answer()
    headers = tuple((str(h["Name"]), str(h["Value"])) for h in custom.get("ResponseHeaders", []))
    body = (bodies.get(custom.get("CustomResponseBodyKey", "")) or {}).get("Content", "")
    return "Block", Answer(int(custom["ResponseCode"]), headers, str(body))


@dataclass
class MatchRule:
    """A rule that is not rate-based: it blocks (or counts), at once, every request its statement
    matches."""

    name: str
    on: bool
    statement: dict[str, Any]
    action: str = "Block"
    answer: Answer = field(default_factory=Answer)

    def blocks(self, request: Request) -> bool:
        return self.on and matches(self.statement, request)


@dataclass
class RateRule:
    """One rate-based rule: its name, its limit (0: off), its window and its scope-down statement
    (None: every request)."""

    name: str
    limit: int
    window: int
    scope_down: dict[str, Any] | None
    answer: Answer = field(default_factory=Answer)
    seen: dict[str, deque[float]] = field(default_factory=dict)  # address -> its requests' times
    # address -> (when it went over the limit, when its count falls back to the limit)
    over: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def scope(self) -> tuple[str, ...]:
        """The URI path fragments its scope-down names."""
        return path_fragments(self.scope_down)

    def covers(self, request: Request) -> bool:
        return bool(self.limit) and matches(self.scope_down, request)

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

    def settings(self) -> tuple[int, int, str]:
        return self.limit, self.window, json.dumps(self.scope_down, sort_keys=True)


class WebAcl:
    def __init__(self, clock: Callable[[], float] = time.monotonic, delay: float = DETECTION_SECONDS):
        self.clock, self.delay = clock, delay
        self.rules: list[RateRule | MatchRule] = []  # in priority order
        self.ip_sets: dict[str, tuple[str, ...]] = {}
        self.blocked = 0
        self.counted: dict[str, int] = {}  # a Count rule's matches (its CloudWatch CountedRequests)
        self._lock = threading.Lock()

    @property
    def scope(self) -> tuple[str, ...]:
        """Every path fragment some rate rule counts."""
        return tuple(fragment for rule in self.rules if isinstance(rule, RateRule) for fragment in rule.scope)

    def rule(self, name: str) -> RateRule:
        return next(rule for rule in self.rules if rule.name == name and isinstance(rule, RateRule))

    def match_rule(self, name: str) -> MatchRule:
        return next(rule for rule in self.rules if rule.name == name and isinstance(rule, MatchRule))

    def load(
        self,
        resource: dict[str, Any] | None,
        on: bool,
        resolver: Any = None,
        ip_sets: Mapping[str, list[str]] | None = None,
    ) -> None:
        """The rules of the template's web ACL resource as declared: each resolved by ``resolver``
        where ``on`` (the ACL's condition holds) and its own ``Fn::If`` condition holds; read as
        declared and off (limit 0, no match) where not, so a test may still turn a rate rule on.
        ``ip_sets``: the IP sets' addresses by the ARN the rules reference."""
        rules: list[tuple[int, RateRule | MatchRule]] = []
        properties = (resource or {}).get("Properties") or {}
        bodies = properties.get("CustomResponseBodies") or {}
        for listed in properties.get("Rules", []):
            declared, live = _declared(listed, on, resolver)
            statement = declared.get("Statement") or {}
            rate = statement.get("RateBasedStatement")
            action, answer = action_of(declared, bodies)
            priority = int(declared.get("Priority", 0))
            if rate is None:
                rules.append((priority, MatchRule(declared["Name"], live, statement, action, answer)))
                continue
            window = int(rate.get("EvaluationWindowSec", WINDOW_SECONDS))
            limit = int(rate["Limit"]) if live else 0
            scope_down = rate.get("ScopeDownStatement")
            rules.append((priority, RateRule(declared["Name"], limit, window, scope_down, answer)))
        ordered = [rule for _, rule in sorted(rules, key=lambda pair: pair[0])]
        with self._lock:
            self.ip_sets = {arn: tuple(blocks) for arn, blocks in (ip_sets or {}).items()}
            kept = {rule.name: rule for rule in self.rules if isinstance(rule, RateRule)}
            self.rules = [
                kept[rule.name]
                if isinstance(rule, RateRule)
                and rule.name in kept
                and kept[rule.name].settings() == rule.settings()
                else rule
                for rule in ordered
            ]

    def set_limit(self, name: str, limit: int) -> None:
        """A new limit for the rule ``name`` (0: off); as on AWS, a change resets its counts."""
        with self._lock:
            rule = self.rule(name)
            if rule.limit != limit:
                rule.limit = limit
                rule.seen.clear()
                rule.over.clear()

    def blocks(self, source: str, path: str, headers: Mapping[str, str] | None = None) -> bool:
        """Count one request of ``source`` to ``path`` (with ``headers``): whether a rule blocks it."""
        return self.answer(source, path, headers) is not None

    def answer(self, source: str, path: str, headers: Mapping[str, str] | None = None) -> Answer | None:
        """Count one request: the answer of the rule that blocks it (None: it goes on). Count
        rules count their matches and evaluation goes on, as WAF's non-terminating actions do."""
        now = self.clock()
        with self._lock:
            request = Request(source, path, {k.lower(): v for k, v in (headers or {}).items()}, self.ip_sets)
            for rule in self.rules:
                if isinstance(rule, MatchRule):
                    matched = rule.blocks(request)
                    if matched and rule.action == "Count":
                        self.counted[rule.name] = self.counted.get(rule.name, 0) + 1
                        continue
                else:
                    matched = rule.covers(request) and rule.count(source, now, self.delay)
                if matched:
                    self.blocked += 1
                    return rule.answer
        return None

    def forget(self) -> None:
        with self._lock:
            for rule in self.rules:
                if isinstance(rule, RateRule):
                    rule.seen.clear()
                    rule.over.clear()


def _declared(listed: dict[str, Any], on: bool, resolver: Any) -> tuple[dict[str, Any], bool]:
    """A listed rule (the template's own, maybe under ``Fn::If``) and whether it is in force."""
    condition, rule = None, listed
    if "Fn::If" in listed:
        condition, rule, _ = listed["Fn::If"]
    live = on and resolver is not None and (condition is None or resolver.condition(condition))
    return (resolver.resolve(rule) if live else rule), live
