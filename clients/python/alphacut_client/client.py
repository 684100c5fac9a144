"""The client: one ``_call`` that sends, retries and raises; typed helpers per route; ``batch``."""

from __future__ import annotations

import base64
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from alphacut_client.pacing import DeadlineExceeded, Pacer

RETRIED_STATUSES = {429, 500, 502, 503, 504}
RETRIED_CODES = {"request_in_progress"}  # 409: the same Idempotency-Key is still running
FINAL_TASK_STATES = {1, -1, -2, -3, -5, -7, -8}
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "application/zip": "zip"}


class ApiError(Exception):
    """An answer other than 200: the HTTP status and the API's ``code``, ``message``, ``field``,
    ``limit`` (``code`` is ``network_error`` when no answer came back at all)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        limit: Any = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message
        self.field, self.limit, self.request_id, self.retry_after = field, limit, request_id, retry_after

    @classmethod
    def from_response(cls, response: requests.Response) -> ApiError:
        try:
            body = response.json()
        except ValueError:
            body = {}
        error = body.get("error") if isinstance(body, dict) else None
        error = error if isinstance(error, dict) else {}
        retry_after = response.headers.get("Retry-After")
        kind = InsufficientCredits if response.status_code == 402 else cls
        return kind(
            response.status_code,
            error.get("code") or "http_error",
            error.get("message") or body.get("message") or response.reason or "request failed",
            error.get("field"),
            error.get("limit"),
            body.get("request_id") or response.headers.get("X-Request-Id"),
            float(retry_after) if retry_after and retry_after.isdigit() else None,
        )

    @property
    def retryable(self) -> bool:
        return self.status in RETRIED_STATUSES or self.code in RETRIED_CODES or self.code == "network_error"


class InsufficientCredits(ApiError):
    """402: the key's credits do not cover the call (nothing ran, nothing was charged). Never
    retried: it stays so until the key is topped up. ``limit`` is what the call costs."""


@dataclass
class Result:
    """A cutout: the image and/or mask bytes, and what the API said about them."""

    image: bytes | None
    mask: bytes | None
    content_type: str | None
    width: int
    height: int
    found: bool
    bbox: dict[str, int] | None
    request_id: str
    charge: bool | float  # a credit-based key: the credits this result cost (else charged or not)
    remain: float | None  # a credit-based key: its balance; else the calls left today
    check: dict[str, Any] | None = None  # with a preset: {"preset", "passed", "rules": [...]}
    model: str | None = None  # the matting model that made the matte (model= chooses it)
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    def save(self, path: str | Path, mask_path: str | Path | None = None) -> Path:
        """Write the image (or the mask when there is no image) to ``path``; the mask to ``mask_path``."""
        path = Path(path)
        path.write_bytes(self.image if self.image is not None else self.mask or b"")
        if mask_path is not None and self.mask is not None:
            Path(mask_path).write_bytes(self.mask)
        return path

    @property
    def extension(self) -> str:
        return EXTENSIONS.get(self.content_type or "image/png", "png")


@dataclass
class BatchItem:
    path: Path
    output: Path | None = None
    result: Result | None = None
    error: ApiError | None = None
    attempts: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None


class Client:
    """``base_url``: the API (``ApiUrl``, e.g. ``http://127.0.0.1:3000`` locally); ``retries``: how
    many times an attempt that failed for its own sake (5xx, no answer) is retried;
    ``backoff``/``max_backoff``: seconds, doubled per retry (full jitter); ``timeout``: seconds per
    attempt; ``max_limit_wait``: the longest a call waits for the service's limits (429s and spent
    windows, paced for every thread of this client by ``alphacut_client.pacing``) when no
    deadline is given."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 120.0,
        retries: int = 6,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        max_limit_wait: float = 600.0,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        pacer: Pacer | None = None,
    ):
        self.base_url, self.api_key = base_url.rstrip("/"), api_key
        self.timeout, self.retries, self.backoff, self.max_backoff = timeout, retries, backoff, max_backoff
        self.max_limit_wait = max_limit_wait
        self.sleep = sleep
        self.pacer = pacer or Pacer(sleep=sleep)  # one pace for every thread of this client
        self._session = session
        self._local = threading.local()  # requests sessions are not thread-safe: one per thread

    @property
    def session(self) -> requests.Session:
        if self._session is not None:
            return self._session
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    # ---- sending ------------------------------------------------------------------------------------
    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds before retry ``attempt`` (1, 2, ...): Retry-After when given, else full jitter."""
        ceiling = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        jitter = random.uniform(0, ceiling)
        return max(retry_after, jitter) if retry_after is not None else jitter

    def _call(
        self, method: str, path: str, deadline: float | None = None, **kwargs
    ) -> tuple[requests.Response, int]:
        """The answer (status 200) and the sends it took; raises ``ApiError`` otherwise.
        ``deadline`` (the pacer's clock): no send starts after it. A 429 is the service's limit,
        not the call's failure: the pacer holds every thread of this client until it passes, and
        the call is sent again without spending a retry, until the deadline (or
        ``max_limit_wait``); then the 429 itself is raised."""
        headers = {"x-api-key": self.api_key, **kwargs.pop("headers", {})}
        if method == "POST":
            headers.setdefault("Idempotency-Key", str(uuid.uuid4()))  # one per call, the same on every retry
        # encoded once: a multipart body keeps its boundary, so every retry is byte for byte the same
        # request (the API's idempotency check compares bodies)
        prepared = self.session.prepare_request(
            requests.Request(method, self.base_url + path, headers=headers, **kwargs)
        )
        limit = deadline if deadline is not None else self.pacer.clock() + self.max_limit_wait
        failures = sends = 0
        limited: ApiError | None = None
        while True:
            try:
                self.pacer.turn(limit)
            except DeadlineExceeded as late:
                raise limited or ApiError(0, "deadline_exceeded", str(late)) from None
            sends += 1
            try:
                response = self.session.send(prepared, timeout=self.timeout)
            except (requests.ConnectionError, requests.Timeout) as failure:
                self.pacer.learn(None)
                error = ApiError(0, "network_error", str(failure))
            else:
                self.pacer.learn(response.status_code, response.headers)
                if response.status_code == 200:
                    return response, sends
                error = ApiError.from_response(response)
            if error.status == 429:
                limited = error
                continue
            failures += 1
            if not error.retryable or failures > self.retries:
                raise error
            self.sleep(self.delay(failures, error.retry_after))

    @staticmethod
    def _image_fields(image: bytes | str | Path) -> dict[str, Any]:
        if isinstance(image, str) and image.startswith(("http://", "https://")):
            return {"data": {"image_url": image}}
        data = image if isinstance(image, bytes) else Path(image).read_bytes()
        return {"files": {"image_file": ("image", data, "application/octet-stream")}}

    def _post_image(
        self, path: str, image, options: dict[str, Any], deadline: float | None = None
    ) -> tuple[dict[str, Any], int]:
        """``bg_image`` in ``options`` (a path or bytes) is uploaded as ``bg_image_file``."""
        fields = self._image_fields(image)
        files = dict(fields.get("files") or {})
        background = options.pop("bg_image", None)
        if background is not None:
            data = background if isinstance(background, bytes) else Path(background).read_bytes()
            files["bg_image_file"] = ("background", data, "application/octet-stream")
        data = {**fields.get("data", {}), **{k: _form(v) for k, v in options.items() if v is not None}}
        if files:
            response, attempts = self._call("POST", path, deadline, files=files, data=data)
        else:  # an image URL: the API reads JSON (or multipart), not form-urlencoded
            response, attempts = self._call("POST", path, deadline, json=data)
        return response.json(), attempts

    # ---- routes -------------------------------------------------------------------------------------
    def cutout(self, image: bytes | str | Path, **options) -> Result:
        """``POST /v1/cutout`` with any option (type, output, format, size, roi, bg_color, crop, ...)."""
        return self._cutout("/v1/cutout", image, options)[0]

    def selfie(self, image: bytes | str | Path, **options) -> Result:
        return self._cutout("/v1/selfie", image, options)[0]

    def _cutout(
        self, path: str, image, options: dict[str, Any], deadline: float | None = None
    ) -> tuple[Result, int]:
        options = {**options, "return": "base64"}
        body, attempts = self._post_image(path, image, options, deadline)
        return _result(body), attempts

    def costume(
        self, image: bytes | str | Path, classes: Iterable[str] | None = None, **options
    ) -> dict[str, Any]:
        """``POST /v1/costume``: the API's JSON (outfit, one entry per class, classes_found, class_map)."""
        if classes is not None:
            options["classes"] = ",".join(classes)
        return self._post_image("/v1/costume", image, options)[0]

    def submit(self, image: bytes | str | Path, callback_url: str | None = None, **options) -> str:
        """``POST /v1/tasks``: the new task's id."""
        body, _ = self._post_image("/v1/tasks", image, {**options, "callback_url": callback_url})
        return body["data"]["task_id"]

    def task(self, task_id: str, return_type: str = "url") -> dict[str, Any]:
        response, _ = self._call("GET", f"/v1/tasks/{task_id}", params={"return_type": return_type})
        return response.json()["data"]

    def wait(
        self, task_id: str, timeout: float = 300.0, poll: float = 1.0, return_type: str = "url"
    ) -> dict[str, Any]:
        """The task once final (state 1 done, negative failed); ``TimeoutError`` after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            data = self.task(task_id, return_type)
            if data["state"] in FINAL_TASK_STATES:
                return data
            if time.monotonic() > deadline:
                raise TimeoutError(f"task {task_id} is still in state {data['state']} after {timeout} s")
            self.sleep(poll)

    def balance(self) -> float | None:
        """The key's credits left (None: the key is on a daily quota, not credits)."""
        return self._call("GET", "/v1/usage")[0].json().get("balance")

    def usage(self, first: str | None = None, last: str | None = None) -> dict[str, Any]:
        """``GET /v1/usage``: calls and charges per day and route (``first``/``last`` as YYYY-MM-DD)."""
        params = {k: v for k, v in (("from", first), ("to", last)) if v}
        return self._call("GET", "/v1/usage", params=params)[0].json()

    # ---- batches ------------------------------------------------------------------------------------
    def batch(
        self,
        paths: Iterable[str | Path],
        out_dir: str | Path | None = None,
        *,
        concurrency: int = 4,
        route: str = "cutout",
        progress: Callable[[int, int, BatchItem], None] | None = None,
        deadline: float | None = None,
        **options,
    ) -> list[BatchItem]:
        """Every image through ``route`` (cutout or selfie), ``concurrency`` at a time; each result
        saved as ``out_dir/<stem>.<ext>`` when ``out_dir`` is given. A failure is kept in its item
        (after the retries), never raised; ``progress(done, total, item)`` after each. Once the key's
        credits run out (402), the images not sent yet are not sent: each keeps that error.

        The threads share this client's pace (``alphacut_client.pacing``): at the key's rate, an
        item fails only for its own sake (a 4xx other than a limit, 5xx past the retries) or the
        ``deadline`` (seconds from now: no send starts later; an item not sent by then keeps a
        ``deadline_exceeded`` error, or the 429 that held it)."""
        until = self.pacer.clock() + deadline if deadline is not None else None
        items = [BatchItem(Path(path)) for path in paths]
        folder = Path(out_dir) if out_dir is not None else None
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
        lock, done = threading.Lock(), [0]
        spent: list[InsufficientCredits] = []  # the first 402: the rest would get it too

        def one(item: BatchItem) -> BatchItem:
            try:
                if spent:
                    raise spent[0]
                item.result, item.attempts = self._cutout(f"/v1/{route}", item.path, dict(options), until)
                if folder is not None:
                    item.output = item.result.save(folder / f"{item.path.stem}.{item.result.extension}")
            except ApiError as error:
                item.error = error
                if isinstance(error, InsufficientCredits):
                    spent.append(error)
            except OSError as error:
                item.error = ApiError(0, "file_error", error.strerror or str(error), field=str(item.path))
            with lock:
                done[0] += 1
                if progress is not None:
                    progress(done[0], len(items), item)
            return item

        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            return list(pool.map(one, items))


def _form(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _decoded(part: dict[str, Any] | None) -> bytes | None:
    if not part:
        return None
    if "base64" in part:
        return base64.b64decode(part["base64"])
    return requests.get(part["url"], timeout=60).content


def _result(body: dict[str, Any]) -> Result:
    image = body.get("image") or None
    return Result(
        image=_decoded(image),
        mask=_decoded(body.get("mask")),
        content_type=image.get("content_type") if image else None,
        width=body["width"],
        height=body["height"],
        found=body["found"],
        bbox=body.get("bbox"),
        request_id=body["request_id"],
        charge=body["charge"] if isinstance(body.get("charge"), int | float) else bool(body.get("charge")),
        remain=body.get("remain"),
        check=body.get("check"),
        model=body.get("model"),
        raw=body,
    )
