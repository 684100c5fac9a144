"""One error hierarchy for the whole service.

Every error names what is wrong (``field`` for a request field, ``limit`` for the bound it broke);
the API layer maps each class to its HTTP status in one table (``HTTP_STATUS`` below), so callers
never pick statuses by hand.

Usage::

    raise InvalidOption("must be one of png, jpg, webp", field="format")
"""

from __future__ import annotations

from typing import Any


class AlphacutError(Exception):
    """Base class: ``code`` is a stable machine-readable name, ``message`` a sentence for people."""

    code = "internal_error"

    def __init__(self, message: str, *, field: str | None = None, limit: Any = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.limit = limit

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": str(self)}
        if self.field is not None:
            body["field"] = self.field
        if self.limit is not None:
            body["limit"] = self.limit
        return body

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class InvalidOption(AlphacutError):
    """A request field has a value the service does not accept."""

    code = "invalid_option"


class ImageTooLarge(AlphacutError):
    """The image is over the byte, pixel or side limit."""

    code = "image_too_large"


class ResolutionTooHigh(ImageTooLarge):
    """The image has more pixels (or a longer side) than accepted; its bytes may be few."""


class ImageTooSmall(AlphacutError):
    """The image is under the minimum side."""

    code = "image_too_small"


class UnsupportedImageFormat(AlphacutError):
    """The bytes are not an image, or an image in a format the service does not read."""

    code = "unsupported_image_format"


class CorruptImage(AlphacutError):
    """The bytes start like an image of a known format but cannot be decoded (truncated, damaged)."""

    code = "invalid_image"


class NoSubjectFound(AlphacutError):
    """Nothing in the image was taken for a subject (routes that must deliver one refuse it)."""

    code = "no_subject"


class UnsupportedMediaType(AlphacutError):
    """The request body's Content-Type is not one the route reads."""

    code = "unsupported_media_type"


class UrlNotAllowed(AlphacutError):
    """An image URL that must not be fetched: not http(s), or a private, loopback or link-local address."""

    code = "url_not_allowed"


class UrlFetchFailed(AlphacutError):
    """An image URL could not be downloaded (unreachable, error status, timeout)."""

    code = "url_fetch_failed"


class InsufficientCredits(AlphacutError):
    """A credit-based key's balance does not cover the call (refused before any work is done)."""

    code = "insufficient_credits"


class KeyBudgetSpent(InsufficientCredits):
    """The key's own daily limit of credits is spent (the account's other keys go on): its paid
    calls are refused until 00:00 UTC (``retry_after`` seconds from now)."""

    code = "key_budget_spent"

    def __init__(self, message: str, *, limit: Any, retry_after: int):
        super().__init__(message, field="daily_credit_limit", limit=limit)
        self.retry_after = max(1, retry_after)


class TooManyInFlight(AlphacutError):
    """Too many of one key's reservations are between their writes at once (each is an entry on
    the key's balance item, whose size DynamoDB caps): nothing was taken; retry after
    ``retry_after`` seconds."""

    code = "too_many_in_flight"
    retry_after = 1


class RateLimited(AlphacutError):
    """Over the key's request rate (its plan's rate and burst): retry after ``retry_after`` seconds."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int = 1, limit: Any = None):
        super().__init__(message, field="x-api-key", limit=limit)
        self.retry_after = max(1, retry_after)


class UnpaidRunsSpent(RateLimited):
    """The key's model runs that were not charged (no subject found, an answer too large or too
    late to deliver) reached today's budget: its paid routes are refused until 00:00 UTC
    (``retry_after`` seconds from now). Its results, polls and account reads stay open."""

    code = "unpaid_runs_spent"


class TooManyCallbacks(AlphacutError):
    """The key has as many callbacks waiting to be delivered as it may (``alphacut.aws.callbacks.slots``)."""

    code = "too_many_callbacks"
    retry_after = 60


class QuotaExceeded(AlphacutError):
    """The key's daily quota of delivered results is spent: it resets at 00:00 UTC
    (``retry_after`` seconds from now)."""

    code = "quota_exceeded"

    def __init__(self, message: str, *, retry_after: int, limit: int, resets_at: str):
        super().__init__(message, field="x-api-key", limit=limit)
        self.retry_after = max(1, retry_after)
        self.resets_at = resets_at

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "resets_at": self.resets_at}


class TouchUpsSpent(AlphacutError):
    """The result was touched up as often as one result may be (``TOUCH_UPS_PER_RESULT``): a new
    paid call makes a new result to touch up."""

    code = "touch_ups_spent"


class NotFound(AlphacutError):
    """No such resource (task, route) for this caller."""

    code = "not_found"


class InsufficientScope(AlphacutError):
    """The key is known but its scopes do not open this route (``alphacut.scopes``)."""

    code = "insufficient_scope"

    def __init__(self, message: str, *, scope: str):
        super().__init__(message, field="x-api-key")
        self.scope = scope

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "scope": self.scope}


class Conflict(AlphacutError):
    """The request clashes with an earlier one (an Idempotency-Key reused or still in flight), or
    with a change made meanwhile (a key rotated while revoked or suspended: retry)."""

    code = "conflict"


class LastKeysKey(Conflict):
    """The key asked to be revoked is the account's last one that may manage keys."""

    code = "last_keys_key"


class KeyRevoked(AlphacutError):
    """The calling key was revoked (API Gateway still lets it in until its cached answer ends):
    what needs a live key (managing keys) refuses it."""

    code = "key_revoked"


class AccountSuspended(AlphacutError):
    """A card payment of the account was disputed: its keys are refused until the operator decides
    (``alphacut keys reinstate-account``)."""

    code = "account_suspended"


class TooManyKeys(AlphacutError):
    """The account holds as many live keys as it may (revoke one first)."""

    code = "too_many_keys"


class RequestInProgress(Conflict):
    """An Idempotency-Key whose first request is still running: retry it a little later."""

    code = "request_in_progress"


class ResponseTooLarge(AlphacutError):
    """The answer is over what a synchronous call can carry back (Lambda's 6 MB): never charged."""

    code = "response_too_large"


class LinkInvalid(AlphacutError):
    """A result link that this service did not make (forged, damaged)."""

    code = "invalid_link"


class LinkExpired(AlphacutError):
    """A genuine result link past its expiry."""

    code = "link_expired"


class ResultExpired(AlphacutError):
    """A finished task's (or a replayed request's) result, or one kept for a touch-up
    (``alphacut.touchup``), is past its storage lifetime."""

    code = "result_expired"


class DeadlineExceeded(AlphacutError):
    """The call could not finish before the API's deadline (API Gateway answers 504 at 29 s)."""

    code = "deadline_exceeded"


class SignupsLimited(RateLimited):
    """Too many sign-ups for one address, or for the whole service, in the window: a script cannot
    mint trial credits (``alphacut.billing.signup``)."""

    code = "too_many_signups"

    def __init__(self, message: str, *, retry_after: int, limit: int, field: str = "email"):
        super().__init__(message, retry_after=retry_after, limit=limit)
        self.field = field


class PaymentsLimited(RateLimited):
    """The key asked for as many PaymentIntents and SetupIntents this hour as it may: a leaked key
    cannot test cards through the service (``alphacut.billing.purchases``)."""

    code = "too_many_payments"

    def __init__(self, message: str, *, retry_after: int, limit: int):
        super().__init__(message, retry_after=retry_after, limit=limit)
        self.field = "credits"


class NoticesLimited(RateLimited):
    """The key's mails of the day (notice confirmations and notices) are sent: a leaked key cannot
    make the service mail any address without limit (``alphacut.billing.notices``)."""

    code = "too_many_notices"

    def __init__(self, message: str, *, retry_after: int, limit: int):
        super().__init__(message, retry_after=retry_after, limit=limit)
        self.field = "email"


class SignatureInvalid(AlphacutError):
    """A webhook whose signature does not check out with the secret it must be signed with."""

    code = "invalid_signature"


class BillingUnavailable(AlphacutError):
    """Payments are not set up on this deployment, or the payment provider did not answer."""

    code = "billing_unavailable"


class PaymentRefused(BillingUnavailable):
    """The payment provider refused the request itself (a 4xx other than a declined card: an
    unknown card, an idempotency key reused with other parameters): sending it again cannot mend
    it. A route answers it as ``BillingUnavailable``; the automatic top-up tells the store at once."""


class PaymentDeclined(AlphacutError):
    """The card was declined (the provider's reason in the message); ``payment_id``: the
    PaymentIntent the declined charge belongs to, where the provider made one (recorded as failed)."""

    code = "payment_declined"
    payment_id = ""


class ServiceBusy(AlphacutError):
    """A service behind the call kept asking it to slow down past the bound it is given (DynamoDB
    leaving keys unread, SES throttling its sends): nothing was done; retry after ``retry_after``
    seconds."""

    code = "service_busy"

    def __init__(self, message: str, *, retry_after: int, limit: Any = None, field: str | None = None):
        super().__init__(message, field=field, limit=limit)
        self.retry_after = max(1, retry_after)


class ModelUnavailable(AlphacutError):
    """A model file is missing or fails to load: a deployment problem, not the client's."""

    code = "model_unavailable"


# The one place errors meet HTTP. Anything not listed (including plain exceptions) is a 500.
HTTP_STATUS: dict[type[AlphacutError], int] = {
    InvalidOption: 400,
    UrlNotAllowed: 400,
    InsufficientCredits: 402,
    PaymentDeclined: 402,
    SignatureInvalid: 400,
    BillingUnavailable: 503,
    ServiceBusy: 503,
    TooManyInFlight: 429,
    RateLimited: 429,
    QuotaExceeded: 429,
    TooManyKeys: 409,
    TouchUpsSpent: 409,
    TooManyCallbacks: 429,
    NotFound: 404,
    Conflict: 409,
    UnsupportedMediaType: 415,
    UrlFetchFailed: 422,
    ImageTooLarge: 413,
    ResponseTooLarge: 413,
    LinkInvalid: 403,
    InsufficientScope: 403,
    KeyRevoked: 403,
    AccountSuspended: 403,
    LinkExpired: 410,
    ResultExpired: 410,
    DeadlineExceeded: 504,
    UnsupportedImageFormat: 415,
    ImageTooSmall: 422,
    NoSubjectFound: 422,
    CorruptImage: 422,
    ModelUnavailable: 500,
}


def http_status(error: BaseException) -> int:
    """The HTTP status for an error, by the nearest class in ``HTTP_STATUS``."""
    for cls in type(error).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return 500
