"""AWS behaviour moto lacks, patched into moto (it runs in this process) while the stack runs:

- S3 event notifications carry each put's ``sequencer``, as S3's do: two puts of one key differ,
  duplicate deliveries of one notification do not (moto sends none);
- Step Functions refuses a closed execution's name for 90 days after it closed, then accepts it
  again (moto refuses it for ever); a running execution started again with the same name and
  input is the same execution, as on AWS. ``clock`` decides what "90 days" is (tests move it);
- API Gateway's management API answers 429 ``TooManyRequestsException`` past its account-wide
  rate (10 requests a second, bursts of 40), for every caller but the local gateway itself (on
  AWS the data plane reads keys and plans without that API). ``management_calls`` counts them;
- ``CreateApiKey`` at most 5 a second (429 ``TooManyRequestsException``) and at most 10,000 API keys
  in the account (``LimitExceededException``), as API Gateway's quotas have them;
- Step Functions' ``SendTaskFailure`` keeps its ``cause`` (moto's handler drops it, and a Catch's
  ``$.error.Cause`` is then missing);
- ``StopExecution`` ends a running execution ABORTED at once, whatever its running step does next
  (moto kept it RUNNING until the step returned, then FAILED when the step's interruption raised),
  so the status rule sees ABORTED; a closed execution's task token is refused ``TaskTimedOut``
  by ``SendTaskFailure`` too (moto refused it for ``SendTaskSuccess`` only);
- SES as a new account has it: in the **sandbox** (``ses_sandbox``, on until a test turns it off, as
  AWS's production access does), where a message is sent only to verified identities (an address or
  its domain), else ``MessageRejected``; moto already refuses an unverified sender. ``GetAccount``
  says ``ProductionAccessEnabled`` (moto lacks it) and ``GetEmailIdentity`` says an identity moto
  sends from is ``VerifiedForSendingStatus`` (moto says false for every one);
- SES's sending quotas as ``GetAccount`` reports them: at most ``MaxSendRate`` messages a second
  (1) and ``Max24HourSend`` in any 24 hours (200 in the sandbox, 50,000 out of it; a test may set
  ``ses_daily_quota``), past either ``ThrottlingException`` ("Maximum sending rate exceeded",
  "Daily message quota exceeded"), and ``SentLast24Hours`` counted; ``ses_sending_paused`` (a
  test's, as AWS pauses an account over its bounce or complaint rate) refuses every send
  ``SendingPausedException`` and says ``SendingEnabled`` false;
- SES's suppression list (moto has none): ``ses_feedback(address, "BOUNCE" | "COMPLAINT")`` is the
  recipient's server bouncing the last message sent to it for good, or its user marking it as spam;
  SES then lists the address when that message's configuration set has the reason in its
  ``SuppressionOptions``, and ``GetSuppressedDestination`` answers it (``NotFoundException`` for an
  address not listed).

Usage::

    rules = AwsRules(clock=time.time)
    rules.apply() ... rules.restore()
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from datetime import UTC
from typing import Any
from urllib.parse import unquote

from alphacut_dev.local.account import ACCOUNT, REGION
from alphacut_dev.local.gateway import TokenBucket
from alphacut_dev.local.iam import signed_by
from alphacut_dev.local.patches import MotoPatches

SES_SEND_RATE = 1.0  # messages a second: a new account's MaxSendRate
SES_SANDBOX_QUOTA, SES_PRODUCTION_QUOTA = 200, 50_000  # Max24HourSend in the sandbox, and out of it
NAME_REUSE_SECONDS = 90 * 86400  # Step Functions: a closed standard execution's name, 90 days
MANAGEMENT_RATE, MANAGEMENT_BURST = 10.0, 40  # API Gateway's management API, per account
GATEWAY_USER_AGENT = "alphacut-local-gateway"  # the local gateway's own reads: not throttled
THROTTLED_READS = ("get_usage_plans", "get_usage_plan", "get_usage_plan_keys", "get_api_keys", "get_api_key")
# API Gateway's API keys: at most 10,000 per account and region (not raisable), CreateApiKey at 5
# requests a second per account (fixed): what the service's own key store is for
MAX_API_KEYS, CREATE_API_KEY_RATE = 10_000, 5.0


def _closed_execution_holds(backend: Any, token: str) -> bool:
    """Whether ``token`` is a task token of an execution that is no longer running."""
    for execution in backend._get_executions():
        worker = execution.exec_worker
        if execution.status != "RUNNING" and worker and worker.env.callback_pool_manager.get(token):
            return True
    return False


class AwsRules(MotoPatches):
    def __init__(self, clock: Callable[[], float] = time.time):
        super().__init__()
        self.clock = clock
        self.ses_sandbox = True  # a new account's SES: verified recipients only (tests turn it off)
        self.ses_daily_quota: int | None = None  # None: SES's for the sandbox or production access
        self.ses_sending_paused = False
        self.ses_sent: list[float] = []  # when each message of the last 24 hours was taken
        self.ses_sent_with: dict[str, str] = {}  # recipient -> the configuration set of its last message
        self.ses_suppressed: dict[str, str] = {}  # SES's suppression list: address -> reason
        self._ses_rate = TokenBucket(SES_SEND_RATE, 1, lambda: self.clock())  # a clock a test moves
        self._sequence = itertools.count(1)
        # the management API calls answered or refused: (operation, the caller's access key id)
        self.management_calls: list[tuple[str, str]] = []
        self._management = TokenBucket(MANAGEMENT_RATE, MANAGEMENT_BURST)  # the gateway's own bucket
        self._key_creation = TokenBucket(CREATE_API_KEY_RATE, int(CREATE_API_KEY_RATE), clock)

    def _management_call_allowed(self, name: str, caller: str = "") -> bool:
        self.management_calls.append((name, caller))
        return self._management.take() == 0

    def apply(self) -> None:
        from moto.s3 import notifications
        from moto.stepfunctions.exceptions import ExecutionAlreadyExists
        from moto.stepfunctions.models import StateMachine

        s3_event = notifications._get_s3_event
        sequence, rules = self._sequence, self

        def with_sequencer(*args: Any, **kwargs: Any) -> dict[str, Any]:
            event: dict[str, Any] = s3_event(*args, **kwargs)
            for record in event["Records"]:
                record["s3"]["object"]["sequencer"] = f"{time.time_ns():016X}{next(sequence):08X}"
            return event

        def name_window(machine: Any, name: str, execution_input: str) -> Any:
            for execution in machine.executions:
                if execution.name != name:
                    continue
                if execution.status == "RUNNING":
                    if execution.execution_input == execution_input:
                        return execution
                    raise ExecutionAlreadyExists(f"Execution Already Exists: '{execution.execution_arn}'")
                # a stopped execution may not have its stop date yet: its start bounds it
                closed = execution.stop_date or execution.start_date
                closed_at = closed.replace(tzinfo=closed.tzinfo or UTC).timestamp()
                if rules.clock() - closed_at < NAME_REUSE_SECONDS:  # the clock a test may move
                    raise ExecutionAlreadyExists(f"Execution Already Exists: '{execution.execution_arn}'")
            return None

        self._patch(notifications, "_get_s3_event", with_sequencer)
        self._throttle_management_reads()
        self._limit_api_keys()
        self._patch(StateMachine, "_handle_name_input_idempotency", name_window)
        self._keep_task_failure_cause()
        self._abort_stopped_executions()
        self._ses_sandbox()

    def _ses_sandbox(self) -> None:
        """SES's sandbox (a new account's): sends only to verified recipients; GetAccount says so."""
        from moto.ses.exceptions import MessageRejectedError
        from moto.sesv2.responses import SESV2Response

        rules, send, identity = self, SESV2Response.send_email, SESV2Response.get_email_identity

        def verified(response: Any, address: str) -> bool:
            return bool(response.sesv2_backend.core_backend._is_verified_address(address))

        def send_email(response: Any) -> Any:
            params = json.loads(response.body or "{}")
            destination = params.get("Destination") or {}
            recipients = [
                a for k in ("ToAddresses", "CcAddresses", "BccAddresses") for a in destination.get(k, [])
            ]
            refused = [a for a in recipients if not verified(response, a)] if rules.ses_sandbox else []
            if refused:
                raise MessageRejectedError(
                    "Email address is not verified. The following identities failed the check in region "
                    f"{response.region.upper()}: {', '.join(refused)}"
                )
            rules._take_ses_send()
            for address in recipients:
                rules.ses_sent_with[address.lower()] = params.get("ConfigurationSetName", "")
            return send(response)

        def get_suppressed_destination(response: Any) -> Any:
            from moto.core.exceptions import JsonRESTError

            address = unquote(response.uri.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]).lower()
            if address not in rules.ses_suppressed:
                error = JsonRESTError(
                    "NotFoundException", f"Email address {address} does not exist on your suppression list."
                )
                error.code = 404
                raise error
            listed = {
                "EmailAddress": address,
                "Reason": rules.ses_suppressed[address],
                "LastUpdateTime": rules.clock(),
            }
            return json.dumps({"SuppressedDestination": listed})

        def get_email_identity(response: Any) -> Any:
            answer = json.loads(identity(response))
            answer["VerifiedForSendingStatus"] = verified(response, response._get_param("EmailIdentity"))
            return json.dumps(answer)

        def get_account(response: Any) -> Any:
            return json.dumps(
                {
                    "ProductionAccessEnabled": not rules.ses_sandbox,
                    "SendingEnabled": not rules.ses_sending_paused,
                    "EnforcementStatus": "HEALTHY",
                    "DedicatedIpAutoWarmupEnabled": False,
                    "SendQuota": {
                        "Max24HourSend": float(rules.ses_quota()),
                        "MaxSendRate": SES_SEND_RATE,
                        "SentLast24Hours": float(len(rules._ses_last_day())),
                    },
                }
            )

        from moto.sesv2 import urls

        # moto's server routes GetAccount's path nowhere (its app reads the paths at the first SES call)
        self._patch(
            urls,
            "url_paths",
            {
                **urls.url_paths,
                "{0}/v2/email/account$": SESV2Response.dispatch,
                "{0}/v2/email/suppression/addresses/(?P<EmailAddress>[^/]+)$": SESV2Response.dispatch,
            },
        )
        self._patch(SESV2Response, "get_suppressed_destination", get_suppressed_destination)
        self._patch(SESV2Response, "send_email", send_email)
        self._patch(SESV2Response, "get_email_identity", get_email_identity)
        self._patch(SESV2Response, "get_account", get_account)

    def ses_quota(self) -> int:
        if self.ses_daily_quota is not None:
            return self.ses_daily_quota
        return SES_SANDBOX_QUOTA if self.ses_sandbox else SES_PRODUCTION_QUOTA

    def _ses_last_day(self) -> list[float]:
        since = self.clock() - 86400
        self.ses_sent = [at for at in self.ses_sent if at > since]
        return self.ses_sent

    def ses_feedback(self, address: str, reason: str = "BOUNCE") -> bool:
        """A hard bounce (``BOUNCE``) or a complaint (``COMPLAINT``) for the last message sent to
        ``address``: listed for suppression where that message's configuration set says so.
        Whether it was listed."""
        from moto.sesv2.models import sesv2_backends

        name = self.ses_sent_with.get(address.lower())
        backend = sesv2_backends[ACCOUNT][REGION].core_backend
        configuration = backend.config_sets.get(name) if name else None
        if configuration is None or reason not in configuration.suppression_options.get(
            "SuppressedReasons", []
        ):
            return False
        self.ses_suppressed[address.lower()] = reason
        return True

    def _take_ses_send(self) -> None:
        """One message of the account's quotas, or SES's refusal: paused, the day's quota, the rate."""
        from moto.core.exceptions import JsonRESTError

        if self.ses_sending_paused:
            raise JsonRESTError(
                "SendingPausedException",
                "The message can't be sent because the account's ability to send email is currently paused.",
            )
        if len(self._ses_last_day()) >= self.ses_quota():
            raise JsonRESTError("ThrottlingException", "Daily message quota exceeded.")
        if self._ses_rate.take():
            raise JsonRESTError("ThrottlingException", "Maximum sending rate exceeded.")
        self.ses_sent.append(self.clock())

    def _limit_api_keys(self) -> None:
        """CreateApiKey: 429 ``TooManyRequestsException`` past 5 a second, and
        ``LimitExceededException`` for the 10,001st key of the account."""
        from moto.apigateway.models import APIGatewayBackend
        from moto.core.exceptions import JsonRESTError

        original, bucket = APIGatewayBackend.create_api_key, self._key_creation

        def create_api_key(backend: Any, payload: dict[str, Any]) -> Any:
            if bucket.take():
                error = JsonRESTError("TooManyRequestsException", "Too Many Requests")
            elif len(backend.keys) >= MAX_API_KEYS:
                error = JsonRESTError(
                    "LimitExceededException", f"API keys: at most {MAX_API_KEYS} an account"
                )
            else:
                return original(backend, payload)
            error.code = 429
            raise error

        self._patch(APIGatewayBackend, "create_api_key", create_api_key)

    def _abort_stopped_executions(self) -> None:
        from moto.stepfunctions.parser.api import ExecutionStatus
        from moto.stepfunctions.parser.backend import execution

        communication = execution.BaseExecutionWorkerCommunication
        stop, reflect = execution.Execution.stop, communication._reflect_execution_status

        def stop_now(running: Any, stop_date: Any, error: str | None, cause: str | None) -> None:
            stop(running, stop_date=stop_date, error=error, cause=cause)
            if running.exec_status == ExecutionStatus.RUNNING:
                running.exec_status, running.stop_date = ExecutionStatus.ABORTED, stop_date

        def aborted_stays_aborted(ended: Any) -> None:
            if ended.execution.exec_status != ExecutionStatus.ABORTED:
                reflect(ended)

        self._patch(execution.Execution, "stop", stop_now)
        self._patch(communication, "_reflect_execution_status", aborted_stays_aborted)

    def _keep_task_failure_cause(self) -> None:
        from moto.core.exceptions import JsonRESTError
        from moto.core.responses import EmptyResult
        from moto.stepfunctions.responses import StepFunctionResponse

        def send_task_failure(response: Any) -> Any:
            token = response._get_param("taskToken")
            if _closed_execution_holds(response.stepfunction_backend, token):
                # AWS's answer; moto's SendTaskSuccess says InvalidToken, its SendTaskFailure took it
                raise JsonRESTError("TaskTimedOut", "Task Timed Out: 'Provided task does not exist anymore'")
            response.stepfunction_backend.send_task_failure(
                token,
                error=response._get_param("error"),
                cause=response._get_param("cause"),
            )
            return EmptyResult()

        self._patch(StepFunctionResponse, "send_task_failure", send_task_failure)

    def _throttle_management_reads(self) -> None:
        from moto.apigateway.responses import APIGatewayResponse
        from moto.core.exceptions import JsonRESTError

        rules = self
        for name in THROTTLED_READS:
            original = getattr(APIGatewayResponse, name)

            def throttled(response: Any, *args: Any, _original: Any = original, _name: str = name) -> Any:
                agent = response.headers.get("User-Agent", "") if response.headers else ""
                signature = signed_by(response.headers or {}, "")
                caller = signature[0] if signature else ""
                if GATEWAY_USER_AGENT not in agent and not rules._management_call_allowed(_name, caller):
                    error = JsonRESTError("TooManyRequestsException", "Too Many Requests")
                    error.code = 429
                    raise error
                return _original(response, *args)

            self._patch(APIGatewayResponse, name, throttled)
