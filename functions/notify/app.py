"""Lambda on the callback queue (``alphacut.aws.callbacks.queue``): POSTs each final task to its
callback_url, signed with its key's callback secrets (``alphacut.aws.callbacks.secrets``), its result links
the API's own signed links (same address rules as image_url: no private, loopback or link-local
targets, ports 80 and 443). A failure a retry
may mend comes back later from the queue, with backoff; nothing else invokes this function."""

from alphacut.api.services import SETTINGS, link_signer
from alphacut.aws import clients
from alphacut.aws.callbacks.queue import CallbackDelivery
from alphacut.aws.callbacks.secrets import CallbackSecrets
from alphacut.aws.tasks.service import TaskService
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

logger = Logger()
service = TaskService.from_settings(SETTINGS)
secrets = CallbackSecrets.from_settings(SETTINGS)
processor = BatchProcessor(event_type=EventType.SQS)
delivery = CallbackDelivery(
    lambda task_id, url: service.notify(
        task_id,
        url,
        link_signer(),
        SETTINGS.url_allowed_hosts,
        secrets.signing,
    ),
    clients.client("sqs"),
    SETTINGS.require("callback_queue_url"),
    service.callback_done,
)


@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    return process_partial_response(
        event=event, record_handler=delivery.handle, processor=processor, context=context
    )
