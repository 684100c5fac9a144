"""Credit-based keys on every route: the call is reserved before the model runs and settled by
the metering middleware once the answer is known.

The metering middleware (``alphacut.api.metering``, outermost) opens a ``CreditGate`` for a key
on a credit-based plan. Every route's model work goes through ``PaidPipeline``
(``alphacut.api.paid_pipeline``: ``services.pipeline()`` and the vendors' ``pipeline_with`` make
one), whose ``run`` / ``cut_out_garments`` first reserve the price of what was asked
(``alphacut.pricing``): a balance that does not cover it is a 402 ``insufficient_credits``
before any model work. A task reserves at submission, under its own hold
(``CreditGate.reserve_task``, which ``TaskService.submit`` calls), which its charge or its end
settles (``alphacut.aws.ledger.usage``, ``alphacut.aws.tasks.finalize``). Where no gate is open (a
key with neither credits nor a quota, the CLI, the workers) nothing is reserved. A key on a quota
plan gets a ``QuotaGate`` instead: the same calls take one of the day's slots.

Usage::

    with open_gate(CreditGate(meter.credits, key_id, request_id, route, settings)) as gate:
        response = next_middleware(app)           # PaidPipeline.run reserved gate.amount
    gate.release() if not delivered else meter.count(MeteredCall(..., credits=gate.amount, hold=gate.hold))
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from alphacut.aws.ledger.key_spend import SPENT, SPENT_DAY
from alphacut.aws.ledger.limits import SLOT_DAY, SLOT_HOLDER, KeyLimits, utc_day
from alphacut.errors import InsufficientCredits, KeyBudgetSpent
from alphacut.pricing import credits

if TYPE_CHECKING:
    from alphacut.aws.ledger.credits import CreditLedger, Standing
    from alphacut.aws.ledger.key_spend import KeySpend
    from alphacut.options import CutoutOptions
    from alphacut.settings import ServiceSettings

# A task's hold lives as long as a task may: its wait in the task queue (retention 6 h) and its
# execution (the state machine's TimeoutSeconds, 24000 s), and an hour for the finalizer after
_TASK_QUEUE_RETENTION = 21600
_EXECUTION_TIMEOUT = 24000
TASK_HOLD_SECONDS = _TASK_QUEUE_RETENTION + _EXECUTION_TIMEOUT + 3600

_current: ContextVar[CreditGate | QuotaGate | None] = ContextVar("credit_gate", default=None)
logger = Logger(child=True)


@dataclass
class CreditGate:
    """One call of a credit-based key: what it reserved (``amount`` millicredits under ``hold``)."""

    ledger: CreditLedger
    key_id: str  # the account whose balance pays
    call_id: str
    route: str
    settings: ServiceSettings
    spending: KeySpending | None = None  # the calling key's own count and daily limit
    amount: int = 0
    hold: str = ""
    task_amount: int = 0  # what a task submitted in this call reserved (its charge settles it)
    left: int | None = None  # the balance its reservation left (the answer's ``remain``: no read)
    model_ran: bool = False  # the call's model ran to a result (whether or not it was delivered)
    standing: Standing | None = None  # the balance and its threshold, as the pre-check read them
    _finishing: _Finishing | None = None  # the reservation's last writes, running beside the model
    _finished: bool = False  # those writes are known done

    def refuse_if_broke(self) -> None:
        """``InsufficientCredits`` when the balance is below the cheapest price of anything: asked
        before the request's body is read or any of its URLs fetched (a key at 0 gets no work done,
        not even a download). One item read; the reservation stays the rule for the exact price."""
        cheapest = self.settings.credit_prices.cheapest
        if cheapest <= 0:
            return
        self.standing = self.ledger.standing(self.key_id)
        balance = self.standing.balance if self.standing is not None else 0
        if balance < cheapest:
            raise InsufficientCredits(
                f"this key's balance is {credits(balance)} credits and the cheapest call costs "
                f"{credits(cheapest)}: top it up",
                field="credits",
                limit=credits(cheapest),
            )

    def crossing(self, balance: int | None) -> int | None:
        """The number of the low-balance crossing this call made, to the one call that claims it
        (None: none, or another call claimed it): a threshold the pre-check saw armed, and a balance
        now below it."""
        if self.standing is None or not self.standing.crossed_by(balance):
            return None
        return self.ledger.claim_low_balance(self.key_id)

    def reserve_call(self, options: CutoutOptions, costume: bool = False) -> None:
        """Reserve the call's price once (a route that runs the model twice pays once): the debit
        before the model runs (a 402 costs no model work), the reservation's last writes beside it
        (a thread, joined by ``finished`` before the call is settled)."""
        if self.hold:
            return
        amount = self.settings.credit_prices.for_options(options, costume)
        if amount:
            with self._spent(amount):
                self.left, finish = self.ledger.start_reservation(
                    self.key_id, self.call_id, amount, self.settings.credit_hold_seconds, self.route
                )
            self.hold, self.amount = self.call_id, amount
            if finish is not None:  # None: reserved already by a twin, whose entry is not ours to know
                self._finishing = _Finishing(finish)

    def finished(self) -> bool:
        """Wait for the reservation's last writes; ones that failed are tried once more here (they
        are safe to repeat), and if they fail again the sweep finishes them. Whether they are known
        done (then settling may give the hold its TTL at once)."""
        finishing, self._finishing = self._finishing, None
        if finishing is None:
            return self._finished
        if finishing.join():
            self._finished = True
            return True
        try:
            finishing.finish()
        except Exception:  # noqa: BLE001 - the sweep finishes it; settling goes on
            logger.warning("reservation left for the sweep to finish", extra={"hold": self.hold})
            return False
        self._finished = True
        return True

    def reserve_task(self, task_id: str, options: CutoutOptions) -> None:
        """A task reserves its price at submission, under the task's own hold
        (``alphacut.aws.ledger.usage.task_hold``) that its charge commits or its end releases."""
        from alphacut.aws.ledger.usage import task_hold

        amount = self.settings.credit_prices.for_options(options)
        if amount:
            with self._spent(amount, task=True):
                self.ledger.reserve(self.key_id, task_hold(task_id), amount, TASK_HOLD_SECONDS, self.route)
            self.task_amount = amount

    @contextmanager
    def _spent(self, amount: int, task: bool = False) -> Iterator[None]:
        """The key's own spending counted (within its daily limit: ``KeyBudgetSpent``) before the
        account's balance is debited, and given back if the debit is refused."""
        if self.spending is None:
            yield
            return
        day = self.spending.spend_now(amount)
        try:
            yield
        except BaseException:
            self.spending.give_back(day, amount)
            raise
        if task:
            self.spending.task_day = day
        else:
            self.spending.call_day = day

    def task_spending(self) -> dict[str, Any]:
        """What the task submitted in this call counted on the key's own spending (its day and
        millicredits), for the task's record: a task that ends undelivered gives it back."""
        if self.spending is None or not self.spending.task_day or not self.task_amount:
            return {}
        return {SPENT_DAY: self.spending.task_day, SPENT: self.task_amount}

    def release_task(self, task_id: str) -> None:
        """A task whose submission failed (never queued): its reservation comes back."""
        from alphacut.aws.ledger.usage import task_hold

        if self.task_amount:
            self.ledger.release(self.key_id, task_hold(task_id), self.task_amount)
            if self.spending is not None and self.spending.task_day:
                self.spending.give_back(self.spending.task_day, self.task_amount)
                self.spending.task_day = ""
            self.task_amount = 0

    def release(self) -> bool:
        """The call delivered nothing billable: its reservation comes back."""
        entry_gone = self.finished()
        released = bool(self.hold) and self.ledger.release(self.key_id, self.hold, self.amount, entry_gone)
        if self.spending is not None and self.spending.call_day and self.amount:
            self.spending.give_back(self.spending.call_day, self.amount)
            self.spending.call_day = ""
            if self.spending.spent is not None:
                self.spending.spent -= self.amount
        self.hold, self.amount, self.left = "", 0, None
        return released


@dataclass
class KeySpending:
    """The calling key's side of a credit call: what it spent today, within its own daily limit
    (``alphacut.aws.ledger.key_spend``), while the account's balance pays."""

    spend: KeySpend
    key_id: str
    daily_limit: int | None
    call_day: str = ""  # the day this call's price was counted on ("": none)
    task_day: str = ""
    spent: int | None = None  # the key's spending today with this call's (None: not known)

    def spend_now(self, amount: int) -> str:
        try:
            day, self.spent = self.spend.spend(self.key_id, amount, self.daily_limit)
        except KeyBudgetSpent:
            self.spent = self.daily_limit  # the refusal's RateLimit says none is left
            raise
        return day

    def give_back(self, day: str, amount: int) -> None:
        self.spend.give_back(self.key_id, day, amount)


@dataclass
class QuotaGate:
    """One call of a key on a quota plan: a slot of the day taken before the model runs (at most
    ``quota`` are, whatever arrives at once: ``alphacut.aws.ledger.limits``), kept when a result is
    delivered and given back when not. Opened where a ``CreditGate`` would be, with its surface."""

    limits: KeyLimits
    key_id: str
    quota: int
    amount: int = 0  # credits: none
    hold: str = ""
    task_amount: int = 0
    left: int | None = None  # slots left after this call's (the answer's ``remain``: no read)
    model_ran: bool = False
    _day: str = ""  # the day of this call's slot ("" : none taken)
    _task_day: str = ""

    @property
    def day(self) -> str:
        """The UTC day of this call's slot ("" : none taken): the day its result counts on."""
        return self._day

    def reserve_call(self, options: CutoutOptions, costume: bool = False) -> None:
        if not self._day:
            now = self.limits.clock()  # read once: the slot's day and the day given back are one
            self.left = self.limits.take_slot(self.key_id, self.quota, at=now)
            self._day = utc_day(now)

    def reserve_task(self, task_id: str, options: CutoutOptions) -> None:
        """A task takes its slot at submission (kept: an asynchronous task's result is its own)."""
        now = self.limits.clock()
        self.left = self.limits.take_slot(self.key_id, self.quota, at=now)
        self._task_day = utc_day(now)

    def task_spending(self) -> dict[str, Any]:
        """The slot the task took (its holder and day): given back once if it delivers nothing."""
        return {SLOT_HOLDER: self.key_id, SLOT_DAY: self._task_day} if self._task_day else {}

    def release_task(self, task_id: str) -> None:
        """A task never queued: its slot back, once (the task's own ending, should its record have
        been written, finds the marker and gives nothing more)."""
        if self._task_day:
            self.limits.give_back_task_slot(self.key_id, self._task_day, task_id)
            self._task_day = ""

    def finished(self) -> bool:
        return True

    def release(self) -> bool:
        """Nothing was delivered: the slot comes back."""
        day, self._day, self.left = self._day, "", None
        if day:
            self.limits.give_back_slot(self.key_id, day)
        return bool(day)


class _Finishing:
    """A reservation's last writes on a thread of their own (boto3's clients are thread-safe; the
    call joins it before it answers, so Lambda never freezes it half-way)."""

    def __init__(self, finish: Callable[[], None]):
        self.finish = finish
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self._run, name="reservation", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.finish()
        except Exception as error:  # noqa: BLE001 - reported by join, tried again there
            self.error = error

    def join(self) -> bool:
        """Wait; whether it went through."""
        self.thread.join()
        return self.error is None


@contextmanager
def open_gate(gate: CreditGate | QuotaGate) -> Iterator[CreditGate | QuotaGate]:
    token = _current.set(gate)
    try:
        yield gate
    finally:
        _current.reset(token)


def current_gate() -> CreditGate | QuotaGate | None:
    """The open gate of this call (None: a key with neither credits nor a quota, or outside a call)."""
    return _current.get()
