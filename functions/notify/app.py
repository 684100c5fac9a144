"""Lambda for the state machine's Notify steps: POST the final task to its callback_url, signed
with the stack's callback secret, its result links the API's own signed links (same address rules
as image_url: no private, loopback or link-local targets). A failure a retry may mend raises
CallbackFailed, which the step retries with backoff."""

from alphacut.api.process import SETTINGS, link_signer
from alphacut.aws.secrets import secret_bytes
from alphacut.aws.task_service import TaskService
from aws_lambda_powertools import Logger

logger = Logger()
service = TaskService.from_settings(SETTINGS)
secret = secret_bytes(SETTINGS.require("callback_secret_arn"))


@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    status = service.notify(
        event["task_id"], event["callback_url"], link_signer(), SETTINGS.url_allowed_hosts, secret
    )
    logger.info("callback", extra={"task_id": event["task_id"], "status": status})
    return {"status": status}
