"""What a delivered result costs a credit-based key, in credits: a table of prices by what was
delivered (a full-size result, a preview, a costume call), read from the ``CREDIT_PRICES``
setting. Amounts are kept in millicredits (integers: 1 credit = 1000), so sums never drift.

Usage::

    prices = CreditPrices.parse("full=1,preview=0.25,costume=1")
    prices.for_options(CutoutOptions(size=OutputSize("preview", 0.25)))   # 250 (millicredits)
    prices.for_options(options, costume=True)                             # 1000
    credits(250)                                                          # 0.25
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alphacut.options import CutoutOptions

MILLI = 1000  # millicredits in a credit
DEFAULT_PRICES = "full=1,preview=0.25,costume=1"
KINDS = ("full", "preview", "costume")


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

    @classmethod
    def parse(cls, text: str) -> CreditPrices:
        """``kind=credits`` pairs, comma separated; kinds not named keep their default."""
        prices: dict[str, int] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            kind, _, amount = part.partition("=")
            kind = kind.strip()
            if kind not in KINDS:
                raise ValueError(f"prices are for {', '.join(KINDS)}, not {kind!r}")
            prices[kind] = millicredits(amount)
        return cls(**prices)

    def for_options(self, options: CutoutOptions, costume: bool = False) -> int:
        """The price of a result asked with ``options`` (``costume``: a garments call)."""
        if costume or options.type.value == "costume":
            return self.costume
        return self.preview if options.size.preview else self.full

    def table(self) -> dict[str, int | float]:
        return {kind: credits(getattr(self, kind)) for kind in KINDS}
