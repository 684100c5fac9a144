"""The local stack: the whole service on 127.0.0.1 with no AWS account (dev-only).

moto in server mode stands in for S3 and API Gateway's key store; resources come from
template.yaml translated offline; each Lambda function runs warm in its own worker process
(its own environment, like a Lambda instance); a gateway turns HTTP requests into REST proxy
events, checks x-api-key and applies the usage plan.

Usage::

    python -m alphacut_dev.local              # PORT (3000), ALPHACUT_API_KEY
"""
