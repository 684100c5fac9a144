"""Monthly statements an operator invoices from: per customer (API key), the month's calls,
deliveries (charged results), credits used and bought, and the amount at a price per credit;
beside them the month's card payments (``alphacut.aws.billing.payments``): what was paid, and of refunded
payments the credits taken back and those already spent, which stay owed.

Read from the usage table with one query per key (``usage#<key>`` between the month's first and
last day, and the key's top-ups): no scan, so no other customer's items are read. The figures
are the usage counters' own, which the one charge transaction writes (``alphacut.aws.ledger.usage``):
a statement says what the answers said.

Usage::

    statement = Statement.build("2026-11", admin.every_key(), meter, price_per_credit=0.20)
    print(statement.to_csv())          # or statement.to_json()
"""

from __future__ import annotations

import csv
import io
import json
from calendar import monthrange
from dataclasses import asdict, dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from alphacut.errors import InvalidOption
from alphacut.pricing import MILLI, credits

if TYPE_CHECKING:
    from alphacut.aws.billing.payments import PaymentRecords
    from alphacut.aws.keys.admin import ApiKey
    from alphacut.aws.ledger.usage import UsageMeter

COLUMNS = (
    "customer",
    "key_id",
    "plan",
    "calls",
    "deliveries",
    "credits_used",
    "credits_added",
    "amount",
    "card_payments",
    "credits_refunded",
    "credits_owed",
)


def month_days(month: str) -> tuple[str, str]:
    """``2026-11`` -> ("2026-11-01", "2026-11-30"); InvalidOption names a bad month."""
    try:
        year, number = (int(part) for part in month.split("-"))
        last = monthrange(year, number)[1]
    except (ValueError, TypeError):
        raise InvalidOption(f"must be a month as YYYY-MM, not {month!r}", field="month") from None
    return f"{year:04d}-{number:02d}-01", f"{year:04d}-{number:02d}-{last:02d}"


@dataclass(frozen=True)
class Line:
    customer: str
    key_id: str
    plan: str
    calls: int
    deliveries: int
    credits_used: int | float
    credits_added: int | float
    amount: str  # money, two decimals
    card_payments: str = "0.00"  # money the key's card payments brought in the month (net of refunds)
    credits_refunded: int = 0  # credits taken back by the month's refunds and disputes
    credits_owed: int = 0  # what the balance owed after the last take-back (spent or held credits)


@dataclass
class Statement:
    month: str
    price_per_credit: str
    currency: str
    lines: list[Line] = field(default_factory=list)

    @classmethod
    def build(
        cls,
        month: str,
        keys: list[ApiKey],
        meter: UsageMeter,
        price_per_credit: float,
        currency: str = "USD",
        payments: PaymentRecords | None = None,
    ) -> Statement:
        first, last = month_days(month)
        price = Decimal(str(price_per_credit))
        statement = cls(month, str(price), currency)
        for key in keys:
            report = meter.report(key.id, first, last, with_credits=True)
            used = round(Decimal(str(report["total"]["credits"])) * MILLI)
            added = sum(t.amount for t in meter.credits.top_ups(key.id, first, last))
            paid = payments.payments(key.id, first, last) if payments is not None else []
            if not report["total"]["calls"] and not added and not paid:
                continue  # nothing to bill: no line
            # what the month's payments brought, net of what refunds and disputes took back
            brought = sum(
                p.amount * (p.credited - p.refund_taken - p.dispute_taken) // p.credited
                for p in paid
                if p.credited
            )
            amount = (Decimal(used) / MILLI * price).quantize(Decimal("0.01"), ROUND_HALF_UP)
            statement.lines.append(
                Line(
                    key.customer,
                    key.id,
                    key.plan,
                    report["total"]["calls"],
                    report["total"]["charged"],
                    credits(int(used)),
                    credits(added),
                    str(amount),
                    str((Decimal(brought) / 100).quantize(Decimal("0.01"))),
                    sum((p.refund_taken + p.dispute_taken) // MILLI for p in paid),
                    max((p.owed_credits for p in paid), default=0),
                )
            )
        return statement

    def totals(self) -> dict[str, Any]:
        return {
            "calls": sum(line.calls for line in self.lines),
            "deliveries": sum(line.deliveries for line in self.lines),
            "credits_used": credits(
                sum(round(Decimal(str(line.credits_used)) * MILLI) for line in self.lines)
            ),
            "credits_added": credits(
                sum(round(Decimal(str(line.credits_added)) * MILLI) for line in self.lines)
            ),
            "amount": str(sum((Decimal(line.amount) for line in self.lines), Decimal("0.00"))),
            "card_payments": str(sum((Decimal(line.card_payments) for line in self.lines), Decimal("0.00"))),
            "credits_refunded": sum(line.credits_refunded for line in self.lines),
            "credits_owed": sum(line.credits_owed for line in self.lines),
        }

    def to_json(self) -> str:
        return json.dumps(
            {
                "month": self.month,
                "price_per_credit": self.price_per_credit,
                "currency": self.currency,
                "lines": [asdict(line) for line in self.lines],
                "totals": self.totals(),
            },
            indent=2,
        )

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        for line in self.lines:
            writer.writerow([getattr(line, column) for column in COLUMNS])
        totals = self.totals()
        writer.writerow(["TOTAL", "", "", *(totals[column] for column in COLUMNS[3:])])
        return out.getvalue()
