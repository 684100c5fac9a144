"""Lambda for the state machine's Segment step: the matte from SageMaker (or the CPU pipeline),
the cutout composed and stored while the task is still in progress. Errors propagate: their
class names are the state machine's error names."""

from alphacut.aws.segment_step import matting_from_settings, run_segment_step
from alphacut.aws.task_table import TaskTable
from alphacut.pipeline import Pipeline
from alphacut.settings import ServiceSettings
from aws_lambda_powertools import Logger

logger = Logger()
pipeline = Pipeline.from_settings()
settings = ServiceSettings.from_env()
matting = matting_from_settings(settings)
tasks = TaskTable.from_settings(settings)


@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    seconds = context.get_remaining_time_in_millis() / 1000  # one deadline for URLs and the model
    result = run_segment_step(event, pipeline, matting, tasks=tasks, settings=settings, seconds=seconds)
    logger.info("segmented", extra={"task_id": event.get("task_id"), "timings_ms": result["timings_ms"]})
    return result
