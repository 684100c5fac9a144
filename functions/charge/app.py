"""Lambda for the state machine's ChargeTask step: a task that reached "done" is charged to the
API key that made it, once (a retried step finds the marker and charges nothing); a result with
no subject found is delivered and not charged, as on every route."""

from alphacut.aws.task_table import TaskTable, is_billable
from alphacut.aws.usage import UsageMeter
from alphacut.settings import ServiceSettings
from aws_lambda_powertools import Logger

logger = Logger()
settings = ServiceSettings.from_env()
tasks = TaskTable.from_settings(settings)
meter = UsageMeter.from_settings(settings)


@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    record = tasks.get(event["task_id"])
    billable = meter is not None and is_billable(record)  # an empty picture is never charged
    charged = meter.charge_task(record.owner, record.task_id) if billable else False
    logger.info("task charge", extra={"task_id": record.task_id, "owner": record.owner, "charged": charged})
    return {"charged": charged}
