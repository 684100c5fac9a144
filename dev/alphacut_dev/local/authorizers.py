"""API Gateway's Lambda REQUEST authorizers, as the local gateway applies them (AWS's rules):

- the identity source (``method.request.header.x-api-key``): a request without it is refused with
  401 ``UNAUTHORIZED`` before the authorizer runs;
- the answer is cached per API, authorizer and identity value for the authorizer's
  ``authorizerResultTtlInSeconds`` (0: asked every time), a Deny too, and the cached policy is
  applied to whichever method the next request names: its statements are matched against that
  method's ARN (``*`` and ``?`` wildcards), an explicit Deny winning, no match an implicit deny:
  403 ``ACCESS_DENIED``;
- a function that fails, runs past its own timeout or answers without a policy: 500
  ``AUTHORIZER_FAILURE``; a context with a nested object, an array or a null: 500
  ``AUTHORIZER_CONFIGURATION_ERROR``;
- an allowed request's event carries ``requestContext.authorizer``: ``principalId`` and the
  context's values, stringified (API Gateway hands them on as strings).

Usage::

    authorizers = LambdaAuthorizers.from_swagger(body, function_arns, api)   # per REST API
    outcome = authorizers.check("KeyAuthorizer", headers, method_arn, invoke)
    outcome.refusal or outcome.context
"""

from __future__ import annotations

import fnmatch
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

HEADER_SOURCE = "method.request.header."


@dataclass(frozen=True)
class AuthorizerSpec:
    name: str
    function: str  # the function's logical id
    headers: tuple[str, ...]  # the identity source's headers, lower case
    ttl: int


@dataclass
class Outcome:
    refusal: str = ""  # a gateway response type, "" when allowed
    context: dict[str, str] = field(default_factory=dict)


Invoke = Callable[[str, dict[str, Any]], tuple[str, Any]]  # (function, event) -> ("ok", answer) | failure


class LambdaAuthorizers:
    """The authorizers of one REST API and their cache."""

    def __init__(self, specs: dict[str, AuthorizerSpec], clock: Callable[[], float] = time.monotonic):
        self.specs, self.clock = specs, clock
        self._cache: dict[tuple[str, tuple[str, ...]], tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self.invocations = 0  # how many times an authorizer function ran (the cache's tests read it)

    @classmethod
    def from_swagger(
        cls, body: dict[str, Any], function_of: Callable[[Any], str | None]
    ) -> LambdaAuthorizers:
        """The API's ``securityDefinitions`` with a Lambda authorizer (``function_of`` maps an
        authorizer URI to the function's logical id)."""
        specs = {}
        for name, definition in (body.get("securityDefinitions") or {}).items():
            authorizer = definition.get("x-amazon-apigateway-authorizer")
            if not authorizer or authorizer.get("type", "").lower() != "request":
                continue
            function = function_of(authorizer.get("authorizerUri"))
            if function is None:
                continue
            sources = [s.strip() for s in str(authorizer.get("identitySource", "")).split(",") if s.strip()]
            headers = tuple(s[len(HEADER_SOURCE) :].lower() for s in sources if s.startswith(HEADER_SOURCE))
            specs[name] = AuthorizerSpec(
                name, function, headers, int(authorizer.get("authorizerResultTtlInSeconds", 300))
            )
        return cls(specs)

    def names(self) -> set[str]:
        return set(self.specs)

    def check(
        self, name: str, headers: dict[str, str], method_arn: str, event: dict[str, Any], invoke: Invoke
    ) -> Outcome:
        spec = self.specs[name]
        lowered = {k.lower(): v for k, v in headers.items()}
        identity = tuple(lowered.get(h, "") for h in spec.headers)
        if not all(identity):
            return Outcome("UNAUTHORIZED")
        answer = self._cached(spec, identity)
        if answer is None:
            self.invocations += 1
            request = {
                k: v for k, v in event.items() if k not in ("body", "isBase64Encoded")
            }  # never the body
            kind, answer = invoke(spec.function, {**request, "type": "REQUEST", "methodArn": method_arn})
            if kind != "ok" or not isinstance(answer, dict) or "policyDocument" not in answer:
                return Outcome("AUTHORIZER_FAILURE")
            if not valid_context(answer.get("context")):
                return Outcome("AUTHORIZER_CONFIGURATION_ERROR")
            if spec.ttl > 0:
                with self._lock:
                    self._cache[(name, identity)] = (self.clock() + spec.ttl, answer)
        if not allows(answer["policyDocument"], method_arn):
            return Outcome("ACCESS_DENIED")
        context = {k: stringified(v) for k, v in (answer.get("context") or {}).items()}
        return Outcome("", {"principalId": str(answer.get("principalId", "")), **context})

    def _cached(self, spec: AuthorizerSpec, identity: tuple[str, ...]) -> dict[str, Any] | None:
        with self._lock:
            found = self._cache.get((spec.name, identity))
            if found is None or found[0] <= self.clock():
                return None
            return found[1]


def valid_context(context: Any) -> bool:
    """API Gateway takes only a flat map of strings, numbers and booleans."""
    if context is None:
        return True
    return isinstance(context, dict) and all(
        isinstance(v, str | int | float | bool) for v in context.values()
    )


def stringified(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def allows(document: dict[str, Any], method_arn: str) -> bool:
    """Whether a policy lets ``execute-api:Invoke`` on this method: an Allow matches and no Deny."""
    allowed = False
    statements = document.get("Statement") or []
    for statement in statements if isinstance(statements, list) else [statements]:
        actions = _listed(statement.get("Action"))
        resources = _listed(statement.get("Resource"))
        if not any(fnmatch.fnmatchcase("execute-api:Invoke", a) for a in actions):
            continue
        if not any(fnmatch.fnmatchcase(method_arn, r) for r in resources):
            continue
        if statement.get("Effect") == "Deny":
            return False
        allowed = allowed or statement.get("Effect") == "Allow"
    return allowed


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def method_arn(region: str, account: str, api_id: str, stage: str, verb: str, path: str) -> str:
    return f"arn:aws:execute-api:{region}:{account}:{api_id}/{stage}/{verb}{path}"
