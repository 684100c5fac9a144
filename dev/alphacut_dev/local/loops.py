"""A background thread the stack starts and stops: what stands in for AWS's own pollers (an
event source mapping, an EventBridge rule)."""

from __future__ import annotations

import threading


class BackgroundLoop:
    """Subclasses define ``_run`` and read ``self.stopping``."""

    def __init__(self, name: str):
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
