"""Lambda for the state machine's ChargeTask and ReleaseCredits steps. ChargeTask: a task that
reached "done" is charged to the API key that made it, once (a retried step finds the marker and
charges nothing), with the credits it reserved at submission where the key is credit-based; a
result with no subject found is delivered and not charged, as on every route (its credits come
back). ReleaseCredits (``settle: release``): a task that failed gets its reserved credits back."""

from alphacut.aws.task_table import TaskTable, is_billable
from alphacut.aws.usage import UsageMeter, task_hold
from alphacut.options import CutoutOptions
from alphacut.pricing import credits
from alphacut.settings import ServiceSettings
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger()
metrics = Metrics()
settings = ServiceSettings.from_env()
tasks = TaskTable.from_settings(settings)
meter = UsageMeter.from_settings(settings)


@metrics.log_metrics
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
    hold = meter.credits.hold(record.owner, task_hold(record.task_id))
    charged = meter.settle_task(record.owner, record.task_id, is_billable(record), price)
    if charged and hold is not None:
        metrics.add_metric(name="CreditsCharged", unit=MetricUnit.Count, value=credits(hold.amount))
    logger.info("task charge", extra={"task_id": record.task_id, "owner": record.owner, "charged": charged})
    return {"charged": charged}
