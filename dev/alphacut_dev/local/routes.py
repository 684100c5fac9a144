"""The gateway's routes as the local stack reads them from the template: the function behind each,
and what guards it (a Lambda authorizer, ``alphacut_dev.local.authorizers``, or API Gateway's API
key, whose usage plans are the service's own type ``alphacut.aws.ledger.plans.Plan``, read from moto).

Usage::

    route = Route("GET", "/v1/tasks/{task_id}", path_pattern("/v1/tasks/{task_id}"), "TasksFunction")
    route.match("GET", "/v1/tasks/abc")   # {"task_id": "abc"}
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from alphacut_dev.local.apigateway_integrations import MockIntegration


def path_pattern(resource: str) -> re.Pattern:
    """/v1/tasks/{task_id} -> a regex with a named group per path parameter."""
    parts = []
    for segment in resource.strip("/").split("/"):
        parameter = re.fullmatch(r"\{(\w+)\+?\}", segment)
        parts.append(f"(?P<{parameter.group(1)}>[^/]+)" if parameter else re.escape(segment))
    return re.compile("/" + "/".join(parts) + "/?")  # API Gateway ignores a trailing slash


@dataclass
class Route:
    method: str  # GET, POST, ... or ANY
    resource: str  # /v1/tasks/{task_id}
    pattern: re.Pattern
    function: str  # logical id
    key_required: bool = False  # the operation's security names API Gateway's API key
    api: str = "Api"  # the REST API's logical id (its gateway responses apply)
    # a mock integration (a CORS preflight): API Gateway answers it itself, no function
    mock: MockIntegration | None = None
    binary_media_types: tuple[str, ...] = ()  # the API's (apigateway_integrations.is_binary)
    authorizer: str = ""  # the Lambda authorizer its security names ("" : none)

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if self.method not in ("ANY", method):
            return None
        found = self.pattern.fullmatch(path)
        return found.groupdict() if found else None
