"""Money at a store's load: the credit ledger and the usage meter under one credit key at 50 calls
a second (with its plan's burst on top) and a mix of other keys, on the local stack's DynamoDB
rules (capacity metered as DynamoDB bills it, each partition's 3,000 read / 1,000 write units a
second, transactions that conflict while they run), over a simulated day.

Each call runs the money path the metering middleware runs (``alphacut.api.metering``): the key's
plan, the reservation (``CreditGate.reserve_call``), then ``settle_call`` (commit with the count,
the balance read for ``remain``). The image work between them is replaced by its measured
duration (``--model-seconds``, default the steady fp32 cutout on Lambda, bench_startup): the
model sets how long a call lasts, the money path is what is measured. Each simulated Lambda
instance is a thread with its own meter (its own plan cache); moto serves in this process.

The day is time-compressed: the clock the ledger and the meter read (not the wall) is set to each
sampled hour; a window of real calls runs there, and the rest of the day's calls of the busy key
until the next window are written as the history they leave behind (settled holds: what a
reservation used to read) straight into moto. At the day's end the key's partition holds every
hold of the day, as it would before TTL deletes any (a settled hold is kept a day).

Slow motion (``--slow-motion``, 6 by default): on two cores moto and the simulated instances keep
up with 60 calls a second only slowed down, so each simulated second lasts that many real ones,
and every time the rules know with it (arrival rates, the image work, a transaction's 20 ms, the
partitions' units a second). Times printed are simulated (real / the factor): moto's own time per
request shrinks with them, the emulated transaction keeps its 20 ms. Prints, per window: the key's history,
calls, read and write units per call (table and index), items read per call, conflicts, throttles,
failed calls, counts deferred to the metering queue, and the money path's p50/p99; then the
month's statement against the sum of what the answers said was charged, and dollars per 1,000
calls for DynamoDB and API Gateway.

Usage::

    .venv/bin/python benchmarks/bench_money.py                      # 5 windows of 20 s over a day
    .venv/bin/python benchmarks/bench_money.py --quick              # 2 windows, little history
    .venv/bin/python benchmarks/bench_money.py --transaction-ms 40 --counter-shards 1
    .venv/bin/python benchmarks/bench_money.py --operations          # each money operation's units
    .venv/bin/python benchmarks/bench_money.py --keys 1000000        # the key store at a million keys
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import platform
import statistics
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DAY_START = 1_795_132_800  # 2026-11-20 00:00 UTC: the simulated day
HOT_KEY = "store-hot-key"
TABLE = "bench-money-usage"
METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:bench/prod/POST/v1/cutout"
ROUTE = "/v1/cutout"
PARTITION_READ, PARTITION_WRITE = 3000.0, 1000.0  # units a second (dynamodb_capacity's)
# https://aws.amazon.com/dynamodb/pricing/on-demand/ and https://aws.amazon.com/api-gateway/pricing/
# (us-east-1; REST APIs, the first 333 million requests a month)
DYNAMODB_WRITE, DYNAMODB_READ, API_GATEWAY_REST = 0.625 / 1e6, 0.125 / 1e6, 3.50 / 1e6


@dataclass
class Window:
    hour: int
    rate: float
    burst: int
    seconds: float
    mix_keys: list[tuple[str, bool]]  # (key id, credit-based)
    mix_rate: float
    plans: dict = field(default_factory=dict)  # key id -> its Plan, as the key authorizer hands it on
    counter_shards: int | None = None  # the usage counters' shards, where varied
    slow: float = 1.0  # slow motion: each simulated second lasts this many real ones


@dataclass
class CallResult:
    key: str
    ok: bool
    money_ms: float
    charged: float  # what the answer said it cost (credits; 0 for a quota key)
    error: str = ""
    before_ms: float = 0.0  # of money_ms, before the model (the plan and the debit)


@dataclass
class WindowResult:
    hour: int
    history: int
    calls: list[CallResult] = field(default_factory=list)
    elapsed: float = 0.0


# ---- the driver: a process of simulated Lambda instances --------------------------------------
def drive(moto_url: str, queue_url: str, window: Window, model_seconds: float, results) -> None:
    os.environ.update(
        AWS_ENDPOINT_URL=moto_url,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        POWERTOOLS_METRICS_NAMESPACE="Bench",
        POWERTOOLS_SERVICE_NAME="bench",
        POWERTOOLS_METRICS_DISABLED="true",  # the CreditsCharged metric: nowhere to send it here
    )
    logging.disable(logging.WARNING)
    from alphacut.api.credits import open_gate
    from alphacut.api.metering import CallOutcome, open_for, settle_call
    from alphacut.aws.ledger import usage as usage_module
    from alphacut.aws.ledger.usage import UsageMeter
    from alphacut.options import CutoutOptions

    if window.counter_shards:
        usage_module.COUNTER_SHARDS = window.counter_shards
    # each Lambda instance has its own connection: one client here, with a connection per thread
    # (botocore's default pool of 10 would make the simulated instances queue for connections)
    import boto3
    from alphacut.aws.ledger import balances as credits_module  # the ledger's client
    from alphacut.aws.ledger import limits as limits_module
    from botocore.config import Config

    connections = int((window.rate + window.mix_rate) * (model_seconds + 0.5) * 1.5) + window.burst + 10
    shared = {
        name: boto3.client(name, config=Config(max_pool_connections=connections))
        for name in ("dynamodb", "sqs")
    }
    for module in (credits_module, usage_module, limits_module):
        module.client = shared.__getitem__
    started = time.time()
    clock = lambda: DAY_START + window.hour * 3600 + (time.time() - started) / window.slow
    local = threading.local()
    options = CutoutOptions()

    def call(key: str) -> CallResult:
        meter = getattr(local, "meter", None)
        if meter is None:  # one per instance, as each Lambda instance has
            meter = local.meter = UsageMeter(TABLE, queue_url, clock=clock)
        call_id = str(uuid.uuid4())
        plan = window.plans[key]  # the key authorizer's context: no look-up
        try:
            begun = time.perf_counter()
            meter.limits.admit(key, plan)  # the key's rate window, every call
            gate = open_for(meter, plan, key, call_id, ROUTE)
            if gate is not None:
                with open_gate(gate):
                    gate.reserve_call(options)  # credits reserved, or a quota slot taken
            reserved = time.perf_counter()
            time.sleep(model_seconds * window.slow)  # the model's work (measured elsewhere)
            delivered = time.perf_counter()
            outcome = CallOutcome(key, ROUTE, call_id, plan.credit_based, True)
            usage = settle_call(meter, gate, outcome, plan)
            done = time.perf_counter()
        except Exception as error:  # noqa: BLE001 - a failed call is a result here
            return CallResult(key, False, 0.0, 0.0, f"{type(error).__name__}: {error}"[:200])
        charged = float(usage.credits) if usage.credits is not None else 0.0
        before = (reserved - begun) * 1000 / window.slow
        return CallResult(key, True, before + (done - delivered) * 1000 / window.slow, charged, "", before)

    # the plan's burst on top of its rate: as many calls again within the window's first second
    arrivals: list[tuple[float, str]] = [(i / max(1, window.burst), HOT_KEY) for i in range(window.burst)]
    count = int(window.rate * window.seconds)
    arrivals += [(i / window.rate, HOT_KEY) for i in range(count)]
    for n, (key, _) in enumerate(window.mix_keys):
        per_key = window.mix_rate / max(1, len(window.mix_keys))
        arrivals += [
            ((i + n / len(window.mix_keys)) / per_key, key) for i in range(int(per_key * window.seconds))
        ]
    arrivals.sort()
    futures = []
    with ThreadPoolExecutor(connections) as pool:
        origin = time.perf_counter()
        for at, key in arrivals:
            delay = origin + at * window.slow - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(call, key))
        outcome = [f.result() for f in futures]
    results.put((outcome, (time.perf_counter() - origin) / window.slow))


# ---- the stack side: moto with the rules, the table, the keys, the history --------------------
def start_moto(transaction_seconds: float, slow: float = 1.0):
    from alphacut_dev.local.dynamodb_capacity import DynamoDBCapacity
    from alphacut_dev.local.dynamodb_consistency import partition_queries, serialise_dynamodb_writes
    from alphacut_dev.local.dynamodb_transactions import TransactionConflicts
    from alphacut_dev.local.stack import free_port
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    serialise_dynamodb_writes()
    partition_queries()
    # slow motion: a simulated second lasts ``slow`` real ones, and the rules' times with it
    capacity = DynamoDBCapacity(read_limit=PARTITION_READ / slow, write_limit=PARTITION_WRITE / slow)
    conflicts = TransactionConflicts(transaction_seconds * slow)
    capacity.apply()
    conflicts.apply()
    return f"http://127.0.0.1:{port}", capacity, conflicts


def provision(moto_url: str, mix: int) -> tuple[list[tuple[str, bool]], str, dict]:
    os.environ.update(
        AWS_ENDPOINT_URL=moto_url,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
    )
    import boto3
    from alphacut.aws.ledger.credits import CreditLedger
    from alphacut.aws.ledger.plans import Plan
    from alphacut_dev.template import table_definition

    boto3.client("dynamodb").create_table(**table_definition("UsageTable", TABLE))
    queue_url = boto3.client("sqs").create_queue(QueueName="bench-money-metering")["QueueUrl"]
    ledger = CreditLedger(TABLE)
    store = Plan("plan-store", "store", None, 50.0, 100, credit_based=True)
    credits_plan = Plan("plan-credits", "credits", None, 5.0, 10, credit_based=True)
    starter = Plan("plan-starter", "starter", 100_000, 5.0, 10)
    plans = {HOT_KEY: store}
    ledger.open(HOT_KEY)
    ledger.top_up(HOT_KEY, 10_000_000 * 1000, reference="bench")
    keys = []
    for n in range(mix):
        key = f"mix-{n:02d}"
        credit = n % 2 == 0
        plans[key] = credits_plan if credit else starter
        if credit:
            ledger.open(key)
            ledger.top_up(key, 1_000_000 * 1000, reference="bench")
        keys.append((key, credit))
    return keys, queue_url, plans


def write_history(key: str, first: int, count: int, at: float) -> None:
    """``count`` calls' settled holds for ``key``, as the ledger leaves them, straight into moto."""
    from alphacut.aws.ledger.credits import SETTLED_KEPT_SECONDS, due_shard
    from moto.dynamodb.models import dynamodb_backends

    backend = dynamodb_backends["123456789012"]["us-east-1"]
    for n in range(first, first + count):
        hold = f"history-{n:09d}"
        backend.put_item(
            TABLE,
            {
                "pk": {"S": f"hold#{key}"},
                "sk": {"S": hold},
                "amount": {"N": "1000"},
                "hold_until": {"N": str(int(at) + 90)},
                "route": {"S": ROUTE},
                "nonce": {"S": "0123456789abcdef"},
                "due_shard": {"S": due_shard(hold)},
                "settled": {"S": "committed"},
                "expires_at": {"N": str(int(at) + SETTLED_KEPT_SECONDS)},
            },
        )


def run_window(
    moto_url: str, queue_url: str, window: Window, model_seconds: float, target=drive
) -> tuple[list[CallResult], float]:
    """One window's calls from a process of their own (``target``: ``drive``, or an experiment's)."""
    spawn = multiprocessing.get_context("spawn")
    results = spawn.Queue()
    process = spawn.Process(target=target, args=(moto_url, queue_url, window, model_seconds, results))
    process.start()
    outcome = results.get(timeout=window.seconds * 20 + 600)
    process.join(60)
    return outcome


def percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def queue_depth(queue_url: str) -> int:
    import boto3

    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def machine() -> str:
    flags = ""
    try:
        info = Path("/proc/cpuinfo").read_text()
        model = next(
            line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")
        )
        wanted = ("avx2", "avx512f", "avx512_vnni", "amx_tile")
        present = next(line for line in info.splitlines() if line.startswith("flags")).split()
        flags = f"{model}; {os.cpu_count()} cores; " + " ".join(f for f in wanted if f in present)
    except (OSError, StopIteration):
        flags = platform.processor()
    return flags


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=50.0, help="the busy key's calls a second")
    parser.add_argument(
        "--burst",
        type=int,
        default=100,
        help="calls on top of the rate in each window's first second (its plan's burst)",
    )
    parser.add_argument("--mix", type=int, default=10, help="other keys (half credit-based, half on a quota)")
    parser.add_argument("--mix-rate", type=float, default=10.0, help="their calls a second, all together")
    parser.add_argument(
        "--window", type=float, default=20.0, help="seconds of real calls at each sampled hour"
    )
    parser.add_argument("--hours", default="0,6,12,18,23", help="the sampled hours of the day")
    parser.add_argument(
        "--history-rate", type=float, default=None, help="history written between windows (default: --rate)"
    )
    parser.add_argument("--model-seconds", type=float, default=1.88, help="the image work a call waits for")
    parser.add_argument(
        "--transaction-ms", type=float, default=20.0, help="how long a transaction holds its items"
    )
    parser.add_argument(
        "--counter-shards", type=int, default=None, help="override the usage counters' shards"
    )
    parser.add_argument("--quick", action="store_true", help="2 windows of 10 s, history at 1/50 of the rate")
    parser.add_argument(
        "--slow-motion",
        type=float,
        default=6.0,  # moto on two cores keeps up with 60 calls a second only this slowed down
        help="each simulated second lasts this many real ones (rates, waits and the rules' times scaled)",
    )
    parser.add_argument("--operations", action="store_true", help="each money operation's items and units")
    parser.add_argument(
        "--keys",
        type=int,
        default=0,
        help="the key store: this many keys in the table, the authorizer (cached and not) and the limits "
        "added to a call, their cost, and an import of --import-keys timed",
    )
    parser.add_argument("--import-keys", type=int, default=100_000, help="keys imported (--keys)")
    parser.add_argument("--samples", type=int, default=2000, help="calls measured per row (--keys)")
    args = parser.parse_args(argv)
    if args.quick:
        args.window, args.hours = 10.0, "0,23"
        args.history_rate = args.rate / 50
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.keys:
        return keys_bench(args.keys, args.import_keys, args.samples)
    return operations() if args.operations else run_day(args)


def run_day(args: argparse.Namespace, target=drive) -> int:
    """The simulated day: windows of calls at the sampled hours, history written between them."""
    history_rate = args.rate if args.history_rate is None else args.history_rate
    hours = [int(h) for h in args.hours.split(",")]

    sys.path.insert(0, str(ROOT))
    moto_url, capacity, conflicts = start_moto(args.transaction_ms / 1000, args.slow_motion)
    mix_keys, queue_url, plans = provision(moto_url, args.mix)
    print(f"machine: {machine()}; moto in-process, the calls in another process")
    print(
        f"load: {args.rate:g} calls/s from one credit key + a burst of {args.burst} per window, "
        f"{args.mix_rate:g} calls/s from {args.mix} other keys; image work {args.model_seconds:g} s a call "
        f"(replaced by its duration); a transaction holds its items {args.transaction_ms:g} ms; "
        f"slow motion x{args.slow_motion:g} (times in the table are simulated: real / {args.slow_motion:g})"
    )
    rows, all_calls, history = [], [], 0
    for index, hour in enumerate(hours):
        window = Window(
            hour,
            args.rate,
            args.burst,
            args.window,
            mix_keys,
            args.mix_rate,
            plans,
            args.counter_shards,
            args.slow_motion,
        )
        mark, conflicts_before = capacity.mark(), conflicts.conflicts
        deferred_before = queue_depth(queue_url)
        calls, elapsed = run_window(moto_url, queue_url, window, args.model_seconds, target)
        used = capacity.since(mark, TABLE)
        busiest = capacity.busiest(mark)
        all_calls += calls
        ok = [c for c in calls if c.ok]
        money = [c.money_ms for c in ok]
        n = max(1, len(calls))
        rows.append(
            (
                f"{hour:02d}:00",
                history,
                len(calls),
                f"{len(calls) / elapsed:.1f}",
                f"{used.read_units / n:.2f}",
                f"{used.write_units / n:.2f}",
                f"{used.index_write_units / n:.2f}",
                f"{used.items_read / n:.2f}",
                conflicts.conflicts - conflicts_before,
                used.throttled,
                len(calls) - len(ok),
                queue_depth(queue_url) - deferred_before,
                f"{statistics.median(money) if money else 0:.1f}",
                f"{percentile(money, 0.99):.1f}",
                f"{percentile([c.before_ms for c in ok], 0.99):.1f}",
                f"{busiest['write_units'] * args.slow_motion:.0f}",
            )
        )
        failures = sorted({c.error for c in calls if not c.ok})
        if failures:
            print(f"  {hour:02d}:00 failures: {failures[:3]}")
        if index + 1 < len(hours):  # the rest of the day until the next window, as history
            seconds = (hours[index + 1] - hour) * 3600 - args.window
            count = int(history_rate * seconds)
            write_history(HOT_KEY, history, count, DAY_START + hour * 3600)
            history += count
    header = (
        "hour",
        "key's settled holds",
        "calls",
        "calls/s",
        "read units/call",
        "write units/call",
        "index write units/call",
        "items read/call",
        "conflicts",
        "throttled",
        "failed",
        "counts deferred",
        "money p50 ms",
        "money p99 ms",
        "of which before the model, p99 ms",
        "busiest partition WCU/s",
    )
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(str(v) for v in row) + " |")
    statement_check(mix_keys, all_calls)
    costs(capacity, len(all_calls))
    return 0


def operations() -> int:
    """Each money operation once, on a key with history, metered: items read and written, units."""
    moto_url, capacity, _ = start_moto(0.0)
    _, _, plans = provision(moto_url, 2)
    from alphacut.aws.keys.authorizer import Authorizer
    from alphacut.aws.keys.store import KeyStore
    from alphacut.aws.ledger.credits import STALE_SECONDS, CreditLedger
    from alphacut.aws.ledger.limits import utc_day
    from alphacut.aws.ledger.plans import PlanCatalogue
    from alphacut.aws.ledger.usage import MeteredCall, UsageMeter

    PlanCatalogue(TABLE).write({"store": plans[HOT_KEY]})

    meter, ledger = UsageMeter(TABLE), CreditLedger(TABLE)
    for n in range(200):  # history: the operations below must not read it
        ledger.reserve(HOT_KEY, f"old-{n}", 1000, 90, ROUTE)
        meter.record(
            MeteredCall(HOT_KEY, ROUTE, True, f"old-{n}", credits=1000, hold=f"old-{n}", hold_finished=True)
        )
    ledger.sweep(time.time() + STALE_SECONDS + 1)  # the balance out of the index, as between bursts
    store = KeyStore(TABLE, b"bench-secret-0123456789abcdef0123")
    value = store.create("store", "store").value
    authorizer = Authorizer(store, PlanCatalogue(TABLE))
    authorizer.plan("store")  # the catalogue, as a warm container holds it
    request = {"type": "REQUEST", "methodArn": f"{METHOD_ARN}", "headers": {"x-api-key": value}}
    authorizer.authorize(request)  # its last-used day written (once a key a day)
    steps = [
        (
            "authorizer, a key API Gateway has not cached (its item; the catalogue cached)",
            lambda: authorizer.authorize(request),
        ),
        ("rate (every call: the key's token bucket)", lambda: meter.limits.admit(HOT_KEY, plans[HOT_KEY])),
        ("reserve", lambda: ledger.reserve(HOT_KEY, "call-1", 1000, 90, ROUTE)),
        (
            "a key's daily spending counted under its limit (beside the reserve)",
            lambda: meter.key_spend.spend("k-plugin", 1000, 50_000),
        ),
        (
            "commit with the count (the charge transaction)",
            lambda: meter.record(
                MeteredCall(HOT_KEY, ROUTE, True, "call-1", credits=1000, hold="call-1", hold_finished=True)
            ),
        ),
        ("balance read (remain)", lambda: ledger.balance(HOT_KEY)),
        ("reserve, for a call that fails", lambda: ledger.reserve(HOT_KEY, "call-2", 1000, 90, ROUTE)),
        ("release (the call failed)", lambda: ledger.release(HOT_KEY, "call-2", 1000, entry_gone=True)),
        ("reserve, for a task", lambda: ledger.reserve(HOT_KEY, "task#t-1", 1000, 50_000, "/v1/tasks")),
        ("charge the task (its hold kept for the sweep)", lambda: meter.charge_task(HOT_KEY, "t-1")),
        (
            "sweep, the task's settled hold retired (its TTL)",
            lambda: ledger.sweep(time.time() + STALE_SECONDS + 1),
        ),
        (
            "a quota key's slot of the day taken (its remain, no read)",
            lambda: meter.limits.take_slot("mix-01", 100_000),
        ),
        ("count a quota key's call", lambda: meter.record(MeteredCall("mix-01", ROUTE, True, "call-3"))),
        (
            "a slot given back (the call delivered nothing)",
            lambda: meter.limits.give_back_slot("mix-01", utc_day(time.time())),
        ),
        (
            "results left today (a quota key's remain, where no slot was taken)",
            lambda: meter.limits.taken("mix-01"),
        ),
        ("sweep, nothing due (a minute)", lambda: ledger.sweep()),
    ]
    columns = (
        "operation",
        "requests",
        "items read",
        "read units",
        "write units (table)",
        "write units (index)",
    )
    print("| " + " | ".join((*columns, "in a transaction")) + " |")
    print("|---|---|---|---|---|---|---|")
    for name, step in steps:
        mark = capacity.mark()
        step()
        used = capacity.since(mark)
        transactional = "yes" if used.by_operation.get("transact_write_items") else "no"
        print(
            f"| {name} | {used.requests} | {used.items_read} | {used.read_units:g} | {used.write_units:g} | "
            f"{used.index_write_units:g} | {transactional} |"
        )
    return 0


def statement_check(mix_keys: list[tuple[str, bool]], calls: list[CallResult]) -> None:
    from alphacut.aws.billing.statements import Statement
    from alphacut.aws.keys.admin import ApiKey
    from alphacut.aws.ledger.usage import UsageMeter

    month = time.strftime("%Y-%m", time.gmtime(DAY_START))
    keys = [ApiKey(HOT_KEY, "store", "store", True)] + [ApiKey(k, k, "", True) for k, _ in mix_keys]
    statement = Statement.build(month, keys, UsageMeter(TABLE), price_per_credit=0.20)
    answered = round(sum(c.charged for c in calls if c.ok), 3)
    delivered = sum(c.ok for c in calls)
    billed, deliveries = statement.totals()["credits_used"], statement.totals()["deliveries"]
    verdict = "equal" if abs(billed - answered) < 1e-9 and deliveries == delivered else "DIFFERENT"
    print()
    print(
        f"statement {month}: {billed} credits used, {deliveries} deliveries; the answers said "
        f"{answered} credits over {delivered} delivered calls: {verdict}"
    )


def costs(capacity, calls: int) -> None:
    used = capacity.since(0, TABLE)
    reads = used.read_units - sum(
        c.read_units for c in capacity.requests if c.operation == "scan"
    )  # scans are the benchmark's own
    writes = used.write_units + used.index_write_units
    dynamodb = (reads * DYNAMODB_READ + writes * DYNAMODB_WRITE) / max(1, calls) * 1000
    gateway = API_GATEWAY_REST * 1000
    print(
        f"DynamoDB: {reads / max(1, calls):.2f} read and {writes / max(1, calls):.2f} write units a call "
        f"(table and index): ${dynamodb:.4f} per 1,000 calls; API Gateway REST ${gateway:.4f} per 1,000 "
        f"calls; together ${dynamodb + gateway:.4f}"
    )


# ---- the key store: the authorizer and the limits, with many keys in the table ---------------------
LAMBDA_REQUEST, LAMBDA_GB_SECOND = 0.20 / 1e6, 0.0000166667  # x86, us-east-1
AUTHORIZER_GB = 0.5  # the template's KeyAuthorizerFunction: 512 MB
WAF_REQUEST = 0.60 / 1e6  # a web ACL's requests (plus $5 a month an ACL, $1 a rule)


def bulk_keys(store, count: int) -> list[str]:
    """``count`` keys' two items each, straight into moto's backend (its HTTP API writes about a
    thousand a second: a million keys would take a quarter of an hour), as ``create_many`` writes
    them; a sample of their values is kept to call with."""
    import random

    from alphacut.aws.keys.store import ACTIVE, StoredKey, new_key_id, new_value
    from moto.dynamodb.models import dynamodb_backends

    backend = dynamodb_backends["123456789012"]["us-east-1"]
    sample, keep = [], max(1, count // 5000)
    for n in range(count):
        value = new_value()
        key = StoredKey(
            new_key_id(), f"shop-{n}", "store", ACTIVE, "2026-11-28T00:00:00Z", [store.fingerprint(value)]
        )
        for item in store._items(key, value):
            backend.put_item(TABLE, item)
        if n % keep == 0:
            sample.append(value)
    random.shuffle(sample)
    return sample


def timed(step, samples: list) -> list[float]:
    times = []
    for sample in samples:
        begun = time.perf_counter()
        step(sample)
        times.append((time.perf_counter() - begun) * 1000)
    return times


def keys_bench(count: int, import_count: int, samples: int) -> int:
    """The authorizer (cached by API Gateway and not) and the limits, with ``count`` keys in the
    table: p50/p99 added to a call, units, dollars per 1,000 calls; then ``import_count`` keys
    imported through DynamoDB's API (moto's HTTP server), timed."""
    moto_url, capacity, _ = start_moto(0.0)
    _, _, plans = provision(moto_url, 2)
    from alphacut.aws.keys.authorizer import Authorizer
    from alphacut.aws.keys.store import KeyStore
    from alphacut.aws.ledger.credits import CreditLedger
    from alphacut.aws.ledger.limits import KeyLimits
    from alphacut.aws.ledger.plans import PlanCatalogue
    from alphacut_dev.local.authorizers import AuthorizerSpec, LambdaAuthorizers

    print(f"machine: {machine()}; moto in-process (its HTTP server), DynamoDB's capacity rules applied")
    store = KeyStore(TABLE, b"bench-secret-0123456789abcdef0123")
    PlanCatalogue(TABLE).write({"store": plans[HOT_KEY]})
    started = time.perf_counter()
    values = bulk_keys(store, count)
    print(
        f"{count:,} keys written in bulk in {time.perf_counter() - started:.0f} s; "
        f"{len(values)} of them called"
    )
    authorizer = Authorizer(store, PlanCatalogue(TABLE))
    authorizer.plan("store")
    requests = [{"type": "REQUEST", "methodArn": METHOD_ARN, "headers": {"x-api-key": v}} for v in values]
    requests = (requests * (samples // len(requests) + 1))[:samples]
    for request in requests[: len(values)]:  # each key's last-used day, written once a day
        authorizer.authorize(request)
    gateway = LambdaAuthorizers(
        {"Keys": AuthorizerSpec("Keys", "KeyAuthorizerFunction", ("x-api-key",), 300)}
    )

    def through_gateway(request):
        return gateway.check(
            "Keys", request["headers"], METHOD_ARN, request, lambda f, e: ("ok", authorizer.authorize(e))
        )

    for request in requests[: len(values)]:  # API Gateway's cache, filled
        through_gateway(request)
    limits, plan, ledger = KeyLimits(TABLE), plans[HOT_KEY], CreditLedger(TABLE)
    key_ids = [f"rate-{n % 500}" for n in range(samples)]
    rows = []
    for name, step, inputs, cost, accuracy in (
        (
            "authorizer, not cached (a key's first call in KeyCacheSeconds)",
            authorizer.authorize,
            requests,
            "lambda",
            "-",
        ),
        ("authorizer, cached by API Gateway (no invocation)", through_gateway, requests, "none", "-"),
        (
            "rate: the key's token bucket in the table (every call)",
            lambda key: limits.admit(key, plan),
            key_ids,
            "dynamodb",
            "exact: API Gateway's bucket, across containers",
        ),
        (
            "quota: a slot taken (a quota key's call that may deliver)",
            lambda key: limits.take_slot(key, 10**9),
            key_ids,
            "dynamodb",
            "exact: never over the quota",
        ),
        (
            "credit pre-check: the balance read (a credit key's image call, before its body)",
            ledger.balance,
            key_ids,
            "dynamodb",
            "exact: a key at 0 is refused before any download",
        ),
        (
            "unpaid runs: the day's budget checked (every image call)",
            limits.refuse_if_unpaid_spent,
            key_ids,
            "none",
            "at most one run over per warm container",
        ),
        (
            "unpaid runs: one counted (after a model run nobody was charged for)",
            lambda key: limits.count_unpaid_run(key, 10**9),
            key_ids,
            "dynamodb",
            "exact count",
        ),
    ):
        mark = capacity.mark()
        times = timed(step, inputs)
        used = capacity.since(mark, TABLE)
        reads, writes = used.read_units / len(inputs), used.write_units / len(inputs)
        dollars = (reads * DYNAMODB_READ + writes * DYNAMODB_WRITE) * 1000
        if cost == "lambda":  # the authorizer function: a request, and its duration at 512 MB
            dollars += (
                LAMBDA_REQUEST + AUTHORIZER_GB * statistics.median(times) / 1000 * LAMBDA_GB_SECOND
            ) * 1000
        rows.append((name, percentile(times, 0.5), percentile(times, 0.99), reads, writes, dollars, accuracy))
    print(f"\n{count:,} keys in the table; {samples} calls a row")
    print(
        "| step | p50 ms | p99 ms | read units a call | write units a call | $ per 1,000 calls | accuracy |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, p50, p99, reads, writes, dollars, accuracy in rows:
        print(f"| {name} | {p50:.2f} | {p99:.2f} | {reads:.2f} | {writes:.2f} | {dollars:.5f} | {accuracy} |")
    for name, dollars, accuracy in (  # the candidates not run here, from the price list and the docs
        ("API Gateway usage plans", "0", "best-effort (AWS: clients can exceed them); 10,000 keys at most"),
        (
            "a WAF rate-based rule on x-api-key",
            f"{WAF_REQUEST * 1000:.5f} + $6 a month",
            "counts over 1-10 min",
        ),
        ("a bucket in each container's memory", "0", "N warm containers let N times the rate in"),
    ):
        print(f"| {name} (not run) | - | - | - | - | {dollars} | {accuracy} |")
    started = time.perf_counter()
    made = sum(
        1
        for _ in store.create_many(
            ((f"import-{n}", "credits" if n % 2 else "store") for n in range(import_count)),
            lambda key_id, plan: [ledger.account_item(key_id)] if plan == "credits" else [],
        )
    )
    seconds = time.perf_counter() - started
    print(
        f"\nimport: {made:,} keys (half on a credit plan: a credit account each) through DynamoDB's API "
        f"in {seconds:.0f} s: {made / seconds:,.0f} keys a second"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
