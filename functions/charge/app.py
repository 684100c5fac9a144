"""Lambda for the state machine's ChargeTask and ReleaseCredits steps. ChargeTask: a task that
reached "done" is charged to the API key that made it, once (a retried step finds the marker and
charges nothing), with the credits it reserved at submission where the key is credit-based; a
result with no subject found is delivered and not charged, as on every route (its credits come
back). ReleaseCredits (``settle: release``): a task that failed gets its reserved credits back."""

from alphacut.aws.task_table import TaskTable, is_billable
from alphacut.aws.usage import UsageMeter
from alphacut.options import CutoutOptions
from alphacut.settings import ServiceSettings
from aws_lambda_powertools import Logger

logger = Logger()
settings = ServiceSettings.from_env()
tasks = TaskTable.from_settings(settings)
meter = UsageMeter.from_settings(settings)


@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    record = tasks.get(event["task_id"])
    if meter is None:
        return {"charged": False}
    if event.get("settle") == "release":
        released = meter.release_task(record.owner, record.task_id)
        logger.info("task credits released", extra={"task_id": record.task_id, "released": released})
        return {"released": released}
    price = settings.credit_prices.for_options(CutoutOptions.from_mapping(record.options))
    charged = meter.settle_task(record.owner, record.task_id, is_billable(record), price)
    logger.info("task charge", extra={"task_id": record.task_id, "owner": record.owner, "charged": charged})
    return {"charged": charged}
