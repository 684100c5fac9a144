"""moto's server finds each request's service by listing its own package folder (about 170
``isdir`` calls) and then matching some hundred URL patterns, under one lock that every request
of every service takes: about 1 ms of each DynamoDB, SQS or S3 call spent in a queue of its own.
The service a host names never changes while moto runs, so the stack keeps the first answer for
each host. Nothing AWS does is changed: only how fast the emulator finds its own code.

Usage::

    lookup = RememberedServiceLookup()
    lookup.apply() ... lookup.restore()
"""

from __future__ import annotations

import threading
from typing import Any

from alphacut_dev.local.patches import MotoPatches


class RememberedServiceLookup(MotoPatches):
    def apply(self) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication

        original = DomainDispatcherApplication.get_backend_for_host
        found: dict[str | None, Any] = {}
        lock = threading.Lock()

        def get_backend_for_host(dispatcher: Any, host: str | None) -> Any:
            with lock:
                if host in found:
                    return found[host]
            backend = original(dispatcher, host)
            with lock:
                found[host] = backend
            return backend

        self._patch(DomainDispatcherApplication, "get_backend_for_host", get_backend_for_host)
