"""The local stack's account and region: every ARN it makes names these (moto's default account).

Usage::

    from alphacut_dev.local.account import ACCOUNT, REGION

    arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:queue"
"""

REGION = "us-east-1"
ACCOUNT = "123456789012"
