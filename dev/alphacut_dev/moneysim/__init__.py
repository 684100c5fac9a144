"""A deterministic simulator of the money protocol (prepaid credits: reservations, commits,
releases, top-ups, task holds, the sweep, the metering queue's deferred counts), in the manner of
FoundationDB's and TigerBeetle's: the ledger's real code runs as functions stopped at every DynamoDB
call, against a model of DynamoDB (``dynamodb``, its answers checked against moto's in the tests),
under a scheduler that at each call may run any function's next call, kill a function, let a
write land and answer an error, hold the index back, move the clock, run TTL or start another
sweep (``world``). The invariants (``invariants``) are checked after every step and at rest.
``explore`` walks every run of a small scope, or seeded random walks; ``mutations`` puts known bugs
back, which the search must find.

Usage::

    python -m alphacut_dev.moneysim                       # the CI slice's scopes, a table
    python -m alphacut_dev.moneysim --scope two-sweeps --plant two-sweeps-credit-twice
    python -m alphacut_dev.moneysim --scope wide --walks 1000
    python -m alphacut_dev.moneysim --scope two-sweeps --replay 0,0,3,1 --plant two-sweeps-credit-twice
"""
