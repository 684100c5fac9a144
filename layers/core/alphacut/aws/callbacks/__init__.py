"""Callbacks: the queue of task callbacks, each key's delivery slots, the signing secrets.

May import ``alphacut.aws``'s shared modules only (tests/unit/test_import_graph.py)."""
