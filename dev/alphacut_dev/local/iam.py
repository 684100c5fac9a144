"""IAM as AWS applies it to the stack's functions: each function (and the endpoint's container)
runs with the credentials of a session of its own role, made in moto's IAM from the translated
template: the role's inline policies, the stand-alone policies that name it, and its managed
policies where moto has them.

The rule applied here, in moto's server (this process):
- S3 answers GetObject and HeadObject of a missing key with 404 only to a caller that may
  ``s3:ListBucket`` on the bucket; to any other it answers 403 AccessDenied, as it would not say
  whether the key exists. The functions' roles grant no listing, so the code must read that 403
  (``alphacut.aws.objects.object_gone``). Presigned URLs carry their signer's credentials: the same.

Calls made with the stack's own credentials (``LocalStack.aws_env``: the tests, the local
gateway, AWS's side of things) are not a role's and pass as before.

Usage::

    iam = LocalIam(stack.client)
    iam.create_roles(resources, resolver)            # once the resources its policies name exist
    env = iam.session_env("CutoutFunctionRole")      # AWS_ACCESS_KEY_ID, ... for that process
    iam.apply()                                      # the S3 rule; iam.undo() at stop
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from alphacut_dev.local.account import ACCOUNT
from alphacut_dev.local.intrinsics import Resolver

UNRESOLVED = "arn:aws:local:::not-made-locally"  # what a policy names that the local stack lacks
SESSION_SECONDS = 12 * 3600  # STS's most for a role session
_CREDENTIAL = re.compile(r"Credential=([A-Z0-9]+)/")
ACCESS_DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Access Denied</Message></Error>"
)


@dataclass
class RoleSession:
    """One role's session: its credentials and the policy documents it holds."""

    role: str  # the role's name in moto's IAM
    documents: list[dict] = field(default_factory=list)
    credentials: dict[str, str] = field(default_factory=dict)

    def allows(self, action: str, resource: str) -> bool:
        from moto.iam.access_control import IAMPolicy, PermissionResult

        results = [IAMPolicy(json.dumps(doc)).is_action_permitted(action, resource) for doc in self.documents]
        return PermissionResult.PERMITTED in results and PermissionResult.DENIED not in results


def lenient(resolver: Resolver, value: Any) -> Any:
    """``value`` resolved, with anything the local stack did not make (a log group, an alarm
    topic, an ECR repository from the image URI ``local``) named ``UNRESOLVED``: such a grant
    matches nothing here, as nothing here needs it."""
    try:
        return resolver.resolve(value)
    except (KeyError, IndexError):
        if isinstance(value, list):
            return [lenient(resolver, item) for item in value]
        if isinstance(value, dict):
            intrinsic = len(value) == 1 and next(iter(value)).startswith(("Fn::", "Ref"))
            return UNRESOLVED if intrinsic else {k: lenient(resolver, v) for k, v in value.items()}
        raise


class LocalIam:
    def __init__(self, client: Callable[[str], Any], stack_name: str):
        self.client = client
        self.stack_name = stack_name
        self.sessions: dict[str, RoleSession] = {}  # role's logical id -> its session
        self._by_key: dict[str, RoleSession] = {}  # access key id -> session
        self._originals: list[tuple[Any, str, Any]] = []

    # ---- roles and sessions from the template ---------------------------------------------------
    def create_roles(self, resources: dict, resolver: Resolver) -> None:
        iam, sts = self.client("iam"), self.client("sts")
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
        # AWS takes a document without a Version (2008-10-17: only policy variables differ); moto not
        document = {"Version": "2012-10-17", **document}
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
        found = _CREDENTIAL.search(headers.get("Authorization", "")) or re.search(
            r"X-Amz-Credential=([A-Z0-9]+)(?:/|%2F)", query
        )
        return self._by_key.get(found.group(1)) if found else None

    # ---- the rules, in moto's server -------------------------------------------------------------
    def apply(self) -> None:
        from urllib.parse import urlsplit

        from moto.s3.responses import S3Response

        original = S3Response.key_response
        iam = self

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
