"""Lambda for the state machine's last step, Finish or FailTask (alphacut.aws.tasks.end): a task
done is marked, charged once (with the credits it reserved at submission where the key is
credit-based; an empty result is delivered and not charged, as on every route) and its callback
queued; a task failed is marked in the state its error names, its reserved credits given back and
its callback queued."""

from alphacut.aws.ledger.usage import task_hold
from alphacut.aws.tasks.end import TaskEnds
from alphacut.pricing import credits
from alphacut.settings import ServiceSettings
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger()
metrics = Metrics()
ends = TaskEnds.from_settings(ServiceSettings.from_env())


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    task_id = event["task_id"]
    if event.get("step") == "fail":
        outcome = ends.fail(event)
        logger.info("task failed", extra={"task_id": task_id, "outcome": outcome})
        return {"outcome": outcome}
    record = ends.table.get(task_id)
    hold = ends.meter.credits.hold(record.owner, task_hold(task_id)) if ends.meter else None
    outcome = ends.finish(event)
    # the hold open before this step is what it charged, unless the result is empty (given back)
    billable = (event.get("result") or {}).get("found") is not False
    if outcome == "done" and hold is not None and billable:
        metrics.add_metric(name="CreditsCharged", unit=MetricUnit.Count, value=credits(hold.amount))
    logger.info("task finished", extra={"task_id": task_id, "owner": record.owner, "outcome": outcome})
    return {"outcome": outcome}
