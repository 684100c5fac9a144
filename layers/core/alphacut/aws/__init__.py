"""AWS adapters, all in one place: the image domain never imports boto3; these modules do.

Clients honour ``AWS_ENDPOINT_URL`` (and per-service variants), which is how the local stack
points them at moto.

The packages, by what they serve (docs/architecture.md's map; tests/unit/test_import_graph.py
holds which may import which): ``ledger`` (credits, usage, limits, plans), ``keys`` (the key
store, accounts, the authorizer), ``callbacks``, ``tasks`` (the async path), ``billing``
(payments, statements, mail). Beside them the modules every package shares: ``clients``,
``transactions``, ``objects`` (S3), ``secrets``, and ``preflight`` (the deploy check).
"""
