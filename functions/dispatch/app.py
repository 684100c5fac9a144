"""Lambda on the task queue: each message starts the task's state machine execution (named
after the task id, so a duplicated message cannot process a task twice). S3 upload
notifications (incoming/) become tasks first. Partial batch failures go back to the queue."""

from alphacut.aws.dispatch import Dispatcher
from alphacut.settings import ServiceSettings
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

logger = Logger()
processor = BatchProcessor(event_type=EventType.SQS)
dispatcher = Dispatcher.from_settings(ServiceSettings.from_env())


@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    response = process_partial_response(
        event=event, record_handler=dispatcher.handle_record, processor=processor, context=context
    )
    dispatcher.wait_for_started(lambda: context.get_remaining_time_in_millis() / 1000)
    return response
