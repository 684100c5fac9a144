"""Lambda on the low-balance queue: one message per crossing of a key's threshold; the store is told
(signed webhook, email) and, with automatic top-up on, its pack bought once (alphacut.billing.low_balance).
Partial batch failures go back to the queue; the purchase's idempotency key makes a retry buy nothing more.
The queue's last delivery of a crossing (LAST_RECEIVE) tells the store of a top-up Stripe never answered."""

import time

from alphacut.aws.billing.low_balance_queue import LowBalance
from alphacut.billing.low_balance import LAST_RECEIVE, metrics
from alphacut.billing.service import low_balance_notices
from alphacut.deadlines import ANSWER_MARGIN_SECONDS, deadline
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

logger = Logger()
processor = BatchProcessor(event_type=EventType.SQS)
notices = low_balance_notices()


def tell(record) -> None:
    receives = int(record.attributes.approximate_receive_count or 1)
    sent = notices.handle(LowBalance.from_json(record.body), last_try=receives >= LAST_RECEIVE)
    logger.info("low balance told", extra={"notice": sent})


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics  # NoticeMailFailed (its alarm)
def handler(event, context):
    # every Stripe call inside the function's own time: one that could outlive it is not started,
    # and its message comes back later (alphacut.billing.stripe_account)
    with deadline(time.time() + context.get_remaining_time_in_millis() / 1000 - ANSWER_MARGIN_SECONDS):
        return process_partial_response(
            event=event, record_handler=tell, processor=processor, context=context
        )
