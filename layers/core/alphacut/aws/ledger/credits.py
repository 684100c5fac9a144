"""Prepaid credits (DynamoDB, the usage table): a credit-based key's balance, its top-ups, and
the reservations (holds) that keep the balance from ever going below zero, at a cost per call
that does not grow with the key's history.

A call is paid in two steps. ``reserve`` takes the price from the balance and records a hold;
delivery commits the hold (in the usage meter's charge transaction, ``alphacut.aws.ledger.usage``); a
failure releases it (the price given back). A hold whose call was killed outlives it: past
``hold_until`` the scheduled sweep (``sweep``) releases it, off the request path.

The balance is the one item every call of a key writes, so the hot path never puts it in a
transaction (DynamoDB cancels transactions that overlap on an item, and a busy key's calls
always overlap). A reservation is three single-item writes:

1. the balance: ``balance - price`` on condition that it covers the price, and in the same
   write an entry ``m#<hold id>`` (price, due time, a nonce) that says "debited, hold not yet
   written" (the recovery record), and ``inflight + 1``;
2. the hold item, on condition that it does not exist (if another reservation of the same id
   made it, the debit is given back: a hold is reserved once);
3. the entry removed (``inflight - 1``).

A function killed between 1 and 3 leaves the entry: the sweep finds the balance through the
sparse index (``open_due``, set while entries may be in flight) and finishes 2 and 3 itself, which
is safe to repeat (the nonce tells whose hold it is). A release is the same in reverse, also
without a transaction (``release``: the hold marked ``releasing``, the balance credited with an
``r#<hold id>`` entry, the hold marked ``released``, the entry removed). Only top-ups and charges
without a hold (rare) are transactions on the balance.

Items (amounts in millicredits, ``alphacut.pricing``):

- ``pk = "credits#<key id>"``, ``sk = "balance"``: ``balance`` (below zero only by credits taken
  back that were spent or held: what the key owes), ``added`` (all top-ups), ``taken`` (all taken back),
  ``inflight`` and an ``m#<hold id>`` / ``r#<hold id>`` entry per reservation / release between
  its writes; ``open_due`` and ``due_shard`` while the sweep should look at it
- ``pk = "credits#<key id>"``, ``sk = "topup#<reference>"``: ``amount``, ``at``, ``note`` (the
  audit trail; a reference is used once, so a repeated top-up adds nothing)
- ``pk = "credits#<key id>"``, ``sk = "refund#<reference>"``: ``taken``, ``at``, ``note`` (a
  refund's or dispute's credits taken back, once per reference)
- ``pk = "hold#<key id>"``, ``sk = "<call or task id>"``: ``amount``, ``hold_until``, ``route``,
  ``nonce``; open: ``open_due`` (= ``hold_until``) and ``due_shard``, so it is in the index ``DUE_INDEX``;
  once settled ``settled`` (committed | released), ``expires_at``, and no ``open_due`` (out of the
  index: nothing on the request path ever reads a settled hold again; TTL deletes it); while a
  release is under way ``settled = releasing``, ``refund_nonce`` and ``open_due`` (for the sweep)

Usage::

    ledger = CreditLedger("usage-table")
    ledger.top_up("key-id", 37_000, reference="invoice-17")
    ledger.reserve("key-id", "request-id", 1000, seconds=90, route="/v1/cutout")  # or InsufficientCredits
    ledger.release("key-id", "request-id")        # a failure: the credit comes back
    ledger.balance("key-id")                       # 36000 after a commit (None: no credit account)
    ledger.sweep()          # the schedule: expired holds released, stale reservations finished
"""

from alphacut.aws.ledger.balances import (
    DUE_INDEX,
    ENTRY,
    MAX_IN_FLIGHT,
    RELEASE_STALE_SECONDS,
    SETTLED_KEPT_SECONDS,
    STALE_SECONDS,
    Hold,
    Reservation,
    Standing,
    Swept,
    TakenBack,
    TopUp,
    due_shard,
)
from alphacut.aws.ledger.sweep import LedgerSweep

__all__ = [
    "DUE_INDEX",
    "ENTRY",
    "MAX_IN_FLIGHT",
    "RELEASE_STALE_SECONDS",
    "SETTLED_KEPT_SECONDS",
    "STALE_SECONDS",
    "CreditLedger",
    "Hold",
    "Reservation",
    "Standing",
    "Swept",
    "TakenBack",
    "TopUp",
    "due_shard",
]


class CreditLedger(LedgerSweep):
    """A store's prepaid credits: its balances (``balances``), reservations (``reservations``),
    their settlement (``settlement``) and the sweep's due work (``sweep``), one object."""
