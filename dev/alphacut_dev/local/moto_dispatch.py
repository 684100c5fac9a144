"""moto's server finds each request's service by listing its own package folder (about 170
``isdir`` calls, 0.75 ms here) and then matching some hundred URL patterns, under one lock that
every request of every service takes (``list_tables`` took 3.2 ms with it, 2.2 ms without). The
service a host names never changes while moto runs, so the stack keeps the first answer for each
host. Nothing AWS does is changed: only how fast the emulator finds its own code.

Usage::

    lookup = RememberedServiceLookup()
    lookup.apply() ... lookup.restore()
"""

from __future__ import annotations

from typing import Any

from alphacut_dev.local.patches import MotoPatches


class RememberedServiceLookup(MotoPatches):
    def apply(self) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication

        original = DomainDispatcherApplication.get_backend_for_host
        found: dict[str | None, Any] = {}  # filled under the dispatcher's lock: its only callers hold it

        def get_backend_for_host(dispatcher: Any, host: str | None) -> Any:
            if host not in found:
                found[host] = original(dispatcher, host)
            return found[host]

        self._patch(DomainDispatcherApplication, "get_backend_for_host", get_backend_for_host)
