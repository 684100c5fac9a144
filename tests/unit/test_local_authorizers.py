"""The local gateway's Lambda REQUEST authorizers (alphacut_dev.local.authorizers) apply AWS's rules:
identity source required, the answer cached per value for its TTL (a Deny too), the cached policy
matched against each method, the context checked and stringified, failures as 500s."""

from __future__ import annotations

from alphacut_dev.local.authorizers import AuthorizerSpec, LambdaAuthorizers, allows
from alphacut_dev.template import translate_template

API = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod"


def policy(effect: str, resource: str, context: dict | None = None) -> dict:
    answer = {
        "principalId": "k1",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}],
        },
    }
    return {**answer, "context": context} if context is not None else answer


class Function:
    """An authorizer function that answers what it is told, counting its invocations."""

    def __init__(self, answer):
        self.answer, self.events = answer, []

    def __call__(self, function: str, event: dict) -> tuple[str, object]:
        self.events.append(event)
        return self.answer if isinstance(self.answer, tuple) else ("ok", self.answer)


def authorizers(ttl: int = 300, now: list[float] | None = None) -> LambdaAuthorizers:
    clock = now if now is not None else [0.0]
    spec = AuthorizerSpec("Keys", "KeyAuthorizerFunction", ("x-api-key",), ttl)
    return LambdaAuthorizers({"Keys": spec}, clock=lambda: clock[0])


def test_a_request_without_the_identity_header_is_refused_before_the_authorizer_runs():
    function = Function(policy("Allow", f"{API}/*"))
    outcome = authorizers().check("Keys", {"Accept": "*/*"}, f"{API}/GET/v1/usage", {}, function)
    assert outcome.refusal == "UNAUTHORIZED" and function.events == []


def test_an_answer_is_cached_per_value_for_its_ttl_and_a_deny_too():
    now = [0.0]
    guard = authorizers(ttl=300, now=now)
    allow, deny = (
        Function(policy("Allow", f"{API}/*", {"key_id": "k1"})),
        Function(policy("Deny", f"{API}/*")),
    )
    for _ in range(3):
        assert guard.check("Keys", {"x-api-key": "good"}, f"{API}/GET/v1/usage", {}, allow).refusal == ""
        assert (
            guard.check("Keys", {"X-Api-Key": "bad"}, f"{API}/GET/v1/usage", {}, deny).refusal
            == "ACCESS_DENIED"
        )
    assert len(allow.events) == len(deny.events) == 1  # the cache answered the rest
    now[0] += 300
    guard.check("Keys", {"x-api-key": "good"}, f"{API}/GET/v1/usage", {}, allow)
    assert len(allow.events) == 2  # past the TTL: asked again
    uncached = authorizers(ttl=0)
    for _ in range(2):
        uncached.check("Keys", {"x-api-key": "good"}, f"{API}/GET/v1/usage", {}, allow)
    assert len(allow.events) == 4


def test_a_cached_policy_for_one_route_refuses_the_next_route_as_aws_does():
    guard = authorizers()
    narrow = Function(policy("Allow", f"{API}/GET/v1/usage"))
    assert guard.check("Keys", {"x-api-key": "v"}, f"{API}/GET/v1/usage", {}, narrow).refusal == ""
    assert (
        guard.check("Keys", {"x-api-key": "v"}, f"{API}/POST/v1/cutout", {}, narrow).refusal
        == "ACCESS_DENIED"
    )
    assert allows(policy("Allow", f"{API}/*")["policyDocument"], f"{API}/POST/v1/cutout")
    both = {
        "Statement": [
            *policy("Allow", f"{API}/*")["policyDocument"]["Statement"],
            {"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": f"{API}/POST/*"},
        ]
    }
    assert not allows(both, f"{API}/POST/v1/cutout") and allows(both, f"{API}/GET/v1/usage")


def test_the_context_reaches_the_function_stringified_and_a_nested_one_is_a_500():
    context = {"key_id": "k1", "quota": 50, "credit_based": False, "rate_limit": 2.5}
    outcome = authorizers().check(
        "Keys",
        {"x-api-key": "v"},
        f"{API}/GET/v1/usage",
        {"body": "image bytes"},
        Function(policy("Allow", f"{API}/*", context)),
    )
    assert outcome.context == {
        "principalId": "k1",
        "key_id": "k1",
        "quota": "50",
        "credit_based": "false",
        "rate_limit": "2.5",
    }
    nested = Function(policy("Allow", f"{API}/*", {"plan": {"name": "starter"}}))
    refused = authorizers().check("Keys", {"x-api-key": "v"}, f"{API}/GET/v1/usage", {}, nested)
    assert refused.refusal == "AUTHORIZER_CONFIGURATION_ERROR"
    assert "body" not in nested.events[0] and nested.events[0]["type"] == "REQUEST"  # never the body


def test_a_failing_or_timed_out_authorizer_is_a_500_and_is_not_cached():
    guard = authorizers()
    for answer in (("error", "boom"), ("timeout", None), ("ok", {"principalId": "k1"})):
        function = Function(answer)
        for _ in range(2):
            assert guard.check("Keys", {"x-api-key": "v"}, f"{API}/GET/v1/usage", {}, function).refusal == (
                "AUTHORIZER_FAILURE"
            )
        assert len(function.events) == 2


def test_the_templates_authorizer_is_read_as_declared():
    body = translate_template(parameters={"KeyCacheSeconds": "45"})["Resources"]["Api"]["Properties"]["Body"]
    guard = LambdaAuthorizers.from_swagger(body, lambda uri: "KeyAuthorizerFunction" if uri else None)
    assert guard.specs == {
        "KeyAuthorizer": AuthorizerSpec("KeyAuthorizer", "KeyAuthorizerFunction", ("x-api-key",), 45)
    }
