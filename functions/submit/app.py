"""Lambda for the state machine's Submit step (lambda:invoke.waitForTaskToken): the task waits with
its token and its input goes to the asynchronous GPU endpoint by S3 location. Errors propagate:
their class names are the state machine's error names."""

from alphacut.aws.tasks.async_inference import AsyncEndpoint
from alphacut.settings import ServiceSettings
from aws_lambda_powertools import Logger

logger = Logger()
endpoint = AsyncEndpoint.from_settings(ServiceSettings.from_env())


@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    sent = endpoint.submit(event)
    logger.info("sent to the endpoint", extra={"task_id": event["task"]["task_id"], **sent})
    return sent
