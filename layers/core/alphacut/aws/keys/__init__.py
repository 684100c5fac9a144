"""Keys: the key store, a store's account and the keys it manages, the authorizer, sign-ups, the
operator's admin.

May import ``alphacut.aws``'s shared modules and the ledger (tests/unit/test_import_graph.py)."""
