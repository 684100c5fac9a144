"""Lambda on a schedule (every minute): releases expired credit holds, finishes reservations a
killed call left between their writes, and syncs each key's plan item with the usage plans
(alphacut.aws.ledger.schedule), so that no call reads history or spends API Gateway's management API."""

from alphacut.aws.ledger.schedule import Sweep
from alphacut.settings import ServiceSettings
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger()
metrics = Metrics()
sweep = Sweep.from_settings(ServiceSettings.from_env())


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    outcome = sweep.run()
    metrics.add_metric(name="ExpiredHoldsReleased", unit=MetricUnit.Count, value=outcome["released"])
    metrics.add_metric(name="ReservationsFinished", unit=MetricUnit.Count, value=outcome["finished"])
    metrics.add_metric(name="SweepErrors", unit=MetricUnit.Count, value=outcome["errors"])  # alarmed
    metrics.add_metric(name="OldestDueSeconds", unit=MetricUnit.Seconds, value=outcome["oldest_due_seconds"])
    logger.info("swept", extra=outcome)
    return outcome
