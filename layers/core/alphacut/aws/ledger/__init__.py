"""The ledger: prepaid credits (balances, reservations, settlement, the sweep), usage counters and
charges, limits and plans, a key's daily spending, idempotent replays, the every-minute schedule.

May import ``alphacut.aws``'s shared modules only (tests/unit/test_import_graph.py)."""
