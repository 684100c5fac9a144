"""IAM as AWS applies it to the stack's functions: each function (and the endpoint's container)
runs with the credentials of a session of its own role, made in moto's IAM from the translated
template: the role's inline policies, the stand-alone policies that name it, and its managed
policies where moto has them.

The rules applied here, in moto's server (this process), to every request a role's session signs
(a presigned URL carries its signer's credentials too):
- Each call is checked against the role's statements: its IAM action, the resource it names and
  the conditions the template uses (``dynamodb:LeadingKeys``; a condition key the call does not
  give fails, as on AWS), Deny before Allow; a call no statement allows is refused 403
  AccessDenied. moto's own access-control mode would pass the resource ``*`` for most services (so
  no scoped grant would match) and checks no condition: it stays off, and ``request_checks`` names
  each call's resources itself (S3 objects and buckets, DynamoDB tables and indexes with their
  partition keys, SQS queues, Step Functions machines and executions, secrets, API Gateway paths).
- S3 answers GetObject and HeadObject of a missing key with 404 only to a caller that may
  ``s3:ListBucket`` on the bucket; to any other it answers 403 AccessDenied, as it would not say
  whether the key exists. The functions' roles grant no listing, so the code must read that 403
  (``alphacut.aws.objects.object_gone``).

Calls made with the stack's own credentials (``LocalStack.aws_env``: the tests, the local
gateway, the pollers, the emulated endpoint: AWS's side of things) are not a role's and pass.
Calls moto makes inside itself (Step Functions' service integrations) are not requests: the state
machine's role is not checked here; the least-privilege test reads its grants.

Usage::

    iam = LocalIam(stack.client)
    iam.create_roles(resources, resolver)            # once the resources its policies name exist
    env = iam.session_env("CutoutFunctionRole")      # AWS_ACCESS_KEY_ID, ... for that process
    iam.apply()                                      # the rules, in moto; iam.undo() at stop
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from botocore.exceptions import ClientError

from alphacut_dev.local.account import ACCOUNT
from alphacut_dev.local.intrinsics import Resolver

UNRESOLVED = "arn:aws:local:::not-made-locally"  # what a policy names that the local stack lacks
SESSION_SECONDS = 12 * 3600  # STS's most for a role session
# a SigV4 credential, in the Authorization header or a presigned URL's X-Amz-Credential
_CREDENTIAL = re.compile(r"Credential=([A-Z0-9]+)/\d+/([a-z0-9-]+)/([a-z0-9-]+)/")
ACCESS_DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Access Denied</Message></Error>"
)


Context = dict[str, list[str]]  # condition key -> the values the call gives


@dataclass
class RoleSession:
    """One role's session: its credentials and the policy documents it holds."""

    role: str  # the role's name in moto's IAM
    documents: list[dict] = field(default_factory=list)
    credentials: dict[str, str] = field(default_factory=dict)

    @property
    def statements(self) -> list[dict]:
        found = []
        for document in self.documents:
            statement = document.get("Statement", [])
            found += statement if isinstance(statement, list) else [statement]
        return found

    def allows(self, action: str, resource: str, context: Context | None = None) -> bool:
        """IAM's evaluation for one identity: an explicit Deny wins, else some Allow must apply."""
        applying = [s for s in self.statements if applies(s, action, resource, context or {})]
        return any(s["Effect"] == "Allow" for s in applying) and not any(
            s["Effect"] == "Deny" for s in applying
        )


def _listed(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _like(value: str, pattern: str, case: bool = True) -> bool:
    """IAM's wildcards: * any run of characters, ? one."""
    if not case:
        value, pattern = value.lower(), pattern.lower()
    return fnmatch.fnmatchcase(value, pattern.replace("[", "[[]"))


def applies(statement: dict, action: str, resource: str, context: Context) -> bool:
    if "Action" in statement:
        if not any(_like(action, a, case=False) for a in _listed(statement["Action"])):
            return False
    elif any(_like(action, a, case=False) for a in _listed(statement.get("NotAction", []))):
        return False
    if "Resource" in statement:
        if not any(_like(resource, r) for r in _listed(statement["Resource"])):
            return False
    elif any(_like(resource, r) for r in _listed(statement.get("NotResource", []))):
        return False
    return all(
        condition_holds(operator, key, _listed(expected), context)
        for operator, keys in statement.get("Condition", {}).items()
        for key, expected in keys.items()
    )


def condition_holds(operator: str, key: str, expected: list[str], context: Context) -> bool:
    """One condition (``ForAllValues:StringLike``, ``StringEquals``, ``ArnLike``...) on the values
    the call gives for ``key``; a key the call does not give fails, but for ForAllValues (which
    holds over no values) and ...IfExists, as IAM evaluates them."""
    qualifier, _, test = operator.rpartition(":")
    values = context.get(key)
    if test.endswith("IfExists"):
        if values is None:
            return True
        test = test.removesuffix("IfExists")
    if values is None:
        return qualifier == "ForAllValues"
    negated = "Not" in test
    like = test.replace("Not", "") in ("StringLike", "ArnLike")

    def match(value: str) -> bool:
        found = any(_like(value, e) if like else value == e for e in expected)
        return found != negated

    return all(match(v) for v in values) if qualifier == "ForAllValues" else any(match(v) for v in values)


def signed_by(headers: Any, query: str) -> tuple[str, str, str] | None:
    """(access key id, region, service) of a request's signature, from its header or its
    presigned query; None for an unsigned request."""
    found = _CREDENTIAL.search(headers.get("Authorization", "")) or _CREDENTIAL.search(unquote(query))
    return (found.group(1), found.group(2), found.group(3)) if found else None


def versioned(document: dict) -> dict:
    """AWS takes a policy document without a Version (2008-10-17: only policy variables differ);
    moto does not."""
    return {"Version": "2012-10-17", **document}


def lenient(resolver: Resolver, value: Any) -> Any:
    """``value`` resolved, with anything the local stack did not make (a log group, an alarm
    topic, an ECR repository from the image URI ``local``) named ``UNRESOLVED``: such a grant
    matches nothing here, as nothing here needs it."""
    try:
        return resolver.resolve(value)
    except (KeyError, IndexError):
        if isinstance(value, list):  # AWS::NoValue (None): no item
            return [item for item in (lenient(resolver, v) for v in value) if item is not None]
        if isinstance(value, dict):
            intrinsic = len(value) == 1 and next(iter(value)).startswith(("Fn::", "Ref"))
            return UNRESOLVED if intrinsic else {k: lenient(resolver, v) for k, v in value.items()}
        raise


# ---- what a request asks for: (IAM action, resource ARN, condition values) per check -------------

TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}
_KEY_EQUALS = re.compile(r"(#?[A-Za-z0-9_]+)\s*=\s*(:[A-Za-z0-9_]+)")


def request_checks(response: Any, service: str, resource: str, region: str) -> list[tuple[str, str, Context]]:
    """The checks IAM makes for one request to moto (``resource``: moto's own, for S3 and SQS)."""
    action = response._get_action()
    if service == "s3":
        return [(f"s3:{'ListBucket' if action == 'HeadBucket' else action}", resource, {})]
    body = _json(response)
    if service == "dynamodb":
        return dynamodb_checks(body, action, region)
    if service == "states":
        return [(f"states:{action}", states_resource(body, region), {})]
    if service == "secretsmanager":
        return [(f"secretsmanager:{action}", secret_arn(str(body.get("SecretId", "")), region), {})]
    if service == "ses":  # SES v2: the identity sent from or read; the account's own settings: "*"
        return [(f"ses:{action}", ses_resource(response, action, body, region), {})]
    if service == "apigateway":  # its management API's IAM actions are the HTTP methods
        path = response.uri.split("?", 1)[0].split("amazonaws.com", 1)[-1]
        path = "/" + path.split("/", 3)[-1] if path.startswith("http") else path
        return [(f"apigateway:{response.method}", f"arn:aws:apigateway:{region}::{path}", {})]
    return [(f"{service}:{action}", resource, {})]


def ses_resource(response: Any, action: str, body: dict, region: str) -> str:
    if action == "SendEmail":
        return f"arn:aws:ses:{region}:{ACCOUNT}:identity/{body.get('FromEmailAddress', '')}"
    if action == "GetEmailIdentity":
        name = response.uri.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        return f"arn:aws:ses:{region}:{ACCOUNT}:identity/{unquote(name)}"
    return "*"


def _json(response: Any) -> dict:
    try:  # what moto's own check reads: the raw body (``body`` is parsed later, per protocol)
        found = json.loads(getattr(response, "raw_body", None) or response.body or "{}")
    except (TypeError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def dynamodb_checks(body: dict, action: str, region: str) -> list[tuple[str, str, Context]]:
    if action in ("TransactWriteItems", "TransactGetItems"):
        return [
            _dynamodb_check(TRANSACT_ACTIONS[kind], spec, region)
            for item in body.get("TransactItems", [])
            for kind, spec in item.items()
        ]
    if action in ("BatchGetItem", "BatchWriteItem"):
        checks = []
        for table, spec in body.get("RequestItems", {}).items():
            requests = (
                spec.get("Keys", [])
                if isinstance(spec, dict)
                else [next(iter(r.values())).get("Key") or next(iter(r.values())).get("Item") for r in spec]
            )
            checks += [_dynamodb_check(action, {"TableName": table, "Key": key}, region) for key in requests]
        return checks
    return [_dynamodb_check(action, body, region)]


def _dynamodb_check(action: str, spec: dict, region: str) -> tuple[str, str, Context]:
    name = str(spec.get("TableName", ""))
    arn = name if name.startswith("arn:") else f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{name}"
    index = f"/index/{spec['IndexName']}" if spec.get("IndexName") else ""
    leading = partition_values(arn.rsplit("/", 1)[-1], spec, region)
    context: Context = {"dynamodb:LeadingKeys": leading} if leading else {}
    if action == "UpdateItem":
        context["dynamodb:Attributes"] = updated_attributes(spec)
        if spec.get("ReturnValues"):
            context["dynamodb:ReturnValues"] = [str(spec["ReturnValues"])]
    return f"dynamodb:{action}", arn + index, context


# words of DynamoDB's expressions that are not attribute names (functions, operators, clauses)
_EXPRESSION_WORDS = {
    "SET", "REMOVE", "ADD", "DELETE", "AND", "OR", "NOT", "BETWEEN", "IN", "attribute_exists",
    "attribute_not_exists", "attribute_type", "begins_with", "contains", "size", "if_not_exists",
    "list_append",
}  # fmt: skip
_NAME = re.compile(r"(?<![.:#\w])(#?[A-Za-z_][A-Za-z0-9_]*)")


def updated_attributes(spec: dict) -> list[str]:
    """``dynamodb:Attributes`` of an UpdateItem: its key's attribute names and the top-level names
    its update and condition expressions read or write ("read, written, or evaluated in a
    conditional write"), ``#placeholders`` resolved."""
    names = spec.get("ExpressionAttributeNames", {})
    found = list(spec.get("Key", {}))
    for expression in (spec.get("UpdateExpression", ""), spec.get("ConditionExpression", "")):
        for word in _NAME.findall(expression or ""):
            name = names.get(word, word)
            if name not in _EXPRESSION_WORDS and name not in found:
                found.append(name)
    return found


def partition_values(table_name: str, spec: dict, region: str) -> list[str]:
    """The partition key values a call touches (``dynamodb:LeadingKeys``): from its Key or Item,
    or what its KeyConditionExpression sets the partition key equal to."""
    from moto.dynamodb.models import dynamodb_backends

    try:
        attribute = dynamodb_backends[ACCOUNT][region].get_table(table_name).hash_key_attr
    except Exception:  # noqa: BLE001 - no such table: DynamoDB itself refuses the call
        return []
    item = spec.get("Key") or spec.get("Item") or {}
    if attribute in item:
        return [str(next(iter(item[attribute].values())))]
    names = spec.get("ExpressionAttributeNames", {})
    values = spec.get("ExpressionAttributeValues", {})
    return [
        str(next(iter(values[placeholder].values())))
        for name, placeholder in _KEY_EQUALS.findall(spec.get("KeyConditionExpression", ""))
        if names.get(name, name) == attribute and placeholder in values
    ]


def states_resource(body: dict, region: str) -> str:
    """A state machine or execution named by the call; a task token's is its state machine's (the
    stack has one; AWS authorizes SendTask* on the machine whose execution holds the token)."""
    for name in ("stateMachineArn", "executionArn"):
        if body.get(name):
            return str(body[name])
    from moto.stepfunctions.responses import get_backend  # the executing backend, where it is on

    machines = list(get_backend(ACCOUNT, region).state_machines)
    return machines[0].arn if machines else "*"


def secret_arn(secret_id: str, region: str) -> str:
    if secret_id.startswith("arn:"):
        return secret_id
    from moto.secretsmanager.models import secretsmanager_backends

    secrets = secretsmanager_backends[ACCOUNT][region].secrets
    return (
        secrets[secret_id].arn
        if secret_id in secrets
        else f"arn:aws:secretsmanager:{region}:{ACCOUNT}:secret:{secret_id}"
    )


class LocalIam:
    def __init__(self, client: Callable[[str], Any], stack_name: str):
        self.client = client
        self.stack_name = stack_name
        self.sessions: dict[str, RoleSession] = {}  # role's logical id -> its session
        self._by_key: dict[str, RoleSession] = {}  # access key id -> session
        self._originals: list[tuple[Any, str, Any]] = []
        self.refused: list[tuple[str, str, str]] = []  # (role, action, resource) refused, for tests

    # ---- roles and sessions from the template ---------------------------------------------------
    def create_roles(self, resources: dict, resolver: Resolver) -> None:
        iam, sts = self.client("iam"), self.client("sts")
        for logical, resource in resources.items():  # customer managed policies: Ref is the ARN
            if resource["Type"] == "AWS::IAM::ManagedPolicy":
                document = versioned(lenient(resolver, resource["Properties"]["PolicyDocument"]))
                made = iam.create_policy(
                    PolicyName=f"{self.stack_name}-{logical}"[:128], PolicyDocument=json.dumps(document)
                )
                resolver.refs[logical] = made["Policy"]["Arn"]
        for logical, resource in resources.items():
            if resource["Type"] != "AWS::IAM::Role":
                continue
            props = resource["Properties"]
            session = RoleSession(f"{self.stack_name}-{logical}"[:64])
            trust = lenient(resolver, props["AssumeRolePolicyDocument"])
            iam.create_role(RoleName=session.role, AssumeRolePolicyDocument=json.dumps(trust))
            for policy in props.get("Policies", []):
                self._put(iam, session, policy["PolicyName"], lenient(resolver, policy["PolicyDocument"]))
            for arn in lenient(resolver, props.get("ManagedPolicyArns", [])):
                self._attach(iam, session, arn)
            self.sessions[logical] = session
        for resource in resources.values():  # stand-alone policies name their roles
            if resource["Type"] == "AWS::IAM::Policy":
                props = resource["Properties"]
                for role in props.get("Roles", []):
                    session = self.sessions[role["Ref"]]
                    self._put(iam, session, props["PolicyName"], lenient(resolver, props["PolicyDocument"]))
        for logical, session in self.sessions.items():
            arn = f"arn:aws:iam::{ACCOUNT}:role/{session.role}"
            given = sts.assume_role(
                RoleArn=arn, RoleSessionName=logical[:64], DurationSeconds=SESSION_SECONDS
            )
            session.credentials = {
                "AWS_ACCESS_KEY_ID": given["Credentials"]["AccessKeyId"],
                "AWS_SECRET_ACCESS_KEY": given["Credentials"]["SecretAccessKey"],
                "AWS_SESSION_TOKEN": given["Credentials"]["SessionToken"],
            }
            self._by_key[session.credentials["AWS_ACCESS_KEY_ID"]] = session

    @staticmethod
    def _put(iam: Any, session: RoleSession, name: str, document: dict) -> None:
        document = versioned(document)
        iam.put_role_policy(RoleName=session.role, PolicyName=name, PolicyDocument=json.dumps(document))
        session.documents.append(document)

    @staticmethod
    def _attach(iam: Any, session: RoleSession, arn: str) -> None:
        """An AWS managed policy, where moto has it (the logs and traces ones need nothing here)."""
        try:
            iam.attach_role_policy(RoleName=session.role, PolicyArn=arn)
            version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
            document = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
        except ClientError:
            return
        session.documents.append(json.loads(document) if isinstance(document, str) else document)

    def session_env(self, role_logical: str) -> dict[str, str]:
        return dict(self.sessions[role_logical].credentials)

    def caller(self, headers: Any, query: str) -> RoleSession | None:
        """The role session that signed a request (header or presigned query), if any."""
        signature = signed_by(headers, query)
        return self._by_key.get(signature[0]) if signature else None

    # ---- the rules, in moto's server -------------------------------------------------------------
    def apply(self) -> None:
        from urllib.parse import urlsplit

        from moto.core.authorization import ActionAuthenticatorMixin
        from moto.core.exceptions import AccessDeniedError
        from moto.s3.exceptions import S3AccessDeniedError
        from moto.s3.responses import S3Response

        iam = self

        def authorize(response: Any, iam_request_cls: Any, resource: str = "*") -> None:
            signature = signed_by(response.headers, urlsplit(response.uri).query)
            session = iam._by_key.get(signature[0]) if signature else None
            if signature is None or session is None:
                return
            _, region, service = signature
            for action, target, context in request_checks(response, service, resource, region):
                if not session.allows(action, target, context):
                    iam.refused.append((session.role, action, target))
                    if service == "s3":
                        raise S3AccessDeniedError()
                    raise AccessDeniedError(f"arn:aws:sts::{ACCOUNT}:assumed-role/{session.role}", action)

        self._originals.append(
            (ActionAuthenticatorMixin, "_authenticate_and_authorize_action",
             ActionAuthenticatorMixin._authenticate_and_authorize_action)
        )  # fmt: skip
        ActionAuthenticatorMixin._authenticate_and_authorize_action = authorize
        original = S3Response.key_response

        def key_response(response: Any, request: Any, full_url: str, headers: Any) -> Any:
            status, answer_headers, body = original(response, request, full_url, headers)
            if status != 404 or request.method not in ("GET", "HEAD"):
                return status, answer_headers, body
            session = iam.caller(request.headers, urlsplit(full_url).query)
            bucket = response.parse_bucket_name_from_url(request, full_url)
            if session is None or session.allows("s3:ListBucket", f"arn:aws:s3:::{bucket}"):
                return status, answer_headers, body
            denied = b"" if request.method == "HEAD" else ACCESS_DENIED
            return 403, {"Content-Type": "application/xml", "Content-Length": str(len(denied))}, denied

        self._originals.append((S3Response, "key_response", original))
        S3Response.key_response = key_response

    def undo(self) -> None:
        for owner, name, value in reversed(self._originals):
            setattr(owner, name, value)
        self._originals.clear()
