"""Lambda that ends stranded tasks: messages from the task dead-letter queue (never started),
and Step Functions executions that FAILED, TIMED_OUT or were ABORTED without ending their task
(an EventBridge rule). A delivered task whose execution ended before its charge is charged here,
once; one whose charge failed for good is counted as unbilled."""

from alphacut.aws.tasks.finalize import TaskFinalizer
from alphacut.settings import ServiceSettings
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger()
metrics = Metrics()
finalizer = TaskFinalizer.from_settings(ServiceSettings.from_env())


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event, context):
    if "Records" in event:  # the dead-letter queue's event source mapping
        outcomes = [finalizer.dead_letter(record) for record in event["Records"]]
    else:  # the EventBridge rule on execution status
        outcomes = [finalizer.execution_ended(event.get("detail") or {})]
    metrics.add_metric(name="TasksEndedByFinalizer", unit=MetricUnit.Count, value=outcomes.count("ended"))
    metrics.add_metric(name="UnbilledTasks", unit=MetricUnit.Count, value=outcomes.count("unbilled"))
    metrics.add_metric(name="TasksChargedByFinalizer", unit=MetricUnit.Count, value=outcomes.count("charged"))
    return {"outcomes": outcomes}
