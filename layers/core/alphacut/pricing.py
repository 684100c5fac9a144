"""What a delivered result costs a credit-based key, in credits: a table of prices by what was
delivered (a full-size result, a preview, a costume call) and, where the operator says so, by the
model that made the matte (``full@birefnet=3``: a heavier model may cost more), read from the
``CREDIT_PRICES`` setting. Amounts are kept in millicredits (integers: 1 credit = 1000), so sums
never drift.

Usage::

    prices = CreditPrices.parse("full=1,preview=0.25,costume=1,full@u2netp=0.5")
    prices.for_options(CutoutOptions(size=OutputSize("preview", 0.25)))   # 250 (millicredits)
    prices.for_options(CutoutOptions(model="u2netp"))                     # 500
    prices.for_options(options, costume=True)                             # 1000
    credits(250)                                                          # 0.25
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alphacut.options import CutoutOptions

MILLI = 1000  # millicredits in a credit
DEFAULT_PRICES = "full=1,preview=0.25,costume=1"
KINDS = ("full", "preview", "costume")
# ``kind@model``: the options' model grammar (alphacut.options.MODEL_PATTERN), written again here:
# importing alphacut.options would bring numpy and Pillow into every function that reads its settings
_MODEL_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")


def credits(millicredits: int) -> int | float:
    """An amount as a caller reads it: 1, 0.25, 37 (whole credits without a fraction)."""
    whole, rest = divmod(millicredits, MILLI)
    return whole if rest == 0 else millicredits / MILLI


def millicredits(amount: str | float) -> int:
    """``"0.25"`` -> 250; at most three decimals, never negative (ValueError names the rule)."""
    try:
        value = Decimal(str(amount).strip())
    except InvalidOperation:
        raise ValueError(f"must be a number of credits, not {amount!r}") from None
    scaled = value * MILLI
    if not value.is_finite() or value < 0 or scaled != scaled.to_integral_value():
        raise ValueError(f"must be a non-negative number of credits with at most 3 decimals, not {amount!r}")
    return int(scaled)


@dataclass(frozen=True)
class CreditPrices:
    """Millicredits per delivered result: ``full`` (any size above a preview), ``preview`` (0.25 MP
    or less), ``costume`` (a clothing call, whatever its classes)."""

    full: int = 1000
    preview: int = 250
    costume: int = 1000
    by_model: tuple[tuple[str, int], ...] = ()  # ("full@u2netp", 500): a kind's price for a model

    @property
    def cheapest(self) -> int:
        """The least any delivered result costs (a balance below it pays for nothing)."""
        return min([self.full, self.preview, self.costume, *(amount for _, amount in self.by_model)])

    @classmethod
    def parse(cls, text: str) -> CreditPrices:
        """``kind=credits`` or ``kind@model=credits`` pairs, comma separated; kinds not named keep
        their default, models not named pay their kind's price."""
        prices: dict[str, int] = {}
        by_model: dict[str, int] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, _, amount = part.partition("=")
            kind, at, model = name.strip().partition("@")
            if kind not in KINDS:
                raise ValueError(f"prices are for {', '.join(KINDS)}, not {kind!r}")
            if at and not _MODEL_NAME.fullmatch(model):
                raise ValueError(f"{name.strip()!r}: a price for a model is kind@model (a model's name)")
            if at:
                by_model[f"{kind}@{model}"] = millicredits(amount)
            else:
                prices[kind] = millicredits(amount)
        return cls(**prices, by_model=tuple(sorted(by_model.items())))

    def for_options(self, options: CutoutOptions, costume: bool = False) -> int:
        """The price of a result asked with ``options`` (``costume``: a garments call), for the
        model the options name (the registry's default where they name none)."""
        from alphacut.options import DEFAULT_MODEL

        if costume or options.type.value == "costume":
            kind = "costume"
        else:
            kind = "preview" if options.size.preview else "full"
        price: int = dict(self.by_model).get(f"{kind}@{options.model or DEFAULT_MODEL}", getattr(self, kind))
        return price

    def table(self) -> dict[str, int | float]:
        return {
            **{kind: credits(getattr(self, kind)) for kind in KINDS},
            **{name: credits(amount) for name, amount in self.by_model},
        }
