"""Lambda on the metering queue: calls whose count could not be written when they were answered
(a DynamoDB fault) are counted here, each once (its marker refuses a second application).
Partial batch failures go back to the queue; after its receives, to a dead-letter queue with an alarm."""

from alphacut.aws.ledger.usage import MeteredCall, UsageMeter
from alphacut.settings import ServiceSettings
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

logger = Logger()
metrics = Metrics()  # UnbilledCalls, where a deferred call's balance could not pay it
processor = BatchProcessor(event_type=EventType.SQS)
meter = UsageMeter.from_settings(ServiceSettings.from_env())


def count(record) -> None:
    call = MeteredCall.from_json(record.body)
    applied = meter.record(call)
    logger.info("deferred call counted", extra={"call_id": call.call_id, "applied": applied})


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    return process_partial_response(event=event, record_handler=count, processor=processor, context=context)
