"""Result links: a token names an object and its expiry, signed; forged, altered or late ones
are refused (403 / 410), and only result objects can be named."""

import pytest
from alphacut.errors import LinkExpired, LinkInvalid, http_status
from alphacut.result_links import LinkSigner

NOW = 1_800_000_000.0


def signer(now: float = NOW) -> LinkSigner:
    return LinkSigner(b"stack-secret", clock=lambda: now)


def test_a_link_opens_until_it_expires_a_day_later():
    token = signer().token("results/2026-11-23/r1/image.png", int(NOW) + 86400)
    assert signer(NOW + 86399).open(token) == "results/2026-11-23/r1/image.png"
    with pytest.raises(LinkExpired) as late:
        signer(NOW + 86401).open(token)
    assert http_status(late.value) == 410 and late.value.field == "token"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t[:-2] + ("A" if t[-2] != "A" else "B") + t[-1],  # another signature
        lambda t: "eyJrIjoiaWRlbXBvdGVuY3kveCIsImUiOjk5OTk5OTk5OTl9." + t.split(".")[1],  # another payload
        lambda t: t.replace(".", ""),
        lambda t: "",
        lambda t: "a.b.c",
        lambda t: "%%%.###",
        lambda t: t + "x" * 3000,
    ],
)
def test_a_forged_or_damaged_link_is_refused(tamper):
    token = signer().token("results/x.png", int(NOW) + 60)
    with pytest.raises(LinkInvalid) as refused:
        signer().open(tamper(token))
    assert http_status(refused.value) == 403


def test_another_stacks_link_is_refused():
    token = LinkSigner(b"other-secret").token("results/x.png", int(NOW) + 60)
    with pytest.raises(LinkInvalid):
        signer().open(token)


def test_only_result_objects_can_be_linked():
    token = signer().token("idempotency/key/replay.json", int(NOW) + 60)
    with pytest.raises(LinkInvalid):
        signer().open(token)


def _event(domain: str, full_path: str, path: str, stage: str = "prod", proto: str | None = "https") -> dict:
    headers = {"X-Forwarded-Proto": proto} if proto else {}
    return {
        "path": path,
        "headers": headers,
        "requestContext": {"domainName": domain, "path": full_path, "stage": stage},
    }


def test_links_point_where_the_caller_reached_the_api(monkeypatch):
    from alphacut.api import services
    from alphacut.settings import ServiceSettings

    monkeypatch.setattr(services, "SETTINGS", ServiceSettings())
    own = _event("abc.execute-api.us-east-1.amazonaws.com", "/prod/v1/cutout", "/v1/cutout")
    assert services.public_base_url(own) == "https://abc.execute-api.us-east-1.amazonaws.com/prod"
    custom_root = _event("api.example.com", "/v1/cutout", "/v1/cutout", proto=None)
    assert services.public_base_url(custom_root) == "https://api.example.com"  # no stage on a custom domain
    mapped = _event("api.example.com", "/cutouts/v1/cutout", "/v1/cutout")
    assert services.public_base_url(mapped) == "https://api.example.com/cutouts"
    monkeypatch.setattr(services, "SETTINGS", ServiceSettings(public_base_url="https://img.example.com/api/"))
    assert services.public_base_url(mapped) == "https://img.example.com/api"
