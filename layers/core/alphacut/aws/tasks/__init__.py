"""Async tasks: the task table, submission, dispatch to the endpoint, the segment step, the end of
a task (its charge and callback), results in S3.

May import ``alphacut.aws``'s shared modules, the ledger and callbacks (tests/unit/test_import_graph.py)."""
