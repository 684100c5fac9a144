"""The money protocol's invariants, written once: checked by the simulator after every step
(``during``) and once everything due has run (``at_rest``); docs/architecture.md states the same.

Amounts are millicredits. With T the top-ups made, K the credits taken back (refunds, disputes),
B the balance, H the credits held and C the credits charged (the day totals' ``credits``, written
in the charge transaction):

1. T - K = B + H + C: nothing created, nothing lost. H is what a call or a task still owes or may
   still get back: each open hold; each releasing hold whose credit is not on the balance yet (no
   ``r#`` entry of its refund nonce); each ``m#`` entry whose hold was never written (no hold of
   its nonce, alive or deleted by TTL).
2. B >= 0, unless credits were taken back: B >= -K (what a take-back found spent or held).
6. Payments (the service's own records, ``pay#``): the credits each added is nought or its
   record's, once; refunds and disputes never take back more than it added; the top-ups made for
   payments less what was taken back equal the payments' ``credited`` less their ``refund_taken``
   and ``dispute_taken`` (a won dispute's give-back is a top-up that sets ``dispute_taken`` to 0);
   a payment's state never moves back (``payment_step``).
3. ``inflight`` = the ``m#`` and ``r#`` entries on the balance.
4. A hold is settled once: made once (never again after TTL took it), then committed, or
   releasing then released; never back.
5. A hold keeps no TTL until its credits are back or charged (no ``expires_at`` while open or
   releasing).

At rest (every function ended, everything due swept, the index caught up, the metering queue
drained): H = 0, no entry, no open or releasing hold, and per call or task: delivered is charged
its price exactly once or recorded unbilled and counted in the ``UnbilledCalls`` metric;
undelivered is charged nothing; stopped half-way is charged at most its price.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Item = dict[str, Any]


class Violation(AssertionError):
    """An invariant that does not hold: which, and the figures."""


@dataclass
class Ledger:
    """What the tables hold for one key, in the invariants' terms."""

    topped_up: int
    balance: int
    held: int
    charged: int
    inflight: int
    entries: int
    open_holds: list[str] = field(default_factory=list)
    taken: int = 0


def read_ledger(
    items: dict[tuple[str, str], Item], tombstones: dict[tuple[str, str], Item], key: str
) -> Ledger:
    balance_item = items.get((f"credits#{key}", "balance"), {})
    topped_up = sum(
        int(i["amount"]["N"])
        for (pk, sk), i in items.items()
        if pk == f"credits#{key}" and sk.startswith("topup#")
    )
    charged = sum(
        int(i.get("credits", {}).get("N", 0))
        for (pk, sk), i in items.items()
        if pk == f"usage#{key}" and sk.split("#")[1:2] == ["*"]
    )
    taken = sum(
        int(i["taken"]["N"])
        for (pk, sk), i in items.items()
        if pk == f"credits#{key}" and sk.startswith("refund#")
    )
    holds = {sk: i for (pk, sk), i in items.items() if pk == f"hold#{key}"}
    gone = {sk: i for (pk, sk), i in tombstones.items() if pk == f"hold#{key}"}
    held, open_holds = 0, []
    for hold_id, hold in holds.items():
        settled = hold.get("settled", {}).get("S")
        if settled is None:
            held += int(hold["amount"]["N"])
            open_holds.append(hold_id)
        elif settled == "releasing":
            refund = balance_item.get(f"r#{hold_id}", {}).get("M", {})
            if refund.get("n", {}).get("S") != hold["refund_nonce"]["S"]:
                held += int(hold["amount"]["N"])
            open_holds.append(hold_id)
    entries = 0
    for name, value in balance_item.items():
        if name.startswith(("m#", "r#")):
            entries += 1
        if name.startswith("m#"):
            hold_id, nonce = name[2:], value["M"]["n"]["S"]
            made = [h for h in (holds.get(hold_id), gone.get(hold_id)) if h is not None]
            if not any(h["nonce"]["S"] == nonce for h in made):
                held += int(value["M"]["a"]["N"])
    return Ledger(
        topped_up,
        int(balance_item.get("balance", {}).get("N", 0)),
        held,
        charged,
        int(balance_item.get("inflight", {}).get("N", 0)),
        entries,
        open_holds,
        taken,
    )


def during(items: dict[tuple[str, str], Item], tombstones: dict[tuple[str, str], Item], key: str) -> None:
    ledger = read_ledger(items, tombstones, key)
    if ledger.topped_up - ledger.taken != ledger.balance + ledger.held + ledger.charged:
        accounted = ledger.balance + ledger.held + ledger.charged
        how = "created" if ledger.topped_up - ledger.taken < accounted else "lost"
        raise Violation(
            f"money: top-ups {ledger.topped_up} - taken back {ledger.taken} != balance {ledger.balance}"
            f" + held {ledger.held} + charged {ledger.charged}"
            f" ({how} {abs(ledger.topped_up - ledger.taken - accounted)})"
        )
    if ledger.balance < -ledger.taken:
        raise Violation(f"balance {ledger.balance} below zero by more than was taken back ({ledger.taken})")
    payments_hold(items, key)
    if ledger.inflight != ledger.entries:
        raise Violation(f"inflight {ledger.inflight} != {ledger.entries} entries on the balance")
    for (pk, sk), item in items.items():
        if (
            pk == f"hold#{key}"
            and "expires_at" in item
            and item.get("settled", {}).get("S") in (None, "releasing")
        ):
            raise Violation(f"hold {sk} is {item.get('settled', {}).get('S', 'open')} and has a TTL")


def payments_hold(items: dict[tuple[str, str], Item], key: str) -> None:
    """Invariant 6's sums over the key's payment records and the ledger's items."""
    records = {sk[4:]: i for (pk, sk), i in items.items() if pk == f"billing#{key}" and sk.startswith("pay#")}
    if not records:
        return

    def number(item: Item, name: str) -> int:
        return int(item.get(name, {}).get("N", 0))

    for payment, item in records.items():
        credited, worth = number(item, "credited"), number(item, "credits") * 1000
        if credited not in (0, worth):
            raise Violation(f"payment {payment} credited {credited}, its record is worth {worth}")
        if number(item, "refund_taken") + number(item, "dispute_taken") > credited:
            raise Violation(f"payment {payment} took back more than it added")
    added = sum(
        int(i["amount"]["N"])
        for (pk, sk), i in items.items()
        if pk == f"credits#{key}" and sk.startswith("topup#") and sk[6:].split(":")[0] in records
    )
    taken = sum(
        int(i["taken"]["N"])
        for (pk, sk), i in items.items()
        if pk == f"credits#{key}" and sk.startswith("refund#") and sk[7:].split(":")[0] in records
    )
    kept = sum(
        number(i, "credited") - number(i, "refund_taken") - number(i, "dispute_taken")
        for i in records.values()
    )
    if added - taken != kept:
        raise Violation(f"payments: {added} added - {taken} taken back != {kept} the records keep")


PAYMENT_RANK = {"created": 0, "failed": 1, "succeeded": 2, "refunded": 3, "disputed": 4, "won": 5, "lost": 5}


def payment_step(before: Item | None, after: Item | None, payment: str) -> None:
    """One write to a payment record: its state only moves forward."""
    old = before.get("state", {}).get("S") if before else None
    new = after.get("state", {}).get("S") if after else None
    if old and new and PAYMENT_RANK[new] < PAYMENT_RANK[old]:
        raise Violation(f"payment {payment} went back from {old} to {new}")


HOLD_STEPS = {
    (None, "open"),
    ("open", "releasing"),
    ("open", "committed"),
    ("releasing", "released"),
    ("committed", "gone"),
    ("released", "gone"),
}


def hold_state(item: Item | None) -> str | None:
    if item is None:
        return None
    return str(item.get("settled", {}).get("S", "open"))


def hold_step(
    history: list[str], before: Item | None, after: Item | None, by_ttl: bool, hold_id: str
) -> None:
    """One write to a hold: allowed only along HOLD_STEPS (``history``: the states it went through)."""
    old, new = hold_state(before), ("gone" if by_ttl else hold_state(after))
    if old == new:
        return
    if new is None:
        raise Violation(f"hold {hold_id} deleted while {old}")
    if old is None and history:
        raise Violation(f"hold {hold_id} made again after {' -> '.join(history)}")
    if (old, new) not in HOLD_STEPS:
        raise Violation(f"hold {hold_id} went {old} -> {new}")
    history.append(new)


@dataclass
class Outcome:
    """What one call or task did, as its function saw it: ``delivered`` True/False, or None when it
    was stopped before it knew; ``price`` what it costs."""

    name: str
    price: int
    delivered: bool | None = None


def at_rest(
    items: dict[tuple[str, str], Item],
    tombstones: dict[tuple[str, str], Item],
    key: str,
    outcomes: list[Outcome],
    paid: dict[str, int],
    unbilled_metric: int,
) -> None:
    """``paid``: credits each marker's transaction charged (``call#<id>`` / ``charge#<id>``)."""
    during(items, tombstones, key)
    ledger = read_ledger(items, tombstones, key)
    if ledger.held or ledger.entries or ledger.open_holds:
        raise Violation(
            f"at rest yet {ledger.held} held, {ledger.entries} entries, open holds {ledger.open_holds}"
        )
    unpaid = 0
    for outcome in outcomes:
        charged = paid.get(outcome.name, 0)
        if outcome.delivered is True and charged == 0:
            unpaid += 1  # acceptable only where the UnbilledCalls metric counted it
        elif outcome.delivered is True and charged != outcome.price:
            raise Violation(f"{outcome.name} was delivered and charged {charged}, not {outcome.price}")
        if outcome.delivered is False and charged:
            raise Violation(f"{outcome.name} delivered nothing and was charged {charged}")
        if outcome.delivered is None and charged not in (0, outcome.price):
            raise Violation(f"{outcome.name} was stopped and charged {charged}")
    if unpaid > unbilled_metric:
        raise Violation(f"{unpaid} delivered and not paid, {unbilled_metric} counted in UnbilledCalls")


@dataclass
class KeySpent:
    """One call's part in its key's spending, as the world saw it: what its marker charged, what
    its own writes moved the key's count of each UTC day by, whether it ended by itself with no
    fault answered (then its moves are exact), and the day it counted its price on."""

    name: str
    charged: int
    moves: dict[str, int]
    clean: bool
    day: str


def key_spending(
    items: dict[tuple[str, str], Item],
    key: str,
    limit: int,
    charged: dict[str, int],
    spends: list[KeySpent] | None = None,
) -> None:
    """A key with a daily limit, each UTC day: its count never above the limit, never below what
    its calls counted on that day were charged (``charged``: millicredits by day). At rest
    (``spends``), exactly: a call that ended by itself moved the count by its charge on the day it
    counted it and by nothing on any other day (an undelivered call gave its price back, on its
    day); a call stopped or answered a fault may leave its price counted (the key spends less than
    its limit, never more)."""
    counts = {sk: int(item["spent"]["N"]) for (pk, sk), item in items.items() if pk == f"spend#{key}"}
    if "?" in charged:
        raise Violation(f"calls were charged {charged['?']} without counting it on their key's spending")
    for day, paid in sorted(charged.items()):
        if paid > limit:
            raise Violation(
                f"the key's calls counted on {day} were charged {paid}, over its limit of {limit}"
            )
        if day in counts and paid > counts[day]:
            raise Violation(
                f"the key's calls were charged {paid} on {day}, more than its count of {counts[day]}"
            )
    for day, count in sorted(counts.items()):
        if count > limit:
            raise Violation(f"the key counted {count} spent on {day}, over its limit of {limit}")
    for spend in spends or ():
        expected = {spend.day: spend.charged} if spend.charged else {}
        moved = {day: n for day, n in spend.moves.items() if n}
        if spend.clean and moved != expected:
            raise Violation(
                f"{spend.name} was charged {spend.charged} and moved its key's spending by {moved}"
                f" (by day), not {expected}"
            )
        if not spend.clean and any(n < 0 for n in moved.values()):
            raise Violation(f"{spend.name} took its key's spending below what it counted: {moved}")


def untouched(items: dict[tuple[str, str], Item], key: str, funds: int) -> None:
    """A key of an account spends the account's balance: its own (a balance from before it joined,
    ``funds``) is never reserved from, charged or counted on."""
    balance = items.get((f"credits#{key}", "balance"), {})
    moved = int(balance.get("balance", {}).get("N", 0)) != funds or int(
        balance.get("inflight", {}).get("N", 0)
    )
    own = [pk for pk, _ in items if pk in (f"hold#{key}", f"usage#{key}")]
    if moved or own:
        raise Violation(
            f"key {key}'s own balance was used: {balance.get('balance')}, items {sorted(set(own))}"
        )


def paid_for(items: dict[tuple[str, str], Item], key: str, made: set[str]) -> None:
    """Credits for card payments only for the PaymentIntents the world's Stripe made for the
    service (a top-up's reference names its PaymentIntent: ``pi_...``)."""
    for pk, sk in items:
        if pk == f"credits#{key}" and sk.startswith("topup#pi_"):
            payment = sk[6:].split(":")[0]
            if payment not in made:
                raise Violation(f"credits added for {payment}, a PaymentIntent the service never made")


def arming(actor: str) -> None:
    """The low-balance threshold is armed again only by a payment credited for the first time (a
    ``succeeded`` webhook), by a claim that gives its crossing back untold, or at set-up (``""``):
    never by a refund or a dispute, so a take-back never buys again."""
    if actor and not actor.startswith("claim") and not actor.endswith("-succeeded"):
        raise Violation(f"{actor} armed the low-balance threshold again")


def auto_top_ups(made: list[tuple[str, int, str, int, int]], cap: int, notices: list[Any]) -> None:
    """The automatic top-ups' PaymentIntents the world's Stripe made (id, at, idempotency key,
    credits, amount): within the store's monthly cap, and one per crossing queued."""
    import time

    months: dict[str, int] = {}
    for _, at, _, _, _ in made:
        month = time.strftime("%Y-%m", time.gmtime(at))
        months[month] = months.get(month, 0) + 1
        if months[month] > cap:
            raise Violation(f"{months[month]} automatic top-ups made in {month}, over the cap of {cap}")
    crossings = [key for _, _, key, _, _ in made]
    if len(set(crossings)) != len(crossings):
        raise Violation(f"two PaymentIntents for one crossing: {crossings}")
    if len(made) > len({n.crossing for n in notices}):
        raise Violation(f"{len(made)} PaymentIntents for {len(notices)} crossings")


def took_back(
    items: dict[tuple[str, str], Item], key: str, settled: list[tuple[str, int, list[str]]]
) -> None:
    """At rest, each card payment whose events were all delivered: credited its credits once if it
    succeeded, and each refund or dispute took back its share (whole here): what was spent of them
    stays owed on the balance, never forgiven."""
    for payment, credits, events in settled:
        added = sum(
            int(i["amount"]["N"])
            for (pk, sk), i in items.items()
            if pk == f"credits#{key}" and sk.split(":")[0] == f"topup#{payment}"
        )
        taken = sum(
            int(i["taken"]["N"])
            for (pk, sk), i in items.items()
            if pk == f"credits#{key}" and sk.split(":")[0] == f"refund#{payment}"
        )
        expected = (
            credits * 1000
            if "succeeded" in events or any(e.startswith(("refunded", "dispute")) for e in events)
            else 0
        )
        back = credits * 1000 if any(e.startswith(("refunded", "dispute")) for e in events) else 0
        if added != expected or taken != back:
            raise Violation(
                f"payment {payment} ({events}): credited {added}, taken back {taken}; the world's"
                f" events say {expected} and {back}"
            )
