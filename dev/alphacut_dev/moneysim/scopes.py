"""The scopes the simulator explores: small ones exhaustively (every run, every kill and fault
point), a wide one by seeded random walks. ``CI_SLICE`` is what the test suite explores each run;
benchmarks/bench_money_sim.py explores the same scopes much further.

Amounts are millicredits: 3 credits on the balance, calls at 1 credit unless a scope says else.
"""

from __future__ import annotations

from alphacut_dev.moneysim.world import BEFORE_MIDNIGHT, Scope

SCOPES = {
    # the first interleaving: a release stopped after its credit, two sweeps at once
    "two-sweeps": Scope(
        "two-sweeps", calls=(False,), sweeps=2, kills=1, faults=0, clock_moves=1, ttl=0, preemptions=1
    ),
    # a release (a call that failed) with every ambiguous write, TTL at any moment
    "release-faults": Scope(
        "release-faults", calls=(False,), sweeps=1, kills=0, faults=1, clock_moves=2, ttl=1, preemptions=1
    ),
    # two calls of one key, one delivered and one failed, on a balance that covers one and a half
    "two-calls": Scope(
        "two-calls",
        calls=(True, False),
        funds=1500,
        sweeps=1,
        kills=1,
        faults=0,
        clock_moves=1,
        ttl=0,
        preemptions=1,
    ),
    # a delivered call with every ambiguous write: its count deferred to the metering queue
    "call-faults": Scope(
        "call-faults", calls=(True,), sweeps=1, kills=0, faults=1, clock_moves=2, ttl=1, preemptions=1
    ),
    "tasks": Scope(
        "tasks", tasks=(True, False), sweeps=1, kills=1, faults=0, clock_moves=1, ttl=0, preemptions=1
    ),
    "task-faults": Scope(
        "task-faults", tasks=(True,), sweeps=1, kills=0, faults=1, clock_moves=2, ttl=1, preemptions=1
    ),
    "lagging-index": Scope(
        "lagging-index",
        calls=(False,),
        sweeps=2,
        kills=1,
        faults=0,
        clock_moves=1,
        ttl=0,
        lag=True,
        preemptions=1,
    ),
    "top-ups": Scope(
        "top-ups",
        calls=(True,),
        top_ups=("invoice-7", "invoice-7", ""),
        funds=500,
        sweeps=0,
        kills=1,
        faults=1,
        clock_moves=0,
        ttl=0,
        preemptions=1,
    ),
    # a delivered call whose reservation's last write failed twice, then a day: TTL and the entry
    "commit-after-faults": Scope(
        "commit-after-faults", calls=(True,), sweeps=1, kills=0, faults=2, clock_moves=1, ttl=1, preemptions=0
    ),
    # Stripe's events about one payment delivered at once, twice and out of order, beside a call:
    # the record decides (the metadata names a fortune), credits move once, states never go back
    "payments": Scope(
        "payments",
        calls=(True,),
        events=("succeeded", "succeeded", "refunded:80", "dispute:80"),
        funds=0,
        sweeps=0,
        kills=1,
        faults=1,
        clock_moves=0,
        ttl=0,
        preemptions=2,
    ),
    # the dispute before the success, then won; a late failure; a refund of the rest; the success
    # of a PaymentIntent the service never made (its metadata names the store and a fortune)
    "payment-order": Scope(
        "payment-order",
        events=("dispute:80", "won", "succeeded", "failed", "refunded:80", "stranger"),
        funds=0,
        sweeps=0,
        kills=0,
        faults=1,
        clock_moves=0,
        ttl=0,
        preemptions=2,
    ),
    # calls that crossed the armed threshold at once, with a kill and a retried write: one claim
    # wins; a refund of a card payment meanwhile never arms it again
    "crossings": Scope(
        "crossings",
        crossings=3,
        events=("refunded:80",),
        funds=1000,
        sweeps=0,
        kills=1,
        faults=1,
        clock_moves=0,
        ttl=0,
        preemptions=2,
    ),
    # three delivering calls of a key whose daily limit pays for two, a kill and a retried write:
    # never more delivered than the limit, never a count below what was charged
    "key-limit": Scope(
        "key-limit",
        calls=(True, True, False),
        key_limit=2000,
        account_keys=True,
        funds=5000,
        sweeps=1,
        kills=1,
        faults=1,
        clock_moves=1,
        ttl=0,
        preemptions=1,
    ),
    # a delivering and an undelivered call of a key with a daily limit, one fault each run on any
    # write (the SDK's retry of a write that landed among them): each call moves its key's
    # spending by exactly its charge, the retried write counted once
    "key-spend-retried": Scope(
        "key-spend-retried",
        calls=(True, False),
        key_limit=2000,
        account_keys=True,
        funds=3000,
        sweeps=0,
        kills=0,
        faults=1,
        clock_moves=0,
        ttl=0,
        preemptions=0,
    ),
    # ten seconds before 00:00 UTC, an undelivered and a delivered call of an account's key through
    # the metering's gate, the clock moved to midnight between any two writes: each day's count
    # exact, a price given back on the day it was counted on
    "key-midnight": Scope(
        "key-midnight",
        calls=(False, True),
        key_limit=2000,
        account_keys=True,
        start=BEFORE_MIDNIGHT,
        funds=3000,
        sweeps=0,
        kills=1,
        faults=0,
        clock_moves=1,
        ttl=0,
        preemptions=1,
    ),
    # the automatic top-up end to end, a cap of one a month: two crossings (the second once the
    # first's payment armed the threshold again), each message handled by the real handler and
    # delivered once more (maybe a day later), the fake Stripe's PaymentIntent succeeded, a call
    # of 100 credits spending it, the payment refunded in whole and disputed: one PaymentIntent
    # per crossing, within the cap, its credits taken back once (what was spent stays owed)
    "auto-top-up": Scope(
        "auto-top-up",
        crossings=2,
        unreached=-1,
        auto_top_up=True,
        auto_cap=1,
        auto_events=("succeeded", "call", "refunded:all", "dispute:all"),
        redeliveries=1,
        funds=1000,
        price=100_000,
        sweeps=0,
        kills=1,
        faults=1,
        clock_moves=1,
        ttl=0,
        preemptions=1,
    ),
    # walked at random: more of everything at once
    "wide": Scope(
        "wide",
        calls=(True, False, True),
        tasks=(True, False),
        top_ups=("invoice-7", "invoice-7"),
        funds=2500,
        sweeps=3,
        kills=2,
        faults=3,
        clock_moves=4,
        ttl=2,
        lag=True,
        consumers=2,
        preemptions=6,
        events=("succeeded", "refunded:20", "dispute:40", "succeeded"),
    ),
}

# runs each scope explores in the suite (depth first from the start; the first two are explored
# whole): 33,850 in all and 500 walks, about 40 s on the 2-core machine (key-midnight and
# auto-top-up, issue 90: docs/benchmarks.md measures what they add)
CI_SLICE = {
    "two-sweeps": 6000,
    "two-calls": 7000,
    "call-faults": 3000,
    "commit-after-faults": 3000,
    "top-ups": 2000,
    "release-faults": 2000,
    "tasks": 1000,
    "task-faults": 1000,
    "lagging-index": 1000,
    "payments": 3000,
    "payment-order": 2000,
    "crossings": 400,
    "key-limit": 1500,
    "key-midnight": 500,
    "key-spend-retried": 200,  # whole (140 schedules)
    "auto-top-up": 250,
}
CI_WALKS = 500  # random walks over "wide"
PLANTED_RUNS = 20_000  # at most, to find a planted bug in its scope
