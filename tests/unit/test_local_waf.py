"""The local WAF applies the template's rules as AWS WAF does: rate-based rules per client address,
each with counts of its own (result links apart from sign-up, keyed calls apart from both), blocking
an address only some time after it went over (WAF estimates rates periodically) and until as long
after it fell back, and starting a rule's counts again when its limit changes; Stripe's webhook
refused at once to any address outside Stripe's IP set."""

from __future__ import annotations

from alphacut_dev.local.intrinsics import Resolver
from alphacut_dev.local.waf import DETECTION_SECONDS, WebAcl
from alphacut_dev.template import load_sam

LINK = "/Prod/v1/results/abc"
SIGNUP = "/Prod/v1/signup"


IP_SET = "arn:aws:wafv2:us-east-1:123456789012:regional/ipset/StripeWebhookIpSet/local"
STRIPE = "/Prod/v1/billing/stripe"


def resolved(**parameters: str) -> tuple[dict, bool, Resolver, dict[str, list[str]]]:
    """The template's web ACL with its parameters' defaults but ``parameters``, whether its
    condition holds, the resolver a deploy would use, and Stripe's IP set."""
    sam = load_sam()
    refs = {name: str(spec.get("Default", "")) for name, spec in sam["Parameters"].items()}
    refs.update(parameters, **{"AWS::StackName": "alphacut", "AWS::NoValue": None})
    acl = sam["Resources"]["WebAcl"]
    resolver = Resolver(refs, {("StripeWebhookIpSet", "Arn"): IP_SET}, sam["Conditions"])
    addresses = resolver.resolve(sam["Resources"]["StripeWebhookIpSet"]["Properties"]["Addresses"])
    return acl, resolver.condition(acl["Condition"]), resolver, {IP_SET: addresses}


def template_acl(delay: float, **parameters: str) -> tuple[WebAcl, list[float]]:
    """The local WAF with the template's rules, on a clock the test moves (``now[0]``)."""
    now = [0.0]
    waf = WebAcl(clock=lambda: now[0], delay=delay)
    waf.load(*resolved(**parameters))
    return waf, now


def test_an_address_over_its_rate_is_blocked_only_once_the_detection_delay_has_passed():
    waf, now = template_acl(30.0, WebAclRateLimit="10", WebAclResultLinkRateLimit="10")
    burst = []
    for tenth in range(400):  # 10 a second: over at the 11th request, at 1.0 s
        now[0] = tenth / 10
        burst.append(waf.blocks("203.0.113.9", LINK))
    assert burst.index(True) == 310  # at 31.0 s: WAF sees it 30 s after it went over
    assert all(burst[310:])
    assert not waf.blocks("203.0.113.10", LINK)  # another address's links answer


def test_by_default_the_delay_is_the_30_seconds_aws_says_is_usual():
    assert WebAcl().delay == DETECTION_SECONDS == 30.0


def test_a_blocked_address_answers_again_only_the_delay_after_its_count_fell_back():
    waf, now = template_acl(30.0, WebAclRateLimit="10", WebAclResultLinkRateLimit="10")
    assert not any(waf.blocks("203.0.113.9", LINK) for _ in range(11))  # over at 0 s
    now[0] = 30.0
    assert waf.blocks("203.0.113.9", LINK)  # counted too: the count falls back at 300 s
    now[0] = 329.9
    assert waf.blocks("203.0.113.9", LINK)  # under since 300 s; WAF has not seen it yet
    now[0] = 331.0
    assert not waf.blocks("203.0.113.9", LINK)


def test_an_address_going_over_again_after_it_was_let_through_waits_the_delay_again():
    waf, now = template_acl(5.0, WebAclRateLimit="10", WebAclResultLinkRateLimit="10")
    assert not any(waf.blocks("203.0.113.9", LINK) for _ in range(11))
    now[0] = 400.0  # fallen back at 300 s and seen at 305 s
    assert not any(waf.blocks("203.0.113.9", LINK) for _ in range(11))
    now[0] = 404.9
    assert not waf.blocks("203.0.113.9", LINK)
    now[0] = 405.0
    assert waf.blocks("203.0.113.9", LINK)


def test_result_links_and_sign_up_are_counted_in_buckets_of_their_own():
    waf, _ = template_acl(0.0, WebAclRateLimit="10", WebAclResultLinkRateLimit="20")
    links = [waf.blocks("203.0.113.9", LINK) for _ in range(25)]
    assert links.count(False) == 20  # the result-link rule's own limit
    assert not any(waf.blocks("203.0.113.9", SIGNUP) for _ in range(10))  # sign-up's count is its own
    assert waf.blocks("203.0.113.9", SIGNUP)
    assert not waf.blocks("203.0.113.9", "/Prod/v1/cutout")  # keyed: no rule counts it


def test_with_waf_rate_limit_0_no_rule_blocks_whatever_the_result_link_limit():
    waf, _ = template_acl(0.0, WebAclRateLimit="0", WebAclResultLinkRateLimit="10")
    assert not any(waf.blocks("203.0.113.9", path) for path in [LINK, SIGNUP] * 50)
    assert {rule.name: rule.limit for rule in waf.rules if hasattr(rule, "limit")} == {
        "rate-per-address": 0,
        "result-links-per-address": 0,
        "keyed-per-address": 30000,  # the keyed rule and Stripe's are on by default
    }


def test_stripes_webhook_is_refused_at_once_from_any_address_but_stripes_own():
    waf, _ = template_acl(30.0)  # the defaults: Stripe's published addresses
    assert waf.blocks("203.0.113.9", STRIPE)  # no delay: not a rate rule
    assert waf.blocks("203.0.113.9", "/Prod/v1/billing/%73tripe")  # an escaped letter routes the same
    assert not waf.blocks("54.187.174.169", STRIPE)  # one of Stripe's
    assert not waf.blocks("203.0.113.9", "/Prod/v1/billing/credits")  # other routes: not this rule
    assert waf.counted == {}
    stripe_agent = {"User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)"}
    assert waf.answer("203.0.113.9", STRIPE, stripe_agent).status == 403  # blocked, and counted:
    assert waf.counted == {"stripe-agent-from-elsewhere": 1}  # the list may be stale (an alarm)
    assert (
        waf.answer("54.187.174.169", STRIPE, stripe_agent) is None
        and waf.counted["stripe-agent-from-elsewhere"] == 1
    )
    off, _ = template_acl(30.0, StripeWebhookAddresses="none")
    assert not off.blocks("203.0.113.9", STRIPE)


def test_keyed_calls_are_counted_per_address_apart_from_the_keyless_rules():
    waf, _ = template_acl(0.0, WebAclRateLimit="10", WebAclKeyedRateLimit="20")
    keyed = [waf.answer("203.0.113.9", "/Prod/v1/usage", {"X-Api-Key": f"ac_{n}"}) for n in range(25)]
    assert keyed.count(None) == 20  # blocked past 20, whatever key each carried
    assert keyed[-1].status == 429 and ("Retry-After", "60") in keyed[-1].headers  # as a throttle answers
    assert keyed[-1].body == '{"message":"Too Many Requests"}'
    assert not waf.blocks("203.0.113.10", "/Prod/v1/usage", {"x-api-key": "ac_real"})  # another address
    assert not any(waf.blocks("203.0.113.9", SIGNUP) for _ in range(10))  # sign-up's count is its own
    assert not waf.blocks("203.0.113.11", "/Prod/v1/usage")  # no key: the authorizer refuses it unrun


def test_a_change_of_a_rules_limit_starts_its_counts_again_and_a_reload_unchanged_keeps_them():
    waf, _ = template_acl(0.0, WebAclRateLimit="10", WebAclResultLinkRateLimit="10")
    assert [waf.blocks("203.0.113.9", LINK) for _ in range(11)][-1]
    assert not any(waf.blocks("203.0.113.9", SIGNUP) for _ in range(10))
    waf.set_limit("result-links-per-address", 12)
    assert not any(waf.blocks("203.0.113.9", LINK) for _ in range(12))  # counted from zero
    assert waf.blocks("203.0.113.9", LINK)
    assert waf.blocks("203.0.113.9", SIGNUP)  # the other rule's counts stay
    waf.load(*resolved(WebAclRateLimit="10", WebAclResultLinkRateLimit="10"))  # sign-up's rule unchanged
    assert waf.blocks("203.0.113.9", SIGNUP)
    assert not waf.blocks("203.0.113.9", LINK)  # 12 -> 10: counted from zero again
