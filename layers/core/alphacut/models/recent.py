"""The outputs of a process's last model runs, so that the same input asked again skips the run.

A store asks for one photo more than once: remove.bg's clients fetch the preview and then the full
size (the model sees the photo at its square input either way: one input), a product comes back in
three backgrounds or two formats, a client that timed out sends its call again, Step Functions
retries a Segment step. A run is a function of its session and its feeds, so its outputs are the
same either way; this keeps the last ones, found by the exact bytes of the feeds (sha256), within a
byte budget, oldest out first. A hit costs a hash and a copy (about 10 ms for ISNet's 1024² input)
where the run costs 0.6-1.5 s of CPU.

What a hit would show a caller: that this process ran the same input lately (it answers sooner),
to someone who already holds that input, such as whether another customer sent a photo. So the
outputs are kept per caller (``alphacut.caller_scope``: the API key, set around each call) and
one caller's runs never answer another's. ``ALPHACUT_RECENT_OUTPUTS_MB=0`` turns it off; a
library call leaves it off unless asked (``EngineSettings.recent_outputs_mb``), so benchmarks time
runs.

Usage::

    recent = RecentOutputs(capacity_bytes=64 << 20)
    session = recent.remembering(engine.open(path))   # a Session: run() as before
    session.run(["matte"], {"input": batch})          # runs the model
    session.run(["matte"], {"input": batch})          # the same arrays (copies), from memory
    with caller_scope("k0123456789ab"):               # a caller's runs, apart from everyone else's
        session.run(["matte"], {"input": batch})      # runs the model again
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from alphacut.caller_scope import current_caller

_SESSION_NUMBERS = itertools.count()


class RecentOutputs:
    """Outputs by (session, output names, feeds), at most ``capacity_bytes`` of them; thread-safe.
    Two calls with the same new input at once both run (neither waits for the other)."""

    def __init__(self, capacity_bytes: int):
        self.capacity_bytes = capacity_bytes
        self.held_bytes = 0
        self.hits = 0
        self.misses = 0
        self._outputs: OrderedDict[bytes, list[np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()

    def remembering(self, session: Any) -> RememberingSession:
        return RememberingSession(session, self, next(_SESSION_NUMBERS))

    def get(self, key: bytes) -> list[np.ndarray] | None:
        with self._lock:
            outputs = self._outputs.get(key)
            if outputs is None:
                self.misses += 1
                return None
            self._outputs.move_to_end(key)
            self.hits += 1
        return [array.copy() for array in outputs]

    def put(self, key: bytes, outputs: list[np.ndarray]) -> None:
        kept = [np.array(array, copy=True) for array in outputs]  # the caller may change its own
        size = sum(array.nbytes for array in kept)
        if size > self.capacity_bytes:
            return
        with self._lock:
            if key in self._outputs:
                return
            while self.held_bytes + size > self.capacity_bytes:
                _, dropped = self._outputs.popitem(last=False)
                self.held_bytes -= sum(array.nbytes for array in dropped)
            self._outputs[key] = kept
            self.held_bytes += size


class RememberingSession:
    """An engine session (``alphacut.models.engines.Session``) whose runs go through a
    ``RecentOutputs``; everything else is the session's own."""

    def __init__(self, session: Any, recent: RecentOutputs, number: int):
        self.session = session
        self.recent = recent
        self.number = number  # sessions never share outputs, even of the same file

    def __getattr__(self, name: str) -> Any:
        if name == "session":  # not set yet (a copy being made): no session to ask
            raise AttributeError(name)
        return getattr(self.session, name)

    def run(self, names: Sequence[str] | None, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        key = feeds_key(self.number, names, feeds)
        outputs = self.recent.get(key)
        if outputs is None:
            outputs = self.session.run(names, feeds)
            self.recent.put(key, outputs)
        return outputs


def feeds_key(session: int, names: Sequence[str] | None, feeds: dict[str, np.ndarray]) -> bytes:
    # names as a tuple: a list and a tuple of the same outputs are one question
    caller = current_caller()
    digest = hashlib.sha256(
        f"{len(caller)}:{caller}|{session}|{None if names is None else tuple(names)!r}".encode()
    )
    for name in sorted(feeds):
        array = np.ascontiguousarray(feeds[name])
        digest.update(f"|{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array)
    return digest.digest()
