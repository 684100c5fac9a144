"""Lambda for the state machine's Segment step (the CPU path: the pipeline here, fed by the Segment
queue: ``alphacut.aws.tasks.segment_queue``) and Compose step (the GPU path: the matte the endpoint
stored, invoked by the state machine): the cutout composed and stored while the task is still in
progress. Errors end the step under their class names, the state machine's error names."""

import json

from alphacut.aws import clients
from alphacut.aws.tasks.segment_queue import SegmentQueueWorker
from alphacut.aws.tasks.segment_step import run_segment_step
from alphacut.aws.tasks.table import TaskTable
from alphacut.pipeline import Pipeline
from alphacut.settings import ServiceSettings
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

logger = Logger()
pipeline = Pipeline.from_settings()
settings = ServiceSettings.from_env()
tasks = TaskTable.from_settings(settings)
processor = BatchProcessor(event_type=EventType.SQS)


def segment(task, context):
    seconds = context.get_remaining_time_in_millis() / 1000  # one deadline for URLs and storing
    result = run_segment_step(task, pipeline, tasks=tasks, settings=settings, seconds=seconds)
    logger.info("segmented", extra={"task_id": task.get("task_id"), "timings_ms": result["timings_ms"]})
    return result


@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    if "Records" not in event:  # the Compose step, invoked by the state machine
        return segment(event, context)
    worker = SegmentQueueWorker(clients.client("stepfunctions"))

    def run_step(record):
        worker.handle(json.loads(record.body), lambda task: segment(task, context))

    return process_partial_response(
        event=event,
        record_handler=run_step,
        processor=processor,
        context=context,
    )
