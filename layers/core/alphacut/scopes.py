"""What a key may do: its scopes. A key pasted into a storefront plugin needs to cut images out and
nothing more; leaking it must not buy packs, change the notice address or read payments.

- ``images``: the model routes, tasks and their results (every vendor-compatible route too);
- ``usage``: the account's usage and statements;
- ``billing``: buying credits, the saved card, the low-balance settings, payments;
- ``keys``: managing the account's keys.

A sign-up's key and a key the operator makes get all four. The authorizer carries a key's scopes
in its context (no read per call); each keyed route says which scopes admit it
(``alphacut.api.openapi.RouteDoc.scopes``: any one of them; none: any key), and a call outside
them is a 403 ``insufficient_scope`` naming the scope needed.

Usage::

    checked_scopes(["images", "usage"])     # ("images", "usage"); InvalidOption names the field
    scopes_from_text("images usage")        # as the authorizer's context carries them
    admitted(("images",), ("images", "usage"))   # True
"""

from __future__ import annotations

from typing import Any

from alphacut.errors import InvalidOption

IMAGES, USAGE, BILLING, KEYS = "images", "usage", "billing", "keys"
ALL_SCOPES: tuple[str, ...] = (IMAGES, USAGE, BILLING, KEYS)


def checked_scopes(value: Any, field: str = "scopes") -> tuple[str, ...]:
    """A request's or an operator's list of scopes, in the canonical order; refused when it is not
    a non-empty list of known scope names."""
    if isinstance(value, str):
        value = [part for part in value.replace(",", " ").split() if part]
    if not isinstance(value, list) or not value or not all(isinstance(item, str) for item in value):
        raise InvalidOption(f"must be a non-empty list of {', '.join(ALL_SCOPES)}", field=field)
    unknown = sorted(set(value) - set(ALL_SCOPES))
    if unknown:
        raise InvalidOption(f"unknown scope {unknown[0]!r}: scopes are {', '.join(ALL_SCOPES)}", field=field)
    return tuple(scope for scope in ALL_SCOPES if scope in value)


def scopes_text(scopes: tuple[str, ...]) -> str:
    return " ".join(scopes)


def scopes_from_text(text: str | None) -> tuple[str, ...]:
    """Scopes as stored and as the authorizer's context carries them (space-separated). None or
    empty: every scope (a key made before scopes existed, an authorizer answer cached from then)."""
    if not text:
        return ALL_SCOPES
    return tuple(scope for scope in ALL_SCOPES if scope in text.split())


def admitted(holds: tuple[str, ...], admits: tuple[str, ...]) -> bool:
    """Whether a key holding ``holds`` may call a route any of ``admits`` opens (none: any key)."""
    return not admits or any(scope in holds for scope in admits)
