"""Lambda for the state machine's Segment step (the CPU path: the pipeline here) and Compose step
(the GPU path: the matte the endpoint stored): the cutout composed and stored while the task is
still in progress. Errors propagate: their class names are the state machine's error names."""

from alphacut.aws.segment_step import run_segment_step
from alphacut.aws.task_table import TaskTable
from alphacut.pipeline import Pipeline
from alphacut.settings import ServiceSettings
from aws_lambda_powertools import Logger

logger = Logger()
pipeline = Pipeline.from_settings()
settings = ServiceSettings.from_env()
tasks = TaskTable.from_settings(settings)


@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    seconds = context.get_remaining_time_in_millis() / 1000  # one deadline for URLs and storing
    result = run_segment_step(event, pipeline, tasks=tasks, settings=settings, seconds=seconds)
    logger.info("segmented", extra={"task_id": event.get("task_id"), "timings_ms": result["timings_ms"]})
    return result
