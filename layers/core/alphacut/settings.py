"""Every setting alphacut reads from its environment, in one place: typed, validated, frozen.

``EngineSettings`` is what the image engine needs (models, limits, threads); ``ServiceSettings``
what a deployed function needs (the stack's resource names, result links, the ``image_url``
rules, the models it warms). Each is read once, when a process starts; a value that is wrong
fails then, naming its environment variable, and ``require`` does the same for a resource a
function cannot run without.

Usage::

    engine = EngineSettings.from_env()                       # ALPHACUT_MAX_BYTES=... etc.
    engine.limits.max_side                                   # 4096
    service = ServiceSettings.from_env()
    table = service.require("tasks_table")                   # SettingMissing: TASKS_TABLE is not set
    data = service.fetch("https://example.com/bg.jpg", max_bytes, field="bg_image_url")
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path

from alphacut.pricing import CreditPrices

_PACKAGE_DIR = Path(__file__).resolve().parent


class SettingError(ValueError):
    """A setting that is missing or wrong; the message names its environment variable."""


class SettingMissing(SettingError):
    pass


@dataclass(frozen=True)
class ImageLimits:
    """What an input image may be. Defaults follow the vendor APIs: 15 MB and 4096x4096 (PicWish-style
    tasks); 50 px is the smallest side any of them accepts (JD NeuHub SelfieSeg, AILabTools)."""

    max_bytes: int = 15 * 1024 * 1024
    max_side: int = 4096
    max_pixels: int = 4096 * 4096
    min_side: int = 50
    formats: frozenset[str] | None = None  # None: every readable format (vendor routes narrow it)

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_side", "max_pixels", "min_side"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.min_side > self.max_side:
            raise ValueError("min_side must not exceed max_side")


def default_models_dir() -> Path:
    """The Lambda models layer is unpacked at /opt; a checkout keeps the build in layers/models."""
    if (Path("/opt") / "manifest.json").exists():
        return Path("/opt")
    return _PACKAGE_DIR.parents[1] / "models"


def default_model_data_dir() -> Path:
    """The GPU endpoint's own models (too large for Lambda, ``alphacut models add``): SageMaker
    unpacks the model's data at /opt/ml/model (the image sets ALPHACUT_MODEL_DATA_DIR); a
    checkout keeps them in sagemaker/model-data. Lambda has none."""
    return _PACKAGE_DIR.parents[2] / "sagemaker" / "model-data"


class _Environment:
    """Typed reads of one environment mapping; every error names the variable."""

    def __init__(self, environ: Mapping[str, str]):
        self.environ = environ

    def text(self, name: str, default: str = "") -> str:
        return self.environ.get(name) or default

    def integer(self, name: str, default: int, minimum: int | None = None) -> int:
        raw = self.environ.get(name)
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise SettingError(f"environment variable {name} must be an integer, not {raw!r}") from None
        if minimum is not None and value < minimum:
            raise SettingError(f"environment variable {name} must be at least {minimum}, not {value}")
        return value

    def number(self, name: str, default: float) -> float:
        raw = self.environ.get(name)
        if not raw:
            return default
        try:
            return float(raw)
        except ValueError:
            raise SettingError(f"environment variable {name} must be a number, not {raw!r}") from None

    def names(self, name: str) -> tuple[str, ...]:
        """A comma list."""
        return tuple(part.strip() for part in (self.environ.get(name) or "").split(",") if part.strip())

    def ports(self, name: str) -> tuple[int, ...]:
        try:
            ports = tuple(int(part) for part in self.names(name))
        except ValueError:
            raise SettingError(f"environment variable {name} must list port numbers") from None
        if any(not 0 < port < 65536 for port in ports):
            raise SettingError(f"environment variable {name} must list port numbers (1-65535)")
        return ports

    def prices(self, name: str) -> CreditPrices:
        try:
            return CreditPrices.parse(self.environ.get(name) or "")
        except ValueError as error:
            raise SettingError(f"environment variable {name}: {error}") from None

    def date(self, name: str) -> float:
        """A day (YYYY-MM-DD, UTC) as the unix time it starts; 0 when unset."""
        raw = self.environ.get(name)
        if not raw:
            return 0.0
        try:
            return datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
        except ValueError:
            raise SettingError(
                f"environment variable {name} must be a date (YYYY-MM-DD), not {raw!r}"
            ) from None

    def switch(self, name: str, default: bool) -> bool:
        raw = self.environ.get(name)
        if not raw:
            return default
        if raw not in ("0", "1"):
            raise SettingError(f"environment variable {name} must be 0 or 1, not {raw!r}")
        return raw == "1"


@dataclass(frozen=True)
class EngineSettings:
    models_dir: Path = field(default_factory=default_models_dir)
    model_data_dir: Path = field(default_factory=default_model_data_dir)
    limits: ImageLimits = field(default_factory=ImageLimits)
    threads: int = 0  # 0: onnxruntime picks (one per core)
    # onnxruntime's memory arena: off saves ~420 MB in a warm worker for ~6 % more time a cutout
    # (benchmarks/bench_startup.py); Lambda sizes memory for its CPU share, so it is on by default
    memory_arena: bool = True
    # MB of the last runs' outputs a process keeps, so the same picture asked again (a preview,
    # then the full size; other backgrounds; a retry) skips its model run (alphacut.models.recent);
    # 0: every call runs its models. The template sets it for the functions and the model server.
    recent_outputs_mb: int = 0
    # what runs the models: auto | onnxruntime | openvino | cuda (alphacut.models.engines)
    engine: str = "auto"
    # the model server's batches (alphacut.batching): up to max_batch pictures that arrive within
    # batch_window_ms of the first run as one
    max_batch: int = 8
    batch_window_ms: float = 5.0
    # a GPU instance must run its models on CUDA or refuse to serve (sagemaker/serve.py's /ping):
    # True or False as the template says from the instance type; None: an NVIDIA device decides
    require_gpu: bool | None = None
    # the model server's processes on one device, each with its own models, batches and interpreter
    # lock (SageMaker's SAGEMAKER_MODEL_SERVER_WORKERS); sagemaker/serve.py
    server_workers: int = 1

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> EngineSettings:
        env = _Environment(os.environ if environ is None else environ)
        defaults = ImageLimits()
        models_dir = env.text("ALPHACUT_MODELS_DIR")
        model_data_dir = env.text("ALPHACUT_MODEL_DATA_DIR")
        return cls(
            models_dir=Path(models_dir) if models_dir else default_models_dir(),
            model_data_dir=Path(model_data_dir) if model_data_dir else default_model_data_dir(),
            limits=ImageLimits(
                max_bytes=env.integer("ALPHACUT_MAX_BYTES", defaults.max_bytes),
                max_side=env.integer("ALPHACUT_MAX_SIDE", defaults.max_side),
                max_pixels=env.integer("ALPHACUT_MAX_PIXELS", defaults.max_pixels),
                min_side=env.integer("ALPHACUT_MIN_SIDE", defaults.min_side),
            ),
            threads=env.integer("ALPHACUT_THREADS", 0),
            memory_arena=env.switch("ALPHACUT_MEMORY_ARENA", True),
            recent_outputs_mb=env.integer("ALPHACUT_RECENT_OUTPUTS_MB", 0, minimum=0),
            engine=env.text("ALPHACUT_ENGINE", "auto"),
            max_batch=env.integer("ALPHACUT_MAX_BATCH", 8),
            batch_window_ms=env.number("ALPHACUT_BATCH_WINDOW_MS", 5.0),
            require_gpu=env.switch("ALPHACUT_REQUIRE_GPU", True)
            if env.text("ALPHACUT_REQUIRE_GPU")
            else None,
            server_workers=env.integer("SAGEMAKER_MODEL_SERVER_WORKERS", 1, minimum=1),
        )


# ServiceSettings field -> the environment variable the template sets for it
SERVICE_VARIABLES = {
    "results_bucket": "RESULTS_BUCKET",
    "uploads_bucket": "UPLOADS_BUCKET",
    "tasks_table": "TASKS_TABLE",
    "usage_table": "USAGE_TABLE",
    "stack_name": "STACK_NAME",
    "task_queue_url": "TASK_QUEUE_URL",
    "metering_queue_url": "METERING_QUEUE_URL",
    "state_machine_arn": "STATE_MACHINE_ARN",
    "sagemaker_endpoint": "SAGEMAKER_ENDPOINT",
    "gpu_backlog_threshold": "GPU_BACKLOG_THRESHOLD",
    "gpu_request_ttl": "GPU_REQUEST_TTL_SECONDS",
    "endpoint_status_cache": "ENDPOINT_STATUS_CACHE_SECONDS",
    "callback_secret_arn": "CALLBACK_SECRET_ARN",
    "key_callback_secret_arn": "KEY_CALLBACK_SECRET_ARN",
    "shared_callback_signature_until": "SHARED_CALLBACK_SIGNATURE_UNTIL",
    "key_hash_secret_arn": "KEY_HASH_SECRET_ARN",
    "callback_queue_url": "CALLBACK_QUEUE_URL",
    "low_balance_queue_url": "LOW_BALANCE_QUEUE_URL",
    "result_link_secret_arn": "RESULT_LINK_SECRET_ARN",
    "result_url_ttl": "RESULT_URL_TTL",
    "public_base_url": "PUBLIC_BASE_URL",
    "cors_allow_origin": "CORS_ALLOW_ORIGIN",
    "fetch_timeout": "IMAGE_URL_TIMEOUT",
    "url_allowed_hosts": "IMAGE_URL_ALLOWED_HOSTS",
    "url_allowed_ports": "IMAGE_URL_ALLOWED_PORTS",
    "warm_models": "ALPHACUT_WARM_MODELS",
    "credit_prices": "CREDIT_PRICES",
    "credit_hold_seconds": "CREDIT_HOLD_SECONDS",
    "price_per_credit": "PRICE_PER_CREDIT",
    "unpaid_runs_per_day": "UNPAID_RUNS_PER_DAY",
    "test_results_per_day": "TEST_RESULTS_PER_DAY",
    "touch_ups_per_result": "TOUCH_UPS_PER_RESULT",
    "keys_per_account": "KEYS_PER_ACCOUNT",
    "test_keys_per_account": "TEST_KEYS_PER_ACCOUNT",
    "key_cache_seconds": "KEY_CACHE_SECONDS",
}


@dataclass(frozen=True)
class ServiceSettings:
    # the stack's resources ("" where this function was given none)
    results_bucket: str = ""
    uploads_bucket: str = ""
    tasks_table: str = ""
    usage_table: str = ""  # "" turns metering and idempotency off (the CLI, plain tests)
    stack_name: str = ""  # the sweep syncs the plans named after it (``<stack>-<plan>``)
    task_queue_url: str = ""
    metering_queue_url: str = ""  # calls whose count could not be written go here, applied once later
    state_machine_arn: str = ""
    sagemaker_endpoint: str = ""  # the async GPU endpoint; "" : every task runs on the CPU path
    # While the endpoint has no instance, a task goes to it only when more than this many wait in
    # the task queue (the cost model's break-even, benchmarks/bench_capacity.py); fewer run on the CPU.
    gpu_backlog_threshold: int = 0
    gpu_request_ttl: int = 21600  # how long a request may wait in the endpoint's queue (AWS: 60-21600)
    endpoint_status_cache: float = 10.0  # seconds the dispatcher trusts its last DescribeEndpoint
    callback_secret_arn: str = ""  # the old shared secret: v1 signatures and the cbs_ key secrets
    key_callback_secret_arn: str = ""  # the key master each key's cbk_ callback secret derives from
    # until when (unix seconds) callbacks also carry the old signature with the one shared secret
    # (template's SharedCallbackSignatureUntil, a date; 0: no longer)
    shared_callback_signature_until: float = 0.0
    key_hash_secret_arn: str = ""  # API keys are kept as HMAC-SHA-256 with it (alphacut.aws.keys.store)
    callback_queue_url: str = ""  # final tasks' callbacks wait here until delivered (aws.callbacks.queue)
    low_balance_queue_url: str = ""  # balances that crossed their threshold (alphacut.billing.low_balance)
    result_link_secret_arn: str = ""  # signs /v1/results links (empty: presigned S3 URLs)
    public_base_url: str = ""  # where links point (a custom domain); "" : as the request came in
    cors_allow_origin: str = "*"  # the web pages allowed to call the APIs (template's CorsAllowOrigin)
    result_url_ttl: int = 3600
    fetch_timeout: float = 10.0
    # Hosts exempt from the image_url address check. Empty in production; the local stack's
    # tests name their own image server here. Never derived from a request.
    url_allowed_hosts: tuple[str, ...] = ()
    # Ports other than 80 and 443 an image_url may use (empty in production)
    url_allowed_ports: tuple[int, ...] = ()
    # the models a function loads and runs once at cold start (names as in alphacut.models.ModelStore)
    warm_models: tuple[str, ...] = ()
    # credit-based keys (alphacut.pricing): what each delivered result costs, how long a call's
    # reservation lives (past the function's own timeout, so only a killed call's outlives it), and
    # the money a credit is invoiced at in statements
    credit_prices: CreditPrices = field(default_factory=CreditPrices)
    credit_hold_seconds: int = 90
    price_per_credit: float = 0.20
    # model runs a key may have in a day that nobody is charged for (no subject found, an answer
    # too large or too late to deliver) before its paid routes are refused until 00:00 UTC; 0: no cap
    unpaid_runs_per_day: int = 200
    # results a UTC day an account's test keys may have, all together (never charged, watermarked)
    test_results_per_day: int = 50
    # touch-ups one result may have (each runs no model and is charged 0, but costs a compose): a
    # paid result bounds the free work it opens
    touch_ups_per_result: int = 20
    # live keys an account may hold (a store's own key management: bounded, one more write each)
    keys_per_account: int = 25
    # live test keys an account may hold, apart from its live keys (test keys never take their slots)
    test_keys_per_account: int = 5
    # how long API Gateway keeps the authorizer's answer for a key value (template's KeyCacheSeconds)
    key_cache_seconds: int = 300

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServiceSettings:
        env = _Environment(os.environ if environ is None else environ)
        defaults = cls()
        names = {f.name for f in fields(cls)} - {
            "result_url_ttl",
            "fetch_timeout",
            "url_allowed_hosts",
            "url_allowed_ports",
            "warm_models",
            "gpu_backlog_threshold",
            "gpu_request_ttl",
            "endpoint_status_cache",
            "cors_allow_origin",
            "credit_prices",
            "credit_hold_seconds",
            "price_per_credit",
            "shared_callback_signature_until",
            "unpaid_runs_per_day",
            "test_results_per_day",
            "touch_ups_per_result",
            "keys_per_account",
            "test_keys_per_account",
            "key_cache_seconds",
        }
        return cls(
            **{name: env.text(SERVICE_VARIABLES[name]) for name in names},
            result_url_ttl=env.integer("RESULT_URL_TTL", defaults.result_url_ttl),
            fetch_timeout=env.number("IMAGE_URL_TIMEOUT", defaults.fetch_timeout),
            url_allowed_hosts=env.names("IMAGE_URL_ALLOWED_HOSTS"),
            url_allowed_ports=env.ports("IMAGE_URL_ALLOWED_PORTS"),
            warm_models=env.names("ALPHACUT_WARM_MODELS"),
            gpu_backlog_threshold=env.integer("GPU_BACKLOG_THRESHOLD", defaults.gpu_backlog_threshold),
            gpu_request_ttl=env.integer("GPU_REQUEST_TTL_SECONDS", defaults.gpu_request_ttl),
            endpoint_status_cache=env.number("ENDPOINT_STATUS_CACHE_SECONDS", defaults.endpoint_status_cache),
            cors_allow_origin=env.text("CORS_ALLOW_ORIGIN", defaults.cors_allow_origin),
            credit_prices=env.prices("CREDIT_PRICES"),
            credit_hold_seconds=env.integer("CREDIT_HOLD_SECONDS", defaults.credit_hold_seconds),
            price_per_credit=env.number("PRICE_PER_CREDIT", defaults.price_per_credit),
            shared_callback_signature_until=env.date("SHARED_CALLBACK_SIGNATURE_UNTIL"),
            unpaid_runs_per_day=env.integer("UNPAID_RUNS_PER_DAY", defaults.unpaid_runs_per_day, minimum=0),
            test_results_per_day=env.integer(
                "TEST_RESULTS_PER_DAY", defaults.test_results_per_day, minimum=0
            ),
            touch_ups_per_result=env.integer(
                "TOUCH_UPS_PER_RESULT", defaults.touch_ups_per_result, minimum=0
            ),
            keys_per_account=env.integer("KEYS_PER_ACCOUNT", defaults.keys_per_account, minimum=1),
            test_keys_per_account=env.integer(
                "TEST_KEYS_PER_ACCOUNT", defaults.test_keys_per_account, minimum=0
            ),
            key_cache_seconds=env.integer("KEY_CACHE_SECONDS", defaults.key_cache_seconds, minimum=0),
        )

    def require(self, name: str) -> str:
        """The resource ``name`` (a field), or ``SettingMissing`` naming its environment variable."""
        value = getattr(self, name)
        if not value:
            raise SettingMissing(f"environment variable {SERVICE_VARIABLES[name]} is not set")
        return str(value)

    def fetch(self, url: str, max_bytes: int, field: str = "image_url") -> bytes:
        """An image from a URL under this deployment's rules (time limit, allowed hosts and ports);
        errors name ``field``."""
        from alphacut.deadlines import budget
        from alphacut.urlfetch import fetch_image

        # out of the call's one deadline (alphacut.deadlines), never a budget of its own beside it
        timeout = budget(self.fetch_timeout)
        return fetch_image(
            url, max_bytes, timeout, self.url_allowed_hosts, self.url_allowed_ports, field=field
        )
