"""Money's records and news on AWS: card payments, the monthly statement, the low-balance queue,
mail (SES).

May import ``alphacut.aws``'s shared modules, the ledger and keys (tests/unit/test_import_graph.py)."""
