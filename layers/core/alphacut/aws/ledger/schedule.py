"""The scheduled sweep (every minute, off every call's path): the credit ledger's due work
(expired holds released, reservations a killed call left between their writes finished,
``alphacut.aws.ledger.credits``) and the plan catalogue brought in line with the stack's usage plans
(``alphacut.aws.ledger.plans``). Each part is safe to run twice at once: two overlapping runs (a slow
minute) do the same work once.

Usage::

    sweep = Sweep.from_settings(ServiceSettings.from_env())
    sweep.run()   # {"released": 2, "finished": 0, "balances": 1, "errors": 0, "oldest_due_seconds": 12,
                  #  "plans_changed": 0}
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from alphacut.aws.clients import client
from alphacut.aws.ledger.credits import CreditLedger
from alphacut.aws.ledger.plans import PlanCatalogue, sync_plans
from alphacut.settings import ServiceSettings

logger = Logger(child=True)


@dataclass
class Sweep:
    ledger: CreditLedger
    catalogue: PlanCatalogue
    stack: str

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> Sweep:
        table = settings.require("usage_table")
        return cls(CreditLedger(table), PlanCatalogue(table), settings.require("stack_name"))

    def run(self) -> dict[str, Any]:
        outcome: dict[str, Any] = asdict(self.ledger.sweep())
        try:
            outcome["plans_changed"] = sync_plans(client("apigateway"), self.stack, self.catalogue)
        except ClientError as error:  # throttled by another caller of the account: next minute
            logger.warning("plans not synced this run", extra={"error": str(error)})
            outcome["plans_changed"] = None
        return outcome
