"""Lambda on the endpoint's notification queue (its success and error SNS topics, raw delivery):
each notification ends the waiting Submit step of its task with the matte's location or the
error. Partial batch failures go back to the queue."""

import json

from alphacut.aws.tasks.async_inference import InferenceNotifications
from alphacut.aws.tasks.table import TaskTable
from alphacut.settings import ServiceSettings
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

logger = Logger()
processor = BatchProcessor(event_type=EventType.SQS)
notifications = InferenceNotifications(TaskTable.from_settings(ServiceSettings.from_env()))


@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    return process_partial_response(
        event=event,
        record_handler=lambda record: notifications.handle(json.loads(record.body)),
        processor=processor,
        context=context,
    )
