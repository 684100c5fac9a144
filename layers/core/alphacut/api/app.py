"""The native API v1 routes on Powertools' REST resolver. Each Lambda function's handler is
``make_handler(...)``: the same routes everywhere; API Gateway decides which function gets which.

Usage (functions/cutout/app.py)::

    from alphacut.api.app import make_handler
    handler = make_handler()          # warms what ALPHACUT_WARM_MODELS names
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.metrics import MetricUnit

from alphacut.api import billing, keys, services, snapstart, task_pages, web
from alphacut.api.cors import answer_cors
from alphacut.api.credits import current_gate
from alphacut.api.idempotency import make_idempotency
from alphacut.api.metering import CHARGE_HERE, CHARGED_BY_TASK, make_metering, refuse_unless_touch_up
from alphacut.api.openapi import JSON, RouteDoc, build_openapi
from alphacut.api.plan_model import with_plan_model
from alphacut.api.request import (
    BACKGROUND_FIELDS,
    SOURCE_FIELDS,
    apply_return_form,
    background_image,
    downloaded,
    parse_image_request,
)
from alphacut.api.responses import (
    Delivery,
    choose_delivery,
    costume_response,
    error_response,
    json_response,
    make_answer_guard,
    make_deadline_guard,
    result_response,
)
from alphacut.api.vendors import REMOVEBG_ROUTES, ROUTERS, VENDOR_ENVELOPES, VENDOR_ROUTES
from alphacut.caller_scope import current_account, is_test, test_payer
from alphacut.errors import AlphacutError, InvalidOption, ModelUnavailable, NotFound, ResultExpired
from alphacut.extras import refuse_bad_extras
from alphacut.options import CutoutOptions, SubjectType, empty_unset
from alphacut.pricing import credits
from alphacut.scopes import IMAGES, USAGE
from alphacut.settings import EngineSettings
from alphacut.task_states import TaskState
from alphacut.urlfetch import IMAGE_URL

if TYPE_CHECKING:  # the light functions (tasks, usage) never import the pipeline or boto3 here
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from alphacut.api.paid_pipeline import PaidPipeline
    from alphacut.api.request import ImageRequest
    from alphacut.aws.tasks.results import ResultStore
    from alphacut.aws.tasks.service import TaskService
    from alphacut.pipeline import CutoutResult

type LambdaHandler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]

logger = Logger()
metrics = Metrics()
app = APIGatewayRestResolver(cors=answer_cors(services.SETTINGS.cors_allow_origin))

KNOWN_PARAMS = set(CutoutOptions.field_names()) | set(SOURCE_FIELDS) | set(BACKGROUND_FIELDS) | {"return"}
TASK_PARAMS = (
    set(CutoutOptions.field_names())
    | set(SOURCE_FIELDS)
    | set(BACKGROUND_FIELDS)
    | {"sync", "return_type", "callback_url", "name"}
)
COSTUME_PARAMS = KNOWN_PARAMS | {"classes", "return_form"}
MATTE_TYPES = tuple(t for t in SubjectType if t is not SubjectType.COSTUME)
TASK = {JSON: {"$ref": "#/components/schemas/Task"}}
RETURN_TYPE = {"type": "string", "enum": ["url", "base64"], "default": "url"}
NATIVE_HEADERS = (
    "X-Request-Id",
    "X-Alphacut-Type",
    "X-Alphacut-Width",
    "X-Alphacut-Height",
    "X-Alphacut-Bbox",
    "X-Alphacut-Timings",
    "X-Alphacut-Check",
    "X-Alphacut-Confidence",
    "X-Alphacut-Unsure",
    "X-Alphacut-Enlargement",
    "X-Alphacut-Model",
    "X-Alphacut-Result-Id",
    "X-Alphacut-Charge",
    "X-Alphacut-Remain",
    "RateLimit-Policy",
    "RateLimit",
    "Idempotent-Replayed",
)
HTML = {"text/html": {"type": "string"}}
TOUCH_UP_STATUSES = {
    404: "no such thing: a result_id this account has not made (a touch-up), a page",
    410: "result_expired: a touch-up's result_id past its 24 hours",
}
ROUTES = [
    RouteDoc(
        "/v1/cutout",
        "post",
        "Cut out the main subject",
        "Any image route option; type picks the model: auto/object (ISNet), person (ISNet regions "
        "touching a person), stamp (red/blue seals on scans). Every answer has a result_id: a later "
        "call of the account with result_id (and strokes in refine / refine_base64) and no image "
        "makes the result again from its kept matte, with no model run, charged 0 (24 h; then 410).",
        MATTE_TYPES,
        answer_headers=NATIVE_HEADERS,
        extra_responses=TOUCH_UP_STATUSES,
    ),
    RouteDoc(
        "/v1/selfie",
        "post",
        "Cut out people",
        "The person pipeline (ISNet + selfie segmentation).",
        (SubjectType.PERSON,),
        answer_headers=NATIVE_HEADERS,
        extra_responses=TOUCH_UP_STATUSES,
    ),
    RouteDoc(
        "/v1/openapi.json",
        "get",
        "This OpenAPI document",
        answer={JSON: {"type": "object", "required": ["openapi", "paths"]}},
        scopes=(),
    ),
    RouteDoc("/docs", "get", "This document as a readable page (no key)", key_required=False, answer=HTML),
    RouteDoc(
        "/",
        "get",
        "A page to try the service, watch tasks and see usage (no key to load it)",
        key_required=False,
        answer=HTML,
    ),
    RouteDoc(
        "/static/{name}",
        "get",
        "The page's styles and scripts (no key)",
        key_required=False,
        answer={media: {"type": "string"} for media in ("text/css", "application/javascript")},
    ),
    RouteDoc(
        "/v1/results/{token}",
        "get",
        "A result link (no API key): redirects to the image while the link lasts",
        key_required=False,
        answer_status=302,
        answer_headers=("Location",),
        extra_responses={403: "not a link this service made", 410: "the link expired"},
    ),
    RouteDoc(
        "/v1/usage",
        "get",
        "Calls made and charged per day and route for this key's account, and its balance",
        "from, to: UTC days as YYYY-MM-DD (default: the last 30 days); at most 366 days.",
        query={name: empty_unset({"type": "string", "format": "date"}) for name in ("from", "to")},
        answer={JSON: {"$ref": "#/components/schemas/Usage"}},
        scopes=(IMAGES, USAGE),  # the balance a plugin checks before it sends work
    ),
    RouteDoc(
        "/v1/tasks",
        "post",
        "Create an async cutout task (PicWish-style)",
        "image_file, image_base64 or image_url, every cutout option, return_type url|base64, sync=1 "
        "to wait for the result, callback_url to be POSTed the final task once, name a label of the "
        "task's own (the photo's file name) answered back with it. A done task's result_id "
        "(kept 24 h) with strokes in refine / refine_base64 and no image makes a touch-up task: no model "
        "runs, charged 0.",
        MATTE_TYPES,
        query={
            "sync": {"type": "boolean", "default": False},
            "return_type": RETURN_TYPE,
            "callback_url": empty_unset(IMAGE_URL),
            "name": task_pages.TASK_NAME,
        },
        answer=TASK,
        without_options=("return",),  # the task answer: return_type
        registry_models=False,  # the tasks function has no models layer
    ),
    RouteDoc(
        "/v1/costume",
        "post",
        "Cut out the clothes worn (AILabTools apparel cutout)",
        "classes: comma list of tops, coat, dress, skirt, pants, shoes, bag, hat (default all); "
        "return_form mask | whiteBK (AILabTools) or output/format/bg_color; return base64 | url. Answers the "
        "whole outfit, one result per class asked for (absent classes are reported, not drawn), the "
        "classes found with their share of the image, and the class map (0 background, 1 tops .. 8 hat, "
        "9 rest of the person) when a mask is asked for.",
        (SubjectType.COSTUME,),
        answer={JSON: {"type": "object", "required": ["request_id"]}},
        without_options=("result_id",),  # a costume is not kept for a touch-up
    ),
    RouteDoc(
        "/v1/tasks/recent",
        "get",
        "This key's tasks, newest first",
        "A page of the key's tasks (kept 7 days) with their options and, when done, their result links "
        "(24 h) and verdict; next: the cursor of the following page, null after the last.",
        query={
            "limit": {
                "type": "integer",
                "minimum": 1,
                "maximum": task_pages.PAGE,
                "default": task_pages.DEFAULT_PAGE,
            },
            "cursor": {"type": "string", "maxLength": 1000, "description": "the next of the page before"},
        },
        answer={JSON: {"$ref": "#/components/schemas/TaskList"}},
    ),
    RouteDoc(
        "/v1/tasks/{task_id}",
        "get",
        "A task's state, progress, timestamps and result",
        query={"return_type": RETURN_TYPE},
        answer=TASK,
    ),
]


def pipeline() -> PaidPipeline:
    return services.pipeline()


def result_store(ttl_seconds: int | None = None) -> ResultStore:
    """Results of this request, linked back through this API (``/v1/results/<token>``)."""
    return services.result_store(ttl_seconds, app.current_event.raw_event)


def request_id() -> str:
    return services.request_id(app.current_event.raw_event, app.lambda_context)


def api_key_owner() -> str:
    return services.api_key_owner(app.current_event.raw_event)


def options_from(
    params: dict[str, str],
    route_type: SubjectType | None,
    known: set[str] = KNOWN_PARAMS,
    background: bytes | None = None,
    refine: bytes | None = None,
) -> CutoutOptions:
    unknown = sorted(set(params) - known)
    if unknown:
        raise InvalidOption(f"unknown parameter; accepted: {', '.join(sorted(known))}", field=unknown[0])
    options = CutoutOptions.from_mapping(params, bg_image=background, refine=refine)
    if options.type is SubjectType.COSTUME and route_type is not SubjectType.COSTUME:
        raise InvalidOption("costume is served by POST /v1/costume", field="type")
    if route_type is not None:
        if "type" in params and options.type not in (route_type, SubjectType.AUTO):
            raise InvalidOption(
                f"this route cuts out {route_type.value}s: type must be {route_type.value}", field="type"
            )
        options = options.with_changes(type=route_type)
    return options


def cutout_answer(route: str, route_type: SubjectType | None = None) -> Response[Any]:
    """Parse, run the pipeline, shape the answer."""
    engine = pipeline()
    max_bytes = engine.limits.max_bytes
    request = parse_image_request(app.current_event.raw_event, services.SETTINGS, max_bytes, fetch_urls=False)
    if request.source == "result":
        return touch_up_answer(route, route_type, request)
    refuse_unless_touch_up(app)
    engine.reserve(options_from(request.params, route_type))  # the price as asked, before any download
    request = downloaded(request, services.SETTINGS, max_bytes)
    background = background_image(request, services.SETTINGS, max_bytes)
    options = options_from(request.params, route_type, background=background, refine=request.refine)
    delivery = choose_delivery(request.params, request.accept, options)
    result = kept_for_touch_up(engine.run(request.image, options), request.image)
    app.append_context(empty_result=not result.found)
    metrics.add_metric(name=f"{route}Delivered", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="PipelineMilliseconds", unit=MetricUnit.Milliseconds, value=result.timings.total)
    logger.info(
        "cutout",
        extra={
            "route": route,
            "source": request.source,
            "options": options.to_dict(),
            "input": [result.input_width, result.input_height],
            "found": result.found,
            "timings_ms": dict(result.timings),
        },
    )
    store = result_store() if delivery.value == "url" else None
    answer = result_response(result, delivery, request_id(), store)
    app.append_context(charge=CHARGE_HERE)
    return answer


def touch_up_owner() -> str:
    """Whose kept results a call reads and writes: the account's; a test key's apart (its previews
    are never made again as the account's full, paid results)."""
    account = current_account()
    return test_payer(account) if is_test() else account


def kept_for_touch_up(result: CutoutResult, photo: bytes) -> CutoutResult:
    """The result with its ``result_id``: its photo and matte kept 24 h for a touch-up (none where
    no results bucket is configured, nor for an empty result: nothing was charged for it, and a
    touch-up of the model's matte would deliver for free what the call's strokes erased)."""
    import dataclasses

    store = services.kept_mattes()
    made = store.keep_later(photo, result, touch_up_owner()) if store is not None else None
    if made is None:
        return result
    result_id, keep = made
    keep()
    return dataclasses.replace(result, result_id=result_id)


def kept_results() -> Any:
    """Where results are kept for touch-ups (``alphacut.aws.kept_mattes``), or a 404 naming
    ``result_id`` where this deployment keeps none."""
    store = services.kept_mattes()
    if store is None:
        raise NotFound("results are not kept in this deployment", field="result_id")
    return store


def count_touch_up(result_id: str | None) -> None:
    """One more touch-up of the result: each is free, so one result opens at most
    ``TOUCH_UPS_PER_RESULT`` of them (409 ``touch_ups_spent`` past them)."""
    meter = services.usage_meter()
    if meter is not None and result_id is not None:
        meter.limits.count_touch_up(result_id, services.SETTINGS.touch_ups_per_result)


def touch_up_answer(route: str, route_type: SubjectType | None, request: ImageRequest) -> Response[Any]:
    """A kept result made again from its matte with the strokes in ``refine``: no model runs, so
    nothing is reserved and the route does not say ``CHARGE_HERE`` (the metering charges 0)."""
    from alphacut.touchup import KeptMatte

    max_bytes = pipeline().limits.max_bytes
    result_id = options_from(request.params, route_type).result_id
    kept = KeptMatte.from_bytes(kept_results().get(result_id, touch_up_owner()))  # before any download
    count_touch_up(result_id)
    background = background_image(request, services.SETTINGS, max_bytes)
    options = options_from(request.params, route_type, background=background, refine=request.refine)
    delivery = choose_delivery(request.params, request.accept, options)
    gate = current_gate()
    if is_test() and gate is not None:  # a test key's touch-up is one of its account's test results
        gate.reserve_call(options)
        app.append_context(charge=CHARGE_HERE)  # its slot kept when delivered (a test key pays nothing)
    result = pipeline().retouch(kept, options)
    result.result_id = options.result_id
    metrics.add_metric(name=f"{route}TouchedUp", unit=MetricUnit.Count, value=1)
    logger.info(
        "touch-up",
        extra={"route": route, "options": options.to_dict(), "strokes": request.refine is not None},
    )
    store_for_url = result_store() if delivery.value == "url" else None
    return result_response(result, delivery, request_id(), store_for_url)


@app.post("/v1/cutout")
def cutout_route() -> Response[Any]:
    return cutout_answer("Cutout")


@app.post("/v1/selfie")
def selfie_route() -> Response[Any]:
    return cutout_answer("Selfie", SubjectType.PERSON)


@app.post("/v1/costume")
def costume_route() -> Response[Any]:
    from alphacut.costume import parse_garments

    engine = pipeline()
    max_bytes = engine.limits.max_bytes
    request = parse_image_request(app.current_event.raw_event, services.SETTINGS, max_bytes, fetch_urls=False)
    if request.source == "result":
        raise InvalidOption("a costume is not kept for a touch-up: send the photo", field="result_id")
    params = apply_return_form(dict(request.params))
    garments = parse_garments(params.pop("classes", None))
    engine.reserve(options_from(params, SubjectType.COSTUME, COSTUME_PARAMS), costume=True)
    request = downloaded(request, services.SETTINGS, max_bytes)
    background = background_image(request, services.SETTINGS, max_bytes)
    options = options_from(params, SubjectType.COSTUME, COSTUME_PARAMS, background)
    raw_delivery = (params.get("return") or "base64").strip().lower()
    if raw_delivery not in (Delivery.BASE64, Delivery.URL):
        raise InvalidOption("must be base64 or url (the answer holds several images)", field="return")
    delivery = Delivery(raw_delivery)
    result = engine.cut_out_garments(request.image, options, garments)
    app.append_context(empty_result=not result.outfit.found)
    metrics.add_metric(name="CostumeDelivered", unit=MetricUnit.Count, value=1)
    logger.info(
        "costume",
        extra={
            "source": request.source,
            "options": options.to_dict(),
            "classes": [g.value for g in garments],
            "input": [result.outfit.input_width, result.outfit.input_height],
            "timings_ms": dict(result.timings),
        },
    )
    store = result_store() if delivery is Delivery.URL else None
    answer = costume_response(result, delivery, request_id(), store)
    app.append_context(charge=CHARGE_HERE)
    return answer


def parse_return_type(value: str | None) -> str:
    value = (value or "url").strip().lower()
    if value not in ("url", "base64"):
        raise InvalidOption(f"must be url or base64, not {value!r}", field="return_type")
    return value


def task_service() -> TaskService:
    return services.task_service()


def _task_answer(data: dict[str, Any], record: Any = None) -> dict[str, Any]:
    """The task's answer; a done task of a credit key says what it cost (``cost``, credits): the
    poll itself costs nothing (its ``charge`` is 0), the task was charged once, at its end."""
    if record is not None:
        from alphacut.aws.tasks.table import is_billable

        caller = services.caller(app.current_event.raw_event)
        paid = caller is not None and caller.plan is not None and caller.plan.credit_based
        if paid and record.state is TaskState.DONE and not record.test:
            price = (
                services.SETTINGS.credit_prices.for_options(record.cutout_options)
                if is_billable(record)
                else 0
            )
            data = {**data, "cost": credits(price)}
    return {"status": 200, "message": "success", "data": data, "request_id": request_id()}


@app.post("/v1/tasks")
def create_task_route() -> Response[Any]:
    from alphacut.aws.tasks.table import is_billable
    from alphacut.options import parse_bool

    service = task_service()
    request = parse_image_request(
        app.current_event.raw_event, services.SETTINGS, service.max_bytes, fetch_urls=False
    )
    touch_up = request.source == "result"
    if not touch_up:
        refuse_unless_touch_up(app)
    params = dict(request.params)
    return_type = parse_return_type(params.get("return_type"))
    sync = parse_bool(params.get("sync", "0"), "sync")
    background = background_image(request, services.SETTINGS, service.max_bytes, fetch_urls=False)
    options = options_from(params, None, TASK_PARAMS, background, request.refine)
    # a background or strokes that cannot be used: a 400 now, as the sync route answers it, not a
    # failed task
    refuse_bad_extras(options, EngineSettings.from_env().limits)
    if touch_up:  # its result kept and this account's, or a 404 / 410 now rather than a failed task
        kept_results().check(options.result_id, touch_up_owner())
        count_touch_up(options.result_id)
    name = task_pages.task_name(params.get("name"))
    task_id = service.submit(
        request.image or None,
        params.get("image_url") if request.source == "url" else None,
        options if touch_up else with_plan_model(options),
        api_key_owner(),
        params.get("callback_url"),
        services.public_base_url(app.current_event.raw_event),
        # a live key's touch-up reserves nothing (charged 0); a test key's is one of its test results
        credit_hold=None if touch_up and not is_test() else current_gate(),
        name=name,
    )
    metrics.add_metric(name="TasksCreated", unit=MetricUnit.Count, value=1)
    left = services.seconds_left(app.lambda_context)
    record = service.wait(task_id, api_key_owner(), left) if sync else service.table.get(task_id)
    if is_billable(record):
        app.append_context(charge=CHARGED_BY_TASK)
    return json_response(200, _task_answer(service.describe(record, return_type, result_store()), record))


@app.get("/v1/tasks/recent")
def recent_tasks_route() -> Response[Any]:
    service = task_service()
    query = app.current_event.query_string_parameters or {}
    owner = api_key_owner()
    limit, after = (
        task_pages.read_limit(query.get("limit")),
        task_pages.read_cursor(query.get("cursor"), owner),
    )
    records, last = service.table.recent(owner, limit, after)
    store = result_store()
    tasks = [
        {**_task_answer(service.describe(r, "url", store, look=False), r)["data"], "options": r.options}
        for r in records
    ]
    data = {"tasks": tasks, "next": task_pages.next_cursor(last)}
    return json_response(200, {"status": 200, "message": "success", "data": data, "request_id": request_id()})


@app.get("/v1/tasks/<task_id>")
def get_task_route(task_id: str) -> Response[Any]:
    service = task_service()
    query = app.current_event.query_string_parameters or {}
    record = service.table.get(task_id, api_key_owner())
    return_type = parse_return_type(query.get("return_type"))
    return json_response(200, _task_answer(service.describe(record, return_type, result_store()), record))


@app.get("/v1/usage")
def usage_route() -> Response[Any]:
    from alphacut.aws.ledger.usage import default_range

    meter = services.usage_meter()
    if meter is None:
        raise NotFound("metering is not configured in this deployment")
    first, last = default_range(app.current_event.query_string_parameters or {})
    owner = api_key_owner()
    known = services.caller(app.current_event.raw_event)
    plan = known.plan if known is not None else None
    test = known is not None and known.test
    credit_based = plan is not None and plan.credit_based and not test
    account_id = services.account_of(app.current_event.raw_event)
    # the account's usage and balance; a test key's: its account's test results, never its money
    payer = test_payer(account_id) if test else account_id
    report = meter.report(payer, first, last, with_credits=credit_based)
    balance = meter.credits.balance(payer) if credit_based else None
    account = {
        "account_id": account_id,
        "plan": plan.name if plan is not None else None,
        "daily_quota": plan.quota if plan is not None else None,
        "credit_based": credit_based,
        "balance": credits(balance) if balance is not None else None,
    }
    return json_response(200, {"request_id": request_id(), "key_id": owner, **account, **report})


@app.get("/v1/results/<token>")
def result_link_route(token: str) -> Response[Any]:
    """A result link: checked, then redirected to the object presigned for a few minutes. No API
    key (a link is handed to browsers and shops' servers); not metered."""
    signer = services.link_signer()
    if signer is None:
        raise NotFound("result links are not configured in this deployment")
    key = signer.open(token)
    store = services.result_store()
    if not store.exists(key):
        raise ResultExpired("the result was deleted at the end of its storage lifetime", field="token")
    location = store.presigned(key)
    return Response(
        status_code=302,
        content_type="application/json",
        body="",
        headers={"Location": location, "Cache-Control": "no-store"},
    )


def request_server() -> str | None:
    """This API's own URL on AWS (its execute-api host and stage); None elsewhere."""
    headers = app.current_event.headers or {}
    host = next((v for k, v in headers.items() if k.lower() == "host"), None)
    stage = (app.current_event.get("requestContext") or {}).get("stage")
    return f"https://{host}/{stage}" if host and stage and "execute-api" in host else None


# what each keyless reference serves: (its routes, its title, whether it lists the models here)
REFERENCES: dict[str, tuple[Callable[[], list[RouteDoc]], str, bool]] = {
    "native": (lambda: ROUTES + VENDOR_ROUTES + billing.ROUTES + keys.ROUTES, "alphacut", True),
    "removebg": (lambda: REMOVEBG_ROUTES, "alphacut: remove.bg's API", False),
    "all": (lambda: ALL_ROUTES, "alphacut", False),  # /docs: remove.bg's routes too, one reference
}


@lru_cache(maxsize=16)
def reference_text(kind: str, server: str | None, page: bool = False) -> str:
    """A reference built once per container (and server it names): the routes do not change while
    it runs, and a keyless route must cost a look-up, not a rebuild of the whole document, however
    often it is called. ``page``: /docs's HTML with the document inline, else the JSON."""
    routes, title, lists_models = REFERENCES[kind]
    document = build_openapi(routes(), server, title, registered_models() if lists_models else ())
    return web.docs_html(document) if page else json.dumps(document, separators=(",", ":"))


def reference_answer(kind: str) -> Response[Any]:
    return Response(status_code=200, content_type=JSON, body=reference_text(kind, request_server()))


def registered_models() -> tuple[str, ...]:
    """The matting models of the models layer beside this function that run here (none where it
    has no models layer: the document then says any model name; the GPU endpoint's own are for
    tasks)."""
    from alphacut.models import load_manifest
    from alphacut.models.registry import matting_specs

    try:
        specs = matting_specs(load_manifest(EngineSettings.from_env().models_dir))
    except ModelUnavailable:
        return ()
    return tuple(sorted(name for name, spec in specs.items() if spec.runs_at("lambda")))


@app.get("/v1/openapi.json")
def openapi_route() -> Response[Any]:
    app.append_context(exact_envelope=True)  # the document as written: no charge/remain members
    return reference_answer("native")


@app.get("/v1.0/openapi.json")
def removebg_openapi_route() -> Response[Any]:
    """remove.bg's API has its own host on AWS: its own document, with that host as the server."""
    app.append_context(exact_envelope=True)
    return reference_answer("removebg")


@app.get("/docs")
def docs_route() -> Response[Any]:
    """The API reference, readable, with no key (the document is inline)."""
    return web.html_page(reference_text("all", request_server(), page=True))


@app.not_found
def not_found(_error: Exception) -> Response[Any]:
    return error_response(
        NotFound(f"no route {app.current_event.http_method} {app.current_event.path}"), request_id()
    )


def handle_alphacut_error(error: AlphacutError) -> Response[Any]:
    logger.info("request refused", extra={"error": error.to_dict()})
    return error_response(error, request_id())


def handle_unexpected(error: Exception) -> Response[Any]:
    logger.exception("unexpected error")
    return error_response(error, request_id())


# registered by call, not as decorators: Powertools' exception_handler has no annotations
app.exception_handler(AlphacutError)(handle_alphacut_error)
app.exception_handler(Exception)(handle_unexpected)


def error_answer(error: Exception) -> Response[Any]:
    """The app's error table as a function (the metering middleware answers errors with it)."""
    if isinstance(error, AlphacutError):
        return handle_alphacut_error(error)
    return handle_unexpected(error)


# routes API Gateway serves without a key: neither metered nor kept for idempotency
ALL_ROUTES: list[RouteDoc] = ROUTES + VENDOR_ROUTES + REMOVEBG_ROUTES + billing.ROUTES + keys.ROUTES
KEYLESS = frozenset(route.path for route in ALL_ROUTES if not route.key_required)
# the same with their methods: each has the stage throttle of keyless routes (template.yaml)
KEYLESS_METHODS = frozenset(
    (route.path, route.method.upper()) for route in ALL_ROUTES if not route.key_required
)
# routes that run a model or submit a task: a credit key that can pay for nothing is refused there
# before its body is read (AIDGE's GET twin of its POST route shares its path); buying credits is
# not one of them
PAID = frozenset(
    route.path
    for route in ALL_ROUTES
    if route.key_required and route.method == "post" and route.path not in billing.PATHS | keys.PATHS
)

# each keyed route's scopes, any one of which opens it (alphacut.scopes)
ROUTE_SCOPES = {
    (route.path, route.method.upper()): route.scopes for route in ALL_ROUTES if route.key_required
}

# the paid routes that submit tasks: their unpaid model runs happen in the task functions
SUBMITS = frozenset(path for path in PAID if "/tasks" in path)

# the paid routes that take a touch-up (``result_id``): charged 0, so open to a key at 0 credits
TOUCH_UPS = frozenset({"/v1/cutout", "/v1/selfie", "/v1/tasks"})


# outermost first: metering counts every answer; idempotency keeps what the guards let out; the
# deadline guard turns an answer ready after API Gateway's 29 s into an uncharged 504
def refusal_answer(resource: str, error: Exception) -> Response[Any]:
    """A refusal before the route runs (over the key's rate), in the route's own contract."""
    envelope = VENDOR_ENVELOPES.get(resource.rstrip("/") or "/")
    return envelope.answer(error, request_id()) if envelope is not None else error_answer(error)


app.use(
    middlewares=[
        make_metering(KEYLESS, refusal_answer, PAID, SUBMITS, ROUTE_SCOPES, TOUCH_UPS),
        make_idempotency(error_answer, KEYLESS),
        make_deadline_guard(error_answer),
        make_answer_guard(error_answer),
    ]
)
for vendor_router in ROUTERS:
    app.include_router(vendor_router)
app.include_router(web.router)
app.include_router(billing.router)
app.include_router(keys.router)


def make_handler() -> LambdaHandler:
    """The Lambda entry point. The models the function's ``ALPHACUT_WARM_MODELS`` names (set per
    function in template.yaml, the one place that says it) are loaded and run once at cold start
    (init is not billed the same way and the first request should not pay for it). Functions that
    run no model name none and never import the pipeline."""
    names = services.SETTINGS.warm_models
    if names:
        pipeline().warm_up(names)
        snapstart.register()

    @logger.inject_lambda_context(clear_state=True)
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        return app.resolve(event, context)

    if not names:
        return handler  # Lambda's active tracing still records each call; the SDK costs 150 ms of init
    from aws_lambda_powertools import Tracer

    traced: LambdaHandler = Tracer().capture_lambda_handler(capture_response=False)(handler)
    return traced
