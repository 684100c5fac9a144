"""One run of the money protocol: the ledger's real code (``alphacut.aws.ledger.credits``,
``alphacut.aws.ledger.usage``, ``alphacut.api.credits``, ``alphacut.api.metering.settle_call``) as actors,
each a greenlet that stops at every DynamoDB or queue call, against the model in
``alphacut_dev.moneysim.dynamodb``. At each stop the run takes one choice from ``options()``: run
an actor's call as DynamoDB would, or with a fault (landed then retried, landed then erred,
refused, a transaction conflict), or kill the actor there; start another sweep; let the metering
queue's consumer take a message; move the clock to the next moment something falls due (actors
past their Lambda timeout are stopped then); let TTL delete an expired item; let the index
catch up one item. After every step the invariants (``alphacut_dev.moneysim.invariants``) are
checked; ``finish`` runs everything due with no more faults and checks them at rest.

Choices are indices into ``options()``, so a list of them replays a run exactly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from types import SimpleNamespace
from typing import Any

import greenlet

from alphacut_dev.moneysim import invariants
from alphacut_dev.moneysim.dynamodb import (
    CONFLICT,
    KILLED,
    LANDED_ERRED,
    LANDED_RETRIED,
    NORMAL,
    REFUSED,
    Killed,
    ModelDynamoDB,
    ModelSQS,
    ModelTable,
)

KEY = "store"  # the account: its balance
SPENDER = "plugin"  # the account's key the calls come from, where a scope gives it a daily limit
ROUTE = "/v1/cutout"
START = 1_800_000_000  # the clock at the start of a run (seconds): 08:00 UTC
DAY = 86400
BEFORE_MIDNIGHT = START - START % DAY + DAY - 10  # ten seconds before 00:00 UTC
# a run within this of 00:00 UTC may move its clock to midnight itself (a day boundary crossed)
MIDNIGHT_NEAR = 3600
SWEEP_SHARDS = 2
METERING_RETENTION = 4 * 86400  # the metering queue keeps a message 4 days (SQS's default)
EXECUTION_TIMEOUT = 24000  # a task's state machine (and so the retries of its end step) ends by then
TIMEOUTS = {
    "call": 29,
    "task": 28,
    "sweep": 50,
    "consumer": 30,
    "topup": 29,
    "webhook": 29,
    "claim": 29,
    "notice": 60,
}
STRIPE_KEEPS_KEYS = 86400  # Stripe keeps an idempotency key at least a day: the fake, exactly that
PAYMENT = "pi_sim"  # the one payment a scope's Stripe events are about
STRANGER = "pi_elsewhere"  # a PaymentIntent this service never made (``stranger`` events)
PAYMENT_CREDITS, PAYMENT_AMOUNT = 4, 80  # 4 credits for 80 cents
FAULTS_SINGLE = (LANDED_RETRIED, LANDED_ERRED, REFUSED)
FAULTS_TRANSACTION = (LANDED_ERRED, REFUSED, CONFLICT)


@dataclass(frozen=True)
class Scope:
    """What one exploration covers: the actors and how many of each choice a run may take."""

    name: str
    calls: tuple[bool, ...] = ()  # one call each: delivers (True) or fails (False)
    tasks: tuple[bool, ...] = ()  # one task each: done with a result (True) or failed (False)
    top_ups: tuple[str, ...] = ()  # top-ups made while the calls run, by reference ("" = none given)
    # Stripe's events about one card payment, each delivered by its own webhook function, in any
    # order: succeeded, failed, refunded:<amount refunded so far>, dispute:<amount>, won, lost
    events: tuple[str, ...] = ()
    crossings: int = 0  # calls that took the balance below an armed threshold, each claiming it
    # the calls' key is one of the account's with its own daily limit of credits (None: no limit;
    # alphacut.aws.ledger.key_spend): whatever runs at once, its delivered calls never cost more
    key_limit: int | None = None
    funds: int = 3000  # the balance before anything runs (a top-up)
    price: int = 1000
    sweeps: int = 2
    kills: int = 1
    faults: int = 1
    clock_moves: int = 2
    ttl: int = 1
    lag: bool = False  # the index lags (then catching up is a choice)
    consumers: int = 1
    task_retries: int = 1  # a task's end step run once more (Step Functions retries it)
    # switches away from a function that could go on (CHESS's preemption bound: runs with more
    # are not explored; the scheduler's own moves and a function's end are no preemption)
    preemptions: int = 2
    start: int = START  # the clock at the start (``BEFORE_MIDNIGHT``: runs cross 00:00 UTC)
    # the calls come through the metering's ``gate_for`` as the account's key ``SPENDER``, a key
    # that once had a balance of its own (``funds``), which nothing may move any more
    account_keys: bool = False
    # the automatic top-up end to end: each won claim's message handled by the real low-balance
    # handler (``alphacut.billing.low_balance``) against a fake Stripe that makes one PaymentIntent
    # per idempotency key (forgotten after a day) and delivers ``auto_events`` about each; a
    # message may be delivered again (``redeliveries``), the clock may pass 23 h after a crossing
    auto_top_up: bool = False
    auto_cap: int = 1  # the store's automatic top-ups a month
    auto_events: tuple[str, ...] = ("succeeded",)  # as ``events``; an amount of "all": the whole
    redeliveries: int = 0
    unreached: int = 1  # the claim whose queue is not reached (it gives its crossing back; -1: none)

    def smaller(self, **changes: Any) -> Scope:
        return replace(self, **changes)


@dataclass
class Actor:
    name: str
    kind: str
    body: Callable[[], Any]
    deadline: int
    state: str = "new"  # waiting (at a call), done, killed, failed
    pending: tuple[str, bool, bool] | None = None
    touches: frozenset[tuple[str, str]] | None = None  # the items its pending call reads or writes
    history: str = ""
    nonces: int = 0
    faulted: bool = False  # one of its calls was answered with a fault (landed then erred, ...)
    # one of its calls raised to the code (landed-retried is the SDK's own retry, never seen: a call
    # that met only those must come out exact)
    erred: bool = False
    green: Any = None
    outcome: Any = None


@dataclass
class Budgets:
    sweeps: int
    kills: int
    faults: int
    clock_moves: int
    ttl: int
    consumers: int
    task_retries: int
    preemptions: int
    redeliveries: int = 0


@dataclass
class Run:
    """What a run did, for a report: its choices, a readable trace and the violation if any."""

    choices: list[int] = field(default_factory=list)
    widths: list[int] = field(default_factory=list)
    trace: list[str] = field(default_factory=list)
    violation: str = ""


class World:
    def __init__(self, scope: Scope, planted: frozenset[str] = frozenset()):
        self.scope, self.planted = scope, planted
        self.table = ModelTable()
        self.now = scope.start
        self.table.now = scope.start
        # what each actor's writes moved the key's spending by, per UTC day (the world's own record)
        self.spend_moves: dict[tuple[str, str], int] = {}
        self.actors: list[Actor] = []
        self.budgets = Budgets(
            scope.sweeps,
            scope.kills,
            scope.faults,
            scope.clock_moves,
            scope.ttl,
            scope.consumers,
            scope.task_retries,
            scope.preemptions,
            scope.redeliveries,
        )
        self.last = ""  # the function that took the last step
        self.spawned: dict[str, int] = {}
        self.outcomes: dict[str, invariants.Outcome] = {}
        self.metrics: dict[str, float] = {}
        self.histories: dict[str, list[str]] = {}
        self.current: Actor | None = None
        self.trace: list[str] = []
        self.table.watchers.append(self._watch)
        self.expiring = False
        self.stepped_wrong = ""  # a write that broke a step rule (hold or payment), for ``check``
        self.db = ModelDynamoDB(self.table, self._decide)
        self.db.observe = self._observe
        self.db_once = ModelDynamoDB(self.table, self._decide, retries=False)  # clients.unretried's
        self.db_once.observe = self._observe
        self.sqs = ModelSQS(self.table, self._decide)
        self.main = greenlet.getcurrent()

    # ---- the code's view: clients, clock, nonces ----------------------------------------------------
    def client(self, service: str) -> Any:
        return self.sqs if service == "sqs" else self.db

    def unretried(self, service: str) -> Any:
        return self.db_once

    def clock(self) -> float:
        if self.current is not None:
            self.current.history = _fold(self.current.history, f"t{self.now}")
        return float(self.now)

    def uuid4(self) -> Any:
        actor = self.current
        name = actor.name if actor else "setup"
        count = 0
        if actor is not None:
            actor.nonces += 1
            count = actor.nonces
        digest = hashlib.sha1(f"{name}/{count}".encode()).hexdigest()
        return SimpleNamespace(hex=digest[:32])

    def _observe(self, answer: Any) -> None:
        if self.current is not None:
            self.current.history = _fold(self.current.history, _summary(answer))

    def _decide(self, operation: str, writes: bool, transaction: bool, keys: Any) -> str:
        actor = self.current
        if actor is None:  # set-up and the drain's own steps
            return NORMAL
        if actor.state == "killed":
            raise Killed(operation)
        actor.touches = keys
        decision: str = self.main.switch(("call", operation, writes, transaction))
        return decision

    def independent(self, one: tuple[Any, ...], other: tuple[Any, ...]) -> bool:
        """Whether two steps commute (either order, the same state): steps of two functions where
        one is a kill, or both read, or they touch different items. A query reads the index, which
        any write may change; the scheduler's own moves commute with nothing."""
        spawns = ("sweep", "retry")  # a function started: nothing read or written until its first call
        if {one[0], other[0]} in ({"step", "sweep"}, {"step", "retry"}, {"sweep", "retry"}) or (
            one[0] in spawns and other[0] in spawns and one != other and one[0] != other[0]
        ):
            return True
        if one[0] != "step" or other[0] != "step" or one[1] == other[1]:
            return False
        if one[2] != NORMAL and other[2] != NORMAL:  # both spend the faults' or the kills' budget
            return False
        if KILLED in (one[2], other[2]):
            return True
        first, second = self._actor(one[1]), self._actor(other[1])
        if not first.pending[1] and not second.pending[1]:
            return True
        if first.touches is None or second.touches is None:
            return False
        return first.touches.isdisjoint(second.touches)

    def _watch(self, key: tuple[str, str], before: Any, after: Any) -> None:
        # a step's violation is kept and raised by ``check``: raised here, inside the function's own
        # call, the function would only fail with it (its code catches what a call raises)
        try:
            if key[0].startswith("hold#"):
                history = self.histories.setdefault(key[1], [])
                invariants.hold_step(history, before, after, self.expiring, key[1])
            elif key[0].startswith("billing#") and key[1].startswith("pay#"):
                invariants.payment_step(before, after, key[1][4:])
            elif key == (f"credits#{KEY}", "balance") and _armed(after) and not _armed(before):
                invariants.arming(self.current.name if self.current else "")
            elif key[0] == f"spend#{SPENDER}" and self.current is not None:
                moved = _spent(after) - _spent(before)
                if moved:
                    mark = (self.current.name, key[1])
                    self.spend_moves[mark] = self.spend_moves.get(mark, 0) + moved
        except invariants.Violation as violation:
            self.stepped_wrong = self.stepped_wrong or str(violation)

    # ---- actors ------------------------------------------------------------------------------------
    def spawn(self, kind: str, name: str, body: Callable[[], Any]) -> Actor:
        actor = Actor(name, kind, body, self.now + TIMEOUTS[kind])
        actor.green = greenlet.greenlet(self._run_body(actor), parent=self.main)
        self.actors.append(actor)
        self._resume(actor, None)
        return actor

    def _run_body(self, actor: Actor) -> Callable[[], Any]:
        def run() -> tuple[str, Any]:
            try:
                return ("done", actor.body())
            except Killed:
                return ("killed", None)
            except Exception as error:  # noqa: BLE001 - a function that raised: Lambda reports it
                return ("failed", f"{type(error).__name__}: {error}"[:200])

        return run

    def _resume(self, actor: Actor, decision: str | None) -> None:
        self.current = actor
        try:
            message = actor.green.switch(decision) if decision is not None else actor.green.switch()
        finally:
            self.current = None
        if message[0] == "call":
            actor.state, actor.pending = "waiting", message[1:]
        else:
            actor.state, actor.pending, actor.outcome = message[0], None, message[1]

    # ---- choices -----------------------------------------------------------------------------------
    def options(self) -> list[tuple[Any, ...]]:
        budgets = self.budgets
        waiting = [a for a in self.actors if a.state == "waiting"]
        current = [a for a in waiting if a.name == self.last]
        if current and not budgets.preemptions:
            waiting = current
        waiting = current + [a for a in waiting if a.name != self.last]
        found: list[tuple[Any, ...]] = [("step", a.name, NORMAL) for a in waiting]
        for actor in waiting:
            _, writes, transaction = actor.pending  # type: ignore[misc]
            if budgets.faults and writes:
                found += [
                    ("step", actor.name, f) for f in (FAULTS_TRANSACTION if transaction else FAULTS_SINGLE)
                ]
            if budgets.kills:
                found.append(("step", actor.name, KILLED))
        if budgets.sweeps:
            found.append(("sweep", self.spawned.get("sweep", 0) + 1))
        if budgets.consumers and self.table.messages:
            found.append(("consume",))
        if budgets.task_retries:
            found += [("retry", name) for name in self._retryable()]
        if budgets.redeliveries:
            found += [("redeliver", number) for number in range(len(self.notices))]
        if budgets.clock_moves:
            found += [("clock", moment) for moment in self._moments()]
        if budgets.ttl:
            found += [("ttl", key) for key in self.table.expired(self.now)]
        found += [("index", key) for key in sorted(self.table.pending)]
        return found

    def _retryable(self) -> list[str]:
        return sorted(
            o.name
            for o in self.outcomes.values()
            if o.name.startswith("job") and self.now <= getattr(o, "submitted", -1) + EXECUTION_TIMEOUT
        )

    def _moments(self) -> list[int]:
        """The next moments something falls due: an index entry, a TTL, an actor's timeout."""
        moments = set()
        for item in self.table.items.values():
            for name in ("open_due", "claimed_until", "hold_until"):
                if name in item:
                    moments.add(int(item[name]["N"]) + (1 if name == "claimed_until" else 0))
            if "expires_at" in item:
                moments.add(int(item["expires_at"]["N"]) + 1)
        moments |= {a.deadline + 1 for a in self.actors if a.state == "waiting"}
        if self.budgets.redeliveries:  # a message delivered again past 23 h, once Stripe forgot its key
            moments |= {int(n.at) + STRIPE_KEEPS_KEYS + 1 for n in self.notices}
        midnight = self.now - self.now % DAY + DAY
        if midnight - self.now <= MIDNIGHT_NEAR:  # 00:00 UTC itself: the day changes under the calls
            moments.add(midnight)
        later = sorted(m for m in moments if m > self.now)
        if self.table.messages:  # the consumer takes a message within its retention
            later = [m for m in later if m <= self.table.messages[0][0] + METERING_RETENTION]
        return later[:3]

    def take(self, option: tuple[Any, ...]) -> None:
        kind = option[0]
        self.trace.append(self._describe(option))
        if kind == "step":
            actor = self._actor(option[1])
            if self.last != actor.name and any(
                a.name == self.last and a.state == "waiting" for a in self.actors
            ):
                self.budgets.preemptions -= 1
            self.last = actor.name
            if option[2] == KILLED:
                self.budgets.kills -= 1
                actor.state = "killed"
            elif option[2] != NORMAL:
                self.budgets.faults -= 1
                actor.faulted = True
                actor.erred = actor.erred or option[2] != LANDED_RETRIED
            self._resume(actor, option[2])
        elif kind == "sweep":
            self.budgets.sweeps -= 1
            self.start_sweep()
        elif kind == "consume":
            self.budgets.consumers -= 1
            self.start_consumer()
        elif kind == "retry":
            self.budgets.task_retries -= 1
            self.start_task_end(option[1])
        elif kind == "redeliver":
            self.budgets.redeliveries -= 1
            self.start_notice(option[1])
        elif kind == "clock":
            self.budgets.clock_moves -= 1
            self.move_clock(option[1])
        elif kind == "ttl":
            self.budgets.ttl -= 1
            self.expire(option[1])
        elif kind == "index":
            self.table.propagate(option[1])

    def _describe(self, option: tuple[Any, ...]) -> str:
        if option[0] == "step":
            actor = self._actor(option[1])
            operation = actor.pending[0] if actor.pending else "?"
            return f"t+{self.now - self.scope.start}s {option[1]}: {operation} [{option[2]}]"
        return f"t+{self.now - self.scope.start}s " + " ".join(str(part) for part in option)

    def _actor(self, name: str) -> Actor:
        return next(a for a in self.actors if a.name == name)

    def move_clock(self, moment: int) -> None:
        self.now = self.table.now = moment
        for actor in self.actors:  # Lambda stops a function at its timeout
            if actor.state == "waiting" and actor.deadline < moment:
                actor.state = "killed"
                self._resume(actor, KILLED)

    def expire(self, key: tuple[str, str]) -> None:
        self.expiring = True
        try:
            self.table.expire(key)
        finally:
            self.expiring = False

    def close(self) -> None:
        """Stop what is left of the functions (a run cut short): each ends as if killed there."""
        for actor in self.actors:
            if actor.green is not None and not actor.green.dead and actor.state == "waiting":
                actor.state = "killed"
                self._resume(actor, KILLED)

    def check(self) -> None:
        if self.stepped_wrong:
            raise invariants.Violation(self.stepped_wrong)
        invariants.during(self.table.items, self.table.tombstones, KEY)
        if self.scope.key_limit is not None:
            invariants.key_spending(self.table.items, SPENDER, self.scope.key_limit, self._charged_days())
        if self.scope.account_keys:
            invariants.untouched(self.table.items, SPENDER, self.scope.funds)
        invariants.paid_for(self.table.items, KEY, self.payments_made)
        if self.scope.auto_top_up:
            invariants.auto_top_ups(self.auto_payments, self.scope.auto_cap, self.notices)
        # nothing re-arms it in a run but a claim given back untold or a payment credited for the
        # first time: one crossing told, and one more after each such payment
        credited = sum(
            1 for a in self.actors if a.kind == "webhook" and str(a.outcome).startswith("credited")
        )
        if len(self.claims) > 1 + credited:
            raise invariants.Violation(
                f"{len(self.claims)} crossings told ({self.claims}), {credited} payments credited"
            )

    def fingerprint(self) -> int:
        actors = (self.last, *((a.name, a.state, a.history, a.pending) for a in self.actors))
        outcomes = tuple(sorted((n, o.delivered) for n, o in self.outcomes.items()))
        return hash(
            (
                self.table.fingerprint(),
                self.now,
                actors,
                outcomes,
                tuple(vars(self.budgets).values()),
                tuple(sorted(self.table.paid.items())),
            )
        )

    # ---- the actors' bodies (the real code paths) -----------------------------------------------
    def start_sweep(self) -> None:
        from alphacut.aws.ledger.credits import CreditLedger

        number = self._count("sweep")
        ledger = CreditLedger("usage", clock=self.clock)
        self.spawn("sweep", f"sweep{number}", ledger.sweep)

    def start_consumer(self) -> None:
        from alphacut.aws.ledger.usage import MeteredCall, UsageMeter

        number, (_, body_text) = self._count("consumer"), self.table.messages[0]

        def consume() -> bool:
            applied = UsageMeter("usage", "queue", clock=self.clock).record(MeteredCall.from_json(body_text))
            for message in self.table.messages:  # deleted from the queue once applied
                if message[1] == body_text:
                    self.table.messages.remove(message)
                    break
            return applied

        self.spawn("consumer", f"consumer{number}", consume)

    def start_call(self, name: str, delivers: bool, later: bool = False) -> None:
        from alphacut.api.credits import CreditGate, KeySpending
        from alphacut.api.metering import CallOutcome, settle_call
        from alphacut.aws.ledger.usage import UsageMeter
        from alphacut.errors import InsufficientCredits, KeyBudgetSpent
        from alphacut.options import CutoutOptions

        outcome = self.outcomes[name] = invariants.Outcome(name, self.scope.price)

        def call() -> None:
            meter = UsageMeter("usage", "queue", clock=self.clock)
            if self.scope.account_keys:
                gate = self._gate_of_account_key(meter, name)
            else:
                gate = CreditGate(meter.credits, KEY, name, ROUTE, self.settings)
                if self.scope.key_limit is not None:
                    gate.spending = KeySpending(meter.key_spend, SPENDER, self.scope.key_limit)
            try:
                gate.reserve_call(CutoutOptions())
                billable = delivers
            except (InsufficientCredits, KeyBudgetSpent):
                billable = False  # a 402 (or the key's 429) before any model work
            settle_call(meter, gate, CallOutcome(KEY, ROUTE, name, True, billable))
            outcome.delivered = billable

        if later:  # started by a function's step: once it is over
            self.pending_spawns.append(("call", name, call))
        else:
            self.spawn("call", name, call)

    def _gate_of_account_key(self, meter: Any, name: str) -> Any:
        """The gate the metering opens for a call of the account's key ``SPENDER`` (its own daily
        limit, the account's balance): ``alphacut.api.metering.gate_for``, as the middleware calls it."""
        from alphacut.api import metering
        from alphacut.aws.keys.authorizer import Caller
        from alphacut.aws.ledger.plans import Plan

        plan = Plan("credits", "credits", None, None, credit_based=True)
        caller = Caller(SPENDER, plan=plan, account=KEY, daily_limit=self.scope.key_limit)
        return metering.gate_for(meter, caller, name, ROUTE)

    def start_task(self, name: str, done: bool) -> None:
        from alphacut.api.credits import CreditGate
        from alphacut.errors import InsufficientCredits
        from alphacut.options import CutoutOptions

        outcome = self.outcomes[name] = invariants.Outcome(name, self.scope.price)
        outcome.done = done

        def submit() -> None:
            gate = CreditGate(self._meter().credits, KEY, f"submit-{name}", "/v1/tasks", self.settings)
            try:
                gate.reserve_task(name, CutoutOptions())
            except InsufficientCredits:
                outcome.delivered = False  # a 402: no task
                return
            outcome.submitted = self.now
            self.start_task_end(name)

        self.spawn("task", name, submit)

    def start_task_end(self, name: str) -> None:
        outcome = self.outcomes[name]
        number = self._count(f"{name}-end")

        def end() -> None:
            meter = self._meter()
            if outcome.done:
                meter.settle_task(KEY, name, True, self.scope.price)
            else:
                meter.release_task(KEY, name)
            outcome.delivered = bool(outcome.done)

        # a new end step runs in its own function, after the submission's
        self.pending_spawns.append(("task", f"{name}-end{number}", end))

    def start_top_up(self, number: int, reference: str) -> None:
        def top_up() -> None:
            try:
                self._meter().credits.top_up(KEY, 500, reference=reference)
            except Exception as error:
                if "was made already" not in str(error):
                    raise

        self.spawn("topup", f"topup{number}", top_up)

    def start_webhook(
        self, number: int, event: str, payment: str = PAYMENT, amount: int = PAYMENT_AMOUNT
    ) -> None:
        """One delivery of Stripe's ``event`` about ``payment``, to the webhook's real code (one
        about a payment the fake Stripe made may come before its record: Stripe delivers a 503
        again, up to three times)."""
        from alphacut.aws.billing.payments import PaymentRecords
        from alphacut.aws.ledger.credits import CreditLedger
        from alphacut.billing.stripe_events import StripeEvents

        kind, _, figure = event.partition(":")
        figure = str(amount) if figure == "all" else figure
        obj: dict[str, Any] = {"id": payment, "amount": amount, "currency": "usd"}
        if kind == "stranger":  # a PaymentIntent made elsewhere (another service's, or forged)
            kind, obj = "succeeded", {"id": STRANGER, "amount": PAYMENT_AMOUNT, "currency": "usd"}
        names = {
            "succeeded": "payment_intent.succeeded",
            "failed": "payment_intent.payment_failed",
            "refunded": "charge.refunded",
            "dispute": "charge.dispute.created",
            "won": "charge.dispute.closed",
            "lost": "charge.dispute.closed",
        }
        if kind == "succeeded":
            obj["amount_received"] = amount
            if payment != PAYMENT:
                obj["created"] = self.now
        elif kind == "refunded":
            obj = {
                "id": "ch_sim",
                "payment_intent": payment,
                "amount": amount,
                "amount_refunded": int(figure),
            }
        elif kind in ("dispute", "won", "lost"):
            disputed = int(figure) if figure else amount
            status = {"dispute": "needs_response", "won": "won", "lost": "lost"}[kind]
            obj = {"id": "dp_sim", "payment_intent": payment, "amount": disputed, "status": status}
        # a stranger's copy: the metadata names the key and a fortune; the record must decide
        obj["metadata"] = {"key_id": KEY, "credits": "100000"}

        def deliver() -> str:
            from alphacut.errors import BillingUnavailable

            records = PaymentRecords("usage", clock=self.clock)
            events = StripeEvents(None, records, CreditLedger("usage", clock=self.clock))
            event = {"id": f"evt{number}", "type": names[kind], "data": {"object": obj}}
            for _ in range(2):
                try:
                    done = events.apply(event)
                    break
                except BillingUnavailable:  # 503: Stripe delivers it again
                    continue
            else:
                done = events.apply(event)
            if (
                payment != PAYMENT
                and kind == "succeeded"
                and self.spawned.get("claim", 0) < self.scope.crossings
            ):
                self.start_claim(self.spawned["claim"], later=True)  # calls spend below it again
            return done

        if payment == PAYMENT:
            self.spawn("webhook", f"webhook{number}-{kind}", deliver)
        else:  # made by a function's call (the handler's): started after its step
            self.pending_spawns.append(("webhook", f"webhook{number}@{payment}-{kind}", deliver))

    def start_claim(self, number: int, later: bool = False) -> None:
        """A call that crossed the armed threshold, claiming the crossing as the metering does (the
        one that wins queues the top-up: ``alphacut.api.metering._tell_if_low``). The second
        claimer's queue is not reached: it gives the crossing back (``unclaim_low_balance``), between
        the others' writes, and tells nothing."""
        from alphacut.aws.ledger.credits import CreditLedger

        unreached = number == self.scope.unreached

        def claim() -> int | None:
            ledger = CreditLedger("usage", clock=self.clock)
            won = ledger.claim_low_balance(KEY)
            if won is not None and unreached:
                ledger.unclaim_low_balance(KEY, won)
                return None
            if won is not None:
                self.claims.append(won)
                if self.scope.auto_top_up:  # the message queued: its handler runs
                    self._queue_notice(won)
            return won

        self._count("claim")
        if later:  # once a function's step is over
            self.pending_spawns.append(("claim", f"claim{number}", claim))
        else:
            self.spawn("claim", f"claim{number}", claim)

    def _queue_notice(self, crossing: int) -> None:
        from alphacut.aws.billing.low_balance_queue import LowBalance

        self.notices.append(LowBalance(KEY, crossing, 0, self.scope.funds, float(self.now)))
        self.start_notice(len(self.notices) - 1)

    def start_notice(self, number: int) -> None:
        """One delivery of a low-balance message to the real handler (it buys the pack)."""
        from alphacut.aws.billing.payments import PaymentRecords
        from alphacut.billing.low_balance import LowBalanceNotices

        notice, count = self.notices[number], self._count(f"notice{number}")

        def handle() -> Any:
            records = PaymentRecords("usage", clock=self.clock)
            stripe = _FakeStripe(self)
            return LowBalanceNotices(self.billing, stripe, records, None, lambda _: None).handle(notice)

        self.pending_spawns.append(("notice", f"notice{number}-{count}", handle))

    def made_intent(self, idempotency_key: str, credits: int, amount: int) -> str:
        """The fake Stripe's PaymentIntent for an idempotency key: the same one within a day, a new
        one after (Stripe forgot the key); a new one's events delivered (``auto_events``)."""
        made = self.intents.get(idempotency_key)
        if made is not None and self.now - made[1] < STRIPE_KEEPS_KEYS:
            return made[0]
        payment = f"pi_auto{len(self.auto_payments)}"
        self.intents[idempotency_key] = (payment, self.now)
        self.auto_payments.append((payment, self.now, idempotency_key, credits, amount))
        self.payments_made.add(payment)
        for event in self.scope.auto_events:
            if event == "call":  # the store spends the credits bought (a delivered call)
                self.start_call(f"call-{payment}", True, later=True)
            else:
                self.start_webhook(self._count("webhook"), event, payment, amount)
        return payment

    def _meter(self) -> Any:
        from alphacut.aws.ledger.usage import UsageMeter

        return UsageMeter("usage", "queue", clock=self.clock)

    def _count(self, kind: str) -> int:
        self.spawned[kind] = self.spawned.get(kind, 0) + 1
        return self.spawned[kind]

    # ---- a whole run ------------------------------------------------------------------------------
    def begin(self) -> None:
        from alphacut.aws.ledger.credits import CreditLedger
        from alphacut.settings import ServiceSettings

        self.settings = ServiceSettings.from_env({"CREDIT_PRICES": f"full={self.scope.price / 1000}"})
        self.pending_spawns: list[tuple[str, str, Callable[[], Any]]] = []
        self.payments_made: set[str] = set()  # the PaymentIntents the world's Stripe made for the service
        self.notices: list[Any] = []  # the low-balance messages queued (LowBalance)
        self.intents: dict[str, tuple[str, int]] = {}  # the fake Stripe's idempotency keys
        self.auto_payments: list[tuple[str, int, str, int, int]] = []  # id, at, key, credits, amount
        if self.scope.auto_top_up:
            from alphacut.aws.billing.payments import PaymentRecords
            from alphacut.billing.settings import BillingSettings

            self.billing = BillingSettings()
            PaymentRecords("usage", clock=self.clock).save_profile(
                KEY, customer="cus_sim", card="pm_sim", auto_pack="starter", auto_cap=self.scope.auto_cap
            )
        ledger = CreditLedger("usage", clock=self.clock)
        ledger.open(KEY)
        if self.scope.funds:
            ledger.top_up(KEY, self.scope.funds, reference="opening")
        if self.scope.account_keys:  # the key's balance from before it joined the account: frozen
            ledger.open(SPENDER)
            ledger.top_up(SPENDER, self.scope.funds, reference="opening")
            from alphacut.api import services

            services.SETTINGS = self.settings
        self.table.lag = self.scope.lag
        for number, delivers in enumerate(self.scope.calls):
            self.start_call(f"call-{number}", delivers)
        for number, done in enumerate(self.scope.tasks):
            self.start_task(f"job{number}", done)
        for number, reference in enumerate(self.scope.top_ups):
            self.start_top_up(number, reference)
        self.claims: list[int] = []
        if self.scope.crossings:
            # the threshold at the balance: armed (a threshold set above the balance is disarmed,
            # as it was told already), and every claim below crosses it
            ledger.set_low_balance(KEY, self.scope.funds)
        # the automatic top-up's second crossing comes once its first payment is credited
        for number in range(1 if self.scope.auto_top_up else self.scope.crossings):
            self.start_claim(number)
        if self.scope.events:
            from alphacut.aws.billing.payments import PaymentRecords

            self.payments_made.add(PAYMENT)
            PaymentRecords("usage", clock=self.clock).created(
                KEY, PAYMENT, PAYMENT_CREDITS, PAYMENT_AMOUNT, "usd"
            )
        for number, event in enumerate(self.scope.events):
            self.start_webhook(number, event)
        self._spawn_pending()

    def _spawn_pending(self) -> None:
        while self.pending_spawns:
            kind, name, body = self.pending_spawns.pop(0)
            self.spawn(kind, name, body)

    def step(self, option: tuple[Any, ...]) -> None:
        self.take(option)
        self._spawn_pending()
        self.check()

    def finish(self) -> None:
        """Everything due, with no more faults: the functions still running end, the index catches
        up, the queue is drained, the clock passes every due time and the sweep runs until nothing is
        due (twice over: once more after TTL has deleted what expired); then the invariants at rest."""
        self.budgets = Budgets(0, 0, 0, 0, 0, 0, 0, 1_000_000)
        self._run_out()
        for _ in range(2):
            for _round in range(6):
                self.table.catch_up()
                while self.table.messages:
                    self.start_consumer()
                    self._run_out()
                due = [int(i["open_due"]["N"]) for i in self.table.items.values() if "open_due" in i]
                if not due and not self.table.pending:
                    break
                self.move_clock(max([self.now, *due]) + 1 + 120)
                self.start_sweep()
                self._run_out()
            if self.scope.key_limit is not None:  # before TTL takes the days' counts
                invariants.key_spending(
                    self.table.items,
                    SPENDER,
                    self.scope.key_limit,
                    self._charged_days(),
                    self._spends_at_rest(),
                )
            self.move_clock(self.now + 3 * 86400)
            for key in self.table.expired(self.now):
                self.expire(key)
        if self.scope.auto_top_up:
            invariants.took_back(self.table.items, KEY, self._auto_settled())
        invariants.at_rest(
            self.table.items,
            self.table.tombstones,
            KEY,
            list(self.outcomes.values()),
            self.table.paid,
            int(self.metrics.get("UnbilledCalls", 0)),
        )

    def _auto_settled(self) -> list[tuple[str, int, list[str]]]:
        """Each automatic top-up's PaymentIntent whose events were all delivered (their webhooks
        ended by themselves, no fault answered): its credits and the events."""
        settled = []
        for payment, _, _, credits, _ in self.auto_payments:
            hooks = [a for a in self.actors if a.kind == "webhook" and f"@{payment}-" in a.name]
            if hooks and all(a.state == "done" and not a.faulted for a in hooks):
                settled.append((payment, credits, [a.name.split("-", 1)[1] for a in hooks]))
        return settled

    def _charged_days(self) -> dict[str, int]:
        """What the calls' markers charged so far (millicredits), by the UTC day each call's price
        was counted on the key's spending (the day of its first count)."""
        days: dict[str, int] = {}
        for name in self.outcomes:
            if self.table.paid.get(name):
                day = self._first_day(name) or "?"
                days[day] = days.get(day, 0) + self.table.paid[name]
        return days

    def _first_day(self, name: str) -> str:
        return min((day for actor, day in self.spend_moves if actor == name), default="")

    def _spends_at_rest(self) -> list[invariants.KeySpent]:
        """Each call's own moves of the key's spending, with what it was charged and how it ended."""
        spends = []
        for actor in self.actors:
            if actor.kind != "call":
                continue
            moves = {day: moved for (name, day), moved in self.spend_moves.items() if name == actor.name}
            clean = actor.state == "done" and not actor.erred
            spends.append(
                invariants.KeySpent(
                    actor.name, self.table.paid.get(actor.name, 0), moves, clean, self._first_day(actor.name)
                )
            )
        return spends

    def _run_out(self) -> None:
        while True:
            self._spawn_pending()
            waiting = [a for a in self.actors if a.state == "waiting"]
            if not waiting:
                return
            self.take(("step", waiting[0].name, NORMAL))
            self.check()


def _armed(item: Any) -> bool:
    return bool(item and item.get("low_armed", {}).get("BOOL"))


def _spent(item: Any) -> int:
    return int(item["spent"]["N"]) if item and "spent" in item else 0


def _fold(history: str, text: str) -> str:
    return hashlib.blake2b(f"{history}|{text}".encode(), digest_size=12).hexdigest()


def _summary(answer: Any) -> str:
    if isinstance(answer, BaseException):
        response = getattr(answer, "response", {})
        reasons = response.get("CancellationReasons", "")
        return f"!{response.get('Error', {}).get('Code')}{response.get('Item', '')}{reasons}"
    return repr(answer)


@contextmanager
def patched(world_ref: list[World]) -> Iterator[None]:
    """The ledger's modules see the current world's clients, deterministic nonces, no sleeps,
    one counter shard, and a silent logger; ``world_ref[0]`` is the world of the run under way."""
    import alphacut.api.credits as api_credits
    from alphacut.api import metering, services
    from alphacut.aws import clients, transactions
    from alphacut.aws.billing import payments
    from alphacut.aws.ledger import balances as credits  # the ledger's clients, clock and nonces
    from alphacut.aws.ledger import key_spend, usage
    from alphacut.billing import low_balance, stripe_events

    quiet = SimpleNamespace(
        warning=_nothing, info=_nothing, exception=_nothing, error=_nothing, debug=_nothing
    )

    class Recorder:
        def add_metric(self, name: str, unit: Any, value: float) -> None:
            world_ref[0].metrics[name] = world_ref[0].metrics.get(name, 0) + value

    import time as real_time

    fake_time = SimpleNamespace(
        sleep=_nothing, time=lambda: world_ref[0].now, strftime=real_time.strftime, gmtime=real_time.gmtime
    )
    saved = {
        (credits, "client"): credits.client,
        (usage, "client"): usage.client,
        (key_spend, "client"): key_spend.client,
        (key_spend, "unretried"): key_spend.unretried,
        (key_spend, "logger"): key_spend.logger,
        (clients, "time"): clients.time,
        (payments, "client"): payments.client,
        (payments, "time"): payments.time,
        (stripe_events, "logger"): stripe_events.logger,
        (stripe_events, "metrics"): stripe_events.metrics,
        (credits, "uuid"): credits.uuid,
        (credits, "time"): credits.time,
        (transactions, "time"): transactions.time,
        (usage, "COUNTER_SHARDS"): usage.COUNTER_SHARDS,
        (credits, "DUE_SHARDS"): credits.DUE_SHARDS,
        (usage, "logger"): usage.logger,
        (api_credits, "logger"): api_credits.logger,
        (api_credits, "_Finishing"): api_credits._Finishing,
        (metering, "metrics"): metering.metrics,
        (services, "SETTINGS"): services.SETTINGS,
        (low_balance, "logger"): low_balance.logger,
        (low_balance, "metrics"): low_balance.metrics,
    }
    if hasattr(usage, "metrics"):
        saved[(usage, "metrics")] = usage.metrics
    try:
        credits.client = usage.client = key_spend.client = payments.client = lambda service: world_ref[
            0
        ].client(service)
        key_spend.unretried = lambda service: world_ref[0].unretried(service)
        key_spend.logger = quiet
        payments.time = clients.time = fake_time
        stripe_events.logger = quiet
        stripe_events.metrics = Recorder()
        credits.uuid = SimpleNamespace(uuid4=lambda: world_ref[0].uuid4())
        credits.time = transactions.time = fake_time
        usage.COUNTER_SHARDS = 1  # which shard a count lands on changes no money
        # two index shards, not 16: a sweep still meets the balance and the holds in either order
        # (they hash apart), at an eighth of the reads to interleave
        credits.DUE_SHARDS = SWEEP_SHARDS
        usage.logger = api_credits.logger = quiet
        api_credits._Finishing = _Inline  # type: ignore[misc]
        metering.metrics = Recorder()
        low_balance.logger = quiet
        low_balance.metrics = Recorder()
        if hasattr(usage, "metrics"):
            usage.metrics = Recorder()
        yield
    finally:
        for (module, name), value in saved.items():
            setattr(module, name, value)


def _nothing(*_: Any, **__: Any) -> None:
    return None


class _FakeStripe:
    """Stripe as the low-balance handler sees it: ``intent_for`` makes (or, by its idempotency key,
    finds) a PaymentIntent, confirmed at once, in the world's record."""

    def __init__(self, world: World):
        self.world = world

    def intent_for(self, key_id: str, credits: int, amount: int, **asked: Any) -> Any:
        from alphacut.billing.stripe_account import Intent

        payment = self.world.made_intent(str(asked.get("idempotency_key")), credits, amount)
        return Intent(payment, "", amount, "usd", "processing", key_id)


class _Inline:
    """The reservation's last writes run in the call's own actor (the model runs nothing else
    meanwhile), at once, as the thread would beside the model."""

    def __init__(self, finish: Callable[[], None]):
        self.finish = finish
        self.error: Exception | None = None
        try:
            finish()
        except Exception as error:  # noqa: BLE001 - reported by join, tried again there
            self.error = error

    def join(self) -> bool:
        return self.error is None
