"""Lambda on the task queue: each message starts the task's state machine execution (named
after the task id, so a duplicated message cannot process a task twice) on the GPU or the CPU
path, and returns. S3 upload notifications (incoming/) become tasks first. Partial batch
failures go back to the queue."""

from alphacut.aws.tasks.dispatch import Dispatcher
from alphacut.settings import ServiceSettings
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)
dispatcher = Dispatcher.from_settings(ServiceSettings.from_env())


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    answer = process_partial_response(
        event=event, record_handler=dispatcher.handle_record, processor=processor, context=context
    )
    capacity = dispatcher.paths.capacity
    if capacity is not None:  # the GPU endpoint's instances as this batch saw them (the dashboard)
        metrics.add_metric(name="EndpointInstances", unit=MetricUnit.Count, value=capacity.instances())
    return answer
