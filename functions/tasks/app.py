"""Lambda for POST /v1/tasks and GET /v1/tasks/{task_id}: no model, only S3, DynamoDB and SQS."""

from alphacut.api.app import make_handler

handler = make_handler()
